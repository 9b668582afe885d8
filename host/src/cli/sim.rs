//! `testio-sync sim`: the built-in Customer API simulator, for other tools.

use std::time::Duration;

use super::Exit;
use crate::sim::{SimConfig, Simulator};

#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 8080)]
    port: u16,
    #[command(flatten)]
    account: Account,
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
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let sim = Simulator::start(args.account.config(), args.port).await?;
    eprintln!("Customer API simulator at {} (token {:?}); Ctrl-C stops it", sim.base_url(), sim.token());
    println!("{}", sim.base_url());
    tokio::signal::ctrl_c().await?;
    sim.shutdown();
    Ok(Exit::Success)
}
