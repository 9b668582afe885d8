//! `testio-sync status`: the database, its row counts, the last sync and the lock holder.

use std::path::PathBuf;

use serde_json::json;

use super::shared::CustomerArgs;
use super::{Exit, output};
use crate::config::DbPath;
use crate::db::Store;
use crate::lock;
use crate::runtime::EngineRuntime;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    database: Database,
    /// Print the status as JSON on stdout
    #[arg(long)]
    json: bool,
}

/// An existing database to read; shared with `history` and `problems`.
#[derive(clap::Args)]
pub struct Database {
    /// The database file [env: TESTIO_DB_PATH] [default: ~/.testio-mcp/cache.db]
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    #[command(flatten)]
    customer: CustomerArgs,
}

impl Database {
    pub fn open(&self) -> anyhow::Result<(PathBuf, Store)> {
        let db = DbPath::resolve(self.db.as_deref())?;
        db.check_existing()?;
        let customer = self.customer.resolve(&db.path)?;
        let store = Store::open_existing(&db.path, customer.customer_id)?;
        Ok((db.path, store))
    }
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let (path, store) = args.database.open()?;
    let counts = store.row_counts()?;
    let lock_path = lock::path_for(&path, store.customer_id());
    let last = store.current_history(1, &lock_path)?.pop();
    let last_completed = store.metadata("last_sync_completed")?;
    let lock = EngineRuntime::load()?.lock_status(&lock_path)?;
    if args.json {
        let tables: serde_json::Map<String, serde_json::Value> =
            counts.iter().map(|(t, n)| (t.to_string(), json!(n))).collect();
        let holder = lock.held.then_some(&lock.line);
        output::line(json!({ "db_path": path, "customer_id": store.customer_id(), "rows": tables, "last_sync": last,
                    "last_sync_completed": last_completed, "lock_holder": holder }))?;
        return Ok(Exit::Success);
    }
    output::line(format_args!("Database: {}", path.display()))?;
    for (table, count) in counts {
        output::line(format_args!("  {table:<16} {count:>9}"))?;
    }
    match last {
        Some(s) => output::line(format_args!(
            "Last sync: {} ({}{}), started {}{}",
            s.status,
            s.trigger_source,
            super::history::duration(&s),
            s.started_at,
            s.error_message.map_or(String::new(), |m| format!(": {m}"))
        ))?,
        None => output::line("Last sync: never")?,
    }
    if let Some(completed) = last_completed {
        output::line(format_args!("Last successful sync completed: {completed}"))?;
    }
    output::line(format_args!("Sync lock: {}", lock.line))?;
    Ok(Exit::Success)
}
