//! End-to-end benchmark: the real `testio-sync` binary against the built-in simulator,
//! next to a raw baseline that fetches the same pages and writes the same rows with plain
//! code and no engine.
//!
//!     cargo bench -p testio-sync --bench sync -- [--runs N] [--scale] [--only TEXT] [--customers]
//!
//! Prints a Markdown table of medians over N runs: wall time, peak RSS, the raw baseline
//! and our ratio to it, and the guest's share of the sync's CPU time. `--scale` adds a
//! 500k-test account (at most 3 runs, it takes a minute each). `--only` keeps the scenarios
//! whose name contains TEXT. The PostgreSQL row syncs into a throwaway local PostgreSQL 15
//! (fsync on, as in production), a new database per run. Then, unless `--only` is given,
//! 5 customers synced by one `sync --all-customers` against 5 `sync --customer NAME`;
//! `--customers` runs only that.

mod child;
mod customers;
mod raw;

use std::time::Duration;

use testio_pgtest::PgServer;
use testio_sim::{SimConfig, Simulator};

/// Whether a scenario starts each run from an empty database.
#[derive(Clone, Copy, PartialEq)]
enum Start {
    Cold,
    UpToDate,
}

/// Where a scenario's syncs write.
#[derive(Clone, Copy, PartialEq)]
enum Store {
    Sqlite,
    Postgres,
}

struct Scenario {
    name: &'static str,
    account: SimConfig,
    start: Start,
    /// The scale run takes a minute a run, so it is repeated fewer times.
    max_runs: usize,
    /// Whether to run the raw baseline next to it.
    raw: bool,
    /// Extra arguments to `testio-sync sync`.
    args: &'static [&'static str],
    /// Moves the simulated account along before the first sync.
    setup: fn(&Simulator),
    target: &'static str,
    store: Store,
}

/// What one scenario measured, N runs of each side interleaved.
struct Measured {
    ours: Vec<child::Run>,
    raw: Vec<Duration>,
    requests: usize,
}

fn account(products: u32, features: u32, tests: u32, latency_ms: u64) -> SimConfig {
    SimConfig { products, features, tests, latency: Duration::from_millis(latency_ms), ..SimConfig::default() }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == child::SPAWN_FLAG) {
        std::process::exit(child::spawn(&args[at + 1..])?);
    }
    let runs = runs_from(&args)?;
    let scale = args.iter().any(|a| a == "--scale");
    let sim_runtime = tokio::runtime::Runtime::new()?;
    if args.iter().any(|a| a == "--customers") {
        return many_customers(&sim_runtime, runs);
    }
    let mut scenarios = vec![
        Scenario {
            name: "cold sync, 20 × 20 × 500",
            account: account(20, 20, 500, 0),
            start: Start::Cold,
            max_runs: usize::MAX,
            raw: true,
            args: &[],
            setup: |_| {},
            target: "≤ 1.0 s",
            store: Store::Sqlite,
        },
        Scenario {
            name: "cold sync, 20 × 20 × 500, into PostgreSQL",
            account: account(20, 20, 500, 0),
            start: Start::Cold,
            max_runs: usize::MAX,
            raw: false,
            args: &[],
            setup: |_| {},
            target: "≤ 2.0 s",
            store: Store::Postgres,
        },
        Scenario {
            name: "incremental sync, nothing new",
            account: account(20, 20, 500, 0),
            start: Start::UpToDate,
            max_runs: usize::MAX,
            raw: true,
            args: &[],
            setup: |_| {},
            target: "≤ 0.15 s",
            store: Store::Sqlite,
        },
        Scenario {
            name: "cold sync, 50 ms latency per request",
            account: account(20, 20, 500, 50),
            start: Start::Cold,
            max_runs: usize::MAX,
            raw: true,
            args: &[],
            setup: |_| {},
            target: "≤ 3 s",
            store: Store::Sqlite,
        },
        Scenario {
            name: "start-up: sync of an up-to-date 1 × 1 × 1 account",
            account: account(1, 1, 1, 0),
            start: Start::UpToDate,
            max_runs: usize::MAX,
            raw: false,
            args: &[],
            setup: |_| {},
            target: "≤ 50 ms",
            store: Store::Sqlite,
        },
        Scenario {
            name: "freshness: every live test due (`--max-age 0`)",
            account: account(20, 20, 500, 0),
            start: Start::UpToDate,
            max_runs: usize::MAX,
            raw: false,
            args: &["--max-age", "0"],
            setup: |_| {},
            target: "≤ `--force`'s requests",
            store: Store::Sqlite,
        },
        Scenario {
            name: "freshness: 3 live tests per product, deep, all due",
            account: account(20, 20, 500, 0),
            start: Start::UpToDate,
            max_runs: usize::MAX,
            raw: false,
            args: &["--max-age", "0"],
            setup: few_live_tests,
            target: "≪ `--force`'s requests",
            store: Store::Sqlite,
        },
        Scenario {
            name: "freshness: the same account, `--force`",
            account: account(20, 20, 500, 0),
            start: Start::UpToDate,
            max_runs: usize::MAX,
            raw: false,
            args: &["--force"],
            setup: few_live_tests,
            target: "–",
            store: Store::Sqlite,
        },
        Scenario {
            name: "freshness: `--force` on the first account, for comparison",
            account: account(20, 20, 500, 0),
            start: Start::UpToDate,
            max_runs: usize::MAX,
            raw: false,
            args: &["--force"],
            setup: |_| {},
            target: "–",
            store: Store::Sqlite,
        },
    ];
    if scale {
        scenarios.push(Scenario {
            name: "scale: cold sync, 100 × 20 × 5,000",
            account: account(100, 20, 5_000, 0),
            start: Start::Cold,
            max_runs: 3,
            raw: true,
            args: &[],
            setup: |_| {},
            target: "≤ 60 s, ≤ 64 MiB",
            store: Store::Sqlite,
        });
    }
    let only = only_from(&args);
    if let Some(only) = only {
        scenarios.retain(|s| s.name.contains(only));
    }
    let raw_runtime = tokio::runtime::Runtime::new()?;
    println!("testio-sync benchmark: {runs} runs per scenario (scale: at most 3), medians; {} cores\n", cores());
    println!(
        "| scenario | median | min | max | requests | peak RSS | s / 100k tests | raw median | ours / raw | guest CPU share | target |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for scenario in &scenarios {
        let measured = measure(&sim_runtime, &raw_runtime, scenario, runs.min(scenario.max_runs))?;
        print_row(scenario, &measured);
    }
    let version: Vec<Duration> = (0..runs).map(|_| child::version()).collect::<anyhow::Result<_>>()?;
    println!("\nProcess start alone (`testio-sync --version`): {}", millis(median(version)));
    match only {
        Some(_) => Ok(()),
        None => many_customers(&sim_runtime, runs),
    }
}

