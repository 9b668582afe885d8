//! `testio-sync sync`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum;

use super::shared::{ApiLimits, CustomerArgs, Freshness, whole_number};
use super::{Exit, report};
use crate::api::RequestLimit;
use crate::config::{self, Mirror, ProductIds};
use crate::customers::{self, Customer};
use crate::db::Location;
use crate::model::{EntityKind, Options, Phase, Scope, SyncRequest, Trigger};
use crate::runtime::EngineRuntime;
use crate::service::{Settings, SyncService};
use crate::shutdown;

#[derive(clap::Args)]
pub struct Args {
    /// Only these products (ids separated by commas or spaces); default: all
    #[arg(long, env = "TESTIO_PRODUCT_IDS", value_name = "IDS", num_args = 1.., value_parser = ProductIds::parse)]
    product_ids: Vec<ProductIds>,
    /// Only tests that ended on or after this: an ISO date or date-time, today, yesterday,
    /// '30 days ago', 'last 7 days'; default: all
    #[arg(long, env = "TESTIO_SYNC_SINCE", value_name = "WHEN", value_parser = parse_since)]
    since: Option<i64>,
    /// Walk every page again and update every test, not just the new ones
    #[arg(long)]
    force: bool,
    /// Only discover new tests (skip the products and features phases)
    #[arg(long)]
    incremental_only: bool,
    /// Also fetch the bugs of the tests in scope (15 tests per request). Bugs of archived
    /// and cancelled tests fetched before are kept as they are unless --force is given
    #[arg(long)]
    refresh_bugs: bool,
    /// Only write these kinds of rows
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KINDS")]
    entity_types: Vec<Kind>,
    /// Start afresh: fetch every row of --product-ids (else all of this customer's) again,
    /// then delete the rows the API no longer returns; nothing is deleted unless the whole
    /// sync succeeds. Shows what the scope holds and asks on a terminal
    #[arg(long)]
    nuke: bool,
    /// Go ahead with --nuke without asking (needed without a terminal)
    #[arg(long, requires = "nuke")]
    yes: bool,
    /// Sync every active customer of the registry, three at a time within the one limit
    /// on requests in flight; one summary per customer, and the worst exit code
    #[arg(long, conflicts_with = "customer")]
    all_customers: bool,
    /// Print the result as JSON on stdout (with --all-customers, an array, one per customer)
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    freshness: Freshness,
    #[command(flatten)]
    target: Target,
}

/// Where to sync from and to; shared with `daemon` and `mcp`.
#[derive(clap::Args)]
pub struct Target {
    /// The database: a SQLite file, or a postgres://user@host/db URL for a shared mirror
    /// [env: TESTIO_DB_URL, TESTIO_DB_PATH] [default: ~/.testio-mcp/cache.db]
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<PathBuf>,
    /// The Customer API base URL
    #[arg(long, env = "TESTIO_CUSTOMER_API_BASE_URL", default_value = config::DEFAULT_BASE_URL, value_name = "URL")]
    pub base_url: String,
    /// How long to wait for another sync's lock, in seconds (at most a day)
    #[arg(long, env = "TESTIO_SYNC_LOCK_TIMEOUT_SECONDS", default_value_t = 30, value_name = "SECS",
          value_parser = whole_number::<u64>(0, 86_400))]
    pub lock_timeout: u64,
    /// Fail at once if another sync holds the lock
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub customer: CustomerArgs,
    #[command(flatten)]
    pub limits: ApiLimits,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Products,
    Features,
    Tests,
    Bugs,
}

fn parse_since(text: &str) -> Result<i64, String> {
    crate::since::parse(text, chrono::Utc::now()).map(|t| t.timestamp_millis())
}

impl Target {
    /// The database, checked before anything runs. An existing one is opened and brought
    /// up to date here, so that one this binary cannot use (newer, damaged, a migration that
    /// fails) is one error, before any sync starts.
    /// Blocking (it may connect to a server): not on an async thread.
    pub fn database(&self) -> anyhow::Result<Location> {
        let db = Mirror::resolve(self.db.as_deref())?;
        db.check_for_sync()?;
        let location = db.location();
        location.upgrade()?;
        Ok(location)
    }

    /// The customers to serve: the one `--customer` names (or the default), or, with
    /// `all`, every active one.
    pub fn customers(&self, db: &Location, all: bool) -> anyhow::Result<Vec<Customer>> {
        if !all {
            return Ok(vec![self.customer.resolve(db)?]);
        }
        let active = customers::active(db)?;
        anyhow::ensure!(!active.is_empty(), "no customer is active; `testio-sync customer list` shows them all");
        Ok(active.into_iter().map(|c| self.customer.with_overrides(c)).collect())
    }

    /// One customer's settings; every customer's syncs share `in_flight`.
    pub fn settings(&self, customer: &Customer, db: &Location, in_flight: RequestLimit) -> anyhow::Result<Settings> {
        let base_url = customer.base_url.clone().unwrap_or_else(|| self.base_url.clone());
        crate::api::base_url_with_slash(&base_url)?;
        let (token, token_from) = customers::token_for(customer)?;
        Ok(Settings {
            base_url,
            token,
            token_from,
            location: db.clone(),
            customer_id: customer.customer_id,
            in_flight,
            request_timeout: self.limits.request_timeout(),
            lock_timeout: Duration::from_secs(if self.no_wait { 0 } else { self.lock_timeout }),
        })
    }

