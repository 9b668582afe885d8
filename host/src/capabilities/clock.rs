//! `testio:sync/clock`.

use super::HostState;
use crate::capabilities::bindings::clock::Host;
use crate::capabilities::bindings::types::Timestamp;

impl Host for HostState {
    fn now(&mut self) -> wasmtime::Result<Timestamp> {
        Ok(chrono::Utc::now().timestamp_millis())
    }

    fn monotonic_nanos(&mut self) -> wasmtime::Result<u64> {
        Ok(self.started.elapsed().as_nanos() as u64)
    }
}
