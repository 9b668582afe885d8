//! Inputs a user can get wrong: each gives one clear line, exit code 1, and no damage.

use crate::support::{Account, Run, command, run_offline, snapshot, sync_log};

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_token_exits_1_says_so_never_prints_it_and_leaves_the_data_alone() {
    let account = Account::start(2, 2, 30).await;
    let wrong = "wrong-token-4c1e9d";
    account.sync(&[]).await.expect(0);
    let before = snapshot(&account.db());

    let run = account.run(&["sync", "--db", account.db().to_str().unwrap(), "--json"], wrong).await.expect(1);
    assert!(run.stderr.contains("rejected the token"), "{}", run.stderr);
    assert!(run.stderr.contains("TESTIO_CUSTOMER_API_TOKEN"), "{}", run.stderr);
    assert_eq!(run.json()["status"], "failure");
    assert!(!run.stderr.contains(wrong) && !run.stdout.contains(wrong), "the token leaked");
    assert!(snapshot(&account.db()) == before, "the data changed");
    let log = sync_log(&account.db());
    assert_eq!(log.len(), 2);
    let (status, message) = &log[1];
    assert_eq!(status, "failure");
    assert!(message.as_deref().is_some_and(|m| m.contains("token rejected")), "{message:?}");
}

async fn assert_one_line_error(args: &[&str], expected: &str) -> Run {
    let account = Account::start(1, 1, 1).await;
    let run = account.sync(args).await.expect(1);
    let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {}", run.stderr);
    assert!(lines[0].contains(expected), "{:?} should mention {expected:?}", lines[0]);
    assert!(!account.db().exists(), "nothing should have been created");
    run
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_since_is_one_clear_line() {
    assert_one_line_error(&["--since", "last tuesday-ish"], "cannot read \"last tuesday-ish\" as a date").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_product_id_that_is_not_a_number_is_one_clear_line() {
    assert_one_line_error(&["--product-ids", "12,abc"], "\"abc\" is not a product id").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_in_a_missing_folder_is_one_clear_line() {
    let run = run_offline(&["sync", "--db", "/nonexistent/testio/cache.db"]).await.expect(1);
    assert_eq!(
        run.stderr.trim(),
        "error: the database folder /nonexistent/testio does not exist; create it or choose another --db"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_in_an_unwritable_folder_is_one_clear_line() {
    // /proc refuses new files even to root, unlike a folder with mode 0500.
    let run = run_offline(&["sync", "--db", "/proc/testio-cache.db"]).await.expect(1);
    assert!(run.stderr.starts_with("error: cannot create the database in /proc"), "{}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_token_is_named() {
    let run = command(&["sync", "--db", "/tmp/never-used.db"]).output().await.unwrap();
    let run = Run::from(run).expect(1);
    assert!(run.stderr.contains("TESTIO_CUSTOMER_API_TOKEN is not set"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_api_fails_with_the_endpoint_and_exit_1() {
    let account = Account::start(1, 1, 1).await;
    let db = account.db();
    let args = ["sync", "--db", db.to_str().unwrap(), "--base-url", "http://127.0.0.1:9/customer/v2"];
    let run = run_offline(&args).await.expect(1);
    assert!(run.stderr.contains("could not connect") && run.stderr.contains("products"), "{}", run.stderr);
    assert!(run.stderr.contains("Sync failed after"), "{}", run.stderr);
    let log = sync_log(&account.db());
    assert!(matches!(log.as_slice(), [(status, Some(m))] if status == "failure" && m.contains("could not connect")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_path_holding_another_kind_of_file_is_refused_untouched() {
    let account = Account::start(1, 1, 1).await;
    std::fs::write(account.db(), "my notes, not a database\n").unwrap();
    let run = account.sync(&[]).await.expect(1);
    assert!(run.stderr.contains("is not a SQLite database"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(account.db()).unwrap(), "my notes, not a database\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_entity_type_names_the_valid_ones() {
    let account = Account::start(1, 1, 1).await;
    let run = account.sync(&["--entity-types", "tests,bugz"]).await.expect(1);
    assert!(run.stderr.contains("bugz"), "{}", run.stderr);
    assert!(run.stderr.contains("products, features, tests"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_concurrency_setting_names_the_variable_and_the_range() {
    let account = Account::start(1, 1, 1).await;
    let db = account.db();
    let run = account
        .run_with(
            &["sync", "--db", db.to_str().unwrap()],
            account.sim.token(),
            &[("MAX_CONCURRENT_API_REQUESTS", "lots")],
        )
        .await
        .expect(1);
    assert!(
        run.stderr.contains("MAX_CONCURRENT_API_REQUESTS=\"lots\" is not valid; use a whole number from 1 to 50"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_rejected_mid_sync_stops_everything_and_the_sync_log_says_why() {
    let account = Account::start(3, 2, 30).await;
    account.sim.fail_requests("products/2/", 401);
    let run = account.sync(&[]).await.expect(1);
    assert!(run.stderr.contains("token rejected"), "{}", run.stderr);
    let db = account.db();
    assert_eq!(crate::support::count(&db, "SELECT COUNT(*) FROM tests"), 0, "no tests phase after a 401");
    let failed = "SELECT COUNT(*) FROM sync_events WHERE status = 'failure' AND error_message LIKE 'token rejected%' \
                  AND duration_seconds >= 0 AND completed_at IS NOT NULL";
    assert_eq!(crate::support::count(&db, failed), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn more_product_ids_than_a_sync_takes_are_refused_naming_the_limit() {
    let account = Account::start(1, 1, 1).await;
    let ids: Vec<String> = (1..=10_001).map(|id| id.to_string()).collect();
    let run = account.sync(&["--product-ids", &ids.join(","), "--json"]).await.expect(1);
    assert!(run.stderr.contains("10001 product ids is more than the 10000 one sync takes"), "{}", run.stderr);
    assert!(account.sim.requests().is_empty(), "nothing was asked of the API");
    assert!(!account.db().exists(), "nothing was written");
}
