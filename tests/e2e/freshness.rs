//! A mirror that stays true (issue 13): live tests deep in the list are re-checked when
//! their copy is older than the limit, at the fewest requests, and bugs of live tests
//! follow; archived and cancelled tests are never fetched again by an ordinary sync.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;
use testio_sim::SimConfig;

use crate::support::{Account, count};

/// Every stored test's status, by id.
fn stored_statuses(db: &Path) -> BTreeMap<u64, String> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT id, status FROM tests").unwrap();
    stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

/// The tests whose stored status differs from the simulator's.
fn differing(account: &Account, products: u64) -> Vec<(u64, String, String)> {
    let stored = stored_statuses(&account.db());
    (1..=products)
        .flat_map(|p| account.sim.statuses(p))
        .filter_map(|(id, source)| {
            let mine = stored.get(&id).cloned().unwrap_or_else(|| "(missing)".into());
            (mine != source).then_some((id, mine, source))
        })
        .collect()
}

/// Ids fetched one by one (`exploratory_tests/{id}`) since the last clear.
fn fetched_by_id(account: &Account) -> Vec<u64> {
    account
        .sim
        .requests()
        .iter()
        .filter_map(|r| r.path.strip_prefix("/customer/v2/exploratory_tests/")?.parse().ok())
        .collect()
}

/// The account: 5 products × 500 tests, every 7th older test still `locked`.
async fn reviewed_account() -> Account {
    Account::with(SimConfig { products: 5, features: 2, tests: 500, ..SimConfig::default() }).await
}

#[tokio::test(flavor = "multi_thread")]
async fn reviews_finished_deep_in_the_list_leave_no_test_differing_after_one_sync() {
    let account = reviewed_account().await;
    account.sync(&[]).await.expect(0);
    assert!(differing(&account, 5).is_empty());
    let finished: usize = (1..=5).map(|p| account.sim.finish_reviews(p, 10).len()).sum();
    assert_eq!(finished, 50);
    for p in 1..=5 {
        account.sim.add_newer_tests(p, 2);
    }
    assert_eq!(differing(&account, 5).len(), 60, "50 reviews and 10 new tests");

    let plain = account.sync(&["--json"]).await.expect(0).json();
    assert_eq!(plain["tests_discovered"], 10);
    assert_eq!(differing(&account, 5).len(), 50, "with the default limit a fresh mirror is not re-checked");

    account.sim.clear_requests();
    let json = account.sync(&["--max-age", "0", "--json"]).await.expect(0).json();
    assert_eq!(differing(&account, 5), [], "no test differs from the source");
    assert_eq!(json["tests_changed"], 50, "{json}");
    assert!(json["tests_rechecked"].as_u64().unwrap() >= 50, "{json}");
    let history = account.run(&["history", "--db", account.db().to_str().unwrap(), "--limit", "1"], "x").await;
    assert!(history.stdout.contains("live tests re-checked (50 changed)"), "{}", history.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn right_after_a_sync_the_next_one_fetches_no_test_by_id() {
    let account = reviewed_account().await;
    account.sync(&[]).await.expect(0);
    account.sim.clear_requests();
    let json = account.sync(&["--json"]).await.expect(0).json();
    assert_eq!(json["tests_rechecked"], 0);
    assert!(fetched_by_id(&account).is_empty(), "{:?}", fetched_by_id(&account));
    let pages = account.pages_per_product();
    assert!(pages.values().all(|&n| n == 2), "the ordinary incremental walk: {pages:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn archived_and_cancelled_tests_are_never_fetched_by_id() {
    // A month on, every review done but the oldest few: those few live tests sit deep in
    // lists of archived and cancelled ones, where fetching them by id is cheapest.
    let account = Account::start(2, 1, 300).await;
    let month = std::time::Duration::from_secs(30 * 86_400);
    account.sim.advance(month);
    for p in 1..=2 {
        let stuck = account.sim.statuses(p).iter().filter(|(_, s)| s == "locked").count();
        account.sim.finish_reviews(p, stuck - 3);
    }
    // The three left are the newest stuck ones: newer tests push them down the list.
    for p in 1..=2 {
        account.sim.add_newer_tests(p, 150);
    }
    account.sim.advance(month);
    account.sync(&[]).await.expect(0);
    account.sim.clear_requests();
    account.sync(&["--max-age", "0"]).await.expect(0);
    let by_id = fetched_by_id(&account);
    assert_eq!(by_id.len(), 6, "the three live tests of each product: {by_id:?}");
    let finals: Vec<u64> = (1..=2)
        .flat_map(|p| account.sim.statuses(p))
        .filter(|(_, status)| status == "archived" || status == "cancelled")
        .map(|(id, _)| id)
        .collect();
    assert!(!finals.is_empty());
    assert!(by_id.iter().all(|id| !finals.contains(id)), "final tests fetched by id: {by_id:?}");
    assert!(differing(&account, 2).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forced_since_window_rewrites_every_test_in_it_and_nothing_older() {
    let account = Account::start(1, 1, 100).await;
    account.sync(&[]).await.expect(0);
    let json = account.sync(&["--since", "2026-06-03", "--force", "--json"]).await.expect(0).json();
    let in_window = count(&account.db(), "SELECT COUNT(*) FROM tests WHERE end_at >= '2026-06-03'");
    assert!(in_window > 0 && in_window < 100);
    assert_eq!(json["tests_updated"].as_i64(), Some(in_window), "{json}");
}
