//! The lock's dedicated connection: the advisory lock lives and dies with its session, as
//! a flock does with its process. Every time but the holder's process start is the
//! server's `now()`, turned into this machine's clock through the server's `now()` read
//! in the same statement, so clock skew between machines does not age a heartbeat.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::super::process::{HOST_NAME, PROCESS_STARTED_AT, short_command_line, state_of};
use super::super::{Holder, HolderRecord, LockFacts, LockState, ProcessState, clean_facts};
use super::LockKey;
use crate::db::pg::PgTarget;
use crate::db::pg::schema;
use crate::model::Trigger;

/// The server drops a vanished client's session, and its lock, within about a minute
/// instead of the system's default of hours. Both are settable by any user.
const SESSION_SETTINGS: &str = "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10;
SET tcp_keepalives_count = 3;
SELECT set_config('idle_session_timeout', '0', false) WHERE current_setting('server_version_num')::int >= 140000";

/// Takes the lock and writes this process's record in one statement; returns what the
/// table held before (every CTE sees the same snapshot).
const TAKE: &str = "
WITH got AS MATERIALIZED (SELECT pg_try_advisory_lock($2) AS ok),
     prev AS (SELECT * FROM sync_lock_holders WHERE customer_id = $1),
     mine AS (
       INSERT INTO sync_lock_holders (customer_id, backend_pid, pid, process_started_at, host_name,
                                      acquired_at, trigger, command, heartbeat_at)
       SELECT $1, pg_backend_pid(), $3, $4, $5, now(), $6, $7, now() FROM got WHERE ok
       ON CONFLICT (customer_id) DO UPDATE SET
         backend_pid = excluded.backend_pid, pid = excluded.pid,
         process_started_at = excluded.process_started_at, host_name = excluded.host_name,
         acquired_at = excluded.acquired_at, trigger = excluded.trigger,
         command = excluded.command, heartbeat_at = excluded.heartbeat_at
       RETURNING 1)
SELECT got.ok, prev.pid, prev.process_started_at, prev.host_name,
       prev.acquired_at, prev.trigger, prev.command, prev.heartbeat_at, now()
FROM got LEFT JOIN prev ON true";

/// Who holds the lock (from `pg_locks`, without touching it) and what the table says.
const INSPECT: &str = "
SELECT l.pid IS NOT NULL, l.pid = h.backend_pid, h.pid, h.process_started_at, h.host_name,
       h.acquired_at, h.trigger, h.command, h.heartbeat_at, now()
FROM (SELECT 1) AS one
LEFT JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND l.classid = $2 AND l.objid = $3
LEFT JOIN sync_lock_holders h ON h.customer_id = $1";

const HEARTBEAT: &str =
    "UPDATE sync_lock_holders SET heartbeat_at = now() WHERE customer_id = $1 AND backend_pid = pg_backend_pid()";

const RECORD: &str = "
UPDATE sync_lock_holders SET acquired_at = now(), heartbeat_at = now(), trigger = $2, command = $3
WHERE customer_id = $1 AND backend_pid = pg_backend_pid()";

/// Cleared first, then unlocked, so that no new holder sees our row as left behind.
const RELEASE: &str = "DELETE FROM sync_lock_holders WHERE customer_id = $1 AND backend_pid = pg_backend_pid()";

pub struct Session {
    client: Arc<tokio_postgres::Client>,
    target: Arc<PgTarget>,
    key: LockKey,
    /// Whether the session holds the lock, so that its end counts as losing it.
    holding: Arc<AtomicBool>,
    lost: Arc<OnceLock<String>>,
    heartbeat: Option<JoinHandle<()>>,
}

/// What one try found.
pub enum Attempt {
    /// Taken; the facts of what the table held before.
    Taken(LockFacts),
    /// Another session holds it.
    Busy,
}

impl Session {
    /// Connects, brings the schema up to date (the holder table must exist) and sets the
    /// session's keepalives.
    pub async fn open(target: Arc<PgTarget>, key: LockKey) -> anyhow::Result<Self> {
        let (client, connection) = target.connect_async().await?;
        let (holding, lost) = (Arc::new(AtomicBool::new(false)), Arc::new(OnceLock::new()));
        let (watched, noted, at) = (holding.clone(), lost.clone(), target.clone());
        tokio::spawn(async move {
            let ended =
                connection.await.err().map_or_else(|| "it was closed".to_string(), |e| at.fail(e.into()).to_string());
            if watched.load(Ordering::SeqCst) {
                tracing::warn!("lost the sync lock: {ended}");
                let _ = noted.set(format!("lost the sync lock: {ended}"));
            }
        });
        let session = Self { client: Arc::new(client), target, key, holding, lost, heartbeat: None };
        session.batch(&schema::script()).await?;
        session.batch(SESSION_SETTINGS).await?;
        Ok(session)
    }

