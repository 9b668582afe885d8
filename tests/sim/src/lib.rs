//! A Customer API v2 simulator. It serves a deterministic fake account on 127.0.0.1 so sync
//! can be demonstrated, tested and benchmarked without the real service. Tests are generated
//! per request from (seed, sizes, index), so even a 500k-test account costs only the memory of
//! its products and features.
//!
//! The account lives on a simulated clock ([`Simulator::now`]) that moves only when told
//! ([`Simulator::advance`]). Each test goes through `initialized`, `waiting`, `running`,
//! `locked` (awaiting the customer's review, 1 to 4 days), `customer_finalized` (1 to 3 days)
//! and `archived`; about one in twelve is `cancelled` on the way. Of the tests the account
//! starts with, every 7th by index within its product (0, 7, 14, … counted from the oldest)
//! is never reviewed by itself: once ended it stays `locked` until
//! [`Simulator::finish_reviews`]. Bugs are `new` while their test runs, `forwarded` while it
//! awaits review, then `accepted`, `rejected` or later `fixed`, and stop changing once the
//! test is archived or cancelled. What a request returns depends only on the configuration
//! and the controls so far, so the same controls give the same bytes. Tools outside the
//! process use the same controls over HTTP: `POST /_sim/advance?hours=N` and
//! `POST /_sim/finish-reviews?product=P&count=N`, with the API token.
//!
//! A test tool, not part of the `testio_sync` library: the end-to-end tests and the benchmarks
//! use it directly, and the binary's `sim` and `demo` commands use it through the host's
//! `simulator` feature (on by default).

mod faults;
mod generation;
mod lifecycle;
mod server;
mod vocabulary;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;

pub use faults::Faults;
use generation::{FEATURE_ID_STRIDE, MAX_TESTS_PER_PRODUCT};
use server::{CONTROL_PATH, SimState};

/// Size and behaviour of the simulated account.
#[derive(Clone)]
pub struct SimConfig {
    pub products: u32,
    /// Features per product.
    pub features: u32,
    /// Initial exploratory tests per product.
    pub tests: u32,
    pub seed: u64,
    /// The API token clients must send as `Authorization: Token <token>`.
    pub token: String,
    /// Delay before every answer, to make concurrency measurable.
    pub latency: Duration,
    /// Faults to inject; none by default.
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            products: 3,
            features: 5,
            tests: 60,
            seed: 1,
            token: "sim-token".into(),
            latency: Duration::ZERO,
            faults: Faults::default(),
        }
    }
}

/// One request the simulator received.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub method: String,
    /// The full path, e.g. "/customer/v2/products/2/exploratory_tests".
    pub path: String,
    /// The raw query string, without the '?'.
    pub query: Option<String>,
    /// The answer's status; 0 while the request is still being answered, or when its
    /// connection was dropped on purpose.
    pub status: u16,
    /// When the request arrived.
    pub received_at: std::time::SystemTime,
}

/// A running simulator; clones share the same server.
#[derive(Clone)]
pub struct Simulator {
    state: Arc<SimState>,
    addr: SocketAddr,
}

