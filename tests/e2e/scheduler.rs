//! `testio-sync daemon`: the scheduler as a real process against the simulator.

use std::path::Path;
use std::time::Duration;

use chrono::NaiveDateTime;
use rusqlite::Connection;
use testio_sim::SimConfig;

use crate::support::{Account, Registry, Server, count, eventually, run_offline, sync_log};

/// (trigger, status, started_at, completed_at) of a sync.
type Sync = (String, String, NaiveDateTime, Option<NaiveDateTime>);

/// Every sync, oldest first.
fn syncs(db: &Path) -> Vec<Sync> {
    syncs_of(db, None)
}

/// Every sync of the customer with local id `customer` (or of all), oldest first.
fn syncs_of(db: &Path, customer: Option<i64>) -> Vec<Sync> {
    if !db.exists() {
        return Vec::new();
    }
    let parse = |text: String| NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    let conn = Connection::open(db).unwrap();
    let Ok(mut stmt) = conn.prepare(
        "SELECT trigger_source, status, started_at, completed_at FROM sync_events
         WHERE ?1 IS NULL OR customer_id = ?1 ORDER BY id",
    ) else {
        return Vec::new(); // not migrated yet
    };
    stmt.query_map([customer], |r| {
        Ok((r.get(0)?, r.get(1)?, parse(r.get(2)?), r.get::<_, Option<String>>(3)?.map(parse)))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Waits until the sync log has `n` closed syncs.
async fn closed_syncs(db: &Path, n: usize) -> Vec<Sync> {
    eventually(&format!("{n} syncs are closed"), || {
        let all = syncs(db);
        (all.iter().filter(|s| s.1 != "running").count() >= n).then_some(all)
    })
    .await
}

fn gap(earlier_end: Option<NaiveDateTime>, later_start: NaiveDateTime) -> Duration {
    (later_start - earlier_end.expect("closed")).to_std().expect("in order")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_syncs_every_interval_in_scope_and_exits_0_on_sigterm() {
    let account = Account::start(3, 2, 30).await;
    let daemon = account.spawn(
        "daemon",
        &[("TESTIO_REFRESH_INTERVAL_SECONDS", "2"), ("TESTIO_PRODUCT_IDS", "2"), ("TESTIO_SYNC_SINCE", "10 years ago")],
    );
    let log = closed_syncs(&account.db(), 2).await;
    let (code, stderr) = daemon.stop(libc::SIGTERM).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Scheduler stopped by SIGTERM"), "{stderr}");

    assert!(log.iter().take(2).all(|s| s.0 == "scheduler" && s.1 == "success"), "{log:?}");
    assert!(gap(log[0].3, log[1].2) >= Duration::from_secs(2), "the second sync waited an interval: {log:?}");
    let db = account.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests"), 30, "a single product id is honoured");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE product_id <> 2"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE bugs_synced_at IS NULL"), 0, "bugs are kept fresh too");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_leaves_bugs_alone_when_told_to() {
    let account = Account::start(1, 1, 10).await;
    let daemon =
        account.spawn("daemon", &[("TESTIO_REFRESH_INTERVAL_SECONDS", "60"), ("TESTIO_REFRESH_BUGS", "false")]);
    closed_syncs(&account.db(), 1).await;
    daemon.stop(libc::SIGTERM).await;
    let db = account.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests"), 10);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE bugs_synced_at IS NOT NULL"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_last_sync_skips_the_scheduled_run() {
    let account = Account::start(1, 1, 5).await;
    account.sync(&[]).await.expect(0);
    let daemon = account.spawn("daemon", &[("TESTIO_REFRESH_INTERVAL_SECONDS", "3")]);
    daemon.wait_for_log("Scheduled sync skipped: the last sync completed less than 3s ago").await;
    assert_eq!(syncs(&account.db()).len(), 1, "no sync while the CLI's is fresh");

    // Once it is an interval old, the scheduler syncs.
    let log = closed_syncs(&account.db(), 2).await;
    let (code, stderr) = daemon.stop(libc::SIGINT).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!((log[0].0.as_str(), log[1].0.as_str()), ("cli", "scheduler"));
    assert!(gap(log[0].3, log[1].2) >= Duration::from_secs(3), "{log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_back_off_twice_as_long_each_time_and_the_scheduler_recovers() {
    let account = Account::start(2, 1, 5).await;
    account.sim.fail_requests("products", 500);
    let daemon = account.spawn("daemon", &[("TESTIO_REFRESH_INTERVAL_SECONDS", "1")]);
    closed_syncs(&account.db(), 2).await;
    daemon.wait_for_log("(2 in a row); backing off: next try in 4s").await;
    account.sim.stop_failing_requests();
    let log = eventually("the scheduler recovers", || {
        let log = syncs(&account.db());
        log.iter().any(|s| s.1 == "success").then_some(log)
    })
    .await;
    let (code, stderr) = daemon.stop(libc::SIGTERM).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("(1 in a row); backing off: next try in 2s"), "{stderr}");

    let statuses: Vec<&str> = log.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(statuses[..2], ["failure", "failure"], "{log:?}");
    assert_eq!(statuses.last(), Some(&"success"), "{log:?}");
    assert!(gap(log[0].3, log[1].2) >= Duration::from_secs(2), "×2 after one failure: {log:?}");
    assert!(gap(log[1].3, log[2].2) >= Duration::from_secs(4), "×4 after two: {log:?}");
    assert_eq!(count(&account.db(), "SELECT COUNT(*) FROM tests"), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_scheduled_sync_leaves_an_interrupted_row_and_a_free_lock() {
    let account = Account::with(SimConfig {
        products: 5,
        features: 3,
        tests: 600,
        latency: Duration::from_millis(30),
        ..SimConfig::default()
    })
    .await;
    let daemon = account.spawn("daemon", &[("TESTIO_REFRESH_INTERVAL_SECONDS", "3600")]);
    eventually("the scheduled sync is running", || syncs(&account.db()).iter().any(|s| s.1 == "running").then_some(()))
        .await;
    let (code, stderr) = daemon.stop(libc::SIGTERM).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(sync_log(&account.db()), [("interrupted".to_string(), Some("interrupted by SIGTERM".to_string()))]);
    let lock = testio_sync::lock::inspect(&account.dir.path().join("sync.lock")).unwrap().unwrap();
    assert!(!lock.held, "the lock is free");
    account.sync(&["--no-wait"]).await.expect(0);
}

#[tokio::test]
async fn a_daemon_with_the_scheduler_off_or_a_bad_since_refuses_to_start() {
    let off = run_offline(&["daemon", "--interval", "0"]).await.expect(1);
    assert!(off.stderr.contains("the scheduler is off (TESTIO_REFRESH_INTERVAL_SECONDS=0)"), "{}", off.stderr);
    let since = run_offline(&["daemon", "--since", "soonish"]).await.expect(1);
    assert!(since.stderr.contains("cannot read \"soonish\" as a date"), "{}", since.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_held_by_another_process_is_a_skip_not_a_failure() {
    let account = Account::start(1, 1, 5).await;
    let holder = crate::lock::hold_with_flock(&account.dir.path().join("sync.lock")).await;
    let daemon =
        account.spawn("daemon", &[("TESTIO_REFRESH_INTERVAL_SECONDS", "1"), ("TESTIO_SYNC_LOCK_TIMEOUT_SECONDS", "0")]);
    daemon.wait_for_log("Scheduled sync skipped: sync lock busy").await;
    holder.release().await;
    closed_syncs(&account.db(), 1).await;
    let (code, stderr) = daemon.stop(libc::SIGTERM).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("backing off"), "a busy lock is no failure: {stderr}");
    assert_eq!(sync_log(&account.db())[0].0, "success");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_customers_failures_never_delay_another_customers_syncs() {
    let mut registry = Registry::empty();
    let small = SimConfig { products: 1, features: 1, tests: 5, ..SimConfig::default() };
    registry.add("healthy", 2, small.clone(), &[]).await;
    registry.add("revoked", 3, SimConfig { seed: 2, ..small }, &[]).await;
    registry.set_token("revoked", "tok-revoked-now-wrong-91d4");
    let db = registry.db();
    let daemon = Server::spawn(registry.command(&["daemon", "--interval", "1"]));
    // The failing customer backs off 2s, then 4s: its third try comes 6s after its first.
    eventually("the failing customer tried three times", || {
        (syncs_of(&db, Some(3)).iter().filter(|s| s.1 == "failure").count() >= 3).then_some(())
    })
    .await;
    let (code, stderr) = daemon.stop(libc::SIGTERM).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Scheduler stopped by SIGTERM"), "{stderr}");
    registry.assert_hidden(&stderr);

    let failed: Vec<Sync> = syncs_of(&db, Some(3)).into_iter().filter(|s| s.1 != "interrupted").collect();
    assert!(failed.iter().all(|s| s.0 == "scheduler" && s.1 == "failure"), "{failed:?}");
    assert!(gap(failed[0].3, failed[1].2) >= Duration::from_secs(2), "{failed:?}");
    assert!(gap(failed[1].3, failed[2].2) >= Duration::from_secs(4), "{failed:?}");
    let why = sync_log(&db).into_iter().filter(|s| s.0 == "failure").filter_map(|s| s.1).collect::<Vec<_>>();
    assert!(why.iter().all(|m| m.contains("check TESTIO_CUSTOMER_API_TOKEN_REVOKED")), "{why:?}");
    assert!(stderr.contains("backing off: next try in 4s"), "{stderr}");

    // Meanwhile the healthy customer kept its interval: while the other waited out its 4s,
    // it completed a sync about every second, never a failure.
    let healthy = syncs_of(&db, Some(2));
    assert!(healthy.iter().all(|s| s.0 == "scheduler" && s.1 != "failure"), "{healthy:?}");
    let (from, to) = (failed[1].3.unwrap(), failed[2].2);
    let during = healthy.iter().filter(|s| s.1 == "success" && s.2 >= from && s.3.is_some_and(|end| end <= to));
    assert!(during.count() >= 2, "healthy syncs during the backoff {from}..{to}: {healthy:?}");
    assert!(registry.get("healthy").sim.requests().len() > registry.get("revoked").sim.requests().len());
    registry.assert_no_token_in_files();
}
