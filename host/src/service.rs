//! The one way to run a sync, whoever asks (CLI, demo, scheduler, MCP).
//!
//! A [`SyncService`] serves one database. Its syncs never overlap: the engine takes the
//! file lock first, then this process's turn (see [`crate::lock`]). A request that a
//! running or queued sync already covers (the engine decides) does not run again: it gets
//! that sync's result.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::api::{ApiClient, RequestLimit};
use crate::capabilities::HostState;
use crate::db::writer::StoreWriter;
use crate::db::{LazyStore, Location, SyncStore};
use crate::model::{Phase, SyncError, SyncRequest, SyncResult};
use crate::observe::Observer;
use crate::runtime::EngineRuntime;

/// Everything a sync needs to reach the API and the database.
pub struct Settings {
    pub base_url: String,
    pub token: String,
    /// Where the token came from (a variable, the keyring), named if the API rejects it.
    pub token_from: String,
    pub location: Location,
    pub customer_id: i64,
    /// Requests in flight at once, shared by every customer's syncs in this process.
    pub in_flight: RequestLimit,
    /// How long one request may take, answer included, before it counts as failed.
    pub request_timeout: Duration,
    pub lock_timeout: Duration,
}

pub type Outcome = Result<SyncResult, SyncError>;

/// How a sync ended: the outer `Err` is a failure of the machinery (the engine trapped,
/// the HTTP client could not be built); the inner one is the engine's verdict. Shared,
/// because coalesced requests receive the same one.
pub type Finished = Arc<anyhow::Result<Outcome>>;

pub struct SyncService {
    runtime: Arc<EngineRuntime>,
    settings: Settings,
    /// Syncs running or waiting for their turn, oldest first.
    flights: Mutex<Vec<Arc<Flight>>>,
    stop_reason: Arc<OnceLock<String>>,
}

struct Flight {
    call: SyncRequest,
    finished: watch::Sender<Option<Finished>>,
}

impl SyncService {
    pub fn new(runtime: Arc<EngineRuntime>, settings: Settings) -> Self {
        Self { runtime, settings, flights: Mutex::default(), stop_reason: Arc::default() }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn runtime(&self) -> &EngineRuntime {
        &self.runtime
    }

    pub fn location(&self) -> &Location {
        &self.settings.location
    }

    /// Runs `read` on the database, off the async threads; `None` if there is no
    /// database yet.
    pub async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&mut dyn SyncStore, &Location) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<Option<T>> {
        let (location, customer_id) = (self.settings.location.clone(), self.settings.customer_id);
        let task = tokio::task::spawn_blocking(move || match location.open_existing(customer_id)? {
            Some(mut store) => read(store.as_mut(), &location).map(Some),
            None => Ok(None),
        });
        task.await?
    }

    /// Runs `call`, or waits for the sync of this service that covers it.
    pub async fn sync(&self, call: SyncRequest, observer: Box<dyn Observer>) -> Finished {
        if let Err(refused) = call.check() {
            return Arc::new(Ok(Err(refused)));
        }
        let flight = match self.board(call) {
            Boarding::Join(mut finished) => return joined(&mut finished).await,
            Boarding::Lead(flight) => flight,
        };
        let mut lead = Lead { service: self, flight, done: false };
        let finished = Arc::new(self.run(&lead.flight.call, observer).await);
        lead.complete(finished.clone());
        finished
    }

    /// Marks the syncs that get dropped from now on as stopped for `reason`, which the
    /// sync log records with their `interrupted` status.
    pub fn stop(&self, reason: String) {
        let _ = self.stop_reason.set(reason);
    }

    fn board(&self, call: SyncRequest) -> Boarding {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = flights.iter().find(|f| self.covers(&f.call, &call)) {
            return Boarding::Join(flight.finished.subscribe());
        }
        let flight = Arc::new(Flight { call, finished: watch::Sender::new(None) });
        flights.push(flight.clone());
        Boarding::Lead(flight)
    }

    /// The engine's answer; if it cannot give one, the request runs on its own.
    fn covers(&self, running: &SyncRequest, wanted: &SyncRequest) -> bool {
        self.runtime.covers(running, wanted).unwrap_or_else(|e| {
            tracing::warn!("{e:#}; running the request on its own");
            false
        })
    }

    async fn run(&self, call: &SyncRequest, observer: Box<dyn Observer>) -> anyhow::Result<Outcome> {
        let settings = &self.settings;
        let api =
            ApiClient::new(&settings.base_url, &settings.token, settings.in_flight.clone(), settings.request_timeout)?
                .token_from(&settings.token_from);
        let db = StoreWriter::spawn(LazyStore::new(settings.location.clone(), settings.customer_id));
        let lock = settings.location.sync_lock(settings.customer_id, settings.lock_timeout);
        let state = HostState::new(api, db, lock, observer, self.stop_reason.clone());
        let (outcome, mut state) = self.runtime.execute(state, call).await;
        if let Err(trap) = &outcome {
            state.close_open_run("failure", format!("{trap:#}"));
        }
        outcome
    }
}

enum Boarding {
    Join(watch::Receiver<Option<Finished>>),
    Lead(Arc<Flight>),
}

