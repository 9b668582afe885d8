//! The one way to run a sync, whoever asks (CLI, demo, and later the scheduler and MCP).

use std::path::PathBuf;
use std::time::Duration;

use crate::api::ApiClient;
use crate::bindings::types::{SyncError, SyncResult};
use crate::capabilities::{HostState, Observer};
use crate::db::LazyStore;
use crate::db::writer::StoreWriter;
use crate::lock::{SyncLock, path_beside};
use crate::runtime::{EngineRuntime, SyncCall};

/// Guest memory cap: the engine holds summaries, never bodies, so this is generous.
const MAX_GUEST_MEMORY: usize = 256 << 20;

/// Everything a sync needs to reach the API and the database.
pub struct Settings {
    pub base_url: String,
    pub token: String,
    pub db_path: PathBuf,
    pub customer_id: i64,
    pub max_in_flight: usize,
    pub lock_timeout: Duration,
}

pub type Outcome = Result<SyncResult, SyncError>;

/// Runs one sync. The outer `Err` is a failure of the machinery (the engine trapped,
/// the HTTP client could not be built); the inner one is the engine's verdict.
pub async fn run(
    runtime: &EngineRuntime,
    settings: &Settings,
    call: &SyncCall,
    observer: Box<dyn Observer>,
) -> anyhow::Result<Outcome> {
    let api = ApiClient::new(&settings.base_url, &settings.token, settings.max_in_flight)?;
    let db = StoreWriter::spawn(LazyStore::new(settings.db_path.clone(), settings.customer_id));
    let lock = SyncLock::new(path_beside(&settings.db_path), settings.lock_timeout);
    let state = HostState::new(api, db, lock, observer, MAX_GUEST_MEMORY);
    let (outcome, _state) = runtime.execute(state, call).await?;
    Ok(outcome)
}

/// A one-line message for a sync that did not run.
pub fn describe_error(error: &SyncError) -> String {
    match error {
        SyncError::LockBusy(m) => format!("sync lock busy: {m}"),
        SyncError::Unauthorized(m) => format!("token rejected: {m}"),
        SyncError::Forbidden(m) => format!("access forbidden: {m}"),
        SyncError::InvalidRequest(m) => format!("invalid request: {m}"),
        SyncError::StoreFailed(m) => format!("database error: {m}"),
        SyncError::ApiFailed(m) => format!("Customer API error: {m}"),
    }
}
