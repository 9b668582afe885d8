//! A real API misbehaves: broken pages, rate limits, dropped connections, outages,
//! malformed bodies, revoked tokens. The sync keeps every good row and says what it lost.

use std::time::Duration;

use testio_sim::{Faults, SimConfig};

use crate::support::{Account, count};

async fn account_with(products: u32, tests: u32, faults: Faults) -> Account {
    Account::with(SimConfig { products, features: 2, tests, faults, ..SimConfig::default() }).await
}

async fn problems(account: &Account) -> serde_json::Value {
    let db = account.db();
    crate::support::run_offline(&["problems", "--db", db.to_str().unwrap(), "--json"]).await.expect(0).json()
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_offsets_lose_only_their_tests_are_recorded_and_are_recovered_later() {
    let faults = Faults { bad_offsets: [(2, [37, 38].into())].into(), ..Faults::default() };
    let account = account_with(2, 200, faults).await;
    let run = account.sync(&["--json"]).await.expect(2);
    let db = account.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE product_id = 2"), 198);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE product_id = 1"), 200);
    let errors = run.json()["errors"].to_string();
    assert!(errors.contains("2 tests at offsets 37-38"), "{errors}");
    let recorded = problems(&account).await;
    let ranges = recorded.as_array().unwrap();
    assert_eq!(ranges.len(), 1, "{recorded}");
    assert_eq!((ranges[0]["product_id"].as_u64(), ranges[0]["first_offset"].as_u64()), (Some(2), Some(37)));
    assert_eq!(ranges[0]["last_offset"], 38);
    assert_eq!(ranges[0]["attempts"], 1);
    assert!(ranges[0]["before_test_id"].is_u64() && ranges[0]["after_test_id"].is_u64());

    account.sim.set_faults(Faults::default());
    account.sim.clear_requests();
    let json = account.sync(&["--json"]).await.expect(0).json();
    assert_eq!(json["tests_discovered"], 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE product_id = 2"), 200);
    assert_eq!(problems(&account).await, serde_json::json!([]));
    // Offsets 36..=39 (pages 37..=40 of one test): the range and its two neighbours.
    let mut first: Vec<String> = account
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/exploratory_tests"))
        .take(4)
        .filter_map(|r| r.query)
        .collect();
    first.sort();
    let expected: Vec<String> = (37..=40).map(|p| format!("page={p}&per_page=1")).collect();
    assert_eq!(first, expected, "the recorded range is retried first");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_range_still_failing_is_counted_once_per_sync() {
    let faults = Faults { bad_offsets: [(2, [37, 38].into())].into(), ..Faults::default() };
    let account = account_with(2, 200, faults).await;
    account.sync(&["--json"]).await.expect(2);
    // The retry meets the range first, then the walk's second page meets it again.
    let json = account.sync(&["--json"]).await.expect(2).json();
    let errors: Vec<&str> = json["errors"].as_array().unwrap().iter().filter_map(|e| e.as_str()).collect();
    assert_eq!(errors.iter().filter(|e| e.contains("offsets 37-38")).count(), 1, "{errors:?}");
    let recorded = problems(&account).await;
    assert_eq!(recorded.as_array().unwrap().len(), 1, "{recorded}");
    assert_eq!(recorded[0]["attempts"], 2, "one attempt per sync");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_waited_out_as_the_api_asks() {
    let faults = Faults { rate_limit_every: Some(5), retry_after_secs: 1, ..Faults::default() };
    let account = account_with(3, 60, faults).await;
    account.sync(&[]).await.expect(0);
    assert_eq!(count(&account.db(), "SELECT COUNT(*) FROM tests"), 180);
    let requests = account.sim.requests();
    let limited: Vec<_> = requests.iter().filter(|r| r.status == 429).collect();
    assert!(limited.len() >= 3, "{} rate limits", limited.len());
    for hit in limited {
        let retry = requests
            .iter()
            .find(|r| r.received_at > hit.received_at && r.path == hit.path && r.query == hit.query)
            .expect("the rate-limited request was made again");
        let waited = retry.received_at.duration_since(hit.received_at).unwrap_or_default();
        assert!(waited >= Duration::from_secs(1), "{} came back after {waited:?}", hit.path);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_connections_and_outages_are_retried_and_logged() {
    let faults = Faults { reset_percent: 5, unavailable_percent: 5, ..Faults::default() };
    let account = account_with(10, 60, faults).await;
    let run = account.sync(&[]).await.expect(0);
    assert_eq!(count(&account.db(), "SELECT COUNT(*) FROM tests"), 600);
    let statuses: Vec<u16> = account.sim.requests().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&503) && statuses.contains(&0), "both faults happened: {statuses:?}");
    assert!(run.stderr.contains("HTTP 503 Service Unavailable; retry 1 of 4"), "{}", run.stderr);
    assert!(run.stderr.contains("connection closed before message completed; retry 1 of 4"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_revoked_mid_sync_aborts_with_exit_1_and_keeps_the_pages_written() {
    // 1 product list + 4 feature lists (product 3 has two sections) + 3 first pages
    // succeed; the second pages get 401.
    let faults = Faults { unauthorized_after: Some(8), ..Faults::default() };
    let account = account_with(3, 60, faults).await;
    let run = account.sync(&[]).await.expect(1);
    assert!(run.stderr.contains("token rejected"), "{}", run.stderr);
    assert!(run.stderr.contains("TESTIO_CUSTOMER_API_TOKEN"), "{}", run.stderr);
    let db = account.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests"), 75, "the first page of every product was committed");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sync_events WHERE status = 'failure'"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_answer_costs_only_its_product_and_a_warning_names_it() {
    let faults = Faults { malformed_paths: vec!["products/2/".into()], ..Faults::default() };
    let account = account_with(3, 30, faults).await;
    let run = account.sync(&["--json"]).await.expect(2);
    let db = account.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE product_id != 2"), 60);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE product_id = 2"), 0);
    let warning = run.stderr.lines().find(|l| l.contains("WARN") && l.contains("product 2:"));
    let warning = warning.unwrap_or_else(|| panic!("no warning names product 2:\n{}", run.stderr));
    assert!(warning.contains("products/2/") && warning.contains("not the JSON the API documents"), "{warning}");
    assert_eq!(run.json()["errors"].as_array().unwrap().len(), 2, "features and tests of product 2");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_appears_nowhere_whatever_goes_wrong() {
    let token = "tok-LEAKCHECK-7f3a9c41";
    let faults = Faults {
        bad_offsets: [(1, [30].into())].into(),
        rate_limit_every: Some(9),
        retry_after_secs: 1,
        reset_percent: 4,
        unavailable_percent: 4,
        slow_percent: 3,
        slow: Duration::from_secs(3),
        malformed_paths: vec!["products/3/".into()],
        ..Faults::default()
    };
    let config = SimConfig { products: 3, features: 2, tests: 60, token: token.into(), faults, ..SimConfig::default() };
    let account = Account::with(config).await;
    let db = account.db();
    let args = ["sync", "--db", db.to_str().unwrap(), "--json"];
    let env = [("HTTP_TIMEOUT_SECONDS", "1"), ("RUST_LOG", "debug")];
    let mut outputs = vec![account.run_with(&args, token, &env).await.expect(2)];
    account.sim.set_faults(Faults { unauthorized_after: Some(1), ..Faults::default() });
    outputs.push(account.run_with(&args, token, &env).await.expect(1));
    outputs.push(account.run_with(&args, "wrong-tok-LEAKCHECK-7f3a9c41", &env).await.expect(1));
    let mut scanned = 0;
    for run in &outputs {
        assert_eq!(run.stdout.matches(token).count() + run.stderr.matches(token).count(), 0, "{}", run.stderr);
        scanned += 2;
    }
    for file in ["cache.db", "cache.db-wal", "cache.db-shm", "sync.lock"] {
        let path = account.dir.path().join(file);
        let Ok(bytes) = std::fs::read(&path) else { continue };
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "the token is in {file}");
        scanned += 1;
    }
    assert!(scanned >= 8, "the database and the lock file were scanned");
}