/// The leading request of a flight. However it ends (even dropped mid-way), the flight
/// leaves the queue and its joiners get an answer.
struct Lead<'a> {
    service: &'a SyncService,
    flight: Arc<Flight>,
    done: bool,
}

impl Lead<'_> {
    fn complete(&mut self, finished: Finished) {
        self.done = true;
        self.flight.finished.send_replace(Some(finished));
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        let mut flights = self.service.flights.lock().unwrap_or_else(PoisonError::into_inner);
        flights.retain(|f| !Arc::ptr_eq(f, &self.flight));
        if !self.done {
            let reason = self.service.stop_reason.get().map_or("its caller went away", String::as_str);
            let stopped = anyhow::anyhow!("the sync this request joined was stopped: {reason}");
            self.flight.finished.send_replace(Some(Arc::new(Err(stopped))));
        }
    }
}

async fn joined(finished: &mut watch::Receiver<Option<Finished>>) -> Finished {
    match finished.wait_for(Option::is_some).await {
        Ok(value) => value.clone().unwrap_or_else(unreachable_answer),
        Err(_) => unreachable_answer(),
    }
}

/// A leader always answers (see `Lead`'s drop); this only keeps a broken promise visible.
fn unreachable_answer() -> Finished {
    Arc::new(Err(anyhow::anyhow!("the sync this request joined ended without a result")))
}

/// The last line of every sync: `Sync completed in X.Ys (…)` or `Sync failed after X.Ys: …`.
pub fn final_line(finished: &anyhow::Result<Outcome>, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    match finished {
        Ok(Ok(r)) => format!(
            "Sync completed in {:.1}s ({} products, {} features, {} tests discovered, {} tests updated{}{}{}{}{})",
            r.duration_seconds,
            r.products_synced,
            r.features_refreshed,
            r.tests_discovered,
            r.tests_updated,
            rechecked(r),
            bugs_count(r),
            removed(r.rows_removed),
            plural_count(r.warnings.len(), "warning"),
            plural_count(r.errors.len(), "error"),
        ),
        Ok(Err(e)) => format!("Sync failed after {seconds:.1}s: {e}"),
        Err(e) => format!("Sync failed after {seconds:.1}s: {e:#}"),
    }
}

/// Bugs are named only when the bugs phase ran or wrote some.
fn bugs_count(r: &SyncResult) -> String {
    let ran = r.phases_completed.contains(&Phase::Bugs) || r.bugs_refreshed > 0;
    if ran { format!(", {} bugs refreshed", r.bugs_refreshed) } else { String::new() }
}

/// Live tests re-checked, named only when there were some.
fn rechecked(r: &SyncResult) -> String {
    match r.tests_rechecked {
        0 => String::new(),
        n => format!(", {n} live tests re-checked ({} changed)", r.tests_changed),
    }
}

/// Rows removed, named only when there were some.
fn removed(rows: u32) -> String {
    match rows {
        0 => String::new(),
        1 => ", 1 row removed".to_string(),
        n => format!(", {n} rows removed"),
    }
}

fn plural_count(n: usize, what: &str) -> String {
    match n {
        0 => String::new(),
        1 => format!(", 1 {what}"),
        n => format!(", {n} {what}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Options, Phase, Scope, Trigger};

    fn request(phases: &[Phase]) -> SyncRequest {
        SyncRequest {
            phases: phases.to_vec(),
            scope: Scope::default(),
            options: Options::default(),
            trigger: Trigger::Mcp,
        }
    }

    #[test]
    fn the_service_asks_the_engine_which_requests_a_running_sync_covers() {
        let runtime = EngineRuntime::load().unwrap();
        let default = request(&[]);
        assert!(
            !runtime.covers(&request(&[Phase::Bugs]), &default).unwrap(),
            "a bugs-only sync covers no default request"
        );
        assert!(runtime.covers(&request(&[Phase::Products, Phase::Features, Phase::NewTests]), &default).unwrap());
        let mut forced = default.clone();
        forced.options.force_refresh = true;
        assert!(runtime.covers(&forced, &default).unwrap() && !runtime.covers(&default, &forced).unwrap());
    }

    #[test]
    fn the_final_line_names_the_duration_and_the_counts_or_the_reason() {
        let result = SyncResult {
            phases_completed: vec![Phase::Products],
            products_synced: 2,
            features_refreshed: 3,
            tests_discovered: 4,
            tests_updated: 5,
            bugs_refreshed: 0,
            tests_rechecked: 0,
            tests_changed: 0,
            rows_removed: 0,
            duration_seconds: 1.26,
            warnings: vec!["w".into()],
            errors: vec![],
        };
        let line = final_line(&Ok(Ok(result)), Duration::from_secs(9));
        assert_eq!(
            line,
            "Sync completed in 1.3s (2 products, 3 features, 4 tests discovered, 5 tests updated, 1 warning)"
        );
        let busy = final_line(&Ok(Err(SyncError::LockBusy("held by PID 7".into()))), Duration::from_millis(2_000));
        assert_eq!(busy, "Sync failed after 2.0s: sync lock busy: held by PID 7");
    }
}
