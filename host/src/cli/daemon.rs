//! `testio-sync daemon`: the background scheduler alone, until SIGINT or SIGTERM.

use std::time::Duration;

use anyhow::bail;

use super::Exit;
use super::shared::{Freshness, whole_number};
use super::sync::Target;
use crate::config::ProductIds;
use crate::customers::Customer;
use crate::fleet::{Fleet, Member};
use crate::scheduler::Selection;
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
    /// What `customer`'s syncs cover: the flags that apply to it (see [`super::given_for`]),
    /// else its own settings.
    pub fn selection_for(&self, customer: &Customer) -> Selection {
        let product_ids = super::given_for(customer, "--product-ids", ProductIds::all(&self.product_ids))
            .or_else(|| customer.product_ids.clone());
        let since = super::given_for(customer, "--since", self.since.clone()).or_else(|| customer.since.clone());
        Selection { product_ids, since, max_age_seconds: self.freshness.max_age, bugs: self.refresh_bugs }
    }

    /// How often `customer` syncs in the background: its own interval, else `--interval`.
    pub fn interval_for(&self, customer: &Customer) -> Duration {
        Duration::from_secs(customer.interval_seconds.unwrap_or(self.interval))
    }

    /// The customers this process serves (`--customer`'s, else every active one), each with
    /// its service, what it syncs and its scheduler. Blocking (it may read a PostgreSQL
    /// mirror): call it in `block_in_place`.
    pub fn fleet(&self, target: &Target) -> anyhow::Result<Fleet> {
        let db = target.database()?;
        let customers = target.customers(&db, target.customer.customer.is_none())?;
        let members = target.services(customers, &db)?.into_iter().map(|(customer, service)| {
            let (selection, interval) = (self.selection_for(&customer), self.interval_for(&customer));
            Member::new(customer, service, selection, interval)
        });
        Ok(Fleet::new(members.collect()))
    }
}

pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let fleet = tokio::task::block_in_place(|| args.schedule.fleet(&args.target))?;
    let scheduled: Vec<String> = fleet
        .members()
        .iter()
        .filter_map(|m| m.scheduler.as_ref().map(|s| format!("{} every {}s", m.name(), s.status().interval_seconds)))
        .collect();
    if scheduled.is_empty() {
        bail!("the scheduler is off (TESTIO_REFRESH_INTERVAL_SECONDS=0); set an interval in seconds, or use `sync`");
    }
    tracing::info!("Scheduler started: {}; SIGINT or SIGTERM stops it", scheduled.join(", "));
    // On a signal the schedulers' futures are dropped: a sync under way stops between pages,
    // its sync log row says `interrupted`, and the lock is released.
    let signalled = async {
        let signal = shutdown::signalled().await;
        fleet.stop(&format!("interrupted by {}", signal.name()));
        signal
    };
    // The signal branch first: its handlers are installed before the schedulers get going.
    tokio::select! {
        biased;
        signal = signalled => tracing::info!("Scheduler stopped by {}", signal.name()),
        never = fleet.run_schedulers() => match never {},
    }
    Ok(Exit::Success)
}
