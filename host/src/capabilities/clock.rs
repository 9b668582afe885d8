//! `testio:sync/clock`.

use super::HostState;
use crate::bindings::clock::Host;
use crate::bindings::types::Timestamp;

impl Host for HostState {
    fn now(&mut self) -> wasmtime::Result<Timestamp> {
        self.touch();
        Ok(chrono::Utc::now().timestamp_millis())
    }

    fn monotonic_nanos(&mut self) -> wasmtime::Result<u64> {
        self.touch();
        Ok(self.started.elapsed().as_nanos() as u64)
    }
}
