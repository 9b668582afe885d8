//! What only a shared PostgreSQL mirror has: the advisory lock between processes (on any
//! machine), several customers in one database, and the server's own failures: stopped,
//! wrong password, missing database, a connection dropped mid-sync. Messages name the
//! server and the database, never the password.

use testio_pgtest::{PASSWORD, PgServer};
use testio_sim::SimConfig;

use crate::lock::{host_name, slow_account, spawn_sync};
use crate::support::{Account, Backend, MINE, PgDb, Run, command, eventually};

async fn pg_account(config: SimConfig) -> Account {
    Account::on(Backend::Postgres, config).await
}

/// `testio-sync ARGS` with `env`, no API behind it: for failures before any request.
async fn offline(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = command(args).envs(env.iter().copied()).env("TESTIO_CUSTOMER_API_TOKEN", "x").output().await;
    Run::from(out.expect("the binary runs"))
}

/// Exit 1, with a message that names the server and the database and shows no password.
fn assert_connection_error(run: &Run, port: u16, database: &str, why: &str) {
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.assert_no_password();
    for expected in [format!("127.0.0.1:{port}"), format!("database \"{database}\""), why.to_string()] {
        assert!(run.stderr.contains(&expected), "{expected:?} not in:\n{}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn of_two_processes_on_one_customer_one_holds_the_lock_and_the_other_exits_3_naming_it() {
    let account = pg_account(slow_account()).await;
    let mut both = [spawn_sync(&account, &["--no-wait"]), spawn_sync(&account, &["--no-wait"])];
    let loser =
        eventually("one of them has exited", || both.iter_mut().position(|child| child.try_wait().unwrap().is_some()))
            .await;
    let [first, second] = both;
    let (loser, mut holder) = if loser == 0 { (first, second) } else { (second, first) };
    let run = Run::from(loser.wait_with_output().await.unwrap());
    assert_eq!(run.code, 3, "{}", run.stderr);
    run.assert_no_password();
    let named = format!("PID {} on {}", holder.id().unwrap(), host_name());
    assert!(run.stderr.contains(&named), "{named:?} not in:\n{}", run.stderr);
    assert!(holder.try_wait().unwrap().is_none(), "the holder runs on");
    account.wait_for_running_sync().await;
    assert_eq!(account.count("SELECT COUNT(*) FROM sync_events"), 1, "only the holder recorded a sync");
    holder.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_customers_sync_at_once_into_one_database_and_keep_their_rows_apart() {
    let config = SimConfig { latency: std::time::Duration::from_millis(10), ..SimConfig::default() };
    let account = pg_account(SimConfig { products: 3, features: 2, tests: 80, ..config }).await;
    let (db, token) = (account.db_arg(), account.sim.token().to_string());
    let sync = |customer: &'static str| {
        let args = ["sync", "--db", &db, "--no-wait", "--json"];
        let (account, token) = (&account, token.clone());
        async move { account.run_with(&args, &token, &[("TESTIO_CUSTOMER_ID", customer)]).await }
    };
    let (first, second) = tokio::join!(sync("1"), sync("7"));
    for run in [first, second] {
        assert_eq!(run.expect(0).json()["tests_discovered"], 240);
    }
    for customer in [1, 7] {
        assert_eq!(account.count(&format!("SELECT COUNT(*) FROM tests WHERE customer_id = {customer}")), 240);
        assert_eq!(account.count(&format!("SELECT COUNT(*) FROM sync_events WHERE customer_id = {customer}")), 1);
    }
    assert_eq!(account.count("SELECT COUNT(DISTINCT customer_id) FROM products"), 2);
    let status = offline(&["status", "--db", &db, "--customer-id", "7", "--json"], &[]).await.expect(0).json();
    assert_eq!((status["customer_id"].as_i64(), status["rows"]["tests"].as_i64()), (Some(7), Some(240)), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_kill_9_the_lock_is_free_the_row_interrupted_and_a_clean_sync_matches_a_reference() {
    let account = pg_account(slow_account()).await;
    let mut victim = spawn_sync(&account, &[]);
    account.wait_for_running_sync().await;
    eventually("the victim has written tests", || (account.count("SELECT COUNT(*) FROM tests") > 0).then_some(()))
        .await;
    victim.kill().await.unwrap();
    account.wait_for_lock_release().await;
    account.sync(&["--no-wait"]).await.expect(0);
    let statuses: Vec<String> = account.sync_log().into_iter().map(|(status, _)| status).collect();
    assert_eq!(statuses, ["interrupted", "success"]);

    let reference = PgDb::new();
    account.run(&["sync", "--db", &reference.url()], account.sim.token()).await.expect(0);
    let (mine, theirs) = (account.content(), reference.content());
    assert!(mine.len() > 3_000, "{} rows", mine.len());
    assert_eq!(mine.symmetric_difference(&theirs).count(), 0, "the mirror matches the reference row by row");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_server_is_exit_1_naming_it_for_sync_and_status() {
    let server = PgServer::start();
    let database = server.create_db();
    let (url, port) = (server.url(&database), server.port());
    drop(server);
    for what in ["sync", "status"] {
        let run = offline(&[what, "--db", &url], &[]).await;
        assert_connection_error(&run, port, &database, "connection refused");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_exit_1_naming_the_server_never_either_password() {
    let pg = PgDb::new();
    let url = pg.server.url_with_password(&pg.name, "not-the-password");
    let run = offline(&["sync", "--db", &url], &[]).await;
    assert_connection_error(&run, pg.server.port(), &pg.name, "rejected the password");
    assert!(!run.stderr.contains("not-the-password"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_database_in_testio_db_url_is_exit_1_naming_it() {
    let pg = PgDb::new();
    let url = pg.server.url("no_such_mirror");
    let run = offline(&["sync"], &[("TESTIO_DB_URL", &url)]).await;
    assert_connection_error(&run, pg.server.port(), "no_such_mirror", "does not exist");
    let run = offline(&["history"], &[("TESTIO_DB_PATH", &url)]).await;
    assert_connection_error(&run, pg.server.port(), "no_such_mirror", "does not exist");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_dropped_mid_sync_is_exit_1_and_the_next_sync_converges() {
    let account = pg_account(slow_account()).await;
    let pg = account.pg.as_ref().unwrap();
    let victim = spawn_sync(&account, &[]);
    account.wait_for_running_sync().await;
    eventually("the sync has written tests", || (account.count("SELECT COUNT(*) FROM tests") > 0).then_some(())).await;
    let terminate = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = current_database() AND application_name LIKE 'testio-sync%'";
    pg.with(|c| c.batch_execute(terminate).unwrap());
    let out = victim.wait_with_output().await.unwrap();
    let run = Run::from(out);
    assert_connection_error(&run, pg.server.port(), &pg.name, "lost the connection to PostgreSQL");
    assert!(!run.stderr.contains(PASSWORD));
    account.wait_for_lock_release().await;
    let json = account.sync(&["--no-wait", "--json"]).await.expect(0).json();
    assert_eq!(json["status"], "success");
    assert_eq!(account.count("SELECT COUNT(*) FROM tests"), 5 * 600);
}

/// `testio-sync customer ARGS --db <the account's mirror>` with the customers' tokens.
async fn customer(account: &Account, args: &[&str], tokens: &[(&str, &str)]) -> Run {
    let db = account.db_arg();
    let mut full = vec!["customer"];
    full.extend_from_slice(args);
    full.extend(["--db", &db]);
    account.run_with(&full, account.sim.token(), tokens).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_customer_registry_and_all_customers_work_in_postgresql() {
    let account = pg_account(SimConfig { products: 2, features: 1, tests: 10, ..SimConfig::default() }).await;
    let (db, token) = (account.db_arg(), account.sim.token().to_string());
    let tokens = [("TESTIO_CUSTOMER_API_TOKEN_ACME", token.as_str()), ("TESTIO_CUSTOMER_API_TOKEN_BETA", &token)];
    let customer = |args: &'static [&'static str]| customer(&account, args, &tokens);
    customer(&["add", "acme"]).await.expect(0);
    customer(&["add", "beta", "--no-check"]).await.expect(0);
    let listed = customer(&["list", "--json"]).await.expect(0).json();
    let names: Vec<_> = listed.as_array().unwrap().iter().map(|c| (c["name"].clone(), c["default"].clone())).collect();
    assert_eq!(names, [("acme".into(), true.into()), ("beta".into(), false.into())], "{listed}");

    account.run_with(&["sync", "--db", &db, "--all-customers"], &token, &tokens).await.expect(0);
    assert_eq!(account.count("SELECT COUNT(DISTINCT customer_id) FROM tests"), 2);
    customer(&["default", "beta"]).await.expect(0);
    customer(&["remove", "acme", "--purge", "--yes"]).await.expect(0);
    assert_eq!(account.count("SELECT COUNT(*) FROM tests WHERE customer_id = 1"), 0, "acme's rows are purged");
    let status = offline(&["status", "--db", &db, "--json"], &[]).await.expect(0).json();
    assert_eq!((status["customer_id"].as_i64(), status["rows"]["tests"].as_i64()), (Some(2), Some(20)), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_whose_lock_connection_drops_stops_writing_and_exits_1() {
    let account = pg_account(slow_account()).await;
    let pg = account.pg.as_ref().unwrap();
    let victim = spawn_sync(&account, &[]);
    account.wait_for_running_sync().await;
    // Only the lock's session: the store's connection lives on, and must write no more.
    let terminate = format!("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE {MINE}");
    pg.with(|c| c.batch_execute(&terminate).unwrap());
    let run = Run::from(victim.wait_with_output().await.unwrap());
    assert_connection_error(&run, pg.server.port(), &pg.name, "lost the sync lock");
    assert!(account.count("SELECT COUNT(*) FROM tests") < 5 * 600, "it stopped before the end");
    account.sync(&["--no-wait"]).await.expect(0);
    assert_eq!(account.count("SELECT COUNT(*) FROM tests"), 5 * 600);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_to_a_daemon_syncing_into_postgresql_leaves_an_interrupted_row_and_a_clean_free_lock() {
    let account = pg_account(slow_account()).await;
    let daemon = account.spawn("daemon", &[("TESTIO_REFRESH_INTERVAL_SECONDS", "3600")]);
    account.wait_for_running_sync().await;
    let (code, stderr) = daemon.stop(libc::SIGTERM).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert_eq!(account.sync_log(), [("interrupted".to_string(), Some("interrupted by SIGTERM".to_string()))]);
    let next = account.sync(&["--no-wait"]).await.expect(0);
    assert!(!next.stderr.contains("reclaimed"), "the daemon cleared its record:\n{}", next.stderr);
}
