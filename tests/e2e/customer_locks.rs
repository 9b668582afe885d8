//! Many customers in one database (issue 14): each has its own lock, two customers sync at
//! the same time, the same customer never syncs twice at once, and neither sees the other's
//! rows. Customers here are told apart by their local id (TESTIO_CUSTOMER_ID); the registry
//! names them.

use std::path::Path;
use std::process::Stdio;

use rusqlite::Connection;
use testio_sim::{SimConfig, Simulator};

use crate::support::{Account, command, rows_as_text};

/// A customer's account: its own simulator (seed), so two customers' data differ.
async fn simulator(seed: u64) -> Simulator {
    let config = SimConfig {
        products: 3,
        features: 2,
        tests: 120,
        seed,
        latency: std::time::Duration::from_millis(15),
        ..SimConfig::default()
    };
    Simulator::start(config, 0).await.expect("the simulator starts")
}

/// `testio-sync sync` of customer `id` of `sim` into `db`.
fn sync(db: &Path, sim: &Simulator, id: &str) -> tokio::process::Command {
    let mut cmd = command(&["sync", "--db", db.to_str().unwrap(), "--lock-timeout", "300", "--json"]);
    cmd.env("TESTIO_CUSTOMER_API_BASE_URL", sim.base_url())
        .env("TESTIO_CUSTOMER_API_TOKEN", sim.token())
        .env("TESTIO_CUSTOMER_ID", id)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Every synced row of customer `id`, as text, without the columns a sync dates.
fn rows_of(db: &Path, id: i64) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut rows = Vec::new();
    for (table, columns) in [
        ("products", "id, title, data"),
        ("features", "id, product_id, title, raw_data"),
        ("tests", "id, product_id, status, data"),
        ("test_features", "id, test_id, feature_id"),
        ("test_platforms", "test_id, operating_system_name"),
    ] {
        let sql = format!("SELECT {columns} FROM {table} WHERE customer_id = ?1 ORDER BY 1, 2");
        rows.extend(rows_as_text(&conn, table, &sql, [id]));
    }
    rows
}

/// (started, completed) of every sync of customer `id`, as sortable text.
pub fn intervals(db: &Path, id: i64) -> Vec<(String, String)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt =
        conn.prepare("SELECT started_at, completed_at FROM sync_events WHERE customer_id = ?1 ORDER BY id").unwrap();
    stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_customers_times_four_processes_sync_at_once_without_overlap_or_locked_errors() {
    let (a, b) = (simulator(1).await, simulator(2).await);
    let shared = Account::start(1, 1, 1).await;
    let db = shared.db();
    let children: Vec<_> = (0..8)
        .map(|i| if i % 2 == 0 { sync(&db, &a, "1") } else { sync(&db, &b, "2") }.spawn().expect("the binary runs"))
        .collect();
    for child in children {
        let out = child.wait_with_output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(!stderr.contains("database is locked"), "{stderr}");
    }
    for id in [1, 2] {
        let runs = intervals(&db, id);
        assert_eq!(runs.len(), 4, "customer {id}: every process synced: {runs:?}");
        assert!(runs.windows(2).all(|w| w[0].1 <= w[1].0), "customer {id}'s syncs overlapped: {runs:?}");
    }
    let (one, two) = (intervals(&db, 1), intervals(&db, 2));
    let apart = one.iter().all(|x| two.iter().all(|y| x.1 <= y.0 || y.1 <= x.0));
    assert!(!apart, "the two customers never synced at the same time: {one:?} {two:?}");

    // Row by row, each customer holds exactly what a sync of it alone writes.
    for (id, sim) in [(1, &a), (2, &b)] {
        let alone = tempfile::tempdir().unwrap();
        let reference = alone.path().join("cache.db");
        let out = sync(&reference, sim, &id.to_string()).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(rows_of(&db, id), rows_of(&reference, id), "customer {id}");
    }
    assert!(db.parent().unwrap().join("sync.lock").exists() && db.parent().unwrap().join("sync_2.lock").exists());
}
