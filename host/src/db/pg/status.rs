//! What `status` and `history` report: row counts and the sync log, as SQLite shows them.

use anyhow::Result;
use chrono::{DateTime, Utc};
use postgres::Row;

use super::Conn;
use super::values::time_text;
use crate::db::status::{SyncRecord, TABLES};

/// One round trip for every table of `TABLES`, in its order.
const ROW_COUNTS: &str = "
SELECT (SELECT count(*) FROM products WHERE customer_id = $1),
       (SELECT count(*) FROM features WHERE customer_id = $1),
       (SELECT count(*) FROM tests WHERE customer_id = $1),
       (SELECT count(*) FROM test_features WHERE customer_id = $1),
       (SELECT count(*) FROM test_platforms WHERE customer_id = $1),
       (SELECT count(*) FROM sync_events WHERE customer_id = $1),
       (SELECT count(*) FROM sync_metadata WHERE customer_id = $1)";

const HISTORY: &str = "
SELECT id, started_at, completed_at, status, trigger_source, phases, pid, duration_seconds,
       products_synced, features_refreshed, tests_discovered, tests_updated, bugs_refreshed,
       warnings, errors, error_message, rows_removed, tests_rechecked, tests_changed
FROM sync_events WHERE customer_id = $1 ORDER BY id DESC LIMIT $2";

pub fn row_counts(c: &mut Conn) -> Result<Vec<(&'static str, i64)>> {
    let select = c.prepared(ROW_COUNTS)?;
    let row = c.client.query_one(&select, &[&c.customer])?;
    TABLES.iter().enumerate().map(|(i, &table)| Ok((table, row.try_get(i)?))).collect()
}

pub fn history(c: &mut Conn, limit: u32) -> Result<Vec<SyncRecord>> {
    let select = c.prepared(HISTORY)?;
    let rows = c.client.query(&select, &[&c.customer, &i64::from(limit)])?;
    rows.iter().map(sync_record).collect()
}

fn sync_record(r: &Row) -> Result<SyncRecord> {
    Ok(SyncRecord {
        id: r.try_get(0)?,
        started_at: time_text(r.try_get(1)?),
        completed_at: r.try_get::<_, Option<DateTime<Utc>>>(2)?.map(time_text),
        status: r.try_get(3)?,
        trigger_source: r.try_get(4)?,
        phases: r.try_get(5)?,
        pid: r.try_get(6)?,
        duration_seconds: r.try_get(7)?,
        products_synced: r.try_get(8)?,
        features_refreshed: r.try_get(9)?,
        tests_discovered: r.try_get(10)?,
        tests_updated: r.try_get(11)?,
        bugs_refreshed: r.try_get(12)?,
        warnings: r.try_get(13)?,
        errors: r.try_get(14)?,
        error_message: r.try_get(15)?,
        rows_removed: r.try_get(16)?,
        tests_rechecked: r.try_get(17)?,
        tests_changed: r.try_get(18)?,
    })
}
