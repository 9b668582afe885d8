//! `testio-sync sync`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::ValueEnum;

use super::shared::{ApiLimits, Customer, Freshness, whole_number};
use super::{Exit, report};
use crate::config::{self, DbPath, ProductIds};
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
    /// Print the result as JSON on stdout
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
    /// The database file [env: TESTIO_DB_PATH] [default: ~/.testio-mcp/cache.db]
    #[arg(long, value_name = "PATH")]
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
    pub customer: Customer,
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
    /// Resolves the settings, checking each before anything runs. An existing database is
    /// opened and brought up to date here, so that one this binary cannot use (newer,
    /// damaged, a migration that fails) is one error, before the sync starts.
    pub fn settings(&self, token: String) -> anyhow::Result<Settings> {
        let db = DbPath::resolve(self.db.as_deref())?;
        db.check_for_sync()?;
        if std::fs::metadata(&db.path).is_ok_and(|m| m.len() > 0) {
            crate::db::upgrade(&db.path)?;
        }
        crate::api::base_url_with_slash(&self.base_url)?;
        Ok(Settings {
            base_url: self.base_url.clone(),
            token,
            db_path: db.path,
            customer_id: self.customer.customer_id,
            max_in_flight: self.limits.max_in_flight(),
            request_timeout: self.limits.request_timeout(),
            lock_timeout: Duration::from_secs(if self.no_wait { 0 } else { self.lock_timeout }),
        })
    }
}

pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let service = match prepare(&args) {
        Ok(service) => service,
        Err(e) => return Err(report::not_started(e, args.json)),
    };
    let product_ids = args.product_ids();
    let mut phases = vec![Phase::Products, Phase::Features, Phase::NewTests];
    if args.refresh_bugs {
        phases.push(Phase::Bugs);
    }
    let call = SyncRequest {
        phases,
        scope: Scope {
            product_ids,
            since: args.since,
            entity_types: (!args.entity_types.is_empty())
                .then(|| args.entity_types.iter().map(|k| entity_kind(*k)).collect()),
        },
        options: Options {
            force_refresh: args.force,
            incremental_only: args.incremental_only,
            nuke: args.nuke,
            max_age_seconds: Some(args.freshness.max_age),
        },
        trigger: Trigger::Cli,
    };
    let started = Instant::now();
    // The sync future is dropped on a signal: the page being written completes, and
    // dropping the engine's state closes the sync log row and releases the lock.
    let signalled = async {
        let signal = shutdown::signalled().await;
        service.stop(format!("interrupted by {}", signal.name()));
        signal
    };
    tokio::select! {
        finished = service.sync(call, report::observer()) => Ok(report::finish(&finished, args.json, started.elapsed())),
        signal = signalled => Ok(report::interrupted(signal, args.json, started.elapsed())),
    }
}

/// Everything a sync needs, checked before it starts.
fn prepare(args: &Args) -> anyhow::Result<SyncService> {
    let token = config::token_from_env()?;
    let service = SyncService::new(EngineRuntime::load()?, args.target.settings(token)?);
    if args.nuke {
        super::nuke::confirm(service.settings(), args.product_ids().as_deref(), args.yes)?;
    }
    Ok(service)
}

impl Args {
    fn product_ids(&self) -> Option<Vec<u64>> {
        ProductIds::all(&self.product_ids)
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
