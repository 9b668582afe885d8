//! The holder's heartbeat: the lock file's mtime, refreshed while the lock is held, so
//! that a reader can tell a live holder from a hung one.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use super::file;

/// Refreshes the file's mtime every `every` until the task is aborted. It opens the
/// file anew each time: a copy of the locked descriptor would keep the kernel lock alive
/// until the aborted task is dropped, and a flock is not released by closing another
/// descriptor of the same file. It opens it as every open does: never through a link.
pub fn start(path: PathBuf, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            if let Err(e) = touch(&path) {
                tracing::warn!("could not refresh the heartbeat of the sync lock: {e}");
            }
        }
    })
}

/// Sets the lock file's mtime to now; errors name the path.
fn touch(path: &Path) -> std::io::Result<()> {
    let file = file::open_existing(path)?.ok_or_else(|| file::named(path, ErrorKind::NotFound.into()))?;
    file.set_modified(SystemTime::now()).map_err(|e| file::named(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_heartbeat_refreshes_an_old_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.lock");
        let file = file::open(&path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(7200)).unwrap();
        let beat = start(path.clone(), Duration::from_millis(20));
        let fresh =
            || std::fs::metadata(&path).unwrap().modified().unwrap() > SystemTime::now() - Duration::from_secs(60);
        // The first tick fires at once; wait for its write, not for a fixed time.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !fresh() {
            assert!(std::time::Instant::now() < deadline, "the heartbeat never refreshed the mtime");
            tokio::task::yield_now().await;
        }
        beat.abort();
    }
}
