//! `testio:sync/sync-lock`, over the file lock in [`crate::lock`].

use super::HostState;
use crate::bindings::sync_lock::{AcquireError, Host, LockFacts};
use crate::bindings::types::Trigger;

impl Host for HostState {
    async fn acquire(&mut self, trigger: Trigger) -> wasmtime::Result<Result<LockFacts, AcquireError>> {
        let outcome = self.lock.acquire(trigger).await;
        self.touch();
        Ok(outcome)
    }

    async fn wait_for_release(&mut self) -> wasmtime::Result<bool> {
        let again = self.lock.wait_for_release().await;
        self.touch();
        Ok(again)
    }

    fn release(&mut self) -> wasmtime::Result<()> {
        self.touch();
        self.lock.release();
        Ok(())
    }
}
