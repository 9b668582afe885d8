//! The PostgreSQL store's share of a cold sync: a 20 × 20 × 500 account's tests written
//! page by page, one transaction per page, as the store writer does:
//!
//!     cargo bench -p testio-sync --bench pg_write [-- --runs N]
//!
//! The 400 pages of 25 tests are fetched once from the simulator (the JSON a sync gets:
//! about 4 KB a test, with its features and platforms) and parsed. Each run then writes
//! them into a fresh database of a throwaway PostgreSQL 15 with fsync on, as a real server
//! (the store sets `synchronous_commit = off` for its session), and into a fresh SQLite
//! file for reference: once into empty tables (a cold sync) and once more over them (a
//! `--force` sync). Prints one Markdown table of medians: the wall time, and the CPU time
//! of this process and of the server's processes, which a busy machine disturbs less.
//! The target is a whole cold sync ≤ 2.0 s; the writes overlap the fetching on the
//! store-writer thread (and the server works on the other core), so they must stay below it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use testio_pgtest::PgServer;
use testio_sim::{SimConfig, Simulator};
use testio_sync::api::{TestRecord, parse_products, parse_tests};
use testio_sync::db::pg::{PgStore, PgTarget};
use testio_sync::db::{Store, SyncStore};

const PER_PAGE: u32 = 25;
const PASSES: [(&str, &str); 4] =
    [("PostgreSQL 15", "cold"), ("PostgreSQL 15", "again"), ("SQLite", "cold"), ("SQLite", "again")];

/// One page of a product's tests.
struct Page {
    product: u64,
    tests: Vec<TestRecord>,
}

/// What one pass took: wall time, and CPU seconds of this process and of the server.
#[derive(Clone, Copy, Default)]
struct Cost {
    wall: Duration,
    client: f64,
    server: f64,
}

fn main() -> anyhow::Result<()> {
    let runs = runs_from_args()?;
    let (pages, bytes) = fetch_pages()?;
    describe(&pages, bytes);
    let server = PgServer::start_durable();
    let postmaster = server.postmaster_pid().ok_or_else(|| anyhow::anyhow!("no postmaster.pid"))?;
    let mut costs: Vec<[Cost; 4]> = Vec::new();
    for _ in 0..runs {
        let target = Arc::new(PgTarget::parse(&server.url(&server.create_db()))?);
        let mut pg = PgStore::open(target, 1)?;
        let dir = tempfile::tempdir()?;
        let mut sqlite = Store::open(&dir.path().join("bench.db"), 1)?;
        let pass = |store: &mut dyn SyncStore| write_all(store, &pages, postmaster);
        costs.push([pass(&mut pg)?, pass(&mut pg)?, pass(&mut sqlite)?, pass(&mut sqlite)?]);
    }
    print_table(&costs, pages.len());
    Ok(())
}

fn runs_from_args() -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--runs") {
        Some(i) => Ok(args.get(i + 1).ok_or_else(|| anyhow::anyhow!("--runs needs a number"))?.parse()?),
        None => Ok(5),
    }
}

/// Every page of a cold sync, and how many bytes of JSON they are.
fn fetch_pages() -> anyhow::Result<(Vec<Page>, usize)> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let config = SimConfig { products: 20, features: 20, tests: 500, ..SimConfig::default() };
        let sim = Simulator::start(config, 0).await?;
        let client = reqwest::Client::new();
        let get = |path: String| {
            let request = client.get(format!("{}/{path}", sim.base_url())).header("Authorization", "Token sim-token");
            async move { anyhow::Ok(request.send().await?.error_for_status()?.bytes().await?) }
        };
        let products = parse_products(&get("products".into()).await?)?;
        let (mut pages, mut bytes) = (Vec::new(), 0);
        for product in products.iter().map(|p| p.fields.id) {
            for page in 1..=500 / PER_PAGE {
                let body = get(format!("products/{product}/exploratory_tests?page={page}&per_page={PER_PAGE}")).await?;
                bytes += body.len();
                pages.push(Page { product, tests: parse_tests(&body)? });
            }
        }
        sim.shutdown();
        Ok((pages, bytes))
    })
}

fn describe(pages: &[Page], bytes: usize) {
    let tests: Vec<&TestRecord> = pages.iter().flat_map(|p| &p.tests).collect();
    let features: usize = tests.iter().map(|t| t.fields.features.as_ref().map_or(0, Vec::len)).sum();
    let platforms: usize = tests.iter().map(|t| t.fields.requirements.as_ref().map_or(0, Vec::len)).sum();
    let n = tests.len().max(1) as f64;
    println!(
        "{} pages, {} tests, {:.1} MB of JSON ({:.1} KB a test), {:.1} features and {:.1} platforms a test\n",
        pages.len(),
        tests.len(),
        bytes as f64 / 1e6,
        bytes as f64 / n / 1e3,
        features as f64 / n,
        platforms as f64 / n
    );
}

/// Writes every page, one transaction each.
fn write_all(store: &mut dyn SyncStore, pages: &[Page], postmaster: u32) -> anyhow::Result<Cost> {
    let (client, server, started) = (own_cpu(), server_cpu(postmaster)?, Instant::now());
    for page in pages {
        store.write_tests(page.product, &page.tests.iter().collect::<Vec<_>>())?;
    }
    let wall = started.elapsed();
    Ok(Cost { wall, client: own_cpu() - client, server: server_cpu(postmaster)? - server })
}

/// CPU seconds this process has used.
fn own_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// CPU seconds the server's processes have used: the postmaster's children that run, and
/// those that ended (counted in the postmaster's own record).
fn server_cpu(postmaster: u32) -> anyhow::Result<f64> {
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(fields) = std::fs::read_to_string(entry.path().join("stat")).ok().and_then(|s| stat_fields(&s)) else {
            continue;
        };
        // After "pid (comm)": 0 state, 1 ppid, … 11 utime, 12 stime, 13 cutime, 14 cstime.
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(postmaster) {
            total += number(11) + number(12);
        } else if entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) == Some(postmaster) {
            total += number(11) + number(12) + number(13) + number(14);
        }
    }
    Ok(total / ticks)
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces).
fn stat_fields(stat: &str) -> Option<Vec<String>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn print_table(costs: &[[Cost; 4]], pages: usize) {
    println!("| store | pass | wall (median of {}) | per page | CPU: this process | CPU: server |", costs.len());
    println!("|---|---|---|---|---|---|");
    for (i, (store, pass)) in PASSES.iter().enumerate() {
        let median = |value: fn(&Cost) -> f64| {
            let mut column: Vec<f64> = costs.iter().map(|c| value(&c[i])).collect();
            column.sort_by(f64::total_cmp);
            column[column.len() / 2]
        };
        let wall = median(|c| c.wall.as_secs_f64());
        let server = if i < 2 { format!("{:.2} s", median(|c| c.server)) } else { "-".into() };
        println!(
            "| {store} | {pass} | {wall:.3} s | {:.2} ms | {:.2} s | {server} |",
            wall * 1e3 / pages as f64,
            median(|c| c.client)
        );
    }
}
