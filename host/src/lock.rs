//! The cross-process sync lock: a kernel lock (flock, through fd-lock) on a file beside
//! the database. The file is never unlinked or truncated by anyone but the holder, so
//! two processes can never both believe they hold it.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// Who holds the lock, as the holder wrote it into the lock file.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Holder {
    pub pid: u32,
    pub started_at: String,
    pub trigger: String,
    pub command: String,
}

impl Holder {
    fn this_process(trigger: &str) -> Self {
        let command = std::env::args()
            .map(|a| std::path::Path::new(&a).file_name().map_or(a.clone(), |n| n.to_string_lossy().into_owned()))
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            pid: std::process::id(),
            started_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            trigger: trigger.to_string(),
            command,
        }
    }

    pub fn describe(&self) -> String {
        format!("PID {} ({}, started {})", self.pid, self.command, self.started_at)
    }
}

pub enum AcquireError {
    Busy(String),
    Unavailable(String),
}

pub struct SyncLock {
    path: PathBuf,
    timeout: Duration,
    /// The open lock file while this process holds the lock; closing it releases the lock.
    held: Option<File>,
}

/// `sync.lock` in the database's folder.
pub fn path_beside(db: &Path) -> PathBuf {
    db.parent().unwrap_or(Path::new(".")).join("sync.lock")
}

impl SyncLock {
    pub fn new(path: PathBuf, timeout: Duration) -> Self {
        Self { path, timeout, held: None }
    }

    /// Tries at once; if another process holds the lock, says who and polls without
    /// blocking the runtime until the timeout.
    pub async fn acquire(&mut self, trigger: &str) -> Result<(), AcquireError> {
        let deadline = Instant::now() + self.timeout;
        let mut announced = false;
        loop {
            match self.try_acquire(trigger)? {
                None => return Ok(()),
                Some(holder) if Instant::now() >= deadline => {
                    return Err(AcquireError::Busy(format!(
                        "another sync holds the lock {}: {holder}; waited {}s",
                        self.path.display(),
                        self.timeout.as_secs()
                    )));
                }
                Some(holder) => {
                    if !announced {
                        tracing::warn!("Waiting for the sync lock held by {holder}…");
                        announced = true;
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// `Ok(None)` when the lock is now held; `Ok(Some(holder))` when another holds it.
    fn try_acquire(&mut self, trigger: &str) -> Result<Option<String>, AcquireError> {
        let unavailable = |e: std::io::Error| {
            AcquireError::Unavailable(format!("could not open the lock file {}: {e}", self.path.display()))
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(unavailable)?;
        let mut lock = fd_lock::RwLock::new(file);
        let mut guard = match lock.try_write() {
            Ok(guard) => guard,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Some(read_holder(&self.path))),
            Err(e) => return Err(unavailable(e)),
        };
        write_holder(&mut guard, &Holder::this_process(trigger)).map_err(unavailable)?;
        // The kernel lock belongs to the open file: keep the file, forget the guard, so
        // the lock lasts until `release` closes the file.
        std::mem::forget(guard);
        self.held = Some(lock.into_inner());
        Ok(None)
    }

    pub fn release(&mut self) {
        self.held = None;
    }
}

fn write_holder(file: &mut File, holder: &Holder) -> std::io::Result<()> {
    let record = serde_json::to_vec(holder)?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&record)?;
    file.flush()
}

fn read_holder(path: &Path) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    match read.ok().and_then(|_| serde_json::from_str::<Holder>(&text).ok()) {
        Some(holder) => holder.describe(),
        None => "a process that has not written its record yet".to_string(),
    }
}
