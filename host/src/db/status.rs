//! What `status` and `history` report: row counts and the sync log.

use rusqlite::params;
use serde::Serialize;

use super::Store;

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
