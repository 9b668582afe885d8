//! `testio-sync status`: the database, its row counts, the last sync and the lock holder.

use std::path::PathBuf;

use anyhow::Context;

use serde_json::json;

use super::shared::CustomerArgs;
use super::{Exit, output};
use crate::config::Mirror;
use crate::db::status::current_history;
use crate::db::{Location, SyncStore};
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
    /// The database: a SQLite file, or a postgres://user@host/db URL
    /// [env: TESTIO_DB_URL, TESTIO_DB_PATH] [default: ~/.testio-mcp/cache.db]
    #[arg(long, value_name = "PATH|URL")]
    db: Option<PathBuf>,
    #[command(flatten)]
    customer: CustomerArgs,
}

impl Database {
    /// Blocking (it may connect to a server): the read commands run in `block_in_place`.
    pub fn open(&self) -> anyhow::Result<(Location, Box<dyn SyncStore>)> {
        let db = Mirror::resolve(self.db.as_deref())?;
        db.check_existing()?;
        let location = db.location();
        let customer = self.customer.resolve(&location)?;
        let store = location.open_existing(customer.customer_id)?;
        // `check_existing` found the file; only a file can be missing.
        let store = store.with_context(|| format!("there is no database at {location}"))?;
        Ok((location, store))
    }
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let (location, mut store) = args.database.open()?;
    let counts = store.row_counts()?;
    let last = current_history(store.as_mut(), 1, &location)?.pop();
    let last_completed = store.metadata("last_sync_completed")?;
    let runtime = EngineRuntime::load()?;
    let lock = tokio::runtime::Handle::current().block_on(runtime.lock_status(&location, store.customer_id()))?;
    if args.json {
        let tables: serde_json::Map<String, serde_json::Value> =
            counts.iter().map(|(t, n)| (t.to_string(), json!(n))).collect();
        let holder = lock.held.then_some(&lock.line);
        output::line(
            json!({ "db_path": location.to_string(), "customer_id": store.customer_id(), "rows": tables, "last_sync": last,
                    "last_sync_completed": last_completed, "lock_holder": holder }),
        )?;
        return Ok(Exit::Success);
    }
    output::line(format_args!("Database: {location}"))?;
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