/// The many-customers comparison, without latency and with 50 ms per request.
fn many_customers(sim_runtime: &tokio::runtime::Runtime, runs: usize) -> anyhow::Result<()> {
    println!("\nMany customers: {runs} runs of each side, the sides taking turns; {} cores", cores());
    for latency_ms in [0, 50] {
        customers::print(&customers::measure(sim_runtime, runs, latency_ms)?);
    }
    Ok(())
}

/// Two months on, with every review done but the 3 newest stuck ones of each product,
/// which 150 newer (by then archived) tests push deep into the list.
fn few_live_tests(sim: &Simulator) {
    let month = Duration::from_secs(30 * 86_400);
    sim.advance(month);
    for product in 1..=20 {
        let stuck = sim.statuses(product).iter().filter(|(_, s)| s == "locked").count();
        sim.finish_reviews(product, stuck.saturating_sub(3));
        sim.add_newer_tests(product, 150);
    }
    sim.advance(month);
}

fn only_from(args: &[String]) -> Option<&str> {
    let at = args.iter().position(|a| a == "--only")?;
    args.get(at + 1).map(String::as_str)
}

fn runs_from(args: &[String]) -> anyhow::Result<usize> {
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

fn measure(
    sim_runtime: &tokio::runtime::Runtime,
    raw_runtime: &tokio::runtime::Runtime,
    scenario: &Scenario,
    runs: usize,
) -> anyhow::Result<Measured> {
    let sim = sim_runtime.block_on(Simulator::start(scenario.account.clone(), 0))?;
    (scenario.setup)(&sim);
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let server = (scenario.store == Store::Postgres).then(PgServer::start_durable);
    // A new database per run for PostgreSQL (every PostgreSQL scenario is cold).
    let target = |db: &std::path::Path| match &server {
        Some(server) => server.url(&server.create_db()).into(),
        None => db.as_os_str().to_owned(),
    };
    if scenario.start == Start::UpToDate {
        child::sync(&sim, &target(&db), &[])?;
    }
    let mut measured = Measured { ours: Vec::with_capacity(runs), raw: Vec::with_capacity(runs), requests: 0 };
    for _ in 0..runs {
        if scenario.start == Start::Cold {
            testio_sync::db::remove_database(&db)?;
        }
        sim.clear_requests();
        measured.ours.push(child::sync(&sim, &target(&db), scenario.args)?);
        let requests = sim.requests();
        measured.requests = requests.len();
        if scenario.raw {
            let rows = raw::row_counts(&db)?;
            if scenario.start == Start::Cold {
                testio_sync::db::remove_database(&db)?;
            }
            let replay = raw::Replay::of(&requests);
            measured.raw.push(raw::run(raw_runtime, &sim.base_url(), sim.token(), &db, &replay)?);
            let raw_rows = raw::row_counts(&db)?;
            anyhow::ensure!(raw_rows == rows, "the raw baseline wrote {raw_rows:?} rows, the sync {rows:?}");
        }
    }
    sim.shutdown();
    Ok(measured)
}

fn print_row(scenario: &Scenario, measured: &Measured) {
    let walls: Vec<Duration> = measured.ours.iter().map(|r| r.wall).collect();
    let ours = median(walls.clone());
    let peak = measured.ours.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0);
    let tests = measured.ours.last().map_or(0, |r| r.tests_written);
    let per_100k = match scenario.start {
        Start::Cold if tests > 0 => format!("{:.2} s", ours.as_secs_f64() * 100_000.0 / tests as f64),
        _ => "–".into(),
    };
    let (raw, ratio) = if measured.raw.is_empty() {
        ("–".into(), "–".into())
    } else {
        let raw = median(measured.raw.clone());
        (seconds(raw), format!("{:.2}", ours.as_secs_f64() / raw.as_secs_f64()))
    };
    let shares: Vec<f64> = measured.ours.iter().filter_map(|r| r.guest_share).collect();
    let share = if shares.is_empty() { "–".into() } else { format!("{:.1} %", 100.0 * median_f64(shares)) };
    println!(
        "| {} | {} | {} | {} | {} | {:.1} MiB | {per_100k} | {raw} | {ratio} | {share} | {} |",
        scenario.name,
        seconds(ours),
        seconds(*walls.iter().min().expect("at least one run")),
        seconds(*walls.iter().max().expect("at least one run")),
        measured.requests,
        peak as f64 / 1024.0,
        scenario.target
    );
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn median_f64(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Seconds below 10 s with three decimals; milliseconds read better below 0.1 s.
fn seconds(d: Duration) -> String {
    if d < Duration::from_millis(100) { millis(d) } else { format!("{:.3} s", d.as_secs_f64()) }
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
