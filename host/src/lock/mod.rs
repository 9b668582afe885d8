//! The cross-process sync lock: a kernel lock (flock) on `sync.lock` beside the database.
//! The kernel lock is the mutex; the file's content only says who holds it, for messages
//! and for the engine's staleness policy. The file is never unlinked, and only its holder
//! writes to it, so two processes can never both hold it.
//!
//! - `file`: opening the file and the kernel lock;
//! - `registry`: this process's holds, shared by its syncs, which take turns;
//! - `heartbeat`: the mtime the holder keeps fresh;
//! - `record`: the holder record's format;
//! - `process`: this process's identity, and whether a recorded process still runs.

mod file;
mod heartbeat;
pub mod pg;
pub(crate) mod process;
mod record;
mod registry;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::OwnedMutexGuard;

pub use process::ProcessState;
pub use record::{Holder, HolderRecord};

use crate::model::{Timestamp, Trigger};
use registry::ProcessHold;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// Everything the engine needs to judge a holder.
#[derive(Clone, Debug, PartialEq)]
pub struct LockFacts {
    pub holder: HolderRecord,
    pub process: ProcessState,
    /// The file's mtime, which the holder keeps fresh.
    pub heartbeat: Timestamp,
}

/// Why the lock could not be taken.
#[derive(Clone, Debug, PartialEq)]
pub enum AcquireError {
    /// Another process holds the kernel lock; these are the facts about it.
    Held(LockFacts),
    /// The lock file could not be created or opened; the message names the path.
    Unavailable(String),
}

/// The lock of one customer's syncs into one database, in the database's folder:
/// `sync.lock` for customer 1 of `cache.db` (where it has always been), `sync_7.lock` for
/// customer 7, and the database's file name in front for any other database
/// (`work.db.sync.lock`), so two databases in one folder never share a lock.
pub fn path_for(db: &Path, customer_id: i64) -> PathBuf {
    let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file = db.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = if file == "cache.db" { String::new() } else { format!("{file}.") };
    let name = if customer_id == 1 { "sync.lock".to_string() } else { format!("sync_{customer_id}.lock") };
    dir.join(prefix + &name)
}

/// How long one sync may still wait for another process to release a lock.
pub struct WaitBudget {
    wait: Duration,
    /// When the first wait began.
    since: Option<Instant>,
}

impl WaitBudget {
    pub fn new(wait: Duration) -> Self {
        Self { wait, since: None }
    }

    /// Sleeps one poll interval, or reports that the budget is spent. The budget is
    /// compared with the time spent, never added to a clock reading, so no wait overflows.
    pub async fn poll(&mut self) -> bool {
        let since = *self.since.get_or_insert_with(Instant::now);
        let left = self.wait.saturating_sub(since.elapsed());
        if left.is_zero() {
            return false;
        }
        tokio::time::sleep(POLL.min(left)).await;
        true
    }
}

/// One sync's claim on a file lock.
pub struct FileLock {
    path: PathBuf,
    budget: WaitBudget,
    held: Option<Held>,
}

/// Field order matters: the in-process turn ends before the process hold may drop.
struct Held {
    _turn: OwnedMutexGuard<()>,
    _hold: Arc<ProcessHold>,
}

impl FileLock {
    /// `wait` is how long `wait_for_release` may keep a sync waiting for another process.
    pub fn new(path: PathBuf, wait: Duration) -> Self {
        Self { path, budget: WaitBudget::new(wait), held: None }
    }

    /// Takes the lock without waiting for another process (see `sync-lock.acquire`),
    /// refreshing the heartbeat every `beat_every` while it is held.
    pub async fn acquire(&mut self, trigger: Trigger, beat_every: Duration) -> Result<LockFacts, AcquireError> {
        if self.held.is_some() {
            return Ok(clean_facts());
        }
        let (hold, previous) = registry::hold_or_take(&self.path, beat_every)?;
        let turn = hold.turn.clone().lock_owned().await;
        hold.write_record(trigger).map_err(|e| unavailable(file::named(&self.path, e)))?;
        self.held = Some(Held { _turn: turn, _hold: hold });
        Ok(previous.unwrap_or_else(clean_facts))
    }

    /// Sleeps one poll interval, or reports that the wait budget is spent.
    pub async fn wait_for_release(&mut self) -> bool {
        self.budget.poll().await
    }

    pub fn release(&mut self) {
        self.held = None;
    }
}

/// One sync's claim on its customer's lock, wherever the mirror is: a file lock beside a
/// SQLite database, or an advisory lock in a PostgreSQL one. The same calls either way.
pub enum SyncLock {
    File(FileLock),
    Postgres(pg::PgSyncLock),
}

impl SyncLock {
    /// A file lock at `path` (see [`path_for`]).
    pub fn file(path: PathBuf, wait: Duration) -> Self {
        Self::File(FileLock::new(path, wait))
    }

