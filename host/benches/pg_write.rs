//! The PostgreSQL store's share of a cold sync: a 20 × 20 × 500 account's tests written
//! page by page, one transaction per page, as the store writer does:
//!
//!     cargo bench -p testio-sync --bench pg_write [-- --runs N]
//!
//! The 400 pages of 25 tests come from the simulator (the JSON a sync gets: about 4 KB a
//! test, with its features and platforms). Each run writes them into a fresh database of a
//! throwaway PostgreSQL 15 with fsync on, as a real server (the store sets
//! `synchronous_commit = off` for its session), and into a fresh SQLite file for reference:
//! - `cold`: the pages, fetched and parsed beforehand, written into empty tables;
//! - `again`: the same pages written over them (a `--force` sync);
//! - `pipeline`: a cold sync's shape without the engine: the pages fetched 10 at a time,
//!   parsed on the fetching tasks and written by one writer thread as they arrive.
//!
//! Prints one Markdown table of medians: the wall time, and the CPU time of the server's
//! processes, which a busy machine disturbs less. The target is a whole cold sync
//! (products, features and these tests, through the engine) ≤ 2.0 s.

use std::borrow::Borrow;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use testio_pgtest::PgServer;
use testio_sim::{SimConfig, Simulator};
use testio_sync::api::{TestRecord, parse_products, parse_tests};
use testio_sync::db::pg::{PgStore, PgTarget};
use testio_sync::db::{Store, SyncStore};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const PER_PAGE: u32 = 25;
/// The sync's own default for requests in flight.
const IN_FLIGHT: usize = 10;
const PASSES: [&str; 3] = ["cold", "again", "pipeline"];

/// One page of a product's tests.
struct Page {
    product: u64,
    tests: Vec<TestRecord>,
}

/// What one pass took: wall time, and CPU seconds of the server's processes.
#[derive(Clone, Copy, Default)]
struct Cost {
    wall: Duration,
    server: f64,
}

/// The simulated account and the pages of its tests.
struct Account {
    runtime: tokio::runtime::Runtime,
    sim: Simulator,
    client: reqwest::Client,
    /// Each page's product and path.
    pages: Vec<(u64, String)>,
}

