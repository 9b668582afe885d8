//! What `status` and `history` report: row counts and the sync log.

use rusqlite::params;
use serde::Serialize;

use super::{Location, Store, SyncStore};

pub const TABLES: [&str; 7] =
    ["products", "features", "tests", "test_features", "test_platforms", "sync_events", "sync_metadata"];

/// One `sync_events` row.
#[derive(Serialize, schemars::JsonSchema)]
pub struct SyncRecord {
    pub id: i64,
    pub started_at: String,
    pub completed_at: Option<String>,
    pub status: String,
    pub trigger_source: String,
    pub phases: String,
    pub pid: Option<i64>,
    pub duration_seconds: Option<f64>,
    pub products_synced: Option<i64>,
    pub features_refreshed: Option<i64>,
    pub tests_discovered: Option<i64>,
    pub tests_updated: Option<i64>,
    pub bugs_refreshed: Option<i64>,
    pub tests_rechecked: Option<i64>,
    pub tests_changed: Option<i64>,
    pub rows_removed: Option<i64>,
    pub warnings: Option<i64>,
    pub errors: Option<i64>,
    pub error_message: Option<String>,
}

impl SyncRecord {
    /// Shows a row left `running` by a process that is gone as what the next sync makes it.
    fn mark_gone(&mut self) {
        self.status = "interrupted".to_string();
        let pid = self.pid.map_or(String::new(), |pid| format!(" (PID {pid})"));
        self.error_message = Some(format!("its process{pid} is gone; the next sync closes it"));
    }
}

impl Store {
    pub fn row_counts(&self) -> rusqlite::Result<Vec<(&'static str, i64)>> {
        TABLES
            .iter()
            .map(|table| {
                let sql = format!("SELECT COUNT(*) FROM {table} WHERE customer_id = ?1");
                Ok((*table, self.conn.query_row(&sql, params![self.customer_id], |r| r.get(0))?))
            })
            .collect()
    }

    /// The latest `limit` syncs of this customer, newest first.
    pub fn history(&self, limit: u32) -> rusqlite::Result<Vec<SyncRecord>> {
        let mut statement = self.conn.prepare(
            "SELECT id, started_at, completed_at, status, trigger_source, phases, pid, duration_seconds,
               products_synced, features_refreshed, tests_discovered, tests_updated, bugs_refreshed,
               warnings, errors, error_message, rows_removed, tests_rechecked, tests_changed
             FROM sync_events WHERE customer_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(params![self.customer_id, limit], |r| {
            Ok(SyncRecord {
                id: r.get(0)?,
                started_at: r.get(1)?,
                completed_at: r.get(2)?,
                status: r.get(3)?,
                trigger_source: r.get(4)?,
                phases: r.get(5)?,
                pid: r.get(6)?,
                duration_seconds: r.get(7)?,
                products_synced: r.get(8)?,
                features_refreshed: r.get(9)?,
                tests_discovered: r.get(10)?,
                tests_updated: r.get(11)?,
                bugs_refreshed: r.get(12)?,
                warnings: r.get(13)?,
                errors: r.get(14)?,
                error_message: r.get(15)?,
                rows_removed: r.get(16)?,
                tests_rechecked: r.get(17)?,
                tests_changed: r.get(18)?,
            })
        })?;
        rows.collect()
    }
}

/// The latest `limit` syncs as they stand, newest first, for `status`, `history` and MCP.
/// A row still `running` while no process holds its customer's sync lock belongs to a sync
/// whose process is gone (killed, crashed): it shows as `interrupted`, which the next sync
/// to take the lock records. The lock is read before and after the rows, so that a sync
/// starting in between is not taken for a dead one. Blocking, as the store is.
pub fn current_history(store: &mut dyn SyncStore, limit: u32, at: &Location) -> anyhow::Result<Vec<SyncRecord>> {
    let customer = store.customer_id();
    let free_before = !at.is_held(customer)?;
    let mut syncs = store.history(limit)?;
    if free_before && !at.is_held(customer)? {
        syncs.iter_mut().filter(|s| s.status == "running").for_each(SyncRecord::mark_gone);
    }
    Ok(syncs)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::Trigger;

    #[tokio::test]
    async fn a_running_row_is_interrupted_only_while_nobody_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("cache.db"), 1).unwrap();
        store.start_run("cli", "products").unwrap();
        let at = Location::Sqlite(dir.path().join("cache.db"));
        let status = |store: &mut Store| current_history(store, 1, &at).unwrap().remove(0).status;
        assert_eq!(status(&mut store), "interrupted", "no lock file: nobody runs it");

        let mut held = at.sync_lock(1, Duration::ZERO);
        assert!(held.acquire(Trigger::Cli, Duration::from_secs(30)).await.is_ok());
        assert_eq!(status(&mut store), "running");
        held.release();
        let gone = current_history(&mut store, 1, &at).unwrap().remove(0);
        assert_eq!(gone.status, "interrupted");
        let message = format!("its process (PID {}) is gone; the next sync closes it", std::process::id());
        assert_eq!(gone.error_message.as_deref(), Some(message.as_str()));
        assert_eq!(store.history(1).unwrap()[0].status, "running", "the row itself is left to the next sync");
    }
}
