//! Embeds the engine component with wasmtime: compiled code cached on disk, async host
//! imports, an epoch watchdog for a guest that stops calling the host, and a memory cap.
//! With `RUST_LOG=testio_sync::runtime=debug` it also reports the CPU time of each sync.
//! It speaks the host's `model` to its callers and converts at the call (see `convert`).

mod policy;
mod sandbox;

pub use policy::LockStatus;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{CallHook, Config, Engine, Store, StoreLimits, UpdateDeadline};

use sandbox::{MAX_GUEST_STRETCH, Sandbox};

use crate::capabilities::HostState;
use crate::capabilities::bindings::{self, SyncEngine, SyncEnginePre};
use crate::model::{SyncError, SyncRequest, SyncResult};

/// The engine component, built from `guest/` by `build.rs`.
pub const ENGINE_WASM: &[u8] = include_bytes!(env!("TESTIO_SYNC_ENGINE_WASM"));

const EPOCH_TICK: Duration = Duration::from_millis(100);

pub struct EngineRuntime {
    engine: Engine,
    pre: SyncEnginePre<Sandbox>,
    /// The same component with every import a trap, for the engine's pure functions.
    policy: SyncEnginePre<StoreLimits>,
}

impl EngineRuntime {
    pub fn load() -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(anyhow::Error::from).context("could not start wasmtime")?;
        let component = load_component(&engine)?;
        let mut linker = Linker::new(&engine);
        SyncEngine::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |sandbox: &mut Sandbox| &mut sandbox.host)?;
        let pre = SyncEnginePre::new(linker.instantiate_pre(&component)?)?;
        let policy = policy::prepare(&engine, &component)?;
        start_epoch_ticker(&engine);
        Ok(Self { engine, pre, policy })
    }

    /// Runs one sync in a fresh instance. `Err` means the engine itself failed (a trap),
    /// said in one line; the host state comes back either way, to close what the engine
    /// left open.
    pub async fn execute(
        &self,
        state: HostState,
        request: &SyncRequest,
    ) -> (anyhow::Result<Result<SyncResult, SyncError>>, HostState) {
        let mut store = Store::new(&self.engine, Sandbox::new(state));
        store.limiter(Sandbox::limiter);
        // Every call into the host or back proves the guest is not stuck.
        store.call_hook(|mut ctx, hook| {
            if matches!(hook, CallHook::CallingHost | CallHook::ReturningFromHost) {
                ctx.data_mut().last_host_call = Instant::now();
            }
            Ok(())
        });
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            if ctx.data().last_host_call.elapsed() > MAX_GUEST_STRETCH {
                ctx.data_mut().stuck = true;
                wasmtime::bail!("the watchdog stopped the sync engine");
            }
            Ok(UpdateDeadline::Continue(1))
        });
        let cpu = tracing::enabled!(tracing::Level::DEBUG).then(CpuSplit::start);
        let outcome = self.call(&mut store, request).await;
        if let Some(cpu) = cpu {
            cpu.report();
        }
        let outcome = outcome.map_err(|error| anyhow::anyhow!(store.data().why_stopped(&error)));
        (outcome.map(|o| o.map(SyncResult::from).map_err(SyncError::from)), store.into_data().host)
    }

    async fn call(
        &self,
        store: &mut Store<Sandbox>,
        request: &SyncRequest,
    ) -> wasmtime::Result<Result<bindings::types::SyncResult, bindings::types::SyncError>> {
        let bindings = self.pre.instantiate_async(&mut *store).await?;
        store.data_mut().last_host_call = Instant::now();
        bindings.testio_sync_engine().call_execute_sync(&mut *store, &request.into(), request.trigger.into()).await
    }
}

/// Loads compiled code from the cache, or compiles and caches it. A cache that cannot
/// be read or written only costs the compile time.
fn load_component(engine: &Engine) -> anyhow::Result<Component> {
    let cached = cache_path(engine);
    if let Some(path) = &cached {
        // SAFETY: the file is our own precompiled output, keyed by the component's hash
        // and wasmtime's compatibility hash; wasmtime also checks its header.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, path) } {
            return Ok(component);
        }
    }
    let compiled = engine
        .precompile_component(ENGINE_WASM)
        .map_err(anyhow::Error::from)
        .context("could not compile the sync engine")?;
    if let Some(path) = &cached {
        store_in_cache(path, &compiled);
    }
    // SAFETY: `compiled` was produced just now by this engine.
    unsafe { Component::deserialize(engine, &compiled) }
        .map_err(anyhow::Error::from)
        .context("could not load the compiled sync engine")
}