fn main() -> anyhow::Result<()> {
    let runs = runs_from_args()?;
    let account = Account::start()?;
    let pages = account.fetch_all()?;
    let server = PgServer::start_durable();
    let postmaster = server.postmaster_pid().ok_or_else(|| anyhow::anyhow!("no postmaster.pid"))?;
    let pg = || -> anyhow::Result<PgStore> {
        PgStore::open(Arc::new(PgTarget::parse(&server.url(&server.create_db()))?), 1)
    };
    let dir = tempfile::tempdir()?;
    let sqlite = |run: usize, pass: &str| Store::open(&dir.path().join(format!("{run}-{pass}.db")), 1);
    let mut costs: Vec<[Cost; 6]> = Vec::new();
    for run in 0..runs {
        let (mut pg_store, mut sqlite_store) = (pg()?, sqlite(run, "cold")?);
        let mut stores: [&mut dyn SyncStore; 2] = [&mut pg_store, &mut sqlite_store];
        let mut run_costs = [Cost::default(); 6];
        for (i, store) in stores.iter_mut().enumerate() {
            run_costs[3 * i] = measure(|| write_all(*store, &pages), postmaster)?;
            run_costs[3 * i + 1] = measure(|| write_all(*store, &pages), postmaster)?;
        }
        run_costs[2] = measure(|| account.pipeline(Box::new(pg()?)), postmaster)?;
        run_costs[5] = measure(|| account.pipeline(Box::new(sqlite(run, "pipeline")?)), postmaster)?;
        costs.push(run_costs);
    }
    account.sim.shutdown();
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

impl Account {
    fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Runtime::new()?;
        let config = SimConfig { products: 20, features: 20, tests: 500, ..SimConfig::default() };
        let sim = runtime.block_on(Simulator::start(config, 0))?;
        let client = reqwest::Client::new();
        let mut account = Self { runtime, sim, client, pages: Vec::new() };
        let products = parse_products(&account.runtime.block_on(account.get("products"))?)?;
        for product in products.iter().map(|p| p.fields.id) {
            for page in 1..=500 / PER_PAGE {
                account
                    .pages
                    .push((product, format!("products/{product}/exploratory_tests?page={page}&per_page={PER_PAGE}")));
            }
        }
        Ok(account)
    }

    fn get(&self, path: &str) -> impl Future<Output = anyhow::Result<Vec<u8>>> + Send + 'static {
        let request =
            self.client.get(format!("{}/{path}", self.sim.base_url())).header("Authorization", "Token sim-token");
        async move { Ok(request.send().await?.error_for_status()?.bytes().await?.to_vec()) }
    }

    /// Every page, fetched and parsed one after the other.
    fn fetch_all(&self) -> anyhow::Result<Vec<Page>> {
        let mut bytes = 0;
        let pages = (self.pages.iter())
            .map(|(product, path)| {
                let body = self.runtime.block_on(self.get(path))?;
                bytes += body.len();
                Ok(Page { product: *product, tests: parse_tests(&body)? })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        describe(&pages, bytes);
        Ok(pages)
    }

    /// Fetches the pages `IN_FLIGHT` at a time, parses each on its task, and writes them as
    /// they arrive on a writer thread that owns `store`, as a sync does.
    fn pipeline(&self, store: Box<dyn SyncStore>) -> anyhow::Result<()> {
        let (pages, arrived) = mpsc::channel::<Page>();
        let writer = std::thread::spawn(move || {
            let mut store = store;
            write_all(store.as_mut(), arrived)
        });
        self.runtime.block_on(async {
            let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
            let mut fetches = JoinSet::new();
            for (product, path) in &self.pages {
                let (permit, pages, product) = (in_flight.clone().acquire_owned().await?, pages.clone(), *product);
                let body = self.get(path);
                fetches.spawn(async move {
                    let page = Page { product, tests: parse_tests(&body.await?)? };
                    drop(permit);
                    pages.send(page).map_err(|_| anyhow::anyhow!("the writer stopped"))
                });
            }
            while let Some(fetched) = fetches.join_next().await {
                fetched??;
            }
            anyhow::Ok(())
        })?;
        drop(pages);
        writer.join().map_err(|_| anyhow::anyhow!("the writer panicked"))?
    }
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
fn write_all(store: &mut dyn SyncStore, pages: impl IntoIterator<Item = impl Borrow<Page>>) -> anyhow::Result<()> {
    for page in pages {
        let page = page.borrow();
        store.write_tests(page.product, &page.tests.iter().collect::<Vec<_>>())?;
    }
    Ok(())
}

fn measure(work: impl FnOnce() -> anyhow::Result<()>, postmaster: u32) -> anyhow::Result<Cost> {
    let (server, started) = (server_cpu(postmaster)?, Instant::now());
    work()?;
    Ok(Cost { wall: started.elapsed(), server: server_cpu(postmaster)? - server })
}

/// CPU seconds the server's processes have used: the postmaster's children that run, and
/// those that ended (counted in the postmaster's own record).
fn server_cpu(postmaster: u32) -> anyhow::Result<f64> {
    // SAFETY: sysconf only reads a system setting.
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

fn print_table(costs: &[[Cost; 6]], pages: usize) {
    println!("| store | pass | wall (median of {}) | per page | server CPU |", costs.len());
    println!("|---|---|---|---|---|");
    for (i, (store, pass)) in ["PostgreSQL 15", "SQLite"].iter().flat_map(|s| PASSES.map(|p| (s, p))).enumerate() {
        let median = |value: fn(&Cost) -> f64| {
            let mut column: Vec<f64> = costs.iter().map(|c| value(&c[i])).collect();
            column.sort_by(f64::total_cmp);
            column[column.len() / 2]
        };
        let wall = median(|c| c.wall.as_secs_f64());
        let server = if i < PASSES.len() { format!("{:.2} s", median(|c| c.server)) } else { "-".into() };
        println!("| {store} | {pass} | {wall:.3} s | {:.2} ms | {server} |", wall * 1e3 / pages as f64);
    }
}