    /// A sync service per customer, sharing one engine runtime and one request limit.
    pub fn services(&self, customers: Vec<Customer>, db: &Location) -> anyhow::Result<Vec<(Customer, SyncService)>> {
        let runtime = Arc::new(EngineRuntime::load()?);
        let in_flight = self.limits.request_limit();
        customers
            .into_iter()
            .map(|customer| {
                let settings = self.settings(&customer, db, in_flight.clone())?;
                Ok((customer, SyncService::new(runtime.clone(), settings)))
            })
            .collect()
    }
}

pub async fn run(args: Args) -> anyhow::Result<Exit> {
    // Blocking: it may read a PostgreSQL mirror, whose client must not run on an async thread.
    let services = match tokio::task::block_in_place(|| prepare(&args)) {
        Ok(services) => services,
        Err(e) => return Err(report::not_started(e, args.json)),
    };
    let started = Instant::now();
    let syncs = services.iter().map(|(customer, service)| {
        let request = args.request_for(customer);
        let observer = if services.len() == 1 { report::observer() } else { report::labelled(label(customer)) };
        async move {
            let begun = Instant::now();
            let finished = match request {
                Ok(request) => service.sync(request, observer).await,
                Err(e) => Arc::new(Err(e)),
            };
            (label(customer), finished, begun.elapsed())
        }
    });
    // The syncs' futures are dropped on a signal: the page being written completes, and
    // dropping the engine's state closes the sync log row and releases the lock.
    let signalled = async {
        let signal = shutdown::signalled().await;
        for (_, service) in &services {
            service.stop(format!("interrupted by {}", signal.name()));
        }
        signal
    };
    tokio::select! {
        finished = a_few_at_a_time(syncs) => Ok(report::finish_all(&finished, args.json)),
        signal = signalled => Ok(report::interrupted(signal, args.json, started.elapsed())),
    }
}

/// How many customers `--all-customers` syncs at once. Their writes to the one database
/// take turns, and those take most of a sync's time, so more at once are no faster; each
/// costs memory (BENCHMARKS.md, issue 14: 5 at once peaked at 75 MiB, 3 at 55 MiB, as fast).
const CUSTOMERS_AT_ONCE: usize = 3;

/// The syncs, at most [`CUSTOMERS_AT_ONCE`] at a time; their outcomes in their order.
async fn a_few_at_a_time<F: std::future::Future>(syncs: impl Iterator<Item = F>) -> Vec<F::Output> {
    use futures::StreamExt;
    futures::stream::iter(syncs).buffered(CUSTOMERS_AT_ONCE).collect().await
}

/// A customer's name in output (`default` for the unnamed one).
fn label(customer: &Customer) -> String {
    customer.name.clone().unwrap_or_else(|| "default".into())
}

/// Everything the syncs need, checked before any starts.
fn prepare(args: &Args) -> anyhow::Result<Vec<(Customer, SyncService)>> {
    let db = args.target.database()?;
    let customers = args.target.customers(&db, args.all_customers)?;
    if args.nuke {
        for customer in &customers {
            let product_ids = args.product_ids_of(customer);
            super::nuke::confirm(&db, customer.customer_id, product_ids.as_deref(), args.yes)?;
        }
    }
    args.target.services(customers, &db)
}

impl Args {
    /// The products of `customer` to sync: `--product-ids` when it applies to the customer
    /// (see [`super::given_for`]), else the customer's own.
    fn product_ids_of(&self, customer: &Customer) -> Option<Vec<u64>> {
        super::given_for(customer, "--product-ids", ProductIds::all(&self.product_ids))
            .or_else(|| customer.product_ids.clone())
    }

    fn since_of(&self, customer: &Customer) -> anyhow::Result<Option<i64>> {
        if let Some(since) = super::given_for(customer, "--since", self.since) {
            return Ok(Some(since));
        }
        let stored = customer.since.as_deref().map(parse_since).transpose();
        stored.map_err(|e| anyhow::anyhow!("the sync-since stored for {}: {e}", label(customer)))
    }

    /// The sync this command asks for, for one customer.
    fn request_for(&self, customer: &Customer) -> anyhow::Result<SyncRequest> {
        let mut phases = vec![Phase::Products, Phase::Features, Phase::NewTests];
        if self.refresh_bugs {
            phases.push(Phase::Bugs);
        }
        let entity_types =
            (!self.entity_types.is_empty()).then(|| self.entity_types.iter().map(|k| entity_kind(*k)).collect());
        Ok(SyncRequest {
            phases,
            scope: Scope { product_ids: self.product_ids_of(customer), since: self.since_of(customer)?, entity_types },
            options: Options {
                force_refresh: self.force,
                incremental_only: self.incremental_only,
                nuke: self.nuke,
                max_age_seconds: Some(self.freshness.max_age),
            },
            trigger: Trigger::Cli,
        })
    }
}

fn entity_kind(kind: Kind) -> EntityKind {
    match kind {
        Kind::Products => EntityKind::Products,
        Kind::Features => EntityKind::Features,
        Kind::Tests => EntityKind::Tests,
        Kind::Bugs => EntityKind::Bugs,
    }
}
