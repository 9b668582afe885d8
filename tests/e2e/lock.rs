//! The sync lock between processes.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Instant;

use crate::support::Account;

/// Holds the lock beside the database the way another testio-sync would.
fn hold_lock(account: &Account) -> fd_lock::RwLock<std::fs::File> {
    let path = account.dir.path().join("sync.lock");
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).unwrap();
    let mut lock = fd_lock::RwLock::new(file);
    {
        let mut guard = lock.try_write().unwrap();
        let record = format!(
            r#"{{"pid":{},"started_at":"2026-11-26T12:01:02Z","trigger":"cli","command":"testio-sync sync"}}"#,
            std::process::id()
        );
        guard.write_all(record.as_bytes()).unwrap();
        std::mem::forget(guard);
    }
    lock
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_lock_with_no_wait_fails_at_once_naming_the_holder() {
    let account = Account::start(1, 1, 5).await;
    let _held = hold_lock(&account);
    let run = account.sync(&["--no-wait"]).await.expect(3);
    assert!(run.stderr.contains(&format!("PID {}", std::process::id())), "{}", run.stderr);
    assert!(!account.db().exists(), "a refused sync must not create the database");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sync_waits_for_the_lock_then_gives_up_saying_who_holds_it() {
    let account = Account::start(1, 1, 5).await;
    let _held = hold_lock(&account);
    let started = Instant::now();
    let run = account.sync(&["--lock-timeout", "1"]).await.expect(3);
    assert!(started.elapsed().as_millis() >= 1000, "it gave up before the timeout");
    assert!(run.stderr.contains("Waiting for the sync lock held by PID"), "{}", run.stderr);
    assert!(run.stderr.contains("testio-sync sync, started 2026-11-26T12:01:02Z"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_released_lock_lets_the_next_sync_run() {
    let account = Account::start(1, 1, 5).await;
    drop(hold_lock(&account));
    account.sync(&["--no-wait"]).await.expect(0);
}
