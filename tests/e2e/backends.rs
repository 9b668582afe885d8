//! The same sync scenarios on both backends: a SQLite file and a PostgreSQL mirror (a
//! database of its own on the binary's shared throwaway server). Each scenario runs as two
//! tests, `<scenario>::sqlite` and `<scenario>::postgres`; every run of the binary is
//! checked not to show the server's password.

use std::time::Duration;

use testio_sim::{Faults, SimConfig};

use crate::lock::{slow_account, spawn_sync};
use crate::support::{Account, Backend, run_offline};

/// Runs each scenario once per backend, as a module of two tests.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use crate::support::Backend;

            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$scenario(Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$scenario(Backend::Postgres).await
            }
        }
    )*};
}

on_both_backends!(counts, incremental, salvage, nuke, sync_log, killed_sync);

fn config(products: u32, features: u32, tests: u32) -> SimConfig {
    SimConfig { products, features, tests, ..SimConfig::default() }
}

/// `testio-sync <what> --db <the account's mirror> <options>`, which must exit 0.
async fn report(account: &Account, what: &str, options: &[&str]) -> serde_json::Value {
    let db = account.db_arg();
    let mut args = vec![what, "--db", &db];
    args.extend_from_slice(options);
    let run = run_offline(&args).await;
    run.assert_no_password();
    run.expect(0).json()
}

async fn counts(backend: Backend) {
    let account = Account::on(backend, config(3, 5, 60)).await;
    let json = account.sync(&["--json"]).await.expect(0).json();
    assert_eq!(account.count("SELECT COUNT(*) FROM products"), 3);
    assert_eq!(account.count("SELECT COUNT(*) FROM features"), 15);
    assert_eq!(account.count("SELECT COUNT(*) FROM tests"), 180);
    assert_eq!(account.count("SELECT COUNT(DISTINCT customer_id) FROM tests"), 1);
    assert!(account.count("SELECT COUNT(*) FROM test_features") >= 180 * 2);
    assert!(account.count("SELECT COUNT(*) FROM test_platforms") >= 180);
    assert_eq!((json["status"].as_str(), json["tests_discovered"].as_u64()), (Some("success"), Some(180)));
    assert_eq!(json["phases_completed"], serde_json::json!(["products", "features", "new_tests"]));
    let status = report(&account, "status", &["--json"]).await;
    assert_eq!(status["rows"]["tests"], 180, "{status}");
    assert_eq!(status["last_sync"]["status"], "success", "{status}");
    assert!(status["lock_holder"].is_null(), "{status}");
}

async fn incremental(backend: Backend) {
    let account = Account::on(backend, config(3, 5, 60)).await;
    account.sync(&[]).await.expect(0);
    account.sim.clear_requests();
    let json = account.sync(&["--json"]).await.expect(0).json();
    assert_eq!((json["tests_discovered"].as_u64(), json["tests_updated"].as_u64()), (Some(0), Some(150)));
    assert_eq!(account.pages_per_product(), [(1, 2), (2, 2), (3, 2)].into());
    for product in 1..=3 {
        account.sim.add_newer_tests(product, 5);
    }
    let json = account.sync(&["--incremental-only", "--json"]).await.expect(0).json();
    assert_eq!(json["tests_discovered"], 15);
    assert_eq!(account.count("SELECT COUNT(*) FROM tests"), 195);
}

/// Broken offsets lose only their tests, are recorded as a problem range, and are fetched
/// again, first, by the next sync.
async fn salvage(backend: Backend) {
    let faults = Faults { bad_offsets: [(2, [37, 38].into())].into(), ..Faults::default() };
    let account = Account::on(backend, SimConfig { faults, ..config(2, 2, 200) }).await;
    let run = account.sync(&["--json"]).await.expect(2);
    assert_eq!(account.count("SELECT COUNT(*) FROM tests WHERE product_id = 2"), 198);
    assert_eq!(account.count("SELECT COUNT(*) FROM tests WHERE product_id = 1"), 200);
    assert!(run.json()["errors"].to_string().contains("2 tests at offsets 37-38"), "{}", run.stdout);
    let ranges = report(&account, "problems", &["--json"]).await;
    assert_eq!(ranges.as_array().map(Vec::len), Some(1), "{ranges}");
    assert_eq!((ranges[0]["first_offset"].as_u64(), ranges[0]["last_offset"].as_u64()), (Some(37), Some(38)));

    account.sim.set_faults(Faults::default());
    let json = account.sync(&["--json"]).await.expect(0).json();
    assert_eq!(json["tests_discovered"], 2);
    assert_eq!(account.count("SELECT COUNT(*) FROM tests WHERE product_id = 2"), 200);
    assert_eq!(report(&account, "problems", &["--json"]).await, serde_json::json!([]));
}

