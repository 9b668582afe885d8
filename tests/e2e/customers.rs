//! The customer registry through the real binary: `customer add|list|default|remove`, tokens
//! from their variables (the keyring is off in every e2e run), and no token anywhere.

use std::path::Path;

use rusqlite::Connection;
use serde_json::{Value, json};
use testio_sim::SimConfig;

use crate::support::{Account, Run, assert_not_in_files, count, rows_as_text, wait_for_running_sync};

/// The simulator's token: the checked customers' and the unnamed one's.
const TOKEN: &str = "tok-cust-5e1f0a";
/// An unchecked customer's token.
const UNCHECKED: &str = "tok-beta-unchecked-41";

/// `testio-sync customer ARGS --db <db>` with `env` on top of the simulator's settings.
async fn customer(account: &Account, args: &[&str], env: &[(&str, &str)]) -> Run {
    let db = account.db();
    let mut full = vec!["customer"];
    full.extend_from_slice(args);
    full.extend(["--db", db.to_str().unwrap()]);
    let run = account.run_with(&full, TOKEN, env).await;
    for secret in [TOKEN, UNCHECKED] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{args:?} showed a token");
    }
    run
}

/// Every row of the local id `customer_id`, in every table that has a customer_id column.
fn rows_of(db: &Path, customer_id: i64) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut tables = conn
        .prepare(
            "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c
             WHERE m.type = 'table' AND c.name = 'customer_id' AND m.name <> 'customers' ORDER BY m.name",
        )
        .unwrap();
    let tables: Vec<String> = tables.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    let select = |table: &String| format!("SELECT * FROM {table} WHERE customer_id = ?1 ORDER BY 1, 2");
    tables.iter().flat_map(|table| rows_as_text(&conn, table, &select(table), [customer_id])).collect()
}

