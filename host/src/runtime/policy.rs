//! The engine's pure decisions (`policy` in `wit/policy.wit`), asked of a fresh instance
//! whose imports all trap: the functions call none, so a trap would be a contract breach,
//! and a fresh instance costs tens of microseconds.

use anyhow::Context;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};

use super::EngineRuntime;
use crate::capabilities::bindings::{SyncEngine, SyncEnginePre};
use crate::db::Location;
use crate::lock::{HolderRecord, LockFacts, ProcessState};
use crate::model::{SyncRequest, Timestamp};

/// Epoch ticks (100 ms each) a pure function may take before it is stopped as stuck.
const DEADLINE_TICKS: u64 = 20;
/// The policy functions hold two requests or one lock record: a few pages of memory.
const MAX_MEMORY: usize = 16 << 20;

pub(super) fn prepare(engine: &Engine, component: &Component) -> anyhow::Result<SyncEnginePre<StoreLimits>> {
    let mut linker = Linker::new(engine);
    linker.define_unknown_imports_as_traps(component)?;
    Ok(SyncEnginePre::new(linker.instantiate_pre(component)?)?)
}

/// The sync lock as a status display shows it.
pub struct LockStatus {
    pub held: bool,
    /// `held by PID …`, `free`, or `free; left behind by …`, as the engine words it.
    pub line: String,
}

impl EngineRuntime {
    /// Whether a sync of `running` does everything `wanted` asks for (the engine decides).
    pub fn covers(&self, running: &SyncRequest, wanted: &SyncRequest) -> anyhow::Result<bool> {
        self.ask(|engine, store| engine.testio_sync_policy().call_covers(store, &running.into(), &wanted.into()))
            .context("the sync engine could not compare two sync requests")
    }

    /// The status line for the sync lock (the engine words it).
    pub fn describe_lock(&self, held: bool, facts: &LockFacts, now: Timestamp) -> anyhow::Result<String> {
        let facts = facts.clone().into();
        self.ask(|engine, store| engine.testio_sync_policy().call_describe_lock(store, held, &facts, now))
            .context("the sync engine could not describe the sync lock")
    }

    /// Whether a process holds `customer_id`'s lock at `at`, and the engine's line about it.
    pub async fn lock_status(&self, at: &Location, customer_id: i64) -> anyhow::Result<LockStatus> {
        // Its errors name the lock file, or the server and database, already.
        let state = at.lock_state(customer_id).await?;
        let now = chrono::Utc::now().timestamp_millis();
        let (held, facts) = match state {
            Some(state) => (state.held, state.facts),
            None => (false, LockFacts { holder: HolderRecord::Empty, process: ProcessState::Unknown, heartbeat: now }),
        };
        Ok(LockStatus { held, line: self.describe_lock(held, &facts, now)? })
    }

    fn ask<T>(
        &self,
        call: impl FnOnce(&SyncEngine, &mut Store<StoreLimits>) -> wasmtime::Result<T>,
    ) -> anyhow::Result<T> {
        let mut store = Store::new(&self.engine, StoreLimitsBuilder::new().memory_size(MAX_MEMORY).build());
        store.limiter(|limits| limits);
        store.set_epoch_deadline(DEADLINE_TICKS);
        let engine = self.policy.instantiate(&mut store)?;
        Ok(call(&engine, &mut store)?)
    }
}
