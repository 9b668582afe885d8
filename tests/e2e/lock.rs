//! The sync lock between real processes: contention, kill -9, signals, stale records.
//! Other holders are real processes too: `flock(1)` holds the kernel lock like another
//! testio-sync would, and the tests write the holder record it would have written.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use chrono::{NaiveDateTime, SecondsFormat, Utc};
use rusqlite::Connection;
use testio_sim::SimConfig;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr};

use crate::support::{Account, command, count, eventually, sync_log, wait_for_running_sync};

fn lock_file(account: &Account) -> PathBuf {
    account.dir.path().join("sync.lock")
}

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

fn iso(at: SystemTime) -> String {
    chrono::DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A holder record as testio-sync writes it.
pub fn write_record(path: &Path, pid: u32, process_started_at: SystemTime) {
    let record = serde_json::json!({
        "pid": pid,
        "process_started_at": iso(process_started_at),
        "host_name": host_name(),
        "acquired_at": iso(SystemTime::now() - Duration::from_secs(300)),
        "trigger": "cli",
        "command": "testio-sync sync",
    });
    std::fs::write(path, record.to_string()).unwrap();
}

fn age_heartbeat(path: &Path, by: Duration) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - by).unwrap();
}

/// A real process holding the kernel lock until the test releases it (or drops it, which kills it).
pub struct Holder(Child);

