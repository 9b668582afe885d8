//! `sync --nuke`: deletes exactly what it says, only when confirmed, then syncs again.

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

#[tokio::test(flavor = "multi_thread")]
async fn nuking_one_product_leaves_the_others_byte_identical_and_syncs_it_again() {
    let account = Account::start(2, 2, 40).await;
    account.sync(&[]).await.expect(0);
    let db = account.db();
    let before = rows_of_product_1(&db);
    assert!(before.len() > 40);
    let run = account.sync(&["--nuke", "--product-ids", "2", "--yes", "--json"]).await.expect(0);
    let shown =
        |table: &str, n: &str| run.stderr.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == [table, n]);
    assert!(shown("tests", "40") && shown("problem_ranges", "0"), "the counts per table are shown:\n{}", run.stderr);
    assert_eq!(rows_of_product_1(&db), before);
    assert_eq!(run.json()["tests_discovered"], 40, "product 2's tests were deleted and fetched again");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE product_id = 2"), 40);
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
    assert_eq!(run.json()["tests_discovered"], 60);
    assert_eq!(count(&db, theirs), 60);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE customer_id = 1"), 60);
}
