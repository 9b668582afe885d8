//! One run of the real `testio-sync` binary as a child process: its wall time, its peak
//! RSS (from `wait4`), what it wrote (from `--json`) and its CPU split (from the debug
//! line the runtime logs under `RUST_LOG=testio_sync::runtime=debug`).
//!
//! Linux keeps a process's peak RSS across `exec`, and a spawned child starts out on its
//! parent's memory, so a child of this (large) bench process would report the bench's peak.
//! Each sync is therefore spawned by a fresh, small copy of the bench binary
//! ([`SPAWN_FLAG`]), which times it and reports its `wait4` figures on stderr.

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testio_sim::Simulator;

pub const BIN: &str = env!("CARGO_BIN_EXE_testio-sync");

pub struct Run {
    pub wall: Duration,
    pub peak_rss_kib: i64,
    pub tests_written: u64,
    /// The engine thread's CPU time over the process's, during the engine call.
    pub guest_share: Option<f64>,
}

/// Runs `testio-sync sync --json ARGS` against the simulator into `db` (a path or a URL).
pub fn sync(sim: &Simulator, db: &OsStr, args: &[&str]) -> anyhow::Result<Run> {
    let env = [("TESTIO_CUSTOMER_API_BASE_URL", sim.base_url()), ("TESTIO_CUSTOMER_API_TOKEN", sim.token().into())];
    sync_with(db, args, &env)
}

/// Runs `testio-sync sync --json ARGS` with `env`, which says where the API is and holds
/// the tokens. With `--all-customers`, the tests written are every customer's.
pub fn sync_with(db: &OsStr, args: &[&str], env: &[(&str, String)]) -> anyhow::Result<Run> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([SPAWN_FLAG, "sync", "--json", "--db"])
        .arg(db)
        .args(args)
        .envs(env.iter().map(|(var, value)| (var, value)))
        .env("RUST_LOG", "error,testio_sync::runtime=debug")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });
    let mut stdout = Vec::new();
    child.stdout.take().expect("stdout is piped").read_to_end(&mut stdout)?;
    let status = child.wait()?;
    let stderr = stderr.join().expect("the stderr reader does not panic")?;
    anyhow::ensure!(status.success(), "the sync failed ({status}): {stderr}");
    let result: serde_json::Value = serde_json::from_slice(&stdout)?;
    let each = result.as_array().cloned().unwrap_or_else(|| vec![result]);
    let tests_written = each
        .iter()
        .map(|r| r["tests_discovered"].as_u64().unwrap_or(0) + r["tests_updated"].as_u64().unwrap_or(0))
        .sum();
    let wall_us = field(&stderr, "wall_us=").ok_or_else(|| anyhow::anyhow!("no timing from the spawner: {stderr}"))?;
    let peak_rss_kib = field(&stderr, "peak_rss_kib=").unwrap_or(0.0) as i64;
    let guest_share = match (field(&stderr, "engine_thread_cpu_us="), field(&stderr, "process_cpu_us=")) {
        (Some(engine_thread), Some(process)) if process > 0.0 => Some(engine_thread / process),
        _ => None,
    };
    Ok(Run { wall: Duration::from_micros(wall_us as u64), peak_rss_kib, tests_written, guest_share })
}

/// Makes the bench binary the spawner of one `testio-sync` run.
pub const SPAWN_FLAG: &str = "--spawn-testio-sync";

/// The spawner: runs `testio-sync` with `args` on this process's stdio and reports its
/// wall time and peak RSS on stderr. Returns its exit code.
pub fn spawn(args: &[String]) -> anyhow::Result<i32> {
    let started = Instant::now();
    let child = Command::new(BIN).args(args).spawn()?;
    let (status, rusage) = wait4(child.id() as libc::pid_t)?;
    eprintln!("bench: wall_us={} peak_rss_kib={}", started.elapsed().as_micros(), rusage.ru_maxrss);
    Ok(status)
}

/// Wall time of `testio-sync --version`: what starting the process costs by itself.
pub fn version() -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = Command::new(BIN).arg("--version").stdout(Stdio::null()).status()?;
    anyhow::ensure!(status.success(), "testio-sync --version failed");
    Ok(started.elapsed())
}

/// A `name=number` field of the spawner's or the runtime's line on stderr.
fn field(stderr: &str, name: &str) -> Option<f64> {
    stderr.split_whitespace().find_map(|word| word.strip_prefix(name))?.parse().ok()
}

fn wait4(pid: libc::pid_t) -> anyhow::Result<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: plain syscall on our own child; both out-pointers are valid for writes.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
    anyhow::ensure!(waited == pid, "wait4 failed: {}", std::io::Error::last_os_error());
    Ok((libc::WEXITSTATUS(status), rusage))
}