fn cache_path(engine: &Engine) -> Option<PathBuf> {
    use std::hash::{Hash, Hasher};
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let digest = Sha256::digest(ENGINE_WASM);
    let name = format!("engine-{}-{:016x}.cwasm", hex::encode(&digest[..12]), compat.finish());
    Some(dirs::cache_dir()?.join("testio-sync").join(name))
}

fn store_in_cache(path: &std::path::Path, compiled: &[u8]) {
    let write = || -> std::io::Result<()> {
        let dir = path.parent().expect("cache paths have a folder");
        std::fs::create_dir_all(dir)?;
        let temp = dir.join(format!(".{}.tmp", std::process::id()));
        std::fs::write(&temp, compiled)?;
        std::fs::rename(&temp, path)
    };
    if let Err(e) = write() {
        tracing::debug!("could not cache the compiled engine at {}: {e}", path.display());
    }
}

/// Drives the epoch deadlines of this engine's stores for the life of the process.
fn start_epoch_ticker(engine: &Engine) {
    let engine = engine.clone();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .expect("could not start the epoch thread");
}

/// CPU time spent during one sync: by the process, and by the thread that runs the guest.
/// That thread runs the wasm, the boundary crossings and only the thin host glue of each
/// import (requests are parsed on other tasks, rows written on the store thread), so its
/// share is an upper bound on the guest's share of the sync's CPU time. It holds when the
/// call is driven by one thread, as the CLI's `block_on` does; a sync that moved between
/// worker threads reports nothing.
struct CpuSplit {
    thread: std::thread::ThreadId,
    engine_thread: Duration,
    process: Duration,
}

impl CpuSplit {
    fn start() -> Self {
        Self {
            thread: std::thread::current().id(),
            engine_thread: cpu_time(libc::CLOCK_THREAD_CPUTIME_ID),
            process: cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID),
        }
    }

    fn report(self) {
        if std::thread::current().id() != self.thread {
            return;
        }
        let engine_thread = cpu_time(libc::CLOCK_THREAD_CPUTIME_ID).saturating_sub(self.engine_thread);
        let process = cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID).saturating_sub(self.process);
        tracing::debug!(
            engine_thread_cpu_us = engine_thread.as_micros() as u64,
            process_cpu_us = process.as_micros() as u64,
            "CPU time of the sync"
        );
    }
}

fn cpu_time(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is valid for writes; both clocks exist on every Linux.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::api::ApiClient;
    use crate::db::LazyStore;
    use crate::db::writer::StoreWriter;
    use crate::lock::SyncLock;
    use crate::model::{Options, Scope, Trigger};
    use crate::observe::TracingObserver;

    /// An engine that runs out of memory is stopped and said so in one line, never with a
    /// wasm backtrace, and nothing is left behind: no database, the lock free.
    #[tokio::test]
    async fn an_engine_out_of_memory_is_one_line_naming_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let api =
            ApiClient::new("http://127.0.0.1:9/v2", "t", crate::api::request_limit(1), Duration::from_secs(1)).unwrap();
        let db = StoreWriter::spawn(LazyStore::new(crate::db::Location::Sqlite(dir.path().join("t.db")), 1));
        let lock = SyncLock::file(dir.path().join("sync.lock"), Duration::ZERO);
        let state = HostState::new(api, db, lock, Box::<TracingObserver>::default(), Arc::default());
        // More ids than the guest's memory cap holds, past the host's own bound (`check`).
        let scope = Scope { product_ids: Some((1..=40_000_000).collect()), ..Scope::default() };
        let request = SyncRequest::default_phases(scope, Options::default(), Trigger::Cli);
        let (outcome, state) = EngineRuntime::load().unwrap().execute(state, &request).await;
        let message = format!("{:#}", outcome.unwrap_err());
        assert_eq!(message, "the sync engine stopped: it ran out of memory (its cap is 256 MiB)");
        drop(state);
        assert!(!dir.path().join("t.db").exists());
    }
}
