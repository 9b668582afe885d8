//! The sync log: one `sync_events` row per sync, and `sync_metadata` values.

use rusqlite::{OptionalExtension, params};

use super::Store;
use super::columns::now_column;
use crate::model::{SyncError, SyncResult};

/// How a sync ended, as stored in `sync_events.status`.
pub fn status_of(outcome: &Result<SyncResult, SyncError>) -> &'static str {
    match outcome {
        Ok(r) if r.errors.is_empty() => "success",
        Ok(_) => "partial_failure",
        Err(_) => "failure",
    }
}

impl Store {
    /// Records a sync that starts now. The caller holds this customer's sync lock, so any
    /// row of this customer still `running` belongs to a sync whose process is gone: it
    /// becomes `interrupted`. Another customer's rows are another lock's business.
    pub fn start_run(&self, trigger: &str, phases: &str) -> rusqlite::Result<i64> {
        let interrupted = self.conn.execute(
            "UPDATE sync_events SET status = 'interrupted',
               completed_at = COALESCE(heartbeat_at, started_at),
               duration_seconds = (julianday(COALESCE(heartbeat_at, started_at)) - julianday(started_at)) * 86400.0,
               error_message = 'the sync stopped before it finished: its process (PID '
                 || COALESCE(pid, '?') || ') ended without closing it'
             WHERE status = 'running' AND customer_id = ?1",
            params![self.customer_id],
        )?;
        if interrupted > 0 {
            tracing::warn!("marked {interrupted} unfinished earlier sync(s) as interrupted in the sync log");
        }
        self.conn.execute(
            "INSERT INTO sync_events (customer_id, started_at, status, trigger_source, phases, pid, heartbeat_at)
             VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?2)",
            params![self.customer_id, now_column(), trigger, phases, std::process::id()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Notes that the sync `run_id` is still making progress.
    pub fn touch_run(&self, run_id: i64) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE sync_events SET heartbeat_at = ?2 WHERE id = ?1 AND status = 'running'",
            params![run_id, now_column()],
        )?;
        Ok(())
    }

    /// Closes a sync that ended without a result (`failure` or `interrupted`).
    pub fn close_run(&self, run_id: i64, status: &str, message: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE sync_events SET completed_at = ?2, status = ?3, error_message = ?4,
               duration_seconds = (julianday(?2) - julianday(started_at)) * 86400.0
             WHERE id = ?1 AND status = 'running'",
            params![run_id, now_column(), status, message],
        )?;
        Ok(())
    }

    pub fn finish_run(&self, run_id: i64, outcome: &Result<SyncResult, SyncError>) -> rusqlite::Result<()> {
        let now = now_column();
        let tx = self.conn.unchecked_transaction()?;
        match outcome {
            Ok(r) => {
                tx.execute(
                    "UPDATE sync_events SET completed_at = ?2, status = ?3, products_synced = ?4,
                       features_refreshed = ?5, tests_discovered = ?6, tests_updated = ?7,
                       bugs_refreshed = ?8, warnings = ?9, errors = ?10, duration_seconds = ?11,
                       error_message = ?12, rows_removed = ?13, tests_rechecked = ?14, tests_changed = ?15
                     WHERE id = ?1",
                    params![
                        run_id,
                        now,
                        status_of(outcome),
                        r.products_synced,
                        r.features_refreshed,
                        r.tests_discovered,
                        r.tests_updated,
                        r.bugs_refreshed,
                        r.warnings.len() as i64,
                        r.errors.len() as i64,
                        r.duration_seconds,
                        r.errors.first(),
                        r.rows_removed,
                        r.tests_rechecked,
                        r.tests_changed
                    ],
                )?;
                if r.errors.is_empty() {
                    tx.execute(
                        "INSERT INTO sync_metadata (customer_id, key, value) VALUES (?1, 'last_sync_completed', ?2)
                         ON CONFLICT (customer_id, key) DO UPDATE SET value = excluded.value",
                        params![self.customer_id, now],
                    )?;
                }
            }
            Err(e) => self.close_run(run_id, "failure", &e.to_string())?,
        }
        tx.commit()
    }

    pub fn metadata(&self, key: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT value FROM sync_metadata WHERE customer_id = ?1 AND key = ?2",
                params![self.customer_id, key],
                |r| r.get(0),
            )
            .optional()
    }
}
