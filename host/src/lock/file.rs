//! The lock file itself: opening it, and the kernel lock (flock) on it. The kernel lock
//! belongs to the open file: closing the file releases it, and it dies with the process.
//!
//! The holder writes its record into the file, often as root in a shared folder, so the
//! file is opened without following a symbolic link (`O_NOFOLLOW`) and must be a regular
//! file: a link planted there must never lead the write to another file. Every error names
//! the path.

use std::fs::{File, FileType, OpenOptions, TryLockError};
use std::io::{Error, ErrorKind};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Opens (creating if needed, never truncating) the lock file, private to its owner.
pub fn open(path: &Path) -> std::io::Result<File> {
    let opened = options().create(true).truncate(false).mode(0o600).open(path);
    regular(path, opened)
}

/// Opens an existing lock file without creating one; `None` when there is none.
pub fn open_existing(path: &Path) -> std::io::Result<Option<File>> {
    match options().open(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        opened => regular(path, opened).map(Some),
    }
}

fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).write(true).custom_flags(libc::O_NOFOLLOW);
    options
}

/// The opened file if it is a regular file; otherwise an error that says what is there.
fn regular(path: &Path, opened: std::io::Result<File>) -> std::io::Result<File> {
    let file = opened.map_err(|e| match e.raw_os_error() {
        // What O_NOFOLLOW answers for a link.
        Some(libc::ELOOP) => refused(path, "a symbolic link, which a sync never follows"),
        Some(libc::EISDIR) => refused(path, "a folder"),
        _ => named(path, e),
    })?;
    let kind = file.metadata().map_err(|e| named(path, e))?.file_type();
    if kind.is_file() { Ok(file) } else { Err(refused(path, &format!("{}, not a regular file", kind_of(kind)))) }
}

fn refused(path: &Path, what: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("the lock file {} is {what}; remove it", path.display()))
}

fn kind_of(kind: FileType) -> &'static str {
    match kind {
        k if k.is_fifo() => "a FIFO",
        k if k.is_socket() => "a socket",
        k if k.is_char_device() || k.is_block_device() => "a device",
        _ => "something else",
    }
}

/// The error with the lock file's path in its message.
pub fn named(path: &Path, e: Error) -> Error {
    Error::new(e.kind(), format!("could not use the lock file {}: {e}", path.display()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_or_a_folder_is_refused_naming_the_path_and_the_target_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let (path, target) = (dir.path().join("sync.lock"), dir.path().join("precious"));
        std::fs::write(&target, "keep me").unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        for result in [open(&path).map(drop), open_existing(&path).map(drop)] {
            let message = result.unwrap_err().to_string();
            assert!(message.contains(&format!("{} is a symbolic link", path.display())), "{message}");
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let message = open(&path).unwrap_err().to_string();
        assert!(message.contains(&format!("{} is a folder", path.display())), "{message}");
    }
}