async fn listed(account: &Account, env: &[(&str, &str)]) -> Vec<Value> {
    customer(account, &["list", "--json"], env).await.expect(0).json().as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn customers_are_added_listed_made_default_and_removed_with_or_without_their_rows() {
    let account =
        Account::with(SimConfig { products: 3, features: 2, tests: 12, token: TOKEN.into(), ..SimConfig::default() })
            .await;
    let db = account.db();
    // Rows synced before there was a registry, under local ids 1 and 2.
    account.sync(&["--refresh-bugs"]).await.expect(0);
    let db_arg = db.to_str().unwrap();
    account
        .run_with(&["sync", "--db", db_arg, "--refresh-bugs"], TOKEN, &[("TESTIO_CUSTOMER_ID", "2")])
        .await
        .expect(0);
    let (rows_1, rows_2) = (rows_of(&db, 1), rows_of(&db, 2));
    assert!(rows_1.iter().any(|r| r.starts_with("bugs: ")) && rows_1.iter().any(|r| r.starts_with("sync_events: ")));

    // acme: its token in its variable, checked against the API; the first, so the default.
    let acme = [("TESTIO_CUSTOMER_API_TOKEN_ACME", TOKEN)];
    let added = customer(&account, &["add", "acme"], &acme).await.expect(0);
    assert_eq!(
        added.stdout.trim(),
        "Added customer acme (local id 3, the default): its token is read from TESTIO_CUSTOMER_API_TOKEN_ACME; the \
         token reads 3 products."
    );
    assert!(added.stderr.contains("under local id 1, 2 belong to no customer, not to acme"), "{}", added.stderr);
    // beta-eu takes over the rows of local id 2, unchecked; gamma those of local id 1.
    let beta = [("TESTIO_CUSTOMER_API_TOKEN_BETA_EU", UNCHECKED)];
    let base_url = account.sim.base_url();
    let args =
        ["add", "beta-eu", "--customer-id", "2", "--no-check", "--product-ids", "1", "2", "--since", "30 days ago"];
    let beta_args = [&args[..], &["--interval", "600", "--inactive", "--base-url", &base_url]].concat();
    let added = customer(&account, &beta_args, &beta).await.expect(0);
    assert!(added.stdout.contains("the token was not checked (--no-check)") && added.stderr.is_empty());
    customer(&account, &["add", "gamma", "--customer-id", "1"], &[("TESTIO_CUSTOMER_API_TOKEN_GAMMA", TOKEN)])
        .await
        .expect(0);

    let text = customer(&account, &["list"], &acme).await.expect(0).stdout;
    assert!(
        text.lines().any(|l| l.starts_with("acme ") && l.ends_with("env TESTIO_CUSTOMER_API_TOKEN_ACME")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("beta-eu ") && l.ends_with("missing")), "{text}");
    let rows = listed(&account, &acme).await;
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["acme", "beta-eu", "gamma"]);
    assert_eq!(
        rows[1],
        json!({ "name": "beta-eu", "customer_id": 2, "base_url": base_url, "product_ids": [1, 2],
                "since": "30 days ago", "interval_seconds": 600, "active": false, "default": false, "token": "missing" })
    );
    assert_eq!(rows[0]["token"], "env TESTIO_CUSTOMER_API_TOKEN_ACME");
    assert_eq!(rows[0]["default"], true);

    let made = customer(&account, &["default", "beta-eu"], &[]).await.expect(0);
    assert_eq!(made.stdout.trim(), "beta-eu is now the default customer (was acme)");
    let defaults: Vec<Value> = listed(&account, &[]).await.into_iter().filter(|r| r["default"] == true).collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0]["name"], "beta-eu");

    // Without --purge the rows stay, for a later `add --customer-id 1`.
    let removed = customer(&account, &["remove", "gamma", "--yes"], &[]).await.expect(0);
    assert!(removed.stderr.contains("`testio-sync customer add gamma --customer-id 1` takes them back"));
    assert_eq!(
        removed.stdout.trim(),
        format!("Removed customer gamma; its {} synced rows (local id 1) were kept.", rows_1.len())
    );
    assert_eq!(rows_of(&db, 1), rows_1);

    let refused = customer(&account, &["remove", "beta-eu", "--purge", "--yes"], &[]).await.expect(1);
    assert!(refused.stderr.contains(
        "beta-eu is the default customer; make another the default first (`testio-sync customer default NAME`; \
         customers: acme). Nothing was removed"
    ));
    assert_eq!(rows_of(&db, 2), rows_2);
    customer(&account, &["default", "acme"], &[]).await.expect(0);
    let purged = customer(&account, &["remove", "beta-eu", "--purge", "--yes"], &[]).await.expect(0);
    assert!(purged.stdout.contains("were deleted"), "{}", purged.stdout);
    assert_eq!(rows_of(&db, 2), Vec::<String>::new(), "every table, the sync log included");
    assert_eq!(rows_of(&db, 1), rows_1, "another customer's rows are untouched");
    assert_eq!(listed(&account, &[]).await.len(), 1);

    assert_eq!(count(&db, "SELECT COUNT(*) FROM customers"), 1);
    assert_not_in_files(account.dir.path(), &[TOKEN, UNCHECKED]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purge_waits_for_no_sync_it_would_race() {
    let account = Account::stalled().await;
    let db = account.db();
    let victim = account.spawn("sync", &[]);
    wait_for_running_sync(&db).await;
    let env = [("TESTIO_CUSTOMER_API_TOKEN_ACME", "x")];
    customer(&account, &["add", "acme", "--customer-id", "1", "--no-check"], &env).await.expect(0);
    let before = rows_of(&db, 1);
    let refused = customer(&account, &["remove", "acme", "--purge", "--yes"], &[]).await.expect(1);
    assert!(refused.stderr.contains("a sync holds the lock"), "{}", refused.stderr);
    assert!(refused.stderr.contains("Nothing was removed"), "{}", refused.stderr);
    assert_eq!(rows_of(&db, 1), before);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM customers"), 1);
    victim.stop(libc::SIGTERM).await;
}
