//! The host side of the world: one module per imported interface, each an `impl Host`
//! for [`HostState`], the per-sync state a wasmtime store carries. Each module converts
//! its interface's WIT types to the host's own at this edge; nothing past it sees them.

pub mod bindings;
mod clock;
mod customer_api;
mod events;
mod store;
mod sync_lock;
mod types;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use wasmtime::component::ResourceTable;

use crate::api::ApiClient;
use crate::db::SyncStore;
use crate::db::writer::StoreWriter;
use crate::lock::SyncLock;
use crate::observe::Observer;

/// Field order matters on drop: the store writer finishes its queue (including the
/// closing of an unfinished sync's row) before the lock is released.
pub struct HostState {
    pub(crate) table: ResourceTable,
    pub(crate) api: ApiClient,
    pub(crate) db: StoreWriter,
    pub(crate) lock: SyncLock,
    pub(crate) observer: Box<dyn Observer>,
    /// The sync log row of the sync under way, until the engine closes it.
    pub(crate) open_run: Option<i64>,
    /// Why the sync was stopped, if its caller stopped it (a signal, a shutdown).
    pub(crate) stop_reason: Arc<OnceLock<String>>,
    pub(crate) started: Instant,
    /// The last error-level line the engine logged (its panic hook logs the panic there).
    pub(crate) last_engine_error: Option<String>,
}

impl HostState {
    pub fn new(
        api: ApiClient,
        db: StoreWriter,
        lock: SyncLock,
        observer: Box<dyn Observer>,
        stop_reason: Arc<OnceLock<String>>,
    ) -> Self {
        Self {
            table: ResourceTable::new(),
            api,
            db,
            lock,
            observer,
            open_run: None,
            stop_reason,
            started: Instant::now(),
            last_engine_error: None,
        }
    }

    /// Queues a write, unless the sync lock was lost: another machine may hold it by now,
    /// so this sync writes nothing more (its next call fails with the reason).
    pub(crate) fn write(
        &self,
        write: impl FnOnce(&mut dyn SyncStore) -> Result<(), String> + Send + 'static,
    ) -> Result<(), String> {
        match self.lock.lost() {
            Some(why) => Err(why),
            None => self.db.write(write),
        }
    }

    pub fn last_engine_error(&self) -> Option<&str> {
        self.last_engine_error.as_deref()
    }

    /// Closes the sync log row of a sync that ended without the engine closing it.
    pub fn close_open_run(&mut self, status: &'static str, message: String) {
        if let Some(run_id) = self.open_run.take() {
            let closed = self.db.write(move |db| db.close_run(run_id, status, &message).map_err(|e| format!("{e:#}")));
            if let Err(e) = closed {
                tracing::error!("could not close sync {run_id} in the sync log: {e}");
            }
        }
    }
}

impl Drop for HostState {
    /// A sync dropped mid-way (a signal, a cancelled caller) is `interrupted`.
    fn drop(&mut self) {
        let reason =
            self.stop_reason.get().cloned().unwrap_or_else(|| "the sync was stopped before it finished".into());
        self.close_open_run("interrupted", reason);
    }
}
