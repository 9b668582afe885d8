//! The cross-process sync lock: a kernel lock (flock, through fd-lock) on `sync.lock`
//! beside the database. The kernel lock is the mutex; the file's content only says who
//! holds it, for messages and for the engine's staleness policy. The file is never
//! unlinked, and only its holder writes to it, so two processes can never both hold it.
//!
//! Syncs of one process share the process's hold: the second waits its turn in-process
//! and never times out against its own process.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};
use tokio::sync::OwnedMutexGuard;

use crate::bindings::sync_lock::{AcquireError, Holder, HolderRecord, LockFacts, ProcessState};
use crate::bindings::types::Trigger;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// Well inside the engine's one-hour staleness limit, and cheap.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// Every record is written as one block of this size, so a reader never sees a new
/// record mixed with the tail of a longer old one.
const RECORD_BLOCK: usize = 1024;

/// `sync.lock` in the database's folder.
pub fn path_beside(db: &Path) -> PathBuf {
    db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).join("sync.lock")
}

/// One sync's claim on the lock.
pub struct SyncLock {
    path: PathBuf,
    wait: Duration,
    deadline: Option<Instant>,
    held: Option<Held>,
}

/// Field order matters: the in-process turn ends before the process hold may drop.
struct Held {
    _turn: OwnedMutexGuard<()>,
    _hold: Arc<ProcessHold>,
}

impl SyncLock {
    /// `wait` is how long `wait_for_release` may keep a sync waiting for another process.
    pub fn new(path: PathBuf, wait: Duration) -> Self {
        Self { path, wait, deadline: None, held: None }
    }

    /// Takes the lock without waiting for another process; see `sync-lock.acquire`.
    pub async fn acquire(&mut self, trigger: Trigger) -> Result<LockFacts, AcquireError> {
        if self.held.is_some() {
            return Ok(clean_facts());
        }
        let (hold, previous) = hold_or_take(&self.path)?;
        let turn = hold.turn.clone().lock_owned().await;
        hold.write_record(trigger).map_err(|e| unavailable(&self.path, e))?;
        self.held = Some(Held { _turn: turn, _hold: hold });
        Ok(previous)
    }

    /// Sleeps one poll interval, or reports that the wait budget is spent.
    pub async fn wait_for_release(&mut self) -> bool {
        let deadline = *self.deadline.get_or_insert_with(|| Instant::now() + self.wait);
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
        true
    }

    pub fn release(&mut self) {
        self.held = None;
    }
}

/// The lock as this process holds it: the locked file, the queue of this process's
/// syncs, and the heartbeat that keeps the file's mtime fresh.
struct ProcessHold {
    file: File,
    turn: Arc<tokio::sync::Mutex<()>>,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// The holds of this process, by lock path.
static HOLDS: LazyLock<Mutex<HashMap<PathBuf, Weak<ProcessHold>>>> = LazyLock::new(Default::default);

/// Shares this process's hold, or takes the kernel lock; on success also returns what
/// the file held before. The registry stays locked throughout, so two syncs of this
/// process never race each other for the kernel lock.
fn hold_or_take(path: &Path) -> Result<(Arc<ProcessHold>, LockFacts), AcquireError> {
    let key = canonical(path)?;
    let mut holds = HOLDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(hold) = holds.get(&key).and_then(Weak::upgrade) {
        return Ok((hold, clean_facts()));
    }
    let file = open(path).map_err(|e| unavailable(path, e))?;
    let file = match try_lock(file) {
        Ok(file) => file,
        Err((file, e)) if e.kind() == ErrorKind::WouldBlock => return Err(AcquireError::Held(read_facts(&file))),
        Err((_, e)) => return Err(unavailable(path, e)),
    };
    let previous = read_facts(&file);
    let hold = Arc::new(ProcessHold::start(file, key.clone(), HEARTBEAT));
    holds.insert(key, Arc::downgrade(&hold));
    Ok((hold, previous))
}

/// The same lock file may be named by different paths (`./db`, `/abs/db`).
fn canonical(path: &Path) -> Result<PathBuf, AcquireError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).map_err(|e| unavailable(path, e))?;
    Ok(dir.join(path.file_name().unwrap_or_default()))
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)
}

/// Takes the kernel lock on `file` without waiting. The lock belongs to the open file:
/// the guard is forgotten, and closing the file releases the lock.
fn try_lock(file: File) -> Result<File, (File, std::io::Error)> {
    let mut lock = fd_lock::RwLock::new(file);
    let taken = lock.try_write().map(std::mem::forget);
    match taken {
        Ok(()) => Ok(lock.into_inner()),
        Err(e) => Err((lock.into_inner(), e)),
    }
}

fn unavailable(path: &Path, e: std::io::Error) -> AcquireError {
    AcquireError::Unavailable(format!("could not use the lock file {}: {e}", path.display()))
}

