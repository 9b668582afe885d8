//! This process's claims, one per (database, customer). Syncs of one process share the
//! claim's session (one advisory lock, one heartbeat) and take turns, so they never time
//! out against their own process. The session ends after the last of them lets go, in a
//! task; a sync of this process that asks meanwhile waits for that end, so it never finds
//! its own process holding the lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use super::LockKey;
use super::session::Session;

/// A process's claims. Tests make more than one to play several processes.
#[derive(Default)]
pub struct Claims(Mutex<HashMap<(String, LockKey), Arc<Claim>>>);

pub static PROCESS: LazyLock<Arc<Claims>> = LazyLock::new(Arc::default);

/// Sessions being ended (their record cleared, the lock let go), for [`settled`].
static ENDING: Mutex<Vec<tokio::task::JoinHandle<()>>> = Mutex::new(Vec::new());

/// Waits until every session this process was ending has ended, so that a command that
/// exits right after its sync leaves a clean record rather than one left behind.
pub async fn settled() {
    let ending = std::mem::take(&mut *ENDING.lock().unwrap_or_else(PoisonError::into_inner));
    for end in ending {
        let _ = end.await;
    }
}

impl Claims {
    /// The claim on `key` in the database `target` names.
    pub fn of(&self, target: &str, key: LockKey) -> Arc<Claim> {
        let mut claims = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        claims.entry((target.to_string(), key)).or_default().clone()
    }
}

#[derive(Default)]
pub struct Claim {
    /// The session while this process holds the lock.
    pub session: tokio::sync::Mutex<Option<Session>>,
    /// This process's syncs, one at a time.
    pub turn: Arc<tokio::sync::Mutex<()>>,
    /// Syncs that share the hold, running or waiting for their turn.
    users: AtomicUsize,
}

impl Claim {
    /// Counts a sync in; call with `session` locked and holding the lock.
    pub fn join(&self) {
        self.users.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a sync out; the last one out ends the session.
    pub fn leave(self: &Arc<Self>) {
        if self.users.fetch_sub(1, Ordering::SeqCst) != 1 {
            return;
        }
        let claim = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let end = runtime.spawn(async move { claim.end_unless_joined().await });
                let mut ending = ENDING.lock().unwrap_or_else(PoisonError::into_inner);
                // A long-running server ends many sessions: keep only those still ending.
                ending.retain(|e| !e.is_finished());
                ending.push(end);
            }
            // No runtime left to talk to the server: closing the connection frees the lock,
            // and the record shows as left behind.
            Err(_) => {
                if let Ok(mut session) = claim.session.try_lock() {
                    session.take();
                }
            }
        }
    }

    async fn end_unless_joined(&self) {
        let mut session = self.session.lock().await;
        if self.users.load(Ordering::SeqCst) == 0
            && let Some(ended) = session.take()
        {
            ended.end().await;
        }
    }
}
