//! `testio-sync daemon`: the background scheduler alone, until SIGINT or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;

use super::Exit;
use super::shared::{Freshness, whole_number};
use super::sync::Target;
use crate::config::{self, ProductIds};
use crate::runtime::EngineRuntime;
use crate::scheduler::{Plan, Scheduler, Selection};
use crate::service::SyncService;
use crate::shutdown;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    schedule: Schedule,
    #[command(flatten)]
    target: Target,
}

/// When and what the scheduler syncs; shared with `mcp`.
#[derive(clap::Args)]
pub struct Schedule {
    /// Seconds between background syncs (at most 30 days); 0 turns the scheduler off. A run
    /// is skipped while the last successful sync is younger than this.
    #[arg(long, env = "TESTIO_REFRESH_INTERVAL_SECONDS", default_value_t = 3600, value_name = "SECS",
          value_parser = whole_number::<u64>(0, 2_592_000))]
    interval: u64,
    /// Only these products (ids separated by commas or spaces); default: all
    #[arg(long, env = "TESTIO_PRODUCT_IDS", value_name = "IDS", num_args = 1.., value_parser = ProductIds::parse)]
    product_ids: Vec<ProductIds>,
    /// Only tests that ended on or after this: an ISO date or date-time, today, yesterday,
    /// '30 days ago', 'last 7 days'; relative forms count from each sync; default: all
    #[arg(long, env = "TESTIO_SYNC_SINCE", value_name = "WHEN", value_parser = crate::customers::check_since)]
    since: Option<String>,
    #[command(flatten)]
    freshness: Freshness,
    /// Whether each sync also refreshes the bugs of the tests in scope (those of live
    /// tests whose bugs are older than --max-age, and never-fetched ones)
    #[arg(long, env = "TESTIO_REFRESH_BUGS", default_value_t = true, value_name = "BOOL",
          action = clap::ArgAction::Set)]
    refresh_bugs: bool,
}

impl Schedule {
    pub fn selection(&self) -> Selection {
        Selection {
            product_ids: ProductIds::all(&self.product_ids),
            since: self.since.clone(),
            max_age_seconds: self.freshness.max_age,
            bugs: self.refresh_bugs,
        }
    }

    /// The scheduler's plan, or `None` when the interval is 0.
    pub fn plan(&self) -> Option<Plan> {
        (self.interval > 0).then(|| Plan { interval: Duration::from_secs(self.interval), selection: self.selection() })
    }
}

pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let Some(plan) = args.schedule.plan() else {
        bail!("the scheduler is off (TESTIO_REFRESH_INTERVAL_SECONDS=0); set an interval in seconds, or use `sync`");
    };
    let token = config::token_from_env()?;
    let service = Arc::new(SyncService::new(EngineRuntime::load()?, args.target.settings(token)?));
    let scheduler = Scheduler::new(service.clone(), plan);
    tracing::info!("Scheduler started: a sync every {}s; SIGINT or SIGTERM stops it", args.schedule.interval);
    // On a signal the scheduler's future is dropped: a sync under way stops between pages,
    // its sync log row says `interrupted`, and the lock is released.
    let signalled = async {
        let signal = shutdown::signalled().await;
        service.stop(format!("interrupted by {}", signal.name()));
        signal
    };
    // The signal branch first: its handlers are installed before the scheduler gets going.
    tokio::select! {
        biased;
        signal = signalled => tracing::info!("Scheduler stopped by {}", signal.name()),
        never = scheduler.run() => match never {},
    }
    Ok(Exit::Success)
}
