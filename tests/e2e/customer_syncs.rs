//! Syncing registry customers (issue 14): `sync --customer NAME` and `--all-customers`, and
//! `status`, `history` and `problems` by customer, each customer with its own account.

use std::collections::BTreeMap;

use serde_json::Value;
use testio_sim::{Faults, SimConfig};

use crate::customer_locks::intervals;
use crate::support::{Registry, count};

/// Customers a (local id 5: 2 products) and b (local id 7: 3 products, whose product 2's
/// test at offset 7 always fails with HTTP 500, so its syncs end partial).
async fn two_customers() -> Registry {
    let mut registry = Registry::empty();
    let a = SimConfig { products: 2, features: 2, tests: 40, seed: 1, ..SimConfig::default() };
    registry.add("a", 5, a, &[]).await;
    let faults = Faults { bad_offsets: BTreeMap::from([(2, [7].into())]), ..Faults::default() };
    let b = SimConfig { products: 3, features: 2, tests: 30, seed: 2, faults, ..SimConfig::default() };
    registry.add("b", 7, b, &[]).await;
    registry
}

/// How many rows of `table` customer `id` has.
fn rows(registry: &Registry, table: &str, id: i64) -> i64 {
    count(&registry.db(), &format!("SELECT COUNT(*) FROM {table} WHERE customer_id = {id}"))
}

/// The lines of `stderr` that close a customer's sync, by the name that leads them.
fn final_lines(stderr: &str) -> BTreeMap<String, Vec<String>> {
    let mut lines = BTreeMap::<String, Vec<String>>::new();
    for line in stderr.lines() {
        if let Some((name, rest)) = line.split_once(": ")
            && (rest.starts_with("Sync completed") || rest.starts_with("Sync failed"))
        {
            lines.entry(name.to_string()).or_default().push(rest.to_string());
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_customers_sync_alone_or_all_at_once_with_the_worst_exit_code() {
    let mut registry = two_customers().await;
    let (a, b) = (registry.get("a"), registry.get("b"));
    let (a_id, b_id) = (a.id, b.id);

    // --customer a: only a's account is asked, only a's rows are written.
    registry.run(&["sync", "--customer", "a"]).await.expect(0);
    assert!(!a.sim.requests().is_empty());
    assert!(b.sim.requests().is_empty(), "b's API was not asked");
    assert_eq!(rows(&registry, "tests", a_id), 80);
    assert_eq!(count(&registry.db(), &format!("SELECT COUNT(*) FROM tests WHERE customer_id <> {a_id}")), 0);

    // --all-customers, a's token now wrong: a fails (1), b syncs but one page (2); the worst is 1.
    registry.set_token("a", "tok-a-wrong-3c81");
    let run = registry.run(&["sync", "--all-customers"]).await.expect(1);
    let finals = final_lines(&run.stderr);
    assert_eq!(finals.keys().collect::<Vec<_>>(), ["a", "b"], "one summary per customer:\n{}", run.stderr);
    assert!(finals.values().all(|lines| lines.len() == 1), "{finals:?}");
    assert!(
        finals["a"][0].contains("the Customer API rejected the token (HTTP 401); check TESTIO_CUSTOMER_API_TOKEN_A"),
        "names a's own variable: {finals:?}"
    );
    assert!(finals["b"][0].starts_with("Sync completed") && finals["b"][0].contains("1 error"), "{finals:?}");
    assert_eq!(rows(&registry, "tests", a_id), 80, "a's rows are kept");
    assert_eq!(rows(&registry, "tests", b_id), 89, "b's 90 tests but the one that fails");

    // a's token right again: a succeeds, b is partial; the worst is 2. --json: one object each.
    let a_token = registry.get("a").sim.token().to_string();
    registry.set_token("a", &a_token);
    let run = registry.run(&["sync", "--all-customers", "--json"]).await.expect(2);
    let each: BTreeMap<String, String> = run
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["customer"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(each, BTreeMap::from([("a".into(), "success".into()), ("b".into(), "partial_failure".into())]));

    // status, history and problems show only the customer named.
    let status = registry.run(&["status", "--customer", "b", "--json"]).await.expect(0).json();
    assert_eq!(status["customer_id"], b_id);
    for table in ["products", "features", "tests", "sync_events"] {
        assert_eq!(status["rows"][table], rows(&registry, table, b_id), "{table}");
    }
    assert_eq!(status["last_sync"]["status"], "partial_failure");
    let history = registry.run(&["history", "--customer", "a", "--json"]).await.expect(0).json();
    let statuses: Vec<&str> = history.as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["success", "failure", "success"], "a's three syncs, newest first");
    let ids: Vec<i64> = history.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    let a_rows = format!(
        "SELECT COUNT(*) FROM sync_events WHERE customer_id = {a_id} AND id IN ({})",
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    );
    assert_eq!(count(&registry.db(), &a_rows), 3);
    let problems = registry.run(&["problems", "--customer", "b", "--json"]).await.expect(0).json();
    let ranges: Vec<(i64, i64)> = problems
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["product_id"].as_i64().unwrap(), r["first_offset"].as_i64().unwrap()))
        .collect();
    assert_eq!(ranges, [(2, 7)]);
    let none = registry.run(&["problems", "--customer", "a", "--json"]).await.expect(0).json();
    assert_eq!(none, Value::Array(Vec::new()), "b's problem range is not a's");

    registry.assert_no_token_in_files();
}

#[tokio::test(flavor = "multi_thread")]
async fn all_customers_sync_side_by_side_three_at_a_time() {
    let mut registry = Registry::empty();
    for (i, name) in ["c1", "c2", "c3", "c4", "c5"].into_iter().enumerate() {
        let latency = std::time::Duration::from_millis(20);
        let config = SimConfig { products: 2, features: 1, tests: 60, seed: i as u64, latency, ..SimConfig::default() };
        registry.add(name, i as i64 + 1, config, &[]).await;
    }
    registry.run(&["sync", "--all-customers"]).await.expect(0);
    let runs: Vec<(String, String)> = (1..=5).flat_map(|id| intervals(&registry.db(), id)).collect();
    assert_eq!(runs.len(), 5, "one sync each: {runs:?}");
    // How many ran at the moment each one started.
    let at_once = runs.iter().map(|(start, _)| runs.iter().filter(|(s, e)| s <= start && start < e).count());
    let most = at_once.max().unwrap();
    assert!((2..=3).contains(&most), "{most} at once: {runs:?}");
}
