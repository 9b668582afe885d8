//! The background scheduler of `daemon` and `mcp`: a sync every interval through the
//! process's [`SyncService`], skipped while the last successful sync is fresh, backing
//! off after failures.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use crate::db::columns::parse_column_time;
use crate::model::{Options, Phase, Scope, SyncError, SyncRequest, Trigger};
use crate::observe::TracingObserver;
use crate::service::{Finished, SyncService, final_line};

/// After failures the wait grows ×2, ×4, ×8 and stays there.
const MAX_BACKOFF_FACTOR: u32 = 8;

/// What the scheduler syncs, and how often.
#[derive(Clone)]
pub struct Plan {
    pub interval: Duration,
    pub selection: Selection,
}

/// What a sync nobody spelled out covers: TESTIO_PRODUCT_IDS and TESTIO_SYNC_SINCE, the
/// freshness limit (CACHE_TTL_SECONDS), and whether bugs are kept fresh too.
#[derive(Clone)]
pub struct Selection {
    pub product_ids: Option<Vec<u64>>,
    /// Kept as written, so that relative forms (`30 days ago`) move with each sync.
    pub since: Option<String>,
    pub max_age_seconds: u32,
    /// Also refresh the bugs of the tests in scope (those of live tests under the limit).
    pub bugs: bool,
}

impl Selection {
    /// A sync of this selection, with `since` as of now, refreshing every test (`force`)
    /// or only what is new or due.
    pub fn request(&self, since: Option<i64>, force: bool, trigger: Trigger) -> SyncRequest {
        let scope = Scope { product_ids: self.product_ids.clone(), since, entity_types: None };
        let options =
            Options { force_refresh: force, max_age_seconds: Some(self.max_age_seconds), ..Options::default() };
        let mut request = SyncRequest::default_phases(scope, options, trigger);
        if self.bugs {
            request.phases.push(Phase::Bugs);
        }
        request
    }

    /// `since` as of `now`, in epoch milliseconds.
    pub fn since_at(&self, now: DateTime<Utc>) -> Result<Option<i64>, String> {
        self.since.as_deref().map(|text| crate::since::parse(text, now).map(|t| t.timestamp_millis())).transpose()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for the next run.
    Idle,
    /// A scheduled sync is running.
    Syncing,
    /// Waiting longer than the interval because the last runs failed.
    Backoff,
}

/// What `sync_status` reports about the scheduler.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SchedulerStatus {
    pub state: State,
    pub interval_seconds: u64,
    /// When the next scheduled sync is due (ISO 8601, UTC); none while one runs.
    pub next_run: Option<String>,
    pub consecutive_failures: u32,
    /// Why the last failed scheduled sync failed; cleared by a successful one.
    pub last_error: Option<String>,
}

pub struct Scheduler {
    service: Arc<SyncService>,
    plan: Plan,
    status: Mutex<SchedulerStatus>,
}

/// How one scheduled run ended, for the schedule.
enum Verdict {
    Ran,
    /// Another process held the lock: a skip, not a failure.
    Busy(String),
    Failed(String),
}

impl Scheduler {
    pub fn new(service: Arc<SyncService>, plan: Plan) -> Self {
        let status = SchedulerStatus {
            state: State::Idle,
            interval_seconds: plan.interval.as_secs(),
            next_run: None,
            consecutive_failures: 0,
            last_error: None,
        };
        Self { service, plan, status: Mutex::new(status) }
    }

    pub fn status(&self) -> SchedulerStatus {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Runs until the future is dropped; dropping it mid-sync interrupts that sync.
    pub async fn run(&self) -> Infallible {
        let mut wait = Duration::ZERO;
        loop {
            let due = Utc::now() + wait;
            self.update(|s| s.next_run = Some(due.to_rfc3339_opts(SecondsFormat::Secs, true)));
            tokio::time::sleep(wait).await;
            wait = self.cycle().await;
        }
    }

    /// One tick: a skip or a sync. Returns how long to wait for the next tick.
    async fn cycle(&self) -> Duration {
        match self.fresh_for().await {
            Ok(Some(remaining)) => {
                tracing::info!(
                    "Scheduled sync skipped: the last sync completed less than {}s ago; next check in {}s",
                    self.plan.interval.as_secs(),
                    remaining.as_secs()
                );
                // Someone else synced successfully: whatever failed before is over.
                self.update(|s| {
                    s.state = State::Idle;
                    s.consecutive_failures = 0;
                });
                return remaining;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("could not read when the last sync completed; syncing anyway: {e:#}"),
        }
        self.update(|s| {
            s.state = State::Syncing;
            s.next_run = None;
        });
        let verdict = match self.call() {
            Ok(call) => {
                tracing::info!("Scheduled sync started");
                let started = std::time::Instant::now();
                let finished = self.service.sync(call, Box::<TracingObserver>::default()).await;
                tracing::info!("{}", final_line(&finished, started.elapsed()));
                verdict(&finished)
            }
            Err(e) => Verdict::Failed(e),
        };
        self.after(verdict)
    }

    fn after(&self, verdict: Verdict) -> Duration {
        let interval = self.plan.interval;
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        match verdict {
            Verdict::Ran => {
                status.state = State::Idle;
                status.consecutive_failures = 0;
                status.last_error = None;
                interval
            }
            Verdict::Busy(message) => {
                tracing::info!("Scheduled sync skipped: {message}; next try in {}s", interval.as_secs());
                status.state = State::Idle;
                interval
            }
            Verdict::Failed(message) => {
                status.state = State::Backoff;
                status.consecutive_failures += 1;
                status.last_error = Some(message);
                let wait = backoff(interval, status.consecutive_failures);
                tracing::warn!(
                    "Scheduled sync failed ({} in a row); backing off: next try in {}s",
                    status.consecutive_failures,
                    wait.as_secs()
                );
                wait
            }
        }
    }

    fn update(&self, change: impl FnOnce(&mut SchedulerStatus)) {
        change(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// How long the last successful sync stays fresh, if it still is.
    async fn fresh_for(&self) -> anyhow::Result<Option<Duration>> {
        let last = self.service.read(|store, _| store.metadata("last_sync_completed")).await?.flatten();
        let Some(last) = last else { return Ok(None) };
        let age = (Utc::now() - parse_column_time(&last)?).to_std().unwrap_or_default();
        Ok(self.plan.interval.checked_sub(age).filter(|left| !left.is_zero()))
    }

    fn call(&self) -> Result<SyncRequest, String> {
        let selection = &self.plan.selection;
        let since = selection.since_at(Utc::now()).map_err(|e| format!("TESTIO_SYNC_SINCE: {e}"))?;
        Ok(selection.request(since, false, Trigger::Scheduler))
    }
}

fn verdict(finished: &Finished) -> Verdict {
    match finished.as_ref() {
        Ok(Ok(_)) => Verdict::Ran,
        Ok(Err(e @ SyncError::LockBusy(_))) => Verdict::Busy(e.to_string()),
        Ok(Err(e)) => Verdict::Failed(e.to_string()),
        Err(e) => Verdict::Failed(format!("{e:#}")),
    }
}

/// The wait after `failures` failures in a row: the interval ×2, ×4, … up to the cap.
fn backoff(interval: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures).min(MAX_BACKOFF_FACTOR);
    interval.saturating_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_stays_capped() {
        let minute = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=5).map(|n| backoff(minute, n).as_secs() / 60).collect();
        assert_eq!(waits, [2, 4, 8, 8, 8]);
        assert_eq!(backoff(Duration::MAX, 3), Duration::MAX, "no overflow");
    }
}
