//! The sync log: one `sync_events` row per sync, and `sync_metadata` values (see
//! `db/sync_log.rs`). Times are this machine's clock, as with SQLite, so a sync's
//! duration never mixes two clocks.

use anyhow::Result;
use chrono::Utc;
use postgres::{GenericClient, Statement};

use super::Conn;
use super::values::time_text;
use crate::db::sync_log::status_of;
use crate::model::{SyncError, SyncResult};

/// Only this customer's rows: another customer's sync, under its own lock, may be running.
const INTERRUPT_LEFTOVERS: &str = "
UPDATE sync_events SET status = 'interrupted',
  completed_at = COALESCE(heartbeat_at, started_at),
  duration_seconds = EXTRACT(EPOCH FROM COALESCE(heartbeat_at, started_at) - started_at)::float8,
  error_message = 'the sync stopped before it finished: its process (PID '
    || COALESCE(pid::text, '?') || ') ended without closing it'
WHERE customer_id = $1 AND status = 'running'";

const START: &str = "
INSERT INTO sync_events (customer_id, started_at, status, trigger_source, phases, pid, heartbeat_at)
VALUES ($1, $2, 'running', $3, $4, $5, $2) RETURNING id";

const TOUCH: &str =
    "UPDATE sync_events SET heartbeat_at = $2 WHERE id = $1 AND customer_id = $3 AND status = 'running'";

const CLOSE: &str = "
UPDATE sync_events SET completed_at = $2, status = $3, error_message = $4,
  duration_seconds = EXTRACT(EPOCH FROM $2 - started_at)::float8
WHERE id = $1 AND customer_id = $5 AND status = 'running'";

const FINISH: &str = "
UPDATE sync_events SET completed_at = $2, status = $3, products_synced = $4,
  features_refreshed = $5, tests_discovered = $6, tests_updated = $7,
  bugs_refreshed = $8, warnings = $9, errors = $10, duration_seconds = $11,
  error_message = $12, rows_removed = $13, tests_rechecked = $14, tests_changed = $15
WHERE id = $1 AND customer_id = $16";

/// The value keeps SQLite's text format: the scheduler reads it.
const SET_METADATA: &str = "
INSERT INTO sync_metadata (customer_id, key, value) VALUES ($1, $2, $3)
ON CONFLICT (customer_id, key) DO UPDATE SET value = excluded.value";

const METADATA: &str = "SELECT value FROM sync_metadata WHERE customer_id = $1 AND key = $2";

pub fn start(c: &mut Conn, trigger: &str, phases: &str) -> Result<i64> {
    let (interrupt, insert) = (c.prepared(INTERRUPT_LEFTOVERS)?, c.prepared(START)?);
    let customer = c.customer;
    let mut tx = c.client.transaction()?;
    let interrupted = tx.execute(&interrupt, &[&customer])?;
    let pid = i64::from(std::process::id());
    let run_id = tx.query_one(&insert, &[&customer, &Utc::now(), &trigger, &phases, &pid])?.try_get(0)?;
    tx.commit()?;
    if interrupted > 0 {
        tracing::warn!("marked {interrupted} unfinished earlier sync(s) as interrupted in the sync log");
    }
    Ok(run_id)
}

pub fn touch(c: &mut Conn, run_id: i64) -> Result<()> {
    let touch = c.prepared(TOUCH)?;
    c.client.execute(&touch, &[&run_id, &Utc::now(), &c.customer])?;
    Ok(())
}

pub fn close(c: &mut Conn, run_id: i64, status: &str, message: &str) -> Result<()> {
    let close = c.prepared(CLOSE)?;
    close_on(&mut c.client, &close, c.customer, run_id, status, message)
}

fn close_on(
    client: &mut impl GenericClient,
    close: &Statement,
    customer: i64,
    run_id: i64,
    status: &str,
    message: &str,
) -> Result<()> {
    client.execute(close, &[&run_id, &Utc::now(), &status, &message, &customer])?;
    Ok(())
}

pub fn finish(c: &mut Conn, run_id: i64, outcome: &Result<SyncResult, SyncError>) -> Result<()> {
    let (finish, set, close) = (c.prepared(FINISH)?, c.prepared(SET_METADATA)?, c.prepared(CLOSE)?);
    let customer = c.customer;
    let mut tx = c.client.transaction()?;
    match outcome {
        Ok(r) => {
            let now = Utc::now();
            let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            tx.execute(
                &finish,
                &[
                    &run_id,
                    &now,
                    &status_of(outcome),
                    &i64::from(r.products_synced),
                    &i64::from(r.features_refreshed),
                    &i64::from(r.tests_discovered),
                    &i64::from(r.tests_updated),
                    &i64::from(r.bugs_refreshed),
                    &count(r.warnings.len()),
                    &count(r.errors.len()),
                    &r.duration_seconds,
                    &r.errors.first(),
                    &i64::from(r.rows_removed),
                    &i64::from(r.tests_rechecked),
                    &i64::from(r.tests_changed),
                    &customer,
                ],
            )?;
            if r.errors.is_empty() {
                tx.execute(&set, &[&customer, &"last_sync_completed", &time_text(now)])?;
            }
        }
        Err(e) => close_on(&mut tx, &close, customer, run_id, "failure", &e.to_string())?,
    }
    Ok(tx.commit()?)
}

pub fn metadata(c: &mut Conn, key: &str) -> Result<Option<String>> {
    let select = c.prepared(METADATA)?;
    let row = c.client.query_opt(&select, &[&c.customer, &key])?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}
