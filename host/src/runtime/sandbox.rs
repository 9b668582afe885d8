//! What a sync's wasmtime store carries besides the capabilities: the memory cap and the
//! watchdog's clock, and what they saw, so that an engine that stops is explained in one
//! line (never a wasm backtrace).

use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

use crate::capabilities::HostState;

/// Guest memory cap: the engine holds summaries, never bodies, so this is generous.
pub const MAX_GUEST_MEMORY: usize = 256 << 20;
/// The guest never computes this long between two host calls; if it does, it is stuck.
pub const MAX_GUEST_STRETCH: Duration = Duration::from_secs(10);

pub struct Sandbox {
    pub host: HostState,
    limits: GuestLimits,
    /// When the guest last called the host or got an answer.
    pub last_host_call: Instant,
    /// Set when the watchdog stopped the guest.
    pub stuck: bool,
}

impl Sandbox {
    pub fn new(host: HostState) -> Self {
        let limits = StoreLimitsBuilder::new().memory_size(MAX_GUEST_MEMORY).instances(32).build();
        Self {
            host,
            limits: GuestLimits { inner: limits, denied: false },
            last_host_call: Instant::now(),
            stuck: false,
        }
    }

    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limits
    }

    /// One line on why the engine stopped, from what the sandbox saw and the trap.
    pub fn why_stopped(&self, error: &wasmtime::Error) -> String {
        let why = if self.limits.denied {
            format!("it ran out of memory (its cap is {} MiB)", MAX_GUEST_MEMORY >> 20)
        } else if self.stuck {
            format!("it ran for {}s without calling the host (the watchdog stopped it)", MAX_GUEST_STRETCH.as_secs())
        } else if let Some(panic) = self.host.last_engine_error() {
            format!("it failed: {panic}")
        } else if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
            format!("it trapped: {trap}")
        } else {
            // A host function's own error: ours, so it carries no wasm backtrace.
            format!("{}", error.root_cause())
        };
        format!("the sync engine stopped: {why}")
    }
}

/// The store's limits, noting whether a memory growth was refused.
struct GuestLimits {
    inner: StoreLimits,
    denied: bool,
}

impl ResourceLimiter for GuestLimits {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        self.denied |= !allowed;
        Ok(allowed)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
