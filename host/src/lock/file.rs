//! The lock file itself: opening it, and the kernel lock (flock) on it. The kernel lock
//! belongs to the open file: closing the file releases it, and it dies with the process.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens (creating if needed, never truncating) the lock file, private to its owner.
pub fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)
}

/// Opens an existing lock file without creating one; `None` when there is none.
pub fn open_existing(path: &Path) -> std::io::Result<Option<File>> {
    match OpenOptions::new().read(true).write(true).open(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        other => other.map(Some),
    }
}

/// Takes the kernel lock without waiting: `Ok(true)` when taken, `Ok(false)` when
/// another open file (another process) holds it.
pub fn try_lock(file: &File) -> std::io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(e),
    }
}
