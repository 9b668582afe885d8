//! `testio-sync demo`: the main job end to end on an embedded default, the simulator
//! and a local database file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use testio_sim::Simulator;

use super::shared::ApiLimits;
use super::sim::Account;
use super::{Exit, output, report};
use crate::model::{Options, Scope, SyncRequest, Trigger};
use crate::runtime::EngineRuntime;
use crate::service::{Settings, SyncService};

#[derive(clap::Args)]
pub struct Args {
    /// The demo's database file; any previous one at this path is replaced
    #[arg(long, default_value = "testio-sync-demo.db")]
    db: PathBuf,
    /// New tests added per product before the second sync
    #[arg(long, default_value_t = 5)]
    new_tests: u32,
    /// Older tests per product whose review finishes (status changes deep in the list)
    /// before the third sync
    #[arg(long, default_value_t = 2)]
    reviews: usize,
    #[command(flatten)]
    limits: ApiLimits,
    #[command(flatten)]
    account: Account,
}

pub async fn run(args: Args) -> anyhow::Result<Exit> {
    crate::config::DbPath::resolve(Some(&args.db))?.check_for_sync()?;
    // The demo starts from an empty database, so the numbers mean what they say.
    crate::db::remove_database(&args.db).context("could not replace the old demo database")?;
    let sim = Simulator::start(args.account.config(), 0).await?;
    let settings = Settings {
        base_url: sim.base_url(),
        token: sim.token().to_string(),
        token_from: crate::api::TOKEN_VAR.to_string(),
        location: crate::db::Location::Sqlite(args.db.clone()),
        customer_id: 1,
        in_flight: args.limits.request_limit(),
        request_timeout: args.limits.request_timeout(),
        lock_timeout: crate::lock::DEFAULT_TIMEOUT,
    };
    let call = SyncRequest::default_phases(Scope::default(), Options::default(), Trigger::Cli);
    let a = &args.account;
    output::note(format_args!(
        "Simulated account: {} products × {} features × {} tests, at {}",
        a.products,
        a.features,
        a.tests,
        sim.base_url()
    ));
    let service = SyncService::new(Arc::new(EngineRuntime::load()?), settings);
    output::note(format_args!("\n== Cold sync into {}", args.db.display()));
    let cold = sync_once(&service, &call).await;
    for product in 1..=u64::from(a.products) {
        sim.add_newer_tests(product, args.new_tests);
    }
    output::note(format_args!("\n== Incremental sync after {} new tests per product", args.new_tests));
    let incremental = sync_once(&service, &call).await;
    let finished: usize = (1..=u64::from(a.products)).map(|p| sim.finish_reviews(p, args.reviews).len()).sum();
    eprintln!(
        "\n== Reviews finished on {finished} older tests, deep in the lists: a sync that re-checks every live test \
         now (--max-age 0) brings them up to date"
    );
    let mut recheck = call.clone();
    recheck.options.max_age_seconds = Some(0);
    let rechecked = sync_once(&service, &recheck).await;
    sim.shutdown();
    Ok([cold, incremental, rechecked].into_iter().find(|e| *e != Exit::Success).unwrap_or(Exit::Success))
}

async fn sync_once(service: &SyncService, call: &SyncRequest) -> Exit {
    let started = Instant::now();
    let finished = service.sync(call.clone(), report::observer()).await;
    report::finish(&finished, false, started.elapsed())
}