/// Takes the lock with `flock -o PATH cat`: `cat` runs until its stdin closes, so the hold
/// lasts exactly as long as the test wants, however slowly the machine runs.
pub async fn hold_with_flock(path: &Path) -> Holder {
    if !path.exists() {
        std::fs::write(path, "").unwrap();
    }
    // -o: the lock stays with flock itself, which exits (freeing it) once cat has.
    let holder = tokio::process::Command::new("flock")
        .arg("-o")
        .arg(path)
        .arg("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("flock(1) runs");
    let held = || testio_sync::lock::inspect(path).unwrap().is_some_and(|l| l.held);
    eventually("flock holds the lock", || held().then_some(())).await;
    Holder(holder)
}

impl Holder {
    pub fn pid(&self) -> u32 {
        self.0.id().expect("the holder runs until released")
    }

    /// Whether the holder still runs, i.e. still holds the lock.
    pub fn is_holding(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    /// Closes cat's stdin and waits until flock has exited, so the lock is free on return.
    pub async fn release(mut self) {
        drop(self.0.stdin.take());
        let status = self.0.wait().await.unwrap();
        assert!(status.success(), "flock ended with {status}");
    }
}

pub fn spawn_sync(account: &Account, args: &[&str]) -> Child {
    let db = account.db_arg();
    let mut full = vec!["sync", "--db", &db];
    full.extend_from_slice(args);
    command(&full)
        .env("TESTIO_CUSTOMER_API_BASE_URL", account.sim.base_url())
        .env("TESTIO_CUSTOMER_API_TOKEN", account.sim.token())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs")
}

pub fn slow_account() -> SimConfig {
    SimConfig { products: 5, features: 3, tests: 600, latency: Duration::from_millis(30), ..SimConfig::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_syncs_started_together_never_overlap() {
    let account = Account::with(SimConfig {
        products: 3,
        features: 3,
        tests: 60,
        latency: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await;
    let children: Vec<Child> = (0..8)
        .map(|i| spawn_sync(&account, if i % 4 == 3 { &["--no-wait"] } else { &["--lock-timeout", "120"] }))
        .collect();
    let mut succeeded = 0;
    for child in children {
        let out = child.wait_with_output().await.unwrap();
        let code = out.status.code().unwrap();
        assert!(code == 0 || code == 3, "exit {code}: {}", String::from_utf8_lossy(&out.stderr));
        succeeded += i64::from(code == 0);
    }
    assert!(succeeded >= 6, "every waiting sync gets its turn");

    let syncs = sync_intervals(&account.db());
    assert_eq!(syncs.len() as i64, succeeded, "one sync log row per sync that ran");
    for pair in syncs.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "two syncs overlapped: {pair:?}");
    }
    // Every request the API saw falls inside exactly one sync's interval.
    for request in account.sim.requests() {
        let at = chrono::DateTime::<Utc>::from(request.received_at).naive_utc();
        let inside = syncs.iter().filter(|(start, end)| *start <= at && at <= *end).count();
        assert_eq!(inside, 1, "request {} at {at} is not inside one sync", request.path);
    }
}

/// (started_at, completed_at) of every sync, oldest first.
fn sync_intervals(db: &Path) -> Vec<(NaiveDateTime, NaiveDateTime)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT started_at, completed_at FROM sync_events WHERE status = 'success' ORDER BY started_at")
        .unwrap();
    let parse = |text: String| NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    stmt.query_map([], |r| Ok((parse(r.get(0)?), parse(r.get(1)?)))).unwrap().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_killed_with_sigkill_frees_the_lock_and_the_next_sync_closes_its_row() {
    let account = Account::with(slow_account()).await;
    let mut victim = spawn_sync(&account, &[]);
    wait_for_running_sync(&account.db()).await;
    let pid = victim.id().unwrap();
    victim.kill().await.unwrap();

    let next = account.sync(&["--no-wait"]).await.expect(0);
    assert!(next.stderr.contains("reclaimed the sync lock left behind by PID"), "{}", next.stderr);
    let log = sync_log(&account.db());
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].0, "interrupted");
    assert!(log[0].1.as_deref().unwrap().contains(&format!("PID {pid}")), "{log:?}");
    assert_eq!(log[1], ("success".to_string(), None));
    let durations = count(&account.db(), "SELECT COUNT(*) FROM sync_events WHERE duration_seconds IS NULL");
    assert_eq!(durations, 0, "every closed sync has a duration");
}

/// `history --json` and `status --json` of the database, and the text of both.
async fn reports(db: &Path) -> (serde_json::Value, serde_json::Value, String) {
    let history = report(db, "history", "--json").await.json();
    let status = report(db, "status", "--json").await.json();
    let text = report(db, "history", "--limit=20").await.stdout + &report(db, "status", "--customer-id=1").await.stdout;
    (history, status, text)
}

async fn report(db: &Path, what: &str, option: &str) -> crate::support::Run {
    let out = command(&[what, option, "--db", db.to_str().unwrap()]).output().await.unwrap();
    crate::support::Run::from(out).expect(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_killed_with_sigkill_shows_as_interrupted_before_the_next_sync_closes_it() {
    let account = Account::stalled().await;
    let db = account.db();
    let mut victim = spawn_sync(&account, &[]);
    wait_for_running_sync(&db).await;
    let (history, status, _) = reports(&db).await;
    assert_eq!(history[0]["status"], "running", "a live sync is running: {history}");
    assert_eq!(status["last_sync"]["status"], "running", "{status}");

    let pid = victim.id().unwrap();
    victim.kill().await.unwrap();
    let (history, status, text) = reports(&db).await;
    let gone = format!("its process (PID {pid}) is gone; the next sync closes it");
    assert_eq!(history[0]["status"], "interrupted", "{history}");
    assert_eq!(history[0]["error_message"], gone.as_str());
    assert_eq!(status["last_sync"]["status"], "interrupted", "{status}");
    assert!(text.contains(&format!("interrupted (cli, PID {pid}) — {gone}")), "history: {text}");
    assert!(text.contains("Last sync: interrupted (cli), started") && text.contains(&gone), "{text}");
    assert!(!text.contains(", running)") && !text.contains("Last sync: running"), "{text}");
    assert_eq!(sync_log(&db)[0].0, "running", "only a sync that takes the lock closes the row");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_sigint_stop_a_sync_close_its_row_and_release_the_lock() {
    for (signal, name, code) in [(libc::SIGTERM, "SIGTERM", 143), (libc::SIGINT, "SIGINT", 130)] {
        let account = Account::with(slow_account()).await;
        let victim = spawn_sync(&account, &[]);
        wait_for_running_sync(&account.db()).await;
        // SAFETY: kill(2) on our own child's PID.
        assert_eq!(unsafe { libc::kill(victim.id().unwrap() as i32, signal) }, 0);
        let out = victim.wait_with_output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        assert!(stderr.contains("Sync failed after") && stderr.contains(name), "{stderr}");

        let expected = format!("interrupted by {name}");
        assert_eq!(sync_log(&account.db()), [("interrupted".to_string(), Some(expected))]);
        let tests = count(&account.db(), "SELECT COUNT(*) FROM tests");
        assert_eq!(tests % 25, 0, "only whole pages were written ({tests} tests)");
        account.sync(&["--no-wait"]).await.expect(0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_left_by_a_dead_process_is_reclaimed_with_a_warning() {
    let account = Account::start(1, 1, 5).await;
    let mut finished = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = finished.id();
    finished.wait().unwrap();
    write_record(&lock_file(&account), dead_pid, SystemTime::now() - Duration::from_secs(600));

    let run = account.sync(&["--no-wait", "--json"]).await.expect(0);
    let warning = format!(
        "reclaimed the sync lock left behind by PID {dead_pid} on {} (testio-sync sync, from the command line, started",
        host_name()
    );
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
    assert!(run.json()["warnings"][0].as_str().unwrap().ends_with("which is no longer running"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_naming_a_reused_pid_is_reclaimed() {
    let account = Account::start(1, 1, 5).await;
    // This test process is alive, but it did not start in 2001.
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(978_307_200);
    write_record(&lock_file(&account), std::process::id(), long_ago);
    let run = account.sync(&["--no-wait"]).await.expect(0);
    assert!(run.stderr.contains("whose PID now belongs to another process"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_holder_with_a_two_hour_old_heartbeat_is_not_broken() {
    let account = Account::start(1, 1, 5).await;
    let path = lock_file(&account);
    let mut holder = hold_with_flock(&path).await;
    write_record(&path, holder.pid(), SystemTime::now());
    age_heartbeat(&path, Duration::from_secs(7200));

    let run = account.sync(&["--lock-timeout", "30"]).await.expect(3);
    assert!(run.stderr.contains("looks hung"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("kill {}", holder.pid())), "{}", run.stderr);
    assert!(holder.is_holding(), "the holder still runs");
    assert!(testio_sync::lock::inspect(&path).unwrap().unwrap().held, "the lock is still held");
    assert!(!account.db().exists(), "a refused sync writes nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_in_the_lock_file_is_reclaimed_only_when_the_lock_is_free() {
    let account = Account::start(1, 1, 5).await;
    let path = lock_file(&account);
    std::fs::write(&path, "PID: 4242\nSTARTED: yesterday\n").unwrap();
    let holder = hold_with_flock(&path).await;
    let refused = account.sync(&["--no-wait"]).await.expect(3);
    assert!(refused.stderr.contains("a process whose record is unreadable (\"PID: 4242"), "{}", refused.stderr);

    holder.release().await;
    let run = account.sync(&["--no-wait"]).await.expect(0);
    assert!(run.stderr.contains("no readable record (\"PID: 4242"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_wait_fails_at_once_while_the_lock_is_held() {
    let account = Account::start(1, 1, 5).await;
    let path = lock_file(&account);
    let mut holder = hold_with_flock(&path).await;
    write_record(&path, holder.pid(), SystemTime::now());
    let run = account.sync(&["--no-wait"]).await.expect(3);
    assert!(holder.is_holding(), "it did not wait for the holder");
    let named = format!("PID {} on {} (testio-sync sync, from the command line, started", holder.pid(), host_name());
    assert!(run.stderr.contains(&named), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_sync_runs_as_soon_as_the_holder_exits() {
    let account = Account::start(1, 1, 5).await;
    let path = lock_file(&account);
    let holder = hold_with_flock(&path).await;
    write_record(&path, holder.pid(), SystemTime::now());
    let mut sync = spawn_sync(&account, &[]);
    let mut stderr = BufReader::new(sync.stderr.take().unwrap()).lines();
    let mut log = read_until(&mut stderr, "Waiting for the sync lock held by PID").await;
    holder.release().await;
    while let Some(line) = stderr.next_line().await.unwrap() {
        log.push_str(&line);
        log.push('\n');
    }
    let status = sync.wait().await.unwrap();
    assert_eq!(status.code(), Some(0), "it ran once the holder let go:\n{log}");
    assert_eq!(count(&account.db(), "SELECT COUNT(*) FROM tests"), 5);
}

/// Reads lines until one contains `text`; returns them all. Fails if the stream ends first.
async fn read_until(lines: &mut Lines<BufReader<ChildStderr>>, text: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(text) {
        let line = lines.next_line().await.unwrap();
        let line = line.unwrap_or_else(|| panic!("stderr ended before {text:?}:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn status_names_the_holder_and_history_lists_the_syncs() {
    let account = Account::start(1, 1, 5).await;
    account.sync(&[]).await.expect(0);
    account.sync(&[]).await.expect(0);
    let db = account.db();
    let history = command(&["history", "--db", db.to_str().unwrap(), "--json"]).output().await.unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["status"], "success");
    assert_eq!(rows[0]["tests_updated"], 5, "newest first: the second sync saw the 5 tests again");

    let path = lock_file(&account);
    let holder = hold_with_flock(&path).await;
    write_record(&path, holder.pid(), SystemTime::now());
    let status = command(&["status", "--db", db.to_str().unwrap()]).output().await.unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains(&format!("Sync lock: held by PID {}", holder.pid())), "{text}");
}