    /// Tries once to take the lock for `trigger`.
    pub async fn try_take(&mut self, trigger: Trigger) -> anyhow::Result<Attempt> {
        let started = DateTime::from_timestamp_millis(*PROCESS_STARTED_AT);
        let (pid, command) = (i64::from(std::process::id()), short_command_line());
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] =
            [&self.key.customer, &self.key.key, &pid, &started, &*HOST_NAME, &trigger.name(), &command];
        let row = self.client.query_one(TAKE, &params).await.map_err(|e| self.target.fail(e.into()))?;
        if !row.try_get::<_, bool>(0)? {
            return Ok(Attempt::Busy);
        }
        self.holding.store(true, Ordering::SeqCst);
        Ok(Attempt::Taken(facts_at(&row, 1)?))
    }

    /// What a try that found the lock busy reports.
    pub async fn state(&self) -> anyhow::Result<LockState> {
        read_state(&self.client, self.key).await.map_err(|e| self.target.fail(e))
    }

    /// Refreshes the heartbeat every `every` until the session ends.
    pub fn beat(&mut self, every: Duration) {
        let (client, target, customer) = (self.client.clone(), self.target.clone(), self.key.customer);
        self.heartbeat = Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await; // the record was written with the lock
            loop {
                ticks.tick().await;
                if let Err(e) = client.execute(HEARTBEAT, &[&customer]).await {
                    tracing::warn!("could not refresh the heartbeat of the sync lock: {}", target.fail(e.into()));
                }
            }
        }));
    }

    /// Names this process's next sync in the record.
    pub async fn write_record(&self, trigger: Trigger) -> anyhow::Result<()> {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&self.key.customer, &trigger.name(), &short_command_line()];
        self.client.execute(RECORD, &params).await.map_err(|e| self.target.fail(e.into()))?;
        Ok(())
    }

    /// Set once the connection ends while it holds the lock.
    pub fn lost(&self) -> Arc<OnceLock<String>> {
        self.lost.clone()
    }

    /// Clears the record and unlocks; a failure is logged, and the record then shows as
    /// left behind, as `sync-lock.release` says.
    pub async fn end(mut self) {
        self.stop();
        let cleared = async {
            self.client.execute(RELEASE, &[&self.key.customer]).await?;
            self.client.execute("SELECT pg_advisory_unlock($1)", &[&self.key.key]).await
        };
        if let Err(e) = cleared.await {
            tracing::warn!("could not release the sync lock cleanly: {}", self.target.fail(e.into()));
        }
    }

    /// Stops the heartbeat; from now on the connection's end is no loss.
    fn stop(&mut self) {
        self.holding.store(false, Ordering::SeqCst);
        if let Some(beat) = self.heartbeat.take() {
            beat.abort();
        }
    }

    async fn batch(&self, sql: &str) -> anyhow::Result<()> {
        self.client.batch_execute(sql).await.map_err(|e| self.target.fail(e.into()))
    }
}

impl Drop for Session {
    /// The connection closes with the client; the server then frees the lock.
    fn drop(&mut self) {
        self.stop();
    }
}

/// The lock's state as `status` shows it; `None` before the first sync created the table.
pub async fn inspect(target: &PgTarget, key: LockKey) -> anyhow::Result<Option<LockState>> {
    let (client, connection) = target.connect_async().await?;
    let driver = tokio::spawn(connection);
    let state = match read_state(&client, key).await {
        Err(e)
            if e.downcast_ref::<tokio_postgres::Error>().and_then(|e| e.code()) == Some(&SqlState::UNDEFINED_TABLE) =>
        {
            Ok(None)
        }
        other => other.map(Some).map_err(|e| target.fail(e)),
    };
    drop(client);
    let _ = driver.await;
    state
}

async fn read_state(client: &tokio_postgres::Client, key: LockKey) -> anyhow::Result<LockState> {
    let row = client.query_one(INSPECT, &[&key.customer, &key.class_id(), &key.object_id()]).await?;
    let held: bool = row.try_get(0)?;
    // A held lock whose row names another session: the holder has not written yet, and
    // the row is an earlier holder's.
    let current = row.try_get::<_, Option<bool>>(1)?.unwrap_or(false);
    let facts = if held && !current { clean_facts() } else { facts_at(&row, 2)? };
    Ok(LockState { held, facts })
}

/// The facts in columns `from`.. of a row: the record (pid, process start, host, acquired,
/// trigger, command), its heartbeat and the server's now.
fn facts_at(row: &Row, from: usize) -> anyhow::Result<LockFacts> {
    let holder = holder_at(row, from)?;
    let process = match &holder {
        HolderRecord::Empty => return Ok(clean_facts()),
        HolderRecord::Written(h) => state_of(h),
        HolderRecord::Unreadable(_) => ProcessState::Unknown,
    };
    Ok(LockFacts { holder, process, heartbeat: local_time(row, from + 6, from + 7)? })
}

fn holder_at(row: &Row, from: usize) -> anyhow::Result<HolderRecord> {
    let Some(pid) = row.try_get::<_, Option<i64>>(from)? else { return Ok(HolderRecord::Empty) };
    let started: DateTime<Utc> = row.try_get(from + 1)?;
    let trigger: String = row.try_get(from + 4)?;
    let (Ok(pid), Some(trigger)) = (u32::try_from(pid), Trigger::named(&trigger)) else {
        return Ok(HolderRecord::Unreadable(format!("PID {pid}, trigger {trigger:?}")));
    };
    Ok(HolderRecord::Written(Holder {
        pid,
        process_started_at: started.timestamp_millis(),
        host_name: row.try_get(from + 2)?,
        acquired_at: local_time(row, from + 3, from + 7)?,
        trigger,
        command: row.try_get(from + 5)?,
    }))
}

/// A server time in this machine's clock: as long before our now as it was before the server's.
fn local_time(row: &Row, column: usize, server_now: usize) -> anyhow::Result<i64> {
    let (at, now): (DateTime<Utc>, DateTime<Utc>) = (row.try_get(column)?, row.try_get(server_now)?);
    Ok(Utc::now().timestamp_millis() - (now - at).num_milliseconds())
}
