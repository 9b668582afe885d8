//! Many customers (issue 14): `sync --all-customers` over 5 registry customers, each with
//! its own simulated account, against the same 5 customers synced one after the other by
//! `sync --customer NAME`. Both sides start every run from the same database, which holds
//! the registry and no rows, and must leave the same rows.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testio_sim::Simulator;

use crate::{account, child, median, raw, seconds};

const CUSTOMERS: usize = 5;

/// What the comparison measured: per run, the 5 sequential syncs' total and the one
/// `--all-customers` sync.
pub struct Measured {
    pub latency_ms: u64,
    pub sequential: Vec<Duration>,
    /// The largest peak RSS of the sequential syncs.
    pub sequential_rss_kib: i64,
    pub all: Vec<child::Run>,
}

pub fn measure(sim_runtime: &tokio::runtime::Runtime, runs: usize, latency_ms: u64) -> anyhow::Result<Measured> {
    let sims = (1..=CUSTOMERS as u64)
        .map(|seed| {
            let config = testio_sim::SimConfig {
                seed,
                token: format!("bench-token-{seed}"),
                ..account(20, 20, 500, latency_ms)
            };
            sim_runtime.block_on(Simulator::start(config, 0))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let dir = tempfile::tempdir()?;
    let (template, db) = (dir.path().join("registry.db"), dir.path().join("bench.db"));
    let names: Vec<String> = (1..=CUSTOMERS).map(|i| format!("c{i}")).collect();
    let mut env = vec![("TESTIO_KEYRING", "off".to_string())];
    let vars: Vec<String> =
        names.iter().map(|name| format!("TESTIO_CUSTOMER_API_TOKEN_{}", name.to_uppercase())).collect();
    for ((name, sim), var) in names.iter().zip(&sims).zip(&vars) {
        env.push((var.as_str(), sim.token().to_string()));
        register(&template, name, sim, &env)?;
    }
    let mut measured =
        Measured { latency_ms, sequential: Vec::new(), sequential_rss_kib: 0, all: Vec::with_capacity(runs) };
    let mut expected: Option<Vec<i64>> = None;
    for run in 0..runs {
        // The two sides take turns going first.
        for sequential_side in [run % 2 == 0, run % 2 != 0] {
            testio_sync::db::remove_database(&db)?;
            std::fs::copy(&template, &db)?;
            if sequential_side {
                let mut total = Duration::ZERO;
                for name in &names {
                    let one = child::sync_with(db.as_os_str(), &["--customer", name], &env)?;
                    total += one.wall;
                    measured.sequential_rss_kib = measured.sequential_rss_kib.max(one.peak_rss_kib);
                }
                measured.sequential.push(total);
            } else {
                measured.all.push(child::sync_with(db.as_os_str(), &["--all-customers"], &env)?);
            }
            let rows = raw::row_counts(&db)?;
            anyhow::ensure!(
                rows[2] == (CUSTOMERS * 10_000) as i64,
                "not every customer's tests were written: {rows:?}"
            );
            let first = expected.get_or_insert_with(|| rows.clone());
            anyhow::ensure!(*first == rows, "the two sides wrote {first:?} and {rows:?} rows");
        }
    }
    for sim in &sims {
        sim.shutdown();
    }
    Ok(measured)
}

/// `customer add NAME --customer-id N --base-url <sim> --no-check` into `db`.
fn register(db: &Path, name: &str, sim: &Simulator, env: &[(&str, String)]) -> anyhow::Result<()> {
    let id = name.trim_start_matches('c');
    let out = Command::new(child::BIN)
        .args(["customer", "add", name, "--customer-id", id, "--base-url", &sim.base_url(), "--no-check", "--db"])
        .arg(db)
        .envs(env.iter().map(|(var, value)| (var, value)))
        .output()?;
    anyhow::ensure!(out.status.success(), "customer add {name}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

pub fn print(measured: &Measured) {
    let latency = measured.latency_ms;
    println!(
        "\n5 customers × 20 × 20 × 500, {latency} ms latency per request, {} runs, medians:\n",
        measured.all.len()
    );
    println!("| side | median | min | max | peak RSS | target |");
    println!("|---|---|---|---|---|---|");
    let row = |side: &str, walls: &[Duration], rss_kib: i64, target: &str| {
        let (min, max) = (walls.iter().min().expect("a run"), walls.iter().max().expect("a run"));
        println!(
            "| {side} | {} | {} | {} | {:.1} MiB | {target} |",
            seconds(median(walls.to_vec())),
            seconds(*min),
            seconds(*max),
            rss_kib as f64 / 1024.0
        );
    };
    row("5 × `sync --customer NAME`, one after the other", &measured.sequential, measured.sequential_rss_kib, "–");
    let all: Vec<Duration> = measured.all.iter().map(|r| r.wall).collect();
    let all_rss = measured.all.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0);
    row("`sync --all-customers`", &all, all_rss, "≤ 0.5 × sequential, ≤ 64 MiB");
    let ratio = median(all).as_secs_f64() / median(measured.sequential.clone()).as_secs_f64();
    println!("\n`--all-customers` / sequential: {ratio:.2}");
}
