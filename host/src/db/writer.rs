//! The store on a thread of its own. Writes are queued and run in order while the
//! engine goes on fetching; reads queue behind them, so they see every earlier write.
//! A failed write is kept and reported by the next call, so none goes unnoticed.
//!
//! The writers of one database in one process (customers syncing side by side) take turns
//! at a gate, one job at a time, and the next one starts as soon as the last one is done.
//! Left to SQLite, a writer that finds the file locked sleeps in the busy handler, 1 ms at
//! first and up to 100 ms, between looks at a lock held for a millisecond or so. Writers in
//! other processes still meet in the busy handler. PostgreSQL takes concurrent writers
//! itself, so its writers need no gate.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use super::{LazyStore, Location, SyncStore};

type Job = Box<dyn FnOnce(&mut LazyStore) + Send>;

pub struct StoreWriter {
    jobs: Option<mpsc::Sender<Job>>,
    failure: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl StoreWriter {
    pub fn spawn(mut store: LazyStore) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let gate = gate(store.location());
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                for job in queue {
                    let _turn = gate.as_ref().map(|g| g.lock().unwrap_or_else(PoisonError::into_inner));
                    job(&mut store);
                }
            })
            .expect("could not start the store writer thread");
        Self { jobs: Some(jobs), failure: Arc::default(), thread: Some(thread) }
    }

    /// Queues a write. Fails at once if an earlier write failed.
    pub fn write(
        &self,
        write: impl FnOnce(&mut dyn SyncStore) -> Result<(), String> + Send + 'static,
    ) -> Result<(), String> {
        self.check()?;
        let failure = self.failure.clone();
        self.send(Box::new(move |store| {
            if let Err(e) = store.get().and_then(write) {
                failure.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(e);
            }
        }))
    }

    /// Runs `read` after every queued write and waits (without blocking the runtime)
    /// for its answer. Fails if any earlier write failed.
    pub async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&mut dyn SyncStore) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let value = self.read_own(read).await;
        self.check()?;
        value
    }

    /// Like [`Self::read`], but answers with this job's own result only: an earlier write's
    /// failure does not make it look failed (the next `write` or `read` still reports that
    /// one). For a job whose outcome must be told apart, such as recording a sync's start or
    /// end in the sync log: "could not record" only when that record failed.
    pub async fn read_own<T: Send + 'static>(
        &self,
        read: impl FnOnce(&mut dyn SyncStore) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.send(Box::new(move |store| {
            let _ = answer.send(store.get().and_then(read));
        }))?;
        answered.await.map_err(|_| "the store writer stopped".to_string())?
    }

    fn send(&self, job: Job) -> Result<(), String> {
        let jobs = self.jobs.as_ref().expect("present until drop");
        jobs.send(job).map_err(|_| "the store writer stopped".to_string())
    }

    fn check(&self) -> Result<(), String> {
        match self.failure.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

/// The gate of a SQLite file (as spelt: another spelling of the same file only falls back
/// on the busy handler); none for PostgreSQL.
fn gate(location: &Location) -> Option<Arc<Mutex<()>>> {
    static GATES: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let Location::Sqlite(path) = location else { return None };
    let mut gates = GATES.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    Some(gates.entry(path.clone()).or_default().clone())
}

/// Waits for the queued writes, so that a finished sync is on disk.
impl Drop for StoreWriter {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_answers_for_itself_after_an_earlier_write_failed() {
        let dir = tempfile::tempdir().unwrap();
        let writer = StoreWriter::spawn(LazyStore::new(crate::db::Location::Sqlite(dir.path().join("cache.db")), 1));
        writer.write(|_| Err("an earlier page could not be written".to_string())).unwrap();
        assert_eq!(writer.read_own(|_| Ok(7)).await, Ok(7), "its own result");
        assert_eq!(writer.read(|_| Ok(7)).await, Err("an earlier page could not be written".to_string()));
        assert_eq!(
            writer.read_own(|_| Err::<(), _>("its own failure".to_string())).await,
            Err("its own failure".into())
        );
    }
}
