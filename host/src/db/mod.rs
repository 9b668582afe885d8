//! The SQLite store: connection set-up, migrations, and the repositories the
//! capabilities use.

pub mod backend;
pub mod bugs;
pub mod columns;
pub mod coverage;
pub mod customers;
pub mod location;
pub mod pg;
mod portable;
pub mod problems;
pub mod recheck;
mod schema;
mod sqlite;
pub mod status;
pub mod sweep;
pub mod sync_log;
pub mod writer;
pub mod writes;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub use backend::SyncStore;
pub use location::Location;

/// The store for one customer's rows in one database file.
pub struct Store {
    conn: Connection,
    customer_id: i64,
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path, customer_id: i64) -> anyhow::Result<Self> {
        Self::open_with(path, customer_id, OpenFlags::SQLITE_OPEN_CREATE)
    }

    /// Opens a database that must already exist, bringing its schema up to date.
    pub fn open_existing(path: &Path, customer_id: i64) -> anyhow::Result<Self> {
        Self::open_with(path, customer_id, OpenFlags::empty())
    }

    fn open_with(path: &Path, customer_id: i64, create: OpenFlags) -> anyhow::Result<Self> {
        Ok(Self { conn: connect(path, create)?, customer_id })
    }

    pub fn customer_id(&self) -> i64 {
        self.customer_id
    }
}

/// Opens an existing database and brings its schema up to date, without reading any rows:
/// a sync does this before it starts, so that a database it cannot use is one error, up front.
pub fn upgrade(path: &Path) -> anyhow::Result<()> {
    connect(path, OpenFlags::empty()).map(drop)
}

fn connect(path: &Path, create: OpenFlags) -> anyhow::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | create;
    let mut conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("could not open the database {}", path.display()))?;
    configure(&mut conn).with_context(|| format!("could not configure the database {}", path.display()))?;
    migrate(&conn).with_context(|| format!("could not migrate the database {}", path.display()))?;
    Ok(conn)
}

/// WAL with `synchronous=NORMAL`: a commit survives a crash of this process, and the
/// database stays consistent on power loss (the last commits may be lost, and the next
/// sync fetches them again), without an fsync per page. Write transactions take the write
/// lock when they begin: one that read first and then had to upgrade would get "database
/// is locked" at once, without waiting, when another customer's sync wrote in between.
fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    use_wal(conn)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 16384)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// How long a write waits for another connection's transaction. Syncs of different
/// customers write the same file at once; their transactions last milliseconds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Switching a new database to WAL needs it alone for a moment, and SQLite answers
/// "busy" at once rather than wait (another connection may be creating it too): wait
/// here, within the busy timeout.
fn use_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            done => return done,
        }
    }
}

fn migrate(conn: &Connection) -> anyhow::Result<()> {
    if schema_version(conn)? == schema::MIGRATIONS.len() {
        return Ok(());
    }
    // Another connection (a sync, a status read) may be migrating the same new file right
    // now: take the write lock first, then look again at what is applied.
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let applied = schema_version(&tx)?;
    for (index, sql) in schema::MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(sql).map_err(|e| anyhow::anyhow!("migration {} failed: {}", index + 1, sqlite_reason(&e)))?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
    }
    Ok(tx.commit()?)
}

/// SQLite's reason for an error, without the statements it quotes (a whole migration).
fn sqlite_reason(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqlInputError { msg, error, .. } => format!("{msg} (SQLite error {})", error.extended_code),
        other => other.to_string(),
    }
}

fn schema_version(conn: &Connection) -> anyhow::Result<usize> {
    let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    anyhow::ensure!(
        applied <= schema::MIGRATIONS.len(),
        "the database was written by a newer testio-sync (schema version {applied}, this one knows {})",
        schema::MIGRATIONS.len()
    );
    Ok(applied)
}

/// The database, opened on first use, so that a sync refused before any write (a
/// rejected token, a busy lock) never creates or touches it.
pub struct LazyStore {
    location: Location,
    customer_id: i64,
    store: Option<Box<dyn SyncStore>>,
}

impl LazyStore {
    pub fn new(location: Location, customer_id: i64) -> Self {
        Self { location, customer_id, store: None }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn get(&mut self) -> Result<&mut dyn SyncStore, String> {
        if self.store.is_none() {
            self.store = Some(self.location.open(self.customer_id).map_err(|e| format!("{e:#}"))?);
        }
        Ok(self.store.as_deref_mut().expect("opened above"))
    }
}

/// Deletes a database file with its WAL and shared-memory files; missing ones are fine.
pub fn remove_database(db: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;

    #[test]
    fn connections_opening_a_new_database_at_once_migrate_it_once() {
        for _ in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("cache.db");
            let start = Arc::new(Barrier::new(4));
            let openers: Vec<_> = (0..4)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Store::open(&path, 1).map(|_| ()).map_err(|e| format!("{e:#}"))
                    })
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
            let store = Store::open_existing(&path, 1).unwrap();
            assert_eq!(schema_version(&store.conn).unwrap(), schema::MIGRATIONS.len());
        }
    }
}
