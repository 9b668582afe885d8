//! What `testio-sync status` reports: row counts and the last sync.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::Store;

pub const TABLES: [&str; 7] =
    ["products", "features", "tests", "test_features", "test_platforms", "sync_events", "sync_metadata"];

#[derive(Serialize)]
pub struct LastSync {
    pub started_at: String,
    pub completed_at: Option<String>,
    pub status: String,
    pub trigger_source: String,
    pub duration_seconds: Option<f64>,
    pub tests_discovered: Option<i64>,
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

    pub fn last_sync(&self) -> rusqlite::Result<Option<LastSync>> {
        self.conn
            .query_row(
                "SELECT started_at, completed_at, status, trigger_source, duration_seconds, tests_discovered, error_message
                 FROM sync_events WHERE customer_id = ?1 ORDER BY id DESC LIMIT 1",
                params![self.customer_id],
                |r| {
                    Ok(LastSync {
                        started_at: r.get(0)?,
                        completed_at: r.get(1)?,
                        status: r.get(2)?,
                        trigger_source: r.get(3)?,
                        duration_seconds: r.get(4)?,
                        tests_discovered: r.get(5)?,
                        error_message: r.get(6)?,
                    })
                },
            )
            .optional()
    }
}
