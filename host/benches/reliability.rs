//! Reliability check: `kill -9` real syncs at random moments, then check that a clean
//! sync always recovers a database identical to a reference one.
//!
//!     cargo bench -p testio-sync --bench reliability -- [--kills 50] [--seed 7]
//!
//! Each round kills a sync of a 20 × 20 × 500 simulated account at a random delay: on
//! even rounds a cold sync into a new database, on odd rounds a `--force` sync that
//! rewrites every page of the existing one. Then it runs one clean sync and counts
//! `PRAGMA integrity_check` failures, sync log rows left `running`, and rows that differ
//! from a reference database synced without interruption. All three should be 0.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use rusqlite::Connection;
use testio_pgtest::CONTENT;
use testio_sim::{SimConfig, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_testio-sync");

#[derive(Parser)]
struct Args {
    /// How many syncs to kill
    #[arg(long, default_value_t = 50)]
    kills: u32,
    /// Seed for the kill delays, to replay a run
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Accepted for `cargo bench`, which passes it
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Default)]
struct Tally {
    integrity_failures: u32,
    running_rows: i64,
    differing_rows: usize,
    killed_mid_sync: u32,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    let config = SimConfig { products: 20, features: 20, tests: 500, ..SimConfig::default() };
    let sim = runtime.block_on(Simulator::start(config, 0))?;
    let dir = tempfile::tempdir()?;
    let reference_db = dir.path().join("reference").join("cache.db");
    let started = Instant::now();
    let cold_time = sync(&sim, &reference_db, &[])?;
    let reference = content(&reference_db)?;
    println!("reference: {} rows, clean cold sync {:.2}s", reference.len(), cold_time.as_secs_f64());

    let db = dir.path().join("victim").join("cache.db");
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let mut tally = Tally::default();
    for round in 0..args.kills {
        let cold = round % 2 == 0;
        if cold {
            testio_sync::db::remove_database(&db)?;
        }
        let delay = Duration::from_secs_f64(cold_time.as_secs_f64() * rng.f64());
        let force: &[&str] = if cold { &[] } else { &["--force"] };
        tally.killed_mid_sync += u32::from(kill_after(&sim, &db, force, delay)?);
        sync(&sim, &db, &[]).with_context(|| format!("the clean sync after kill {} failed", round + 1))?;
        check(&db, &reference, &mut tally)?;
    }
    println!("kills: {} ({} while the sync was still running)", args.kills, tally.killed_mid_sync);
    println!("integrity_check failures: {}", tally.integrity_failures);
    println!("sync log rows still running: {}", tally.running_rows);
    println!("rows differing from the reference: {}", tally.differing_rows);
    println!("took {:.1}s", started.elapsed().as_secs_f64());
    ensure!(
        tally.integrity_failures == 0 && tally.running_rows == 0 && tally.differing_rows == 0,
        "the database did not always recover"
    );
    Ok(())
}

fn command(sim: &Simulator, db: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["sync", "--db", db.to_str().expect("a UTF-8 temp path"), "--base-url", &sim.base_url()])
        .args(extra)
        .env("TESTIO_CUSTOMER_API_TOKEN", sim.token())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Runs one sync to completion and returns its wall time.
fn sync(sim: &Simulator, db: &Path, extra: &[&str]) -> anyhow::Result<Duration> {
    std::fs::create_dir_all(db.parent().expect("a parent folder"))?;
    let started = Instant::now();
    let status = command(sim, db, extra).status()?;
    ensure!(status.success(), "sync exited with {status}");
    Ok(started.elapsed())
}

/// Starts a sync and sends it SIGKILL after `delay`; true if it was still running.
fn kill_after(sim: &Simulator, db: &Path, extra: &[&str], delay: Duration) -> anyhow::Result<bool> {
    std::fs::create_dir_all(db.parent().expect("a parent folder"))?;
    let mut child = command(sim, db, extra).spawn()?;
    std::thread::sleep(delay);
    let running = child.try_wait()?.is_none();
    child.kill()?;
    child.wait()?;
    Ok(running)
}

fn check(db: &Path, reference: &BTreeSet<String>, tally: &mut Tally) -> anyhow::Result<()> {
    let conn = Connection::open(db)?;
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    tally.integrity_failures += u32::from(verdict != "ok");
    tally.running_rows +=
        conn.query_row("SELECT COUNT(*) FROM sync_events WHERE status = 'running'", [], |r| r.get::<_, i64>(0))?;
    let rows = content(db)?;
    tally.differing_rows += rows.symmetric_difference(reference).count();
    Ok(())
}

/// Every content row of every data table, as text.
fn content(db: &Path) -> anyhow::Result<BTreeSet<String>> {
    let conn = Connection::open(db)?;
    let mut rows = BTreeSet::new();
    for (table, columns) in CONTENT {
        let mut statement = conn.prepare(&format!("SELECT {columns} FROM {table}"))?;
        let width = statement.column_count();
        let mut query = statement.query([])?;
        while let Some(row) = query.next()? {
            let cells: Vec<String> = (0..width).map(|i| format!("{:?}", row.get_ref(i))).collect::<Vec<_>>();
            rows.insert(format!("{table}: {}", cells.join("|")));
        }
    }
    Ok(rows)
}
