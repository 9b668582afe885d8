//! Where the mirror lives: a SQLite file, or a PostgreSQL database that several machines
//! share. The one place that opens a store and makes a sync lock for either; everything
//! above it works the same against both.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::SyncStore;
use super::pg::{PgStore, PgTarget};
use crate::lock::{self, LockState, SyncLock};

#[derive(Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(Arc<PgTarget>),
}

impl Location {
    /// One customer's store, creating a SQLite file if needed, its schema brought up to
    /// date. Blocking: call it on the store-writer thread or in `spawn_blocking`.
    pub fn open(&self, customer_id: i64) -> anyhow::Result<Box<dyn SyncStore>> {
        Ok(match self {
            Self::Sqlite(path) => Box::new(super::Store::open(path, customer_id)?),
            Self::Postgres(target) => Box::new(PgStore::open(target.clone(), customer_id)?),
        })
    }

    /// Brings an existing mirror's schema up to date, reading no rows, so that one this
    /// binary cannot reach or use is one error before any sync starts. Blocking.
    pub fn upgrade(&self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(path) if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) => super::upgrade(path),
            Self::Sqlite(_) => Ok(()),
            Self::Postgres(target) => super::pg::upgrade(target),
        }
    }

    /// A store to read; `None` when there is no SQLite file yet (nothing synced). Blocking.
    pub fn open_existing(&self, customer_id: i64) -> anyhow::Result<Option<Box<dyn SyncStore>>> {
        match self {
            Self::Sqlite(path) if !path.is_file() => Ok(None),
            Self::Sqlite(path) => Ok(Some(Box::new(super::Store::open_existing(path, customer_id)?))),
            Self::Postgres(_) => self.open(customer_id).map(Some),
        }
    }

    /// One sync's claim on `customer_id`'s lock; `wait` is how long it may wait for another.
    pub fn sync_lock(&self, customer_id: i64, wait: Duration) -> SyncLock {
        match self {
            Self::Sqlite(path) => SyncLock::file(lock::path_for(path, customer_id), wait),
            Self::Postgres(target) => SyncLock::Postgres(lock::pg::PgSyncLock::new(target.clone(), customer_id, wait)),
        }
    }

    /// The lock of `customer_id` as `status` shows it, without disturbing a holder; `None`
    /// when no sync ever took it.
    pub async fn lock_state(&self, customer_id: i64) -> anyhow::Result<Option<LockState>> {
        match self {
            Self::Sqlite(path) => Ok(lock::inspect(&lock::path_for(path, customer_id))?),
            Self::Postgres(target) => lock::pg::inspect(target, customer_id).await,
        }
    }

    /// Whether a process holds `customer_id`'s lock. Blocking, like [`Self::open`], and within
    /// the runtime (in `spawn_blocking` or `block_in_place`): it runs beside a store's reads.
    pub fn is_held(&self, customer_id: i64) -> anyhow::Result<bool> {
        match self {
            Self::Sqlite(path) => Ok(lock::is_held(&lock::path_for(path, customer_id))?),
            Self::Postgres(_) => {
                let state = tokio::runtime::Handle::current().block_on(self.lock_state(customer_id))?;
                Ok(state.is_some_and(|s| s.held))
            }
        }
    }
}

/// The file's path, or the server and database (never the password).
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(target) => write!(f, "{target}"),
        }
    }
}
