//! `testio-sync sim`: the built-in Customer API simulator, for other tools.

use std::time::Duration;

use testio_sim::{Faults, SimConfig, Simulator};

use super::{Exit, output};

#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 8080)]
    port: u16,
    #[command(flatten)]
    account: Account,
    #[command(flatten)]
    faults: FaultArgs,
}

/// Faults to inject, to test a client's resilience. Requests are numbered from 1 in
/// arrival order; percentages pick the same request numbers on every run with one seed.
#[derive(clap::Args)]
#[command(next_help_heading = "Fault injection")]
struct FaultArgs {
    /// Answer HTTP 500 to every page of a product's tests that covers one of these
    /// offsets (0 is the newest test), e.g. 2:37,38; repeatable
    #[arg(long, value_name = "PRODUCT:OFFSETS", value_parser = parse_bad_offsets)]
    bad_offsets: Vec<(u64, Vec<u64>)>,
    /// Answer HTTP 524 to every bugs request whose filter_test_cycle_ids holds one of these
    /// test ids (comma-separated), as the API does when it cannot list bugs in time
    #[arg(long, value_name = "TEST_IDS", value_delimiter = ',')]
    slow_bug_tests: Vec<u64>,
    /// Answer every Nth request with HTTP 429
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    rate_limit_every: Option<u64>,
    /// The Retry-After of those 429s, in seconds
    #[arg(long, default_value_t = 1, value_name = "SECS")]
    retry_after: u64,
    /// Drop the connection in the middle of the answer on this percentage of requests
    #[arg(long, default_value_t = 0, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    reset_percent: u8,
    /// Answer HTTP 503 to this percentage of requests
    #[arg(long, default_value_t = 0, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    unavailable_percent: u8,
    /// Answer this percentage of requests only after --slow-ms (to exceed a client's timeout)
    #[arg(long, default_value_t = 0, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    slow_percent: u8,
    /// How late the slow answers come, in milliseconds
    #[arg(long, default_value_t = 120_000, value_name = "MS")]
    slow_ms: u64,
    /// Stop the rate limits, resets, 503s and slow answers after request N
    #[arg(long, value_name = "N")]
    flaky_until: Option<u64>,
    /// Answer requests whose path starts with PREFIX (relative to the base URL, e.g.
    /// products/2/) with a body that is not valid JSON; repeatable
    #[arg(long, value_name = "PREFIX")]
    malformed: Vec<String>,
    /// Answer HTTP 401 to every request after the first N, as if the token were revoked
    #[arg(long, value_name = "N")]
    unauthorized_after: Option<u64>,
}

impl FaultArgs {
    fn faults(&self) -> Faults {
        Faults {
            bad_offsets: self.bad_offsets.iter().map(|(p, offsets)| (*p, offsets.iter().copied().collect())).collect(),
            slow_bug_tests: self.slow_bug_tests.iter().copied().collect(),
            rate_limit_every: self.rate_limit_every,
            retry_after_secs: self.retry_after,
            reset_percent: self.reset_percent,
            unavailable_percent: self.unavailable_percent,
            slow_percent: self.slow_percent,
            slow: Duration::from_millis(self.slow_ms),
            flaky_until: self.flaky_until,
            malformed_paths: self.malformed.clone(),
            unauthorized_after: self.unauthorized_after,
        }
    }
}

fn parse_bad_offsets(text: &str) -> Result<(u64, Vec<u64>), String> {
    let wrong = || format!("{text:?} is not PRODUCT:OFFSET[,OFFSET...], e.g. 2:37,38");
    let (product, offsets) = text.split_once(':').ok_or_else(wrong)?;
    let product = product.trim().parse().map_err(|_| wrong())?;
    let offsets = offsets.split(',').map(|o| o.trim().parse().map_err(|_| wrong())).collect::<Result<_, _>>()?;
    Ok((product, offsets))
}

/// The simulated account's shape; shared with the demo.
#[derive(clap::Args)]
pub struct Account {
    /// Number of products
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub products: u32,
    /// Features per product
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub features: u32,
    /// Exploratory tests per product
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub tests: u32,
    /// Seed for the generated data
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The token the simulator accepts
    #[arg(long, default_value = "sim-token")]
    pub token: String,
    /// Delay before each response, in milliseconds
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

impl Account {
    pub fn config(&self) -> SimConfig {
        SimConfig {
            products: self.products,
            features: self.features,
            tests: self.tests,
            seed: self.seed,
            token: self.token.clone(),
            latency: Duration::from_millis(self.latency_ms),
            faults: Faults::default(),
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let config = SimConfig { faults: args.faults.faults(), ..args.account.config() };
    let sim = Simulator::start(config, args.port).await?;
    output::note(format_args!(
        "Customer API simulator at {} (token {:?}); Ctrl-C stops it",
        sim.base_url(),
        sim.token()
    ));
    output::line(sim.base_url())?;
    tokio::signal::ctrl_c().await?;
    sim.shutdown();
    Ok(Exit::Success)
}
