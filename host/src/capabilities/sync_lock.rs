//! `testio:sync/sync-lock`, over the file lock in [`crate::lock`].

use super::HostState;
use crate::bindings::sync_lock::{Host, LockError};
use crate::bindings::types::Trigger;
use crate::lock::AcquireError;

impl Host for HostState {
    async fn acquire(&mut self, trigger: Trigger) -> wasmtime::Result<Result<(), LockError>> {
        let outcome = self.lock.acquire(trigger_name(trigger)).await;
        self.touch();
        Ok(outcome.map_err(|e| match e {
            AcquireError::Busy(m) => LockError::Busy(m),
            AcquireError::Unavailable(m) => LockError::Unavailable(m),
        }))
    }

    fn release(&mut self) -> wasmtime::Result<()> {
        self.touch();
        self.lock.release();
        Ok(())
    }
}

pub fn trigger_name(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Cli => "cli",
        Trigger::Scheduler => "scheduler",
        Trigger::Mcp => "mcp",
    }
}
