//! This process's holds, by lock path. Syncs of one process share the process's hold
//! (one kernel lock, one heartbeat) and take turns on it, so they never time out against
//! their own process.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use super::{AcquireError, LockFacts, file, heartbeat, read_facts, record, unavailable};
use crate::model::Trigger;

/// The lock as this process holds it: the locked file, the queue of this process's
/// syncs, and the heartbeat that keeps the file's mtime fresh.
pub struct ProcessHold {
    file: File,
    path: PathBuf,
    pub turn: Arc<tokio::sync::Mutex<()>>,
    heartbeat: tokio::task::JoinHandle<()>,
}

static HOLDS: LazyLock<Mutex<HashMap<PathBuf, Weak<ProcessHold>>>> = LazyLock::new(Default::default);

/// Shares this process's hold, or takes the kernel lock; on success also returns what
/// the file held before (nothing, for a shared hold). The registry stays locked
/// throughout, so two syncs of this process never race each other for the kernel lock.
pub fn hold_or_take(path: &Path, beat_every: Duration) -> Result<(Arc<ProcessHold>, Option<LockFacts>), AcquireError> {
    let key = canonical(path)?;
    let mut holds = HOLDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(hold) = holds.get(&key).and_then(Weak::upgrade) {
        return Ok((hold, None));
    }
    let file = file::open(path).map_err(unavailable)?;
    if !file::try_lock(&file).map_err(|e| unavailable(file::named(path, e)))? {
        return Err(AcquireError::Held(read_facts(&file)));
    }
    let previous = read_facts(&file);
    let heartbeat = heartbeat::start(key.clone(), beat_every);
    let hold = Arc::new(ProcessHold { file, path: key.clone(), turn: Arc::default(), heartbeat });
    holds.insert(key, Arc::downgrade(&hold));
    Ok((hold, Some(previous)))
}

/// The same lock file may be named by different paths (`./db`, `/abs/db`).
fn canonical(path: &Path) -> Result<PathBuf, AcquireError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).map_err(|e| unavailable(file::named(path, e)))?;
    Ok(dir.join(path.file_name().unwrap_or_default()))
}

impl ProcessHold {
    pub fn write_record(&self, trigger: Trigger) -> std::io::Result<()> {
        record::write(&self.file, trigger)
    }
}

impl Drop for ProcessHold {
    fn drop(&mut self) {
        self.heartbeat.abort();
        // A clean release leaves an empty record; closing the file frees the kernel lock.
        if let Err(e) = record::clear(&self.file) {
            tracing::warn!("could not clear the sync lock's record: {}", file::named(&self.path, e));
        }
    }
}
