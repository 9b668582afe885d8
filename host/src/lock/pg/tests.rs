//! The PostgreSQL lock against a real server. Each `Claims` plays one process.

use std::time::{Duration, Instant};

use super::*;
use crate::db::pg::testing::{TestDb, assert_names, closed_port};
use crate::lock::process::HOST_NAME;
use crate::lock::{Holder, HolderRecord, ProcessState};

const BEAT: Duration = Duration::from_secs(30);
/// How long a test waits for what it expects before it fails.
const DEADLINE: Duration = Duration::from_secs(20);

fn process() -> Arc<Claims> {
    Arc::default()
}

fn lock(db: &TestDb, process: &Arc<Claims>, wait: Duration) -> PgSyncLock {
    PgSyncLock::in_process(db.target.clone(), 1, wait, process.clone())
}

async fn admin(db: &TestDb) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&db.server.url(&db.name), tokio_postgres::NoTls).await.expect("an admin connection");
    tokio::spawn(connection);
    client
}

async fn state(db: &TestDb) -> LockState {
    inspect(&db.target, 1).await.unwrap().expect("a sync created the table")
}

/// The lock's state once `done` holds, polled until the deadline.
async fn state_once(db: &TestDb, what: &str, done: impl Fn(&LockState) -> bool) -> LockState {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let state = state(db).await;
        if done(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "{what}: still {:?} after {DEADLINE:?}", state.facts);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn written(facts: &LockFacts) -> &Holder {
    match &facts.holder {
        HolderRecord::Written(holder) => holder,
        other => panic!("no holder record: {other:?}"),
    }
}

#[tokio::test]
async fn of_two_processes_exactly_one_takes_the_lock_and_the_other_is_told_who_holds_it() {
    let db = TestDb::new();
    let (mut cli, mut mcp) = (lock(&db, &process(), Duration::ZERO), lock(&db, &process(), Duration::ZERO));
    let (by_cli, by_mcp) = tokio::join!(cli.acquire(Trigger::Cli, BEAT), mcp.acquire(Trigger::Mcp, BEAT));
    let (mut holder, mut other, trigger) = match (by_cli, by_mcp) {
        (Ok(_), Err(AcquireError::Held(_))) => (cli, mcp, Trigger::Cli),
        (Err(AcquireError::Held(_)), Ok(_)) => (mcp, cli, Trigger::Mcp),
        both => panic!("exactly one must take the lock: {both:?}"),
    };
    // Asked again once the winner's record is written, the other sees who holds the lock.
    let Err(AcquireError::Held(facts)) = other.acquire(Trigger::Scheduler, BEAT).await else { panic!("taken twice") };
    let who = written(&facts);
    assert_eq!((who.pid, who.host_name.as_str(), who.trigger), (std::process::id(), HOST_NAME.as_str(), trigger));
    assert_eq!(facts.process, ProcessState::Running);
    let status = state(&db).await;
    assert!(status.held);
    assert_eq!(written(&status.facts).trigger, trigger);

    holder.release();
    let freed = state_once(&db, "the lock is freed", |s| !s.held).await;
    assert_eq!(freed.facts.holder, HolderRecord::Empty, "a clean release leaves no record");
    let previous = other.acquire(Trigger::Scheduler, BEAT).await.expect("free now");
    assert_eq!(previous.holder, HolderRecord::Empty);
}

#[tokio::test]
async fn syncs_of_one_process_share_its_hold_and_take_turns() {
    let db = TestDb::new();
    let this = process();
    let mut first = lock(&db, &this, Duration::ZERO);
    first.acquire(Trigger::Cli, BEAT).await.expect("free");
    let mut second = lock(&db, &this, Duration::ZERO);
    let waiting = tokio::spawn(async move { (second.acquire(Trigger::Mcp, BEAT).await.is_ok(), second) });
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!waiting.is_finished(), "the second sync must wait for the first one's turn");
    first.release();
    let (taken, mut second) = waiting.await.unwrap();
    assert!(taken, "the second sync never timed out against its own process");
    let status = state(&db).await;
    assert!(status.held);
    assert_eq!(written(&status.facts).trigger, Trigger::Mcp, "the record names the sync whose turn it is");
    second.release();
    state_once(&db, "the last sync of the process frees the lock", |s| !s.held).await;
}

