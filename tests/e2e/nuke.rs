//! `sync --nuke`: rewrites its scope, then deletes what the API no longer returns, only
//! when confirmed and only when the whole sync succeeded.

use std::path::Path;

use rusqlite::Connection;

use crate::support::{Account, count, snapshot};

/// Every row that belongs to product 1, as text.
fn rows_of_product_1(db: &Path) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let queries = [
        "SELECT * FROM products WHERE id = 1",
        "SELECT * FROM features WHERE product_id = 1 ORDER BY id",
        "SELECT * FROM tests WHERE product_id = 1 ORDER BY id",
        "SELECT * FROM test_features WHERE test_id IN (SELECT id FROM tests WHERE product_id = 1) ORDER BY id",
        "SELECT * FROM test_platforms WHERE test_id IN (SELECT id FROM tests WHERE product_id = 1) ORDER BY id",
    ];
    let mut rows = Vec::new();
    for sql in queries {
        let mut stmt = conn.prepare(sql).unwrap();
        let width = stmt.column_count();
        let mut query = stmt.query([]).unwrap();
        while let Some(row) = query.next().unwrap() {
            rows.push((0..width).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect::<Vec<_>>().join("|"));
        }
    }
    rows
}

/// Adds a test to product `product` that the API does not have, as a test deleted upstream
/// after the last sync would be; returns its id.
fn plant_a_test_gone_upstream(db: &Path, product: u64) -> i64 {
    let id = 9_000_000 + product as i64;
    let conn = Connection::open(db).unwrap();
    conn.execute(
        "INSERT INTO tests (customer_id, id, product_id, data, status, synced_at)
         VALUES (1, ?1, ?2, '{}', 'archived', '2026-01-01 00:00:00.000000')",
        rusqlite::params![id, product as i64],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO test_platforms (customer_id, test_id, operating_system_name) VALUES (1, ?1, 'Linux')",
        [id],
    )
    .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn nuking_one_product_removes_what_the_api_no_longer_returns_and_leaves_the_others_byte_identical() {
    let account = Account::start(2, 2, 40).await;
    account.sync(&[]).await.expect(0);
    let db = account.db();
    plant_a_test_gone_upstream(&db, 1);
    let gone = plant_a_test_gone_upstream(&db, 2);
    let before = rows_of_product_1(&db);
    assert!(before.len() > 40);
    let run = account.sync(&["--nuke", "--product-ids", "2", "--yes", "--json"]).await.expect(0);
    let shown =
        |table: &str, n: &str| run.stderr.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == [table, n]);
    assert!(shown("tests", "41") && shown("problem_ranges", "0"), "the counts per table are shown:\n{}", run.stderr);
    assert_eq!(rows_of_product_1(&db), before, "product 1, and its own leftover, are untouched");
    let json = run.json();
    assert_eq!((json["tests_updated"].as_u64(), json["rows_removed"].as_u64()), (Some(40), Some(2)), "{json}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE product_id = 2"), 40);
    assert_eq!(count(&db, &format!("SELECT COUNT(*) FROM test_platforms WHERE test_id = {gone}")), 0);
    assert!(run.stderr.contains("2 rows removed"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nuke_that_fails_deletes_nothing() {
    let account = Account::start(2, 2, 40).await;
    account.sync(&[]).await.expect(0);
    let db = account.db();
    plant_a_test_gone_upstream(&db, 2);
    let before = snapshot(&db);
    let rejected =
        account.run(&["sync", "--db", db.to_str().unwrap(), "--nuke", "--yes"], "wrong-token").await.expect(1);
    assert!(rejected.stderr.contains("token rejected"), "{}", rejected.stderr);
    assert_eq!(snapshot(&db), before, "a rejected token changes nothing");

    account.sim.fail_requests("products/2/exploratory_tests", 503);
    let partial = account.sync(&["--nuke", "--yes", "--json"]).await.expect(2);
    assert_eq!(partial.json()["rows_removed"], 0);
    assert!(partial.stderr.contains("nothing was deleted"), "{}", partial.stderr);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM tests WHERE id = 9000002"),
        1,
        "the leftover stays until a nuke succeeds"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_narrower_nuke_removes_only_what_its_scope_wrote_again() {
    let account = Account::start(2, 2, 40).await;
    account.sync(&[]).await.expect(0);
    let db = account.db();
    plant_a_test_gone_upstream(&db, 2);
    let tests_before = count(&db, "SELECT COUNT(*) FROM tests");
    let products_only = account.sync(&["--nuke", "--yes", "--entity-types", "products", "--json"]).await.expect(0);
    assert_eq!(products_only.json()["rows_removed"], 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests"), tests_before, "tests were not in its scope");
    // A test with no end is in every `since` window, so a windowed nuke of tests removes it.
    let windowed = account.sync(&["--nuke", "--yes", "--since", "2026-06-02", "--json"]).await.expect(0);
    assert_eq!(windowed.json()["rows_removed"], 2, "the leftover test and its platform");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests"), tests_before - 1, "older tests outside the window stay");
}

#[tokio::test(flavor = "multi_thread")]
async fn nuke_without_yes_and_without_a_terminal_refuses_and_deletes_nothing() {
    let account = Account::start(2, 2, 30).await;
    account.sync(&[]).await.expect(0);
    let before = snapshot(&account.db());
    account.sim.clear_requests();
    let run = account.sync(&["--nuke"]).await.expect(1);
    assert!(run.stderr.contains("pass --yes"), "{}", run.stderr);
    assert!(run.stderr.contains("Nothing was deleted"), "{}", run.stderr);
    assert_eq!(snapshot(&account.db()), before);
    assert!(account.sim.requests().is_empty(), "no sync ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn nuking_everything_spares_other_customers() {
    let account = Account::start(2, 2, 30).await;
    let db = account.db();
    let args = ["sync", "--db", db.to_str().unwrap()];
    account.run_with(&args, account.sim.token(), &[("TESTIO_CUSTOMER_ID", "7")]).await.expect(0);
    account.sync(&[]).await.expect(0);
    let theirs = "SELECT COUNT(*) FROM tests WHERE customer_id = 7";
    assert_eq!(count(&db, theirs), 60);
    let run = account.sync(&["--nuke", "--yes", "--json"]).await.expect(0);
    assert_eq!(run.json()["tests_updated"], 60);
    assert_eq!(count(&db, theirs), 60);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE customer_id = 1"), 60);
}