impl ProcessHold {
    /// The heartbeat opens the file anew each time: a copy of the locked descriptor
    /// would keep the kernel lock alive until the aborted task is dropped, and flock
    /// locks are not released by closing another descriptor of the same file.
    fn start(file: File, path: PathBuf, every: Duration) -> Self {
        let heartbeat = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                let touched =
                    OpenOptions::new().write(true).open(&path).and_then(|f| f.set_modified(SystemTime::now()));
                if let Err(e) = touched {
                    tracing::warn!("could not refresh the heartbeat of the sync lock {}: {e}", path.display());
                }
            }
        });
        Self { file, turn: Default::default(), heartbeat }
    }

    fn write_record(&self, trigger: Trigger) -> std::io::Result<()> {
        let record = Record::of_this_process(trigger);
        self.file.write_at(&block(&serde_json::to_vec(&record)?), 0)?;
        self.file.set_len(RECORD_BLOCK as u64)
    }
}

impl Drop for ProcessHold {
    fn drop(&mut self) {
        self.heartbeat.abort();
        // A clean release leaves an empty record; closing the file frees the kernel lock.
        if let Err(e) = self.file.write_at(&block(b""), 0) {
            tracing::warn!("could not clear the sync lock's record: {e}");
        }
    }
}

/// `content` padded with spaces to the record block, ending in a newline.
fn block(content: &[u8]) -> Vec<u8> {
    let mut block = content.to_vec();
    block.resize(RECORD_BLOCK - 1, b' ');
    block.push(b'\n');
    block
}

/// The holder record as it sits in the file: JSON that people can read too.
#[derive(Serialize, Deserialize)]
struct Record {
    pid: u32,
    process_started_at: String,
    host_name: String,
    acquired_at: String,
    trigger: String,
    command: String,
}

impl Record {
    fn of_this_process(trigger: Trigger) -> Self {
        Self {
            pid: std::process::id(),
            process_started_at: iso(*PROCESS_STARTED_AT),
            host_name: HOST_NAME.clone(),
            acquired_at: iso(Utc::now().timestamp_millis()),
            trigger: trigger_name(trigger).to_string(),
            command: short_command_line(),
        }
    }

    fn to_holder(&self) -> Option<Holder> {
        Some(Holder {
            pid: self.pid,
            process_started_at: parse_iso(&self.process_started_at)?,
            host_name: self.host_name.clone(),
            acquired_at: parse_iso(&self.acquired_at)?,
            trigger: trigger_named(&self.trigger)?,
            command: self.command.clone(),
        })
    }
}

/// `testio-sync sync`: the program's file name and its subcommand.
fn short_command_line() -> String {
    std::env::args()
        .take(2)
        .map(|a| Path::new(&a).file_name().map_or(a.clone(), |n| n.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn trigger_name(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Cli => "cli",
        Trigger::Scheduler => "scheduler",
        Trigger::Mcp => "mcp",
    }
}

fn trigger_named(name: &str) -> Option<Trigger> {
    [Trigger::Cli, Trigger::Scheduler, Trigger::Mcp].into_iter().find(|t| trigger_name(*t) == name)
}

fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_iso(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

static HOST_NAME: LazyLock<String> = LazyLock::new(|| System::host_name().unwrap_or_else(|_| "unknown".into()));

/// This process's start time as the kernel reports it, so a later reader can compare.
static PROCESS_STARTED_AT: LazyLock<i64> = LazyLock::new(|| {
    let pid = Pid::from_u32(std::process::id());
    process_start_seconds(pid).map_or_else(|| Utc::now().timestamp_millis(), |s| s * 1000)
});

fn process_start_seconds(pid: Pid) -> Option<i64> {
    let mut system = System::new().ok()?;
    system.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, ProcessRefreshKind::nothing());
    let process = system.process(pid)?;
    (process.status() != ProcessStatus::Zombie).then(|| process.start_time() as i64)
}

/// What the lock file says, and what this machine knows about the process it names.
pub fn read_facts(file: &File) -> LockFacts {
    let heartbeat = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    let holder = read_holder(file);
    let process = match &holder {
        HolderRecord::Written(h) => process_state(h),
        _ => ProcessState::Unknown,
    };
    LockFacts { holder, process, heartbeat }
}

fn read_holder(file: &File) -> HolderRecord {
    let mut bytes = vec![0; 4 * RECORD_BLOCK];
    let read = match file.read_at(&mut bytes, 0) {
        Ok(n) => n,
        Err(e) => return HolderRecord::Unreadable(format!("could not read it: {e}")),
    };
    let text = String::from_utf8_lossy(&bytes[..read]);
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if text.is_empty() {
        return HolderRecord::Empty;
    }
    match serde_json::from_str::<Record>(text).ok().and_then(|r| r.to_holder()) {
        Some(holder) => HolderRecord::Written(holder),
        None => HolderRecord::Unreadable(excerpt(text)),
    }
}

/// A short, printable excerpt of unexpected content.
fn excerpt(text: &str) -> String {
    let shown: String = text.chars().take(40).flat_map(char::escape_default).collect();
    let more = if text.chars().count() > 40 { "…" } else { "" };
    format!("\"{shown}{more}\"")
}

fn process_state(holder: &Holder) -> ProcessState {
    if holder.host_name != *HOST_NAME {
        return ProcessState::Unknown;
    }
    match process_start_seconds(Pid::from_u32(holder.pid)) {
        None => ProcessState::NotRunning,
        // The kernel reports start times in whole seconds.
        Some(started) if (started - holder.process_started_at.div_euclid(1000)).abs() <= 1 => ProcessState::Running,
        Some(_) => ProcessState::PidReused,
    }
}

fn clean_facts() -> LockFacts {
    LockFacts { holder: HolderRecord::Empty, process: ProcessState::Unknown, heartbeat: Utc::now().timestamp_millis() }
}

/// The lock as `status` shows it: whether a process holds it, and what its file says.
pub struct LockState {
    pub held: bool,
    pub facts: LockFacts,
}

/// Looks at the lock without disturbing a holder: a free lock is taken and let go at once.
pub fn inspect(path: &Path) -> std::io::Result<Option<LockState>> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        other => other?,
    };
    let (held, file) = match try_lock(file) {
        Ok(file) => (false, file),
        Err((file, e)) if e.kind() == ErrorKind::WouldBlock => (true, file),
        Err((_, e)) => return Err(e),
    };
    Ok(Some(LockState { held, facts: read_facts(&file) }))
}