impl Simulator {
    /// Binds 127.0.0.1:`port` (0 picks a free port) and serves in a spawned task.
    pub async fn start(config: SimConfig, port: u16) -> anyhow::Result<Simulator> {
        anyhow::ensure!(config.tests <= MAX_TESTS_PER_PRODUCT, "at most {MAX_TESTS_PER_PRODUCT} tests per product");
        anyhow::ensure!(
            u64::from(config.features) < FEATURE_ID_STRIDE,
            "at most {} features per product",
            FEATURE_ID_STRIDE - 1
        );
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("binding the simulator to 127.0.0.1:{port}"))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState::new(config));
        tokio::spawn(server::serve(listener, state.clone()));
        Ok(Simulator { state, addr })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/customer/v2", self.addr)
    }

    /// Where the HTTP controls are, e.g. `http://127.0.0.1:8080/_sim`: `POST {it}/advance?hours=N`
    /// answers `{"now": "<ISO 8601>"}`, `POST {it}/finish-reviews?product=P&count=N` answers
    /// `{"finished": [test ids]}`; both need the API token and answer 400 to bad parameters.
    pub fn control_url(&self) -> String {
        format!("http://{}{}", self.addr, CONTROL_PATH.trim_end_matches('/'))
    }

    pub fn token(&self) -> &str {
        self.state.token()
    }

    /// Every request so far, in arrival order, including rejected ones.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.requests()
    }

    pub fn clear_requests(&self) {
        self.state.clear_requests();
    }

    /// Adds `count` tests to a product, each ending later than all its existing tests and at
    /// least 3.5 hours after now, however far the clock has moved; they go through the
    /// lifecycle as it advances, but are never stuck in review.
    pub fn add_newer_tests(&self, product_id: u64, count: u32) {
        if !self.state.add_tests(product_id, count) {
            tracing::warn!(product_id, "simulator has no such product; no tests added");
        }
    }

    /// The product's current number of tests (0 for an unknown product).
    pub fn test_count(&self, product_id: u64) -> u32 {
        self.state.test_count(product_id)
    }

    /// The simulated now. It starts 2.5 hours before the newest test's end, so the newest three
    /// tests of every product are running (or about to start).
    pub fn now(&self) -> DateTime<Utc> {
        self.state.now()
    }

    /// Moves the simulated clock forward (whole seconds); returns the new now.
    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        self.state.advance(by)
    }

    /// Finishes the customer's review of up to `count` of the product's `locked` tests, oldest
    /// first (so the stuck ones deep in the newest-first list go first): they become
    /// `customer_finalized` now, and `archived` 1 to 3 days later. Returns their ids, oldest first.
    pub fn finish_reviews(&self, product_id: u64, count: usize) -> Vec<u64> {
        self.state.finish_reviews(product_id, count).unwrap_or_else(|| {
            tracing::warn!(product_id, "simulator has no such product; no reviews finished");
            Vec::new()
        })
    }

    /// Every test of the product with its current status, newest first, as the pages list them.
    pub fn statuses(&self, product_id: u64) -> Vec<(u64, String)> {
        let statuses = self.state.statuses(product_id).unwrap_or_default();
        statuses.into_iter().map(|(id, status)| (id, status.as_str().to_owned())).collect()
    }

    /// The current status of one test, or None if the simulator has no such test.
    pub fn status_of(&self, test_id: u64) -> Option<String> {
        self.state.status_of(test_id).map(|status| status.as_str().to_owned())
    }

    /// The most requests the simulator was answering at the same time.
    pub fn peak_in_flight(&self) -> usize {
        self.state.peak_in_flight()
    }

    /// Makes every request whose path, relative to the base URL, starts with `prefix`
    /// (e.g. `products/2/`) answer with `status` from now on.
    pub fn fail_requests(&self, prefix: &str, status: u16) {
        self.state.fail_requests(prefix, status);
    }

    /// Replaces the injected faults (see [`Faults`]) from the next request on.
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(faults);
    }

    /// Answers normally again after [`Simulator::fail_requests`].
    pub fn stop_failing_requests(&self) {
        self.state.stop_failing_requests();
    }

    /// Stops accepting connections; requests in flight are still answered.
    pub fn shutdown(&self) {
        self.state.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::{BTreeMap, BTreeSet};

    async fn sim(config: SimConfig) -> Simulator {
        Simulator::start(config, 0).await.expect("simulator starts")
    }

    /// Sends `request` with the token; the status and the body.
    async fn send(request: reqwest::RequestBuilder, token: &str) -> (u16, String) {
        let response =
            request.header("Authorization", format!("Token {token}")).send().await.expect("request succeeds");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body is text"))
    }

    async fn get_with_token(sim: &Simulator, path: &str, token: &str) -> (u16, String) {
        send(reqwest::Client::new().get(format!("{}/{path}", sim.base_url())), token).await
    }

    async fn get(sim: &Simulator, path: &str) -> (u16, String) {
        get_with_token(sim, path, sim.token()).await
    }

    async fn get_json(sim: &Simulator, path: &str) -> Value {
        let (status, body) = get(sim, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("body is JSON")
    }

    fn ids(list: &Value) -> Vec<u64> {
        list.as_array().expect("a JSON array").iter().map(|item| item["id"].as_u64().expect("numeric id")).collect()
    }

    async fn test_ids(sim: &Simulator, path: &str) -> Vec<u64> {
        ids(&get_json(sim, path).await["exploratory_tests"])
    }

    #[tokio::test]
    async fn rejects_missing_or_wrong_token() {
        let sim = sim(SimConfig::default()).await;
        let (status, body) = get_with_token(&sim, "products", "wrong").await;
        assert_eq!(status, 401);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(body["error"].is_string());
        let response = reqwest::get(format!("{}/products", sim.base_url())).await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        assert_eq!(get(&sim, "products").await.0, 200);
    }

    #[tokio::test]
    async fn unknown_things_are_404() {
        let sim = sim(SimConfig::default()).await;
        for path in [
            "products/99",
            "products/0/features",
            "products/3/sections/1/features",
            "exploratory_tests/1000060",
            "nonsense",
        ] {
            let (status, body) = get(&sim, path).await;
            assert_eq!(status, 404, "{path}");
            assert!(body.contains("\"error\""), "{path}: {body}");
        }
    }

    #[tokio::test]
    async fn products_follow_the_section_rule() {
        let sim = sim(SimConfig::default()).await;
        let products = get_json(&sim, "products").await;
        assert_eq!(ids(&products["products"]), [1, 2, 3]);
        for product in products["products"].as_array().unwrap() {
            let with_sections = product["id"].as_u64().unwrap().is_multiple_of(3);
            let sections = product["sections"].as_array().unwrap().len();
            let with_default = product["sections_with_default"].as_array().unwrap().len();
            assert_eq!((sections, with_default), if with_sections { (2, 3) } else { (0, 1) });
        }
        let single = get_json(&sim, "products/2").await;
        assert_eq!(single["product"], products["products"][1]);
    }

    #[tokio::test]
    async fn paginates_newest_first() {
        let sim = sim(SimConfig { tests: 200, ..SimConfig::default() }).await;
        let page1 = get_json(&sim, "products/2/exploratory_tests?page=1&per_page=10").await;
        let tests = page1["exploratory_tests"].as_array().unwrap();
        assert_eq!(ids(&page1["exploratory_tests"]), (190..200).rev().map(|n| 2_000_000 + n).collect::<Vec<_>>());
        let ends: Vec<_> = tests
            .iter()
            .map(|t| chrono::DateTime::parse_from_rfc3339(t["end_at"].as_str().unwrap()).unwrap())
            .collect();
        assert!(ends.windows(2).all(|pair| pair[0] > pair[1]), "{ends:?}");

        assert_eq!(test_ids(&sim, "products/2/exploratory_tests?page=2").await.len(), 25);
        let last = test_ids(&sim, "products/2/exploratory_tests?page=8").await;
        assert_eq!(last.len(), 25);
        assert_eq!(last.last(), Some(&2_000_000));
        assert!(test_ids(&sim, "products/2/exploratory_tests?page=9").await.is_empty());

        let unpaged = test_ids(&sim, "products/2/exploratory_tests?per_page=5").await;
        assert_eq!(unpaged.len(), 150);
        assert_eq!(unpaged[0], 2_000_199);

        for bad in ["page=0", "page=x", "page=1&per_page=0", "per_page=-1"] {
            let (status, _) = get(&sim, &format!("products/2/exploratory_tests?{bad}")).await;
            assert_eq!(status, 400, "{bad}");
        }
    }

    #[tokio::test]
    async fn tests_look_like_production() {
        let sim = sim(SimConfig::default()).await;
        let (_, body) = get(&sim, "exploratory_tests/3000007").await;
        let test: Value = serde_json::from_str(&body).unwrap();
        let test = &test["exploratory_test"];
        assert_eq!(test["id"], 3_000_007);
        assert!((2..=3).contains(&test["features"].as_array().unwrap().len()));
        assert!((1..=3).contains(&test["requirements"].as_array().unwrap().len()));
        assert_eq!(test["product"]["id"], 3);
        assert!(test["section"]["id"].is_u64());
        assert!((2500..6000).contains(&body.len()), "a test is {} bytes", body.len());
        let page = get_json(&sim, "products/1/exploratory_tests?page=1&per_page=60").await;
        for test in page["exploratory_tests"].as_array().unwrap() {
            for key in ["start_at", "end_at"] {
                let stamp = test[key].as_str().unwrap();
                chrono::DateTime::parse_from_rfc3339(stamp).expect("ISO 8601 with offset");
            }
        }
    }

    #[tokio::test]
    async fn section_features_overlap_and_cover_the_product() {
        let sim = sim(SimConfig::default()).await;
        let product = get_json(&sim, "products/3").await;
        assert!(ids(&get_json(&sim, "products/3/features").await["features"]).is_empty());
        let mut per_section = Vec::new();
        for section in product["product"]["sections"].as_array().unwrap() {
            let path = format!("products/3/sections/{}/features", section["id"]);
            per_section.push(ids(&get_json(&sim, &path).await["features"]));
        }
        let [first, second] = per_section.as_slice() else {
            panic!("two sections expected");
        };
        assert!(first.iter().any(|id| second.contains(id)), "no shared feature");
        let mut union: Vec<u64> = first.iter().chain(second).copied().collect();
        union.sort_unstable();
        union.dedup();
        assert_eq!(union, (3001..=3005).collect::<Vec<_>>());

        let plain = ids(&get_json(&sim, "products/1/features").await["features"]);
        assert_eq!(plain, (1001..=1005).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn same_config_serves_same_bytes() {
        let config = SimConfig { seed: 7, ..SimConfig::default() };
        let (a, b) = (sim(config.clone()).await, sim(config).await);
        let other = sim(SimConfig::default()).await;
        let paths = [
            "products",
            "products/3/sections/301/features",
            "products/1/exploratory_tests?page=2&per_page=10",
            "bugs?filter_test_cycle_ids=1000001,1000002,2000003,3000004",
        ];
        for path in paths {
            let body = get(&a, path).await.1;
            assert_eq!(body, get(&b, path).await.1, "{path}");
            assert_ne!(body, get(&other, path).await.1, "{path}: seed is ignored");
        }
    }

    #[tokio::test]
    async fn bugs_belong_to_the_requested_tests() {
        let sim = sim(SimConfig::default()).await;
        let wanted: Vec<u64> = (0..30).map(|n| 1_000_000 + n).collect();
        let list = wanted.iter().map(u64::to_string).collect::<Vec<_>>().join("%2C");
        let bugs = get_json(&sim, &format!("bugs?filter_test_cycle_ids={list}")).await;
        let bugs = bugs["bugs"].as_array().unwrap();
        assert!(!bugs.is_empty());
        for bug in bugs {
            let test_id = bug["test"]["id"].as_u64().unwrap();
            assert!(wanted.contains(&test_id));
            let test = get_json(&sim, &format!("exploratory_tests/{test_id}")).await;
            let test = &test["exploratory_test"];
            assert_eq!(bug["test"]["title"], test["title"]);
            assert!(ids(&test["features"]).contains(&bug["test_feature"]["id"].as_u64().unwrap()));
        }
        assert_eq!(get(&sim, "bugs").await.0, 400);
    }

    #[tokio::test]
    async fn newer_tests_come_first() {
        let sim = sim(SimConfig::default()).await;
        let before = get_json(&sim, "products/2/exploratory_tests?page=1&per_page=1").await;
        sim.add_newer_tests(2, 3);
        assert_eq!(sim.test_count(2), 63);
        assert_eq!(sim.test_count(1), 60);
        let after = get_json(&sim, "products/2/exploratory_tests?page=1&per_page=4").await;
        let after = &after["exploratory_tests"];
        assert_eq!(ids(after), [2_000_062, 2_000_061, 2_000_060, 2_000_059]);
        assert_eq!(after[3], before["exploratory_tests"][0]);
        let end = |test: &Value| chrono::DateTime::parse_from_rfc3339(test["end_at"].as_str().unwrap()).unwrap();
        assert!(end(&after[2]) > end(&after[3]));
        assert_eq!(get(&sim, "exploratory_tests/2000062").await.0, 200);
    }

    #[tokio::test]
    async fn logs_every_request_in_order() {
        let sim = sim(SimConfig::default()).await;
        get_with_token(&sim, "products", "nope").await;
        get(&sim, "products/2/exploratory_tests?page=3&per_page=10").await;
        let seen = sim.requests();
        let summary: Vec<_> =
            seen.iter().map(|r| (r.method.as_str(), r.path.as_str(), r.query.as_deref(), r.status)).collect();
        let expected = [
            ("GET", "/customer/v2/products", None, 401),
            ("GET", "/customer/v2/products/2/exploratory_tests", Some("page=3&per_page=10"), 200),
        ];
        assert_eq!(summary, expected);
        assert!(seen[0].received_at <= seen[1].received_at, "arrival times follow arrival order");
        sim.clear_requests();
        assert!(sim.requests().is_empty());
    }

    const DAY: Duration = Duration::from_secs(24 * 3600);

    async fn post_with_token(sim: &Simulator, control: &str, token: &str) -> (u16, String) {
        send(reqwest::Client::new().post(format!("{}/{control}", sim.control_url())), token).await
    }

    async fn post(sim: &Simulator, control: &str) -> Value {
        let (status, body) = post_with_token(sim, control, sim.token()).await;
        assert_eq!(status, 200, "{control}: {body}");
        serde_json::from_str(&body).expect("body is JSON")
    }

    /// Every test of a product with its status, newest first, as the pages serve them.
    async fn served_statuses(sim: &Simulator, product: u64) -> Vec<(u64, String)> {
        let (mut all, mut page) = (Vec::new(), 1);
        loop {
            let path = format!("products/{product}/exploratory_tests?page={page}&per_page=100");
            let tests = get_json(sim, &path).await["exploratory_tests"].as_array().unwrap().clone();
            let statuses = tests.iter().map(|t| (t["id"].as_u64().unwrap(), t["status"].as_str().unwrap().to_owned()));
            all.extend(statuses);
            if tests.len() < 100 {
                return all;
            }
            page += 1;
        }
    }

    fn ids_of(list: &Value) -> Vec<u64> {
        list.as_array().unwrap().iter().map(|id| id.as_u64().unwrap()).collect()
    }

    async fn single_status(sim: &Simulator, id: u64) -> String {
        let test = get_json(sim, &format!("exploratory_tests/{id}")).await;
        test["exploratory_test"]["status"].as_str().unwrap().to_owned()
    }

    fn with_status(sim: &Simulator, product: u64, wanted: &[&str]) -> Vec<u64> {
        sim.statuses(product).into_iter().filter(|(_, s)| wanted.contains(&s.as_str())).map(|(id, _)| id).collect()
    }

    async fn bugs_of(sim: &Simulator, tests: &[u64]) -> String {
        let list = tests.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let (status, body) = get(sim, &format!("bugs?filter_test_cycle_ids={list}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    #[tokio::test]
    async fn a_test_goes_from_running_to_locked_to_finalized_to_archived_as_the_clock_advances() {
        let sim = sim(SimConfig::default()).await;
        let newest = 1_000_059;
        let start = sim.now();
        let mut seen = vec![single_status(&sim, newest).await];
        for _ in 0..4 * 10 {
            sim.advance(DAY / 4);
            let status = single_status(&sim, newest).await;
            if seen.last() != Some(&status) {
                seen.push(status);
            }
        }
        assert_eq!(seen, ["running", "locked", "customer_finalized", "archived"]);
        assert_eq!(sim.now() - start, chrono::TimeDelta::days(10));
    }

    #[tokio::test]
    async fn every_7th_older_test_stays_locked_until_its_review_is_finished() {
        let sim = sim(SimConfig { products: 1, tests: 100, ..SimConfig::default() }).await;
        sim.advance(30 * DAY);
        let locked = with_status(&sim, 1, &["locked"]);
        let every_7th: Vec<u64> = (0..100).rev().filter(|n| n % 7 == 0).map(|n| 1_000_000 + n).collect();
        assert_eq!(locked, every_7th, "the others were reviewed long ago");
        assert_eq!(with_status(&sim, 1, &["locked", "archived", "cancelled"]).len(), 100);

        assert_eq!(sim.finish_reviews(1, 3), [1_000_000, 1_000_007, 1_000_014], "the oldest first");
        for id in [1_000_000, 1_000_007, 1_000_014] {
            assert_eq!(single_status(&sim, id).await, "customer_finalized");
        }
        assert_eq!(sim.status_of(1_000_021).as_deref(), Some("locked"));
        sim.advance(3 * DAY);
        assert_eq!(sim.status_of(1_000_000).as_deref(), Some("archived"));
        assert_eq!(with_status(&sim, 1, &["locked"]).len(), every_7th.len() - 3);
    }

    #[tokio::test]
    async fn reviews_finished_deep_in_the_list_show_on_the_pages_and_by_id() {
        let sim = sim(SimConfig { products: 2, tests: 500, ..SimConfig::default() }).await;
        let before = served_statuses(&sim, 2).await;
        assert_eq!(before, sim.statuses(2), "statuses() is what the pages serve");
        let other_product = sim.statuses(1);
        let finished = sim.finish_reviews(2, 10);
        assert_eq!(finished, (0..10).map(|k| 2_000_000 + 7 * k).collect::<Vec<_>>());

        let after = served_statuses(&sim, 2).await;
        assert_eq!(after, sim.statuses(2));
        let changed: Vec<(usize, u64)> =
            before.iter().zip(&after).enumerate().filter(|(_, (b, a))| b != a).map(|(k, (b, _))| (k, b.0)).collect();
        assert_eq!(changed.iter().map(|&(_, id)| id).rev().collect::<Vec<_>>(), finished);
        assert!(changed.iter().all(|&(offset, _)| offset >= 50), "below the first two pages: {changed:?}");
        for id in finished {
            assert_eq!(single_status(&sim, id).await, "customer_finalized");
            assert_eq!(sim.status_of(id).as_deref(), Some("customer_finalized"));
        }
        assert_eq!(served_statuses(&sim, 1).await, other_product, "other products are untouched");
        let oldest_page = get_json(&sim, "products/2/exploratory_tests?page=20&per_page=25").await;
        let by_id = get_json(&sim, "exploratory_tests/2000000").await;
        assert_eq!(oldest_page["exploratory_tests"][24], by_id["exploratory_test"], "the same record both ways");

        sim.add_newer_tests(2, 2);
        let newest = &sim.statuses(2)[..2];
        assert_eq!(newest.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [2_000_501, 2_000_500]);
        assert!(newest.iter().all(|(_, s)| ["running", "waiting"].contains(&s.as_str())), "{newest:?}");
        assert_eq!(sim.status_of(2_000_502), None);
    }

    #[tokio::test]
    async fn bugs_change_with_their_test_and_stop_once_it_is_archived() {
        let sim = sim(SimConfig { products: 1, tests: 300, ..SimConfig::default() }).await;
        let settled = with_status(&sim, 1, &["archived", "cancelled"]);
        let live = with_status(&sim, 1, &["running", "locked", "customer_finalized"]);
        let (settled_before, live_before) = (bugs_of(&sim, &settled).await, bugs_of(&sim, &live).await);
        sim.advance(DAY / 2);
        sim.finish_reviews(1, 100);
        sim.advance(30 * DAY);
        assert_eq!(bugs_of(&sim, &settled).await, settled_before, "archived and cancelled tests' bugs stay");

        let statuses = |body: &str| -> BTreeMap<u64, String> {
            let bugs: Value = serde_json::from_str(body).unwrap();
            let bugs = bugs["bugs"].as_array().unwrap().iter();
            bugs.map(|b| (b["id"].as_u64().unwrap(), b["status"].as_str().unwrap().to_owned())).collect()
        };
        let (before, after) = (statuses(&live_before), statuses(&bugs_of(&sim, &live).await));
        let changed = before.iter().filter(|(id, status)| after.get(id) != Some(status)).count();
        assert!(changed * 2 > before.len(), "{changed} of {} bugs of live tests changed", before.len());
        assert!(before.keys().all(|id| after.contains_key(id)), "a reported bug stays listed");
        let words: BTreeSet<&str> = after.values().map(String::as_str).collect();
        assert_eq!(words, ["accepted", "fixed", "rejected"].into(), "every review is done");
    }

    #[tokio::test]
    async fn bugs_are_new_while_the_test_runs_and_forwarded_while_it_awaits_review() {
        let sim = sim(SimConfig { products: 3, ..SimConfig::default() }).await;
        let running: Vec<u64> = (1..=3).flat_map(|p| with_status(&sim, p, &["running"])).collect();
        let words = |body: String| -> BTreeSet<String> {
            let bugs: Value = serde_json::from_str(&body).unwrap();
            bugs["bugs"].as_array().unwrap().iter().map(|b| b["status"].as_str().unwrap().to_owned()).collect()
        };
        assert_eq!(words(bugs_of(&sim, &running).await), ["new".to_owned()].into());
        sim.advance(DAY / 4);
        assert!(running.iter().all(|&id| sim.status_of(id).as_deref() == Some("locked")));
        assert_eq!(words(bugs_of(&sim, &running).await), ["forwarded".to_owned()].into());
    }

    #[tokio::test]
    async fn controls_work_over_http_with_the_token() {
        let sim = sim(SimConfig { tests: 100, ..SimConfig::default() }).await;
        let start = sim.now();
        let now = post(&sim, "advance?hours=1.5").await;
        let now = chrono::DateTime::parse_from_rfc3339(now["now"].as_str().unwrap()).unwrap();
        assert_eq!(now, sim.now());
        assert_eq!(sim.now() - start, chrono::TimeDelta::minutes(90));

        let finished = post(&sim, "finish-reviews?product=3&count=2").await;
        assert_eq!(ids_of(&finished["finished"]), [3_000_000, 3_000_007]);
        assert_eq!(sim.status_of(3_000_007).as_deref(), Some("customer_finalized"));

        for bad in ["advance", "advance?hours=-1", "advance?hours=x", "advance?hours=1e300", "finish-reviews?product=3"]
        {
            assert_eq!(post_with_token(&sim, bad, sim.token()).await.0, 400, "{bad}");
        }
        for bad in ["finish-reviews?product=9&count=1", "finish-reviews?product=1&count=0", "finish-reviews?count=1"] {
            assert_eq!(post_with_token(&sim, bad, sim.token()).await.0, 400, "{bad}");
        }
        assert_eq!(post_with_token(&sim, "advance?hours=1", "wrong").await.0, 401);
        assert_eq!(post_with_token(&sim, "rewind?hours=1", sim.token()).await.0, 404);
        let response = reqwest::Client::new()
            .get(format!("{}/advance?hours=1", sim.control_url()))
            .header("Authorization", format!("Token {}", sim.token()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405);
        assert_eq!(sim.now() - start, chrono::TimeDelta::minutes(90), "refused controls change nothing");

        let logged: Vec<_> = sim.requests().into_iter().map(|r| (r.method, r.path, r.status)).take(2).collect();
        let expected = [
            ("POST".to_owned(), "/_sim/advance".to_owned(), 200),
            ("POST".to_owned(), "/_sim/finish-reviews".to_owned(), 200),
        ];
        assert_eq!(logged, expected);
    }

    #[tokio::test]
    async fn the_same_controls_serve_the_same_bytes() {
        let config = SimConfig { products: 2, tests: 200, seed: 3, ..SimConfig::default() };
        let (a, b, other) = (sim(config.clone()).await, sim(config.clone()).await, sim(config).await);
        for sim in [&a, &b, &other] {
            sim.advance(DAY);
            sim.finish_reviews(1, 4);
            sim.add_newer_tests(2, 3);
            sim.advance(DAY / 3);
        }
        other.finish_reviews(1, 1);
        let all_bugs = (0..=200).map(|n| (1_000_000 + n).to_string()).collect::<Vec<_>>().join(",");
        let paths = [
            "products/1/exploratory_tests?page=6&per_page=25".to_owned(),
            "products/2/exploratory_tests?page=1&per_page=10".to_owned(),
            "exploratory_tests/1000021".to_owned(),
            format!("bugs?filter_test_cycle_ids={all_bugs}"),
        ];
        for path in &paths {
            assert_eq!(get(&a, path).await.1, get(&b, path).await.1, "{path}");
        }
        assert_eq!(a.statuses(1), b.statuses(1));
        // Test 28, the 5th stuck one, is on page 7 (offsets 150 to 174).
        let page = "products/1/exploratory_tests?page=7&per_page=25";
        assert!(get(&a, page).await.1 != get(&other, page).await.1, "one more finished review shows");
    }

    #[tokio::test]
    async fn latency_delays_answers() {
        let sim = sim(SimConfig { latency: Duration::from_millis(100), ..SimConfig::default() }).await;
        let started = std::time::Instant::now();
        get(&sim, "products").await;
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn shutdown_stops_serving() {
        let sim = sim(SimConfig::default()).await;
        assert_eq!(get(&sim, "products").await.0, 200);
        sim.shutdown();
        let url = format!("{}/products", sim.base_url());
        // The listener closes once the server task sees the shutdown; a loaded machine may take a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            // A fresh client each time, so no pooled connection hides the closed listener.
            if reqwest::Client::new().get(&url).send().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("simulator still answers 30 s after shutdown");
    }
}