/// Adds a test the API does not have to `product`, as a test deleted upstream would be.
fn plant_a_test_gone_upstream(account: &Account, product: u64) -> u64 {
    let id = 9_000_000 + product;
    account.execute(&format!(
        "INSERT INTO tests (customer_id, id, product_id, data, status, synced_at)
         VALUES (1, {id}, {product}, '{{}}', 'archived', '2026-01-01 00:00:00.000000');
         INSERT INTO test_platforms (customer_id, test_id, operating_system_name) VALUES (1, {id}, 'Linux');"
    ));
    id
}

async fn nuke(backend: Backend) {
    let account = Account::on(backend, config(2, 2, 40)).await;
    account.sync(&[]).await.expect(0);
    let kept = plant_a_test_gone_upstream(&account, 1);
    let gone = plant_a_test_gone_upstream(&account, 2);
    let run = account.sync(&["--nuke", "--product-ids", "2", "--yes", "--json"]).await.expect(0);
    let shown =
        |table: &str, n: &str| run.stderr.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == [table, n]);
    assert!(shown("tests", "41"), "the counts per table are shown:\n{}", run.stderr);
    let json = run.json();
    assert_eq!((json["tests_updated"].as_u64(), json["rows_removed"].as_u64()), (Some(40), Some(2)), "{json}");
    assert_eq!(account.count("SELECT COUNT(*) FROM tests WHERE product_id = 2"), 40);
    assert_eq!(account.count(&format!("SELECT COUNT(*) FROM test_platforms WHERE test_id = {gone}")), 0);
    assert_eq!(account.count(&format!("SELECT COUNT(*) FROM tests WHERE id = {kept}")), 1, "out of scope");
}

async fn sync_log(backend: Backend) {
    let account = Account::on(backend, config(2, 2, 30)).await;
    account.sync(&[]).await.expect(0);
    let second = account.sync(&["--force"]).await.expect(0);
    assert!(!second.stderr.contains("reclaimed"), "the first sync left its lock clean:\n{}", second.stderr);
    let success = ("success".to_string(), None);
    assert_eq!(account.sync_log(), [success.clone(), success]);
    let history = report(&account, "history", &["--json"]).await;
    let statuses: Vec<_> =
        history.as_array().unwrap().iter().map(|s| (s["status"].clone(), s["tests_updated"].clone())).collect();
    assert_eq!(statuses, [("success".into(), 60.into()), ("success".into(), 0.into())], "newest first: {history}");
    assert!(history[0]["duration_seconds"].as_f64().is_some_and(|d| d > 0.0), "{history}");
    assert_eq!(account.count("SELECT COUNT(*) FROM sync_events WHERE completed_at IS NULL"), 0);
}

/// `kill -9` mid-sync: `history` shows the row as interrupted at once; the next sync gets
/// the lock at once, reclaims it with a warning and closes the row.
async fn killed_sync(backend: Backend) {
    let account = Account::on(backend, slow_account()).await;
    let mut victim = spawn_sync(&account, &[]);
    account.wait_for_running_sync().await;
    let pid = victim.id().unwrap();
    victim.kill().await.unwrap();
    account.wait_for_lock_release().await;
    let history = report(&account, "history", &["--json"]).await;
    assert_eq!(history[0]["status"], "interrupted", "{history}");

    let next = tokio::time::timeout(Duration::from_secs(120), account.sync(&["--no-wait"])).await.unwrap().expect(0);
    assert!(next.stderr.contains(&format!("reclaimed the sync lock left behind by PID {pid}")), "{}", next.stderr);
    let log = account.sync_log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].0, "interrupted");
    assert!(log[0].1.as_deref().unwrap().contains(&format!("PID {pid}")), "{log:?}");
    assert_eq!(log[1], ("success".to_string(), None));
}
