//! `testio-sync status`.

use std::path::PathBuf;

use anyhow::bail;
use serde_json::json;

use super::Exit;
use crate::config;
use crate::db::Store;

#[derive(clap::Args)]
pub struct Args {
    /// The database file [env: TESTIO_DB_PATH] [default: ~/.testio-mcp/cache.db]
    #[arg(long, env = "TESTIO_DB_PATH", value_name = "PATH", hide_env = true)]
    db: Option<PathBuf>,
    /// Print the status as JSON on stdout
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let path = match args.db {
        Some(path) => path,
        None => config::default_db_path()?,
    };
    if !path.is_file() {
        bail!("there is no database at {}; run `testio-sync sync` first", path.display());
    }
    let store = Store::open_existing(&path, config::customer_id()?)?;
    let counts = store.row_counts()?;
    let last = store.last_sync()?;
    let last_completed = store.metadata("last_sync_completed")?;
    if args.json {
        let tables: serde_json::Map<String, serde_json::Value> =
            counts.iter().map(|(t, n)| (t.to_string(), json!(n))).collect();
        println!(
            "{}",
            json!({ "db_path": path, "customer_id": store.customer_id(), "rows": tables, "last_sync": last, "last_sync_completed": last_completed })
        );
        return Ok(Exit::Success);
    }
    println!("Database: {}", path.display());
    for (table, count) in counts {
        println!("  {table:<16} {count:>9}");
    }
    match last {
        Some(s) => println!(
            "Last sync: {} ({}, {}), started {}{}",
            s.status,
            s.trigger_source,
            s.duration_seconds.map_or("still running".into(), |d| format!("{d:.1}s")),
            s.started_at,
            s.error_message.map_or(String::new(), |m| format!(": {m}"))
        ),
        None => println!("Last sync: never"),
    }
    if let Some(completed) = last_completed {
        println!("Last successful sync completed: {completed}");
    }
    Ok(Exit::Success)
}