#[tokio::test]
async fn a_holder_whose_connection_dies_frees_the_lock_at_once() {
    let db = TestDb::new();
    let mut dying = lock(&db, &process(), Duration::ZERO);
    dying.acquire(Trigger::Cli, BEAT).await.expect("free");
    let admin = admin(&db).await;
    let backend: i32 = admin.query_one("SELECT backend_pid FROM sync_lock_holders", &[]).await.unwrap().get(0);
    admin.execute("SELECT pg_terminate_backend($1)", &[&backend]).await.unwrap();

    let started = Instant::now();
    let mut next = lock(&db, &process(), DEADLINE);
    let previous = loop {
        match next.acquire(Trigger::Scheduler, BEAT).await {
            Ok(previous) => break previous,
            Err(AcquireError::Held(_)) => assert!(next.wait_for_release().await, "the dead session's lock stayed"),
            Err(e) => panic!("{e:?}"),
        }
    };
    assert!(started.elapsed() < Duration::from_secs(5), "freed only after {:?}", started.elapsed());
    let left = written(&previous);
    assert_eq!((left.pid, left.trigger), (std::process::id(), Trigger::Cli), "the record left behind");
    assert_eq!(previous.process, ProcessState::Running, "its process lives on; the engine judges that");

    let deadline = Instant::now() + DEADLINE;
    while dying.lost().is_none() {
        assert!(Instant::now() < deadline, "the holder never learnt it lost the lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lost = dying.lost().unwrap();
    assert_names(&lost, db.server.port(), &db.name);
    assert!(lost.starts_with("lost the sync lock: "), "{lost}");
}

#[tokio::test]
async fn the_holder_refreshes_its_heartbeat() {
    let db = TestDb::new();
    let mut holder = lock(&db, &process(), Duration::ZERO);
    holder.acquire(Trigger::Scheduler, Duration::from_millis(50)).await.expect("free");
    let admin = admin(&db).await;
    admin.execute("UPDATE sync_lock_holders SET heartbeat_at = now() - interval '2 hours'", &[]).await.unwrap();
    let an_hour_ago = chrono::Utc::now().timestamp_millis() - 3_600_000;
    assert!(state(&db).await.facts.heartbeat < an_hour_ago);
    state_once(&db, "the heartbeat is refreshed", |s| s.facts.heartbeat > an_hour_ago).await;
}

#[tokio::test]
async fn a_lock_that_cannot_be_tried_names_the_server_and_database() {
    let db = TestDb::new();
    let port = db.server.port();
    let down_port = closed_port();
    let down =
        PgTarget::parse(&format!("postgres://postgres:{}@127.0.0.1:{down_port}/mirror", testio_pgtest::PASSWORD));
    for (target, port, database, says) in [
        (down.unwrap(), down_port, "mirror", "connection refused"),
        (db.target_with(&db.name, "not-the-password"), port, db.name.as_str(), "rejected the password"),
        (db.target_with("no_such_db", testio_pgtest::PASSWORD), port, "no_such_db", "does not exist"),
    ] {
        let mut lock = PgSyncLock::in_process(Arc::new(target), 1, Duration::ZERO, process());
        let Err(AcquireError::Unavailable(message)) = lock.acquire(Trigger::Cli, BEAT).await else {
            panic!("the lock was tried");
        };
        assert_names(&message, port, database);
        assert!(message.contains(says) && !message.contains("not-the-password"), "{message}");
    }
}

#[tokio::test]
async fn status_reads_a_database_no_sync_has_used_as_free() {
    let db = TestDb::new();
    assert!(inspect(&db.target, 1).await.unwrap().is_none());
}

#[test]
fn keys_differ_per_customer_and_split_as_pg_locks_shows_them() {
    let (one, two) = (LockKey::of(1), LockKey::of(2));
    assert_ne!(one.key, two.key);
    assert_eq!(LockKey::of(1), one, "stable");
    let rebuilt = (u64::from(one.class_id()) << 32 | u64::from(one.object_id())) as i64;
    assert_eq!(rebuilt, one.key);
}
