//! Micro benchmarks of the host's hot path, one page of 25 tests at a time:
//!
//!     cargo bench -p testio-sync --bench micro
//!
//! The page is what the simulator serves for a 20 × 20 × 500 account, fetched once.

use std::sync::LazyLock;

use testio_sim::{SimConfig, Simulator};
use testio_sync::api::{TestRecord, parse_tests};
use testio_sync::db::Store;

const PAGE: &str = "products/1/exploratory_tests?page=1&per_page=25";

static BODY: LazyLock<Vec<u8>> = LazyLock::new(|| fetch_page().expect("the simulator serves a page"));

fn main() {
    divan::main();
}

fn fetch_page() -> anyhow::Result<Vec<u8>> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let config = SimConfig { products: 20, features: 20, tests: 500, ..SimConfig::default() };
        let sim = Simulator::start(config, 0).await?;
        let response = reqwest::Client::new()
            .get(format!("{}/{PAGE}", sim.base_url()))
            .header("Authorization", format!("Token {}", sim.token()))
            .send()
            .await?
            .error_for_status()?;
        let body = response.bytes().await?.to_vec();
        sim.shutdown();
        Ok(body)
    })
}

/// Parsing a page: the envelope, then each test's typed fields and raw JSON.
#[divan::bench]
fn parse_a_page_of_tests(bencher: divan::Bencher) {
    bencher
        .counter(divan::counter::BytesCount::new(BODY.len()))
        .bench(|| parse_tests(divan::black_box(&BODY)).expect("a page of tests"));
}

/// Writing a page: one transaction of 25 tests with their features and platforms.
#[divan::bench]
fn write_a_page_of_tests(bencher: divan::Bencher) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut store = Store::open(&dir.path().join("micro.db"), 1).expect("a database");
    let records = parse_tests(&BODY).expect("a page of tests");
    let page: Vec<&TestRecord> = records.iter().collect();
    bencher.bench_local(|| store.write_tests(1, &page).expect("the page is written"));
}