    pub async fn acquire(&mut self, trigger: Trigger, beat_every: Duration) -> Result<LockFacts, AcquireError> {
        match self {
            Self::File(lock) => lock.acquire(trigger, beat_every).await,
            Self::Postgres(lock) => lock.acquire(trigger, beat_every).await,
        }
    }

    pub async fn wait_for_release(&mut self) -> bool {
        match self {
            Self::File(lock) => lock.wait_for_release().await,
            Self::Postgres(lock) => lock.wait_for_release().await,
        }
    }

    pub fn release(&mut self) {
        match self {
            Self::File(lock) => lock.release(),
            Self::Postgres(lock) => lock.release(),
        }
    }

    /// Why the held lock was lost, once it was: a PostgreSQL lock dies with its connection,
    /// and another machine may take it. A file lock lasts as long as this process.
    pub fn lost(&self) -> Option<String> {
        match self {
            Self::File(_) => None,
            Self::Postgres(lock) => lock.lost(),
        }
    }
}

/// `e` names the lock file's path.
fn unavailable(e: std::io::Error) -> AcquireError {
    AcquireError::Unavailable(e.to_string())
}

/// What the lock file says, and what this machine knows about the process it names.
pub fn read_facts(file: &File) -> LockFacts {
    let heartbeat = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    let holder = record::read(file);
    let process = match &holder {
        HolderRecord::Written(h) => process::state_of(h),
        _ => ProcessState::Unknown,
    };
    LockFacts { holder, process, heartbeat }
}

/// The facts of a lock this process holds: nothing left behind.
fn clean_facts() -> LockFacts {
    LockFacts {
        holder: HolderRecord::Empty,
        process: ProcessState::Unknown,
        heartbeat: chrono::Utc::now().timestamp_millis(),
    }
}

/// The lock as `status` shows it: whether a process holds it, and what its file says.
pub struct LockState {
    pub held: bool,
    pub facts: LockFacts,
}

/// Looks at the lock without disturbing a holder: a free lock is taken and let go at once.
/// Errors name the path.
pub fn inspect(path: &Path) -> std::io::Result<Option<LockState>> {
    Ok(probe(path)?.map(|(file, held)| LockState { held, facts: read_facts(&file) }))
}

/// Whether a process (this one included) holds the lock; like [`inspect`], without reading who.
pub fn is_held(path: &Path) -> std::io::Result<bool> {
    Ok(probe(path)?.is_some_and(|(_, held)| held))
}

/// The lock file, if there is one, and whether another open file holds its kernel lock.
fn probe(path: &Path) -> std::io::Result<Option<(File, bool)>> {
    let Some(file) = file::open_existing(path)? else { return Ok(None) };
    let held = !file::try_lock(&file).map_err(|e| file::named(path, e))?;
    Ok(Some((file, held)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEAT: Duration = Duration::from_secs(30);

    fn lock_path() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.lock");
        (dir, path)
    }

    #[tokio::test]
    async fn the_holder_record_names_this_process_and_is_cleared_on_release() {
        let (_dir, path) = lock_path();
        let mut lock = FileLock::new(path.clone(), Duration::ZERO);
        let previous = lock.acquire(Trigger::Scheduler, BEAT).await.unwrap_or_else(|_| panic!("lock refused"));
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
        let mut first = FileLock::new(path.clone(), Duration::ZERO);
        assert!(first.acquire(Trigger::Cli, BEAT).await.is_ok());
        let mut second = FileLock::new(path.clone(), Duration::ZERO);
        let waiting = tokio::spawn(async move { second.acquire(Trigger::Mcp, BEAT).await.is_ok() });
        // The second sync is parked on the turn until the first lets go.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished(), "the second sync must wait for the first one's turn");
        first.release();
        assert!(waiting.await.unwrap(), "the second sync never timed out against its own process");
    }

    #[tokio::test]
    async fn any_wait_budget_counts_down_without_overflowing() {
        let (_dir, path) = lock_path();
        assert!(FileLock::new(path.clone(), Duration::MAX).wait_for_release().await, "a poll, not a panic");
        assert!(!FileLock::new(path, Duration::ZERO).wait_for_release().await, "no budget, no wait");
    }

    #[test]
    fn the_lock_file_sits_beside_the_database() {
        assert_eq!(path_for(Path::new("/data/cache.db"), 1), Path::new("/data/sync.lock"));
        assert_eq!(path_for(Path::new("cache.db"), 1), Path::new("./sync.lock"));
        assert_eq!(path_for(Path::new("/data/cache.db"), 7), Path::new("/data/sync_7.lock"));
        assert_eq!(path_for(Path::new("/data/work.db"), 1), Path::new("/data/work.db.sync.lock"));
        assert_eq!(path_for(Path::new("/data/work.db"), 7), Path::new("/data/work.db.sync_7.lock"));
    }
}
