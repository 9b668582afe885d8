//! End-to-end benchmark: the real `testio-sync` binary against the built-in simulator.
//!
//!     cargo bench -p testio-sync --bench sync -- [--runs N]
//!
//! Prints, per scenario, the median wall time over N runs, the requests the simulator
//! served, the tests written and the peak RSS of the sync process.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testio_sync::sim::{SimConfig, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_testio-sync");

struct Sample {
    wall: Duration,
    peak_rss_kib: i64,
    requests: usize,
    tests_written: u64,
}

struct Scenario {
    name: &'static str,
    latency: Duration,
    /// Whether each run starts from an empty database.
    cold: bool,
}

fn main() -> anyhow::Result<()> {
    let runs = runs_from_args()?;
    let scenarios = [
        Scenario { name: "cold sync, 20 × 20 × 500", latency: Duration::ZERO, cold: true },
        Scenario { name: "incremental sync, nothing new", latency: Duration::ZERO, cold: false },
        Scenario { name: "cold sync, 50 ms latency per request", latency: Duration::from_millis(50), cold: true },
    ];
    let runtime = tokio::runtime::Runtime::new()?;
    println!("testio-sync benchmark: {runs} runs per scenario, median shown ({} cores)", cores());
    println!(
        "{:<40} {:>10} {:>10} {:>10} {:>14} {:>12}",
        "scenario", "median", "min", "max", "requests/run", "peak RSS"
    );
    for scenario in &scenarios {
        let samples = runtime.block_on(measure(scenario, runs))?;
        print_row(scenario.name, &samples);
    }
    Ok(())
}

fn runs_from_args() -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--runs") {
        Some(i) => {
            let text = args.get(i + 1).map(String::as_str).unwrap_or("");
            text.parse()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| anyhow::anyhow!("--runs takes a positive number, not {text:?}"))
        }
        None => Ok(7),
    }
}

async fn measure(scenario: &Scenario, runs: usize) -> anyhow::Result<Vec<Sample>> {
    let config =
        SimConfig { products: 20, features: 20, tests: 500, latency: scenario.latency, ..SimConfig::default() };
    let sim = Simulator::start(config, 0).await?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    if !scenario.cold {
        run_sync(&sim, &db)?;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        if scenario.cold {
            remove_db(&db);
        }
        sim.clear_requests();
        let mut sample = run_sync(&sim, &db)?;
        sample.requests = sim.requests().len();
        samples.push(sample);
    }
    sim.shutdown();
    Ok(samples)
}

/// Runs one sync as a child process and reads its peak RSS from `wait4`.
fn run_sync(sim: &Simulator, db: &Path) -> anyhow::Result<Sample> {
    let started = Instant::now();
    let child = Command::new(BIN)
        .args(["sync", "--json", "--db"])
        .arg(db)
        .env("TESTIO_CUSTOMER_API_BASE_URL", sim.base_url())
        .env("TESTIO_CUSTOMER_API_TOKEN", sim.token())
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let stdout = read_all(child.stdout.expect("stdout is piped"))?;
    let (status, rusage) = wait4(pid)?;
    let wall = started.elapsed();
    anyhow::ensure!(status == 0, "the sync exited with status {status}");
    let result: serde_json::Value = serde_json::from_slice(&stdout)?;
    let tests_written =
        result["tests_discovered"].as_u64().unwrap_or(0) + result["tests_updated"].as_u64().unwrap_or(0);
    Ok(Sample { wall, peak_rss_kib: rusage.ru_maxrss, requests: 0, tests_written })
}

fn read_all(mut pipe: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    pipe.read_to_end(&mut out)?;
    Ok(out)
}

fn wait4(pid: libc::pid_t) -> anyhow::Result<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: plain syscall on our own child; both out-pointers are valid for writes.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
    anyhow::ensure!(waited == pid, "wait4 failed: {}", std::io::Error::last_os_error());
    Ok((libc::WEXITSTATUS(status), rusage))
}

fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

fn print_row(name: &str, samples: &[Sample]) {
    let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
    walls.sort();
    let median = walls[walls.len() / 2];
    let peak = samples.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0);
    let last = samples.last().expect("at least one run");
    println!(
        "{:<40} {:>9.3}s {:>9.3}s {:>9.3}s {:>14} {:>8.1} MiB   ({} tests written/run)",
        name,
        median.as_secs_f64(),
        walls[0].as_secs_f64(),
        walls[walls.len() - 1].as_secs_f64(),
        last.requests,
        peak as f64 / 1024.0,
        last.tests_written
    );
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
