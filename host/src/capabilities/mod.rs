//! The host side of the world: one module per imported interface, each an `impl Host`
//! for [`HostState`], the per-sync state a wasmtime store carries.

mod clock;
mod customer_api;
mod events;
mod store;
mod sync_lock;

use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};

pub use events::{Observer, TracingObserver, phase_name, trace_line};

use crate::api::ApiClient;
use crate::bindings::types::Host as TypesHost;
use crate::db::writer::StoreWriter;
use crate::lock::SyncLock;

pub struct HostState {
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) api: ApiClient,
    pub(crate) db: StoreWriter,
    pub(crate) lock: SyncLock,
    pub(crate) observer: Box<dyn Observer>,
    pub(crate) started: Instant,
    /// When the guest last called in; the epoch watchdog measures from here.
    pub(crate) last_host_call: Instant,
}

impl HostState {
    pub fn new(
        api: ApiClient,
        db: StoreWriter,
        lock: SyncLock,
        observer: Box<dyn Observer>,
        max_memory: usize,
    ) -> Self {
        Self {
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().memory_size(max_memory).instances(32).build(),
            api,
            db,
            lock,
            observer,
            started: Instant::now(),
            last_host_call: Instant::now(),
        }
    }

    fn touch(&mut self) {
        self.last_host_call = Instant::now();
    }
}

impl TypesHost for HostState {}
