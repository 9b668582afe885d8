//! Reliability check: `kill -9` real syncs at random moments, then check that a clean
//! sync always recovers a database identical to a reference one.
//!
//!     cargo bench -p testio-sync --bench reliability -- [--kills 50] [--seed 7] [--postgres]
//!
//! Each round kills a sync of a 20 × 20 × 500 simulated account at a random delay: on
//! even rounds a cold sync into a new database, on odd rounds a `--force` sync that
//! rewrites every page of the existing one. Then it runs one clean sync and counts
//! `PRAGMA integrity_check` failures, sync log rows left `running`, and rows that differ
//! from a reference database synced without interruption. All three should be 0.
//!
//! `--postgres` does the same into a throwaway PostgreSQL 15 (a new database for each cold
//! round), where the killed sync's advisory lock must be freed by the server; it has no
//! integrity check of its own to run. It prints how many rounds passed: the clean sync
//! succeeded, left no row `running`, and matched the reference row by row.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use rusqlite::Connection;
use testio_pgtest::{CONTENT, PgServer};
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
    /// Kill syncs into PostgreSQL rather than SQLite
    #[arg(long)]
    postgres: bool,
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
    /// Rounds whose database came out whole: no failure of the three above.
    passed: u32,
}

/// Where the syncs write: a SQLite file, or a database on the throwaway server.
enum Mirror {
    File(PathBuf),
    Postgres { server: PgServer, url: String },
}

impl Mirror {
    fn new(postgres: bool, dir: &tempfile::TempDir, name: &str) -> anyhow::Result<Self> {
        if postgres {
            let server = PgServer::start();
            let url = server.url(&server.create_db());
            return Ok(Self::Postgres { server, url });
        }
        let path = dir.path().join(name).join("cache.db");
        std::fs::create_dir_all(path.parent().expect("a parent folder"))?;
        Ok(Self::File(path))
    }

    /// What `--db` takes.
    fn arg(&self) -> &str {
        match self {
            Self::File(path) => path.to_str().expect("a UTF-8 temp path"),
            Self::Postgres { url, .. } => url,
        }
    }

    /// An empty mirror for a cold round.
    fn reset(&mut self) -> anyhow::Result<()> {
        match self {
            Self::File(path) => Ok(testio_sync::db::remove_database(path)?),
            Self::Postgres { server, url } => {
                *url = server.url(&server.create_db());
                Ok(())
            }
        }
    }

    /// Whether the store is intact (SQLite's `integrity_check`; PostgreSQL has no such
    /// check to run), and how many sync log rows are still `running`.
    fn health(&self) -> anyhow::Result<(bool, i64)> {
        let running = "SELECT COUNT(*) FROM sync_events WHERE status = 'running'";
        match self {
            Self::File(path) => {
                let conn = Connection::open(path)?;
                let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
                Ok((verdict == "ok", conn.query_row(running, [], |r| r.get(0))?))
            }
            Self::Postgres { url, .. } => {
                let mut client = postgres::Client::connect(url, postgres::NoTls)?;
                Ok((true, client.query_one(running, &[])?.get(0)))
            }
        }
    }

    /// Every content row of every data table, as text.
    fn content(&self) -> anyhow::Result<BTreeSet<String>> {
        let mut rows = BTreeSet::new();
        match self {
            Self::File(path) => {
                let conn = Connection::open(path)?;
                for (table, columns) in CONTENT {
                    let mut statement = conn.prepare(&format!("SELECT {columns} FROM {table}"))?;
                    let width = statement.column_count();
                    let mut query = statement.query([])?;
                    while let Some(row) = query.next()? {
                        let cells: Vec<String> = (0..width).map(|i| format!("{:?}", row.get_ref(i))).collect();
                        rows.insert(format!("{table}: {}", cells.join("|")));
                    }
                }
            }
            Self::Postgres { url, .. } => {
                let mut client = postgres::Client::connect(url, postgres::NoTls)?;
                for (table, columns) in CONTENT {
                    for row in client.query(&format!("SELECT ROW({columns})::text FROM {table}"), &[])? {
                        rows.insert(format!("{table}: {}", row.get::<_, String>(0)));
                    }
                }
            }
        }
        Ok(rows)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    let config = SimConfig { products: 20, features: 20, tests: 500, ..SimConfig::default() };
    let sim = runtime.block_on(Simulator::start(config, 0))?;
    let dir = tempfile::tempdir()?;
    let reference_db = Mirror::new(args.postgres, &dir, "reference")?;
    let started = Instant::now();
    let cold_time = sync(&sim, &reference_db, &[])?;
    let reference = reference_db.content()?;
    println!("reference: {} rows, clean cold sync {:.2}s", reference.len(), cold_time.as_secs_f64());

    let mut db = Mirror::new(args.postgres, &dir, "victim")?;
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let mut tally = Tally::default();
    for round in 0..args.kills {
        let cold = round % 2 == 0;
        if cold {
            db.reset()?;
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
    println!("rounds passed: {} of {}", tally.passed, args.kills);
    println!("took {:.1}s", started.elapsed().as_secs_f64());
    ensure!(
        tally.integrity_failures == 0 && tally.running_rows == 0 && tally.differing_rows == 0,
        "the database did not always recover"
    );
    Ok(())
}

fn command(sim: &Simulator, db: &Mirror, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["sync", "--db", db.arg(), "--base-url", &sim.base_url()])
        .args(extra)
        .env("TESTIO_CUSTOMER_API_TOKEN", sim.token())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Runs one sync to completion and returns its wall time.
fn sync(sim: &Simulator, db: &Mirror, extra: &[&str]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = command(sim, db, extra).status()?;
    ensure!(status.success(), "sync exited with {status}");
    Ok(started.elapsed())
}

/// Starts a sync and sends it SIGKILL after `delay`; true if it was still running.
fn kill_after(sim: &Simulator, db: &Mirror, extra: &[&str], delay: Duration) -> anyhow::Result<bool> {
    let mut child = command(sim, db, extra).spawn()?;
    std::thread::sleep(delay);
    let running = child.try_wait()?.is_none();
    child.kill()?;
    child.wait()?;
    Ok(running)
}

fn check(db: &Mirror, reference: &BTreeSet<String>, tally: &mut Tally) -> anyhow::Result<()> {
    let (intact, running) = db.health()?;
    let differing = db.content()?.symmetric_difference(reference).count();
    tally.integrity_failures += u32::from(!intact);
    tally.running_rows += running;
    tally.differing_rows += differing;
    tally.passed += u32::from(intact && running == 0 && differing == 0);
    Ok(())
}
