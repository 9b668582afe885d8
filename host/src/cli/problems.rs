//! `testio-sync problems`: the recorded problem ranges, offsets of tests that fail with
//! HTTP 500 even one per page.

use std::path::PathBuf;

use anyhow::bail;

use super::Exit;
use crate::config;
use crate::db::Store;

#[derive(clap::Args)]
pub struct Args {
    /// The database file [env: TESTIO_DB_PATH] [default: ~/.testio-mcp/cache.db]
    #[arg(long, env = "TESTIO_DB_PATH", value_name = "PATH", hide_env = true)]
    db: Option<PathBuf>,
    /// Print the ranges as a JSON array on stdout
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
    let rows = Store::open_existing(&path, config::customer_id()?)?.problem_ranges(&[])?;
    if args.json {
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(Exit::Success);
    }
    if rows.is_empty() {
        println!("No problem ranges: every test page could be fetched.");
        return Ok(Exit::Success);
    }
    println!(
        "{:>8}  {:>13}  {:>18}  {:>18}  {:>8}  {:<26}  last seen",
        "product", "offsets", "test before", "test after", "attempts", "first seen"
    );
    for row in rows {
        let id = |id: Option<i64>| id.map_or("-".to_string(), |id| id.to_string());
        println!(
            "{:>8}  {:>13}  {:>18}  {:>18}  {:>8}  {:<26}  {}",
            row.product_id,
            format!("{}-{}", row.first_offset, row.last_offset),
            id(row.before_test_id),
            id(row.after_test_id),
            row.attempts,
            row.first_seen,
            row.last_seen
        );
    }
    Ok(Exit::Success)
}
