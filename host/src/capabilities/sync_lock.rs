//! `testio:sync/sync-lock`, over the file lock in [`crate::lock`], and the lock's types
//! to and from the host's.

use std::time::Duration;

use super::HostState;
use crate::capabilities::bindings::sync_lock::{self as wit, Host};
use crate::capabilities::bindings::types::Trigger;
use crate::lock::{AcquireError, Holder, HolderRecord, LockFacts, ProcessState};

impl Host for HostState {
    async fn acquire(
        &mut self,
        trigger: Trigger,
        heartbeat_seconds: u32,
    ) -> wasmtime::Result<Result<wit::LockFacts, wit::AcquireError>> {
        // A period of 0 would spin the heartbeat; one second is the least that means anything.
        let beat = Duration::from_secs(u64::from(heartbeat_seconds.max(1)));
        let outcome = self.lock.acquire(trigger.into(), beat).await;
        Ok(outcome.map(Into::into).map_err(Into::into))
    }

    async fn wait_for_release(&mut self) -> wasmtime::Result<bool> {
        Ok(self.lock.wait_for_release().await)
    }

    fn release(&mut self) -> wasmtime::Result<()> {
        self.lock.release();
        Ok(())
    }
}

impl From<LockFacts> for wit::LockFacts {
    fn from(facts: LockFacts) -> Self {
        wit::LockFacts { holder: facts.holder.into(), process: facts.process.into(), heartbeat: facts.heartbeat }
    }
}

impl From<HolderRecord> for wit::HolderRecord {
    fn from(record: HolderRecord) -> Self {
        match record {
            HolderRecord::Empty => wit::HolderRecord::Empty,
            HolderRecord::Unreadable(text) => wit::HolderRecord::Unreadable(text),
            HolderRecord::Written(holder) => wit::HolderRecord::Written(holder.into()),
        }
    }
}

impl From<Holder> for wit::Holder {
    fn from(h: Holder) -> Self {
        wit::Holder {
            pid: h.pid,
            process_started_at: h.process_started_at,
            host_name: h.host_name,
            acquired_at: h.acquired_at,
            trigger: h.trigger.into(),
            command: h.command,
        }
    }
}

impl From<ProcessState> for wit::ProcessState {
    fn from(state: ProcessState) -> Self {
        match state {
            ProcessState::Running => wit::ProcessState::Running,
            ProcessState::PidReused => wit::ProcessState::PidReused,
            ProcessState::NotRunning => wit::ProcessState::NotRunning,
            ProcessState::Unknown => wit::ProcessState::Unknown,
        }
    }
}

impl From<AcquireError> for wit::AcquireError {
    fn from(error: AcquireError) -> Self {
        match error {
            AcquireError::Held(facts) => wit::AcquireError::Held(facts.into()),
            AcquireError::Unavailable(message) => wit::AcquireError::Unavailable(message),
        }
    }
}