/// One line about a holder record, for `status`.
pub fn describe_record(record: &HolderRecord) -> String {
    match record {
        HolderRecord::Empty => "no record".to_string(),
        HolderRecord::Unreadable(text) => format!("an unreadable record ({text})"),
        HolderRecord::Written(h) => format!(
            "PID {} on {} ({}, trigger {}, since {})",
            h.pid,
            h.host_name,
            h.command,
            trigger_name(h.trigger),
            iso(h.acquired_at)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock_path() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.lock");
        (dir, path)
    }

    #[tokio::test]
    async fn the_holder_record_names_this_process_and_is_cleared_on_release() {
        let (_dir, path) = lock_path();
        let mut lock = SyncLock::new(path.clone(), Duration::ZERO);
        let previous = lock.acquire(Trigger::Scheduler).await.unwrap_or_else(|_| panic!("lock refused"));
        assert!(matches!(previous.holder, HolderRecord::Empty));
        let state = inspect(&path).unwrap().unwrap();
        assert!(state.held);
        let HolderRecord::Written(holder) = state.facts.holder else { panic!("no record") };
        assert_eq!((holder.pid, holder.trigger), (std::process::id(), Trigger::Scheduler));
        assert_eq!(state.facts.process, ProcessState::Running);
        lock.release();
        let state = inspect(&path).unwrap().unwrap();
        assert!(!state.held);
        assert!(matches!(state.facts.holder, HolderRecord::Empty));
    }

    #[tokio::test]
    async fn syncs_of_one_process_share_its_hold_and_take_turns() {
        let (_dir, path) = lock_path();
        let mut first = SyncLock::new(path.clone(), Duration::ZERO);
        assert!(first.acquire(Trigger::Cli).await.is_ok());
        let mut second = SyncLock::new(path.clone(), Duration::ZERO);
        let waiting = tokio::spawn(async move { second.acquire(Trigger::Mcp).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the second sync must wait for the first one's turn");
        first.release();
        assert!(waiting.await.unwrap(), "the second sync never timed out against its own process");
    }

    #[tokio::test]
    async fn the_heartbeat_refreshes_an_old_mtime() {
        let (_dir, path) = lock_path();
        let file = open(&path).unwrap();
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        file.set_modified(two_hours_ago).unwrap();
        let _hold = ProcessHold::start(file, path.clone(), Duration::from_millis(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert!(modified > SystemTime::now() - Duration::from_secs(60));
    }

    #[test]
    fn records_that_are_not_ours_are_unreadable_not_trusted() {
        let (_dir, path) = lock_path();
        for (content, expected) in [
            ("", None),
            ("   \n", None),
            ("PID: 1234\nSTARTED: 2026-01-01\n", Some("\"PID: 1234\\nSTARTED: 2026-01-01\"")),
            ("{\"pid\": 1}", Some("\"{\\\"pid\\\": 1}\"")),
        ] {
            std::fs::write(&path, content).unwrap();
            let facts = read_facts(&File::open(&path).unwrap());
            match (facts.holder, expected) {
                (HolderRecord::Empty, None) => {}
                (HolderRecord::Unreadable(text), Some(expected)) => assert_eq!(text, expected),
                (other, _) => panic!("{content:?} read as {other:?}"),
            }
        }
    }

    #[test]
    fn the_lock_file_sits_beside_the_database() {
        assert_eq!(path_beside(Path::new("/data/cache.db")), Path::new("/data/sync.lock"));
        assert_eq!(path_beside(Path::new("cache.db")), Path::new("./sync.lock"));
    }
}
