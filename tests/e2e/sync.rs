//! What a sync writes, what it fetches, and what it reports.

use testio_sim::SimConfig;

use crate::support::{Account, count};

#[tokio::test(flavor = "multi_thread")]
async fn a_cold_sync_stores_the_whole_account_and_reports_the_same_counts() {
    let account = Account::start(3, 5, 60).await;
    let run = account.sync(&["--json"]).await.expect(0);
    let db = account.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM products"), 3);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM features"), 15);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests"), 180);
    assert_eq!(count(&db, "SELECT COUNT(DISTINCT customer_id) FROM tests"), 1);
    assert!(count(&db, "SELECT COUNT(*) FROM test_features") >= 180 * 2);
    assert!(count(&db, "SELECT COUNT(*) FROM test_platforms") >= 180);
    let json = run.json();
    assert_eq!(json["status"], "success");
    assert_eq!(json["products_synced"], 3);
    assert_eq!(json["features_refreshed"], 15);
    assert_eq!(json["tests_discovered"], 180);
    assert_eq!(json["tests_updated"], 0);
    assert_eq!(json["phases_completed"], serde_json::json!(["products", "features", "new_tests"]));
    assert!(run.stderr.trim_end().lines().last().unwrap().starts_with("Sync completed in "), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn section_features_are_stored_once_with_all_their_sections() {
    // Product 3 has two sections that share a feature.
    let account = Account::start(3, 6, 1).await;
    account.sync(&[]).await.expect(0);
    let db = account.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM features WHERE product_id = 3"), 6);
    assert!(
        count(&db, "SELECT COUNT(*) FROM features WHERE product_id = 3 AND json_array_length(section_ids) = 2") >= 1
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM features WHERE product_id = 1 AND section_ids != '[]'"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sync_discovers_nothing_and_reads_two_pages_per_product() {
    let account = Account::start(3, 5, 60).await;
    account.sync(&[]).await.expect(0);
    account.sim.clear_requests();
    let json = account.sync(&["--json"]).await.expect(0).json();
    assert_eq!(json["tests_discovered"], 0);
    assert_eq!(json["tests_updated"], 50 * 3);
    assert_eq!(account.pages_per_product(), [(1, 2), (2, 2), (3, 2)].into());
    assert_eq!(count(&account.db(), "SELECT COUNT(*) FROM tests"), 180);
}

#[tokio::test(flavor = "multi_thread")]
async fn newer_tests_are_discovered_exactly() {
    let account = Account::start(3, 5, 60).await;
    account.sync(&[]).await.expect(0);
    for product in 1..=3 {
        account.sim.add_newer_tests(product, 5);
    }
    let json = account.sync(&["--json"]).await.expect(0).json();
    assert_eq!(json["tests_discovered"], 15);
    assert_eq!(count(&account.db(), "SELECT COUNT(*) FROM tests"), 195);
}

#[tokio::test(flavor = "multi_thread")]
async fn product_ids_limit_the_sync_to_those_products() {
    let account = Account::start(3, 5, 60).await;
    let json = account.sync(&["--product-ids", "2", "--json"]).await.expect(0).json();
    let db = account.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM products WHERE id != 2"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM features WHERE product_id != 2"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE product_id != 2"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE product_id = 2"), 60);
    assert_eq!(json["products_synced"], 1);
    let touched: Vec<u64> = account.pages_per_product().into_keys().collect();
    assert_eq!(touched, [2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn since_keeps_out_every_test_that_ended_before_it() {
    let account = Account::start(2, 1, 200).await;
    // The simulator's tests end one hour apart, ending 200 hours after its base instant.
    let since = "2026-06-05T00:00:00Z";
    account.sync(&["--since", since]).await.expect(0);
    let db = account.db();
    let stored = count(&db, "SELECT COUNT(*) FROM tests");
    assert!(stored > 0 && stored < 400, "a since in the middle keeps some tests, not all: {stored}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE end_at < '2026-06-05 00:00:00'"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_product_with_three_thousand_tests_syncs_them_all() {
    let account = Account::start(1, 1, 3_000).await;
    let json = account.sync(&["--json"]).await.expect(0).json();
    assert_eq!(json["tests_discovered"], 3_000);
    assert_eq!(count(&account.db(), "SELECT COUNT(*) FROM tests"), 3_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn force_updates_every_test_again() {
    let account = Account::start(2, 1, 80).await;
    account.sync(&[]).await.expect(0);
    let json = account.sync(&["--force", "--json"]).await.expect(0).json();
    assert_eq!(json["tests_discovered"], 0);
    assert_eq!(json["tests_updated"], 160);
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_only_discovers_tests_without_touching_products_or_features() {
    let account = Account::start(2, 3, 30).await;
    let json = account.sync(&["--incremental-only", "--json"]).await.expect(0).json();
    assert_eq!(json["phases_completed"], serde_json::json!(["new_tests"]));
    assert_eq!(count(&account.db(), "SELECT COUNT(*) FROM features"), 0);
    assert_eq!(count(&account.db(), "SELECT COUNT(*) FROM tests"), 60);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sync_leaves_one_sync_log_row_with_its_counts() {
    let account = Account::start(2, 2, 30).await;
    account.sync(&[]).await.expect(0);
    account.sync(&[]).await.expect(0);
    let db = account.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sync_events"), 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sync_events WHERE status = 'success' AND duration_seconds > 0"), 2);
    assert_eq!(count(&db, "SELECT tests_discovered FROM sync_events ORDER BY id LIMIT 1"), 60);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sync_metadata WHERE key = 'last_sync_completed'"), 1);
    let status = account.run(&["status", "--db", db.to_str().unwrap()], "").await.expect(0);
    assert!(status.stdout.contains("tests") && status.stdout.contains("60"), "{}", status.stdout);
    assert!(status.stdout.contains("Last sync: success"), "{}", status.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_product_is_a_partial_failure_that_spares_the_others() {
    let account = Account::start(3, 2, 30).await;
    account.sim.fail_requests("products/2/", 501);
    let run = account.sync(&["--json"]).await.expect(2);
    let json = run.json();
    assert_eq!(json["status"], "partial_failure");
    let errors: Vec<&str> = json["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("product 2: features could not be fetched from products/2/features"), "{errors:?}");
    assert!(
        errors[1].starts_with("product 2: tests could not be fetched from products/2/exploratory_tests"),
        "{errors:?}"
    );
    assert!(run.stderr.contains("error: product 2:"), "{}", run.stderr);
    let db = account.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE product_id = 2"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests"), 60);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sync_events WHERE status = 'partial_failure'"), 1);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM sync_metadata WHERE key = 'last_sync_completed'"),
        0,
        "only a clean sync counts"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn entity_types_limit_what_is_written() {
    let account = Account::start(2, 3, 30).await;
    let json = account.sync(&["--entity-types", "tests", "--json"]).await.expect(0).json();
    let db = account.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM products"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM features"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests"), 60);
    assert_eq!(json["phases_completed"], serde_json::json!(["new_tests"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_for_different_products_overlap_up_to_the_configured_limit() {
    let latency = std::time::Duration::from_millis(40);
    let account =
        Account::with(SimConfig { products: 12, features: 1, tests: 30, latency, ..SimConfig::default() }).await;
    account.sync(&[]).await.expect(0);
    assert_eq!(account.sim.peak_in_flight(), 10, "the default limit is 10 requests in flight");

    let limited =
        Account::with(SimConfig { products: 12, features: 1, tests: 30, latency, ..SimConfig::default() }).await;
    let db = limited.db();
    let args = ["sync", "--db", db.to_str().unwrap()];
    limited.run_with(&args, limited.sim.token(), &[("MAX_CONCURRENT_API_REQUESTS", "3")]).await.expect(0);
    assert_eq!(limited.sim.peak_in_flight(), 3);
}
