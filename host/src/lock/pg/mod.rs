//! The sync lock of a PostgreSQL mirror, across machines: a session-level advisory lock
//! (`pg_try_advisory_lock`) on a key derived from the customer, taken on a dedicated
//! connection. The server frees it when the session ends, as the kernel frees a flock when
//! its process ends. The holder records itself in `sync_lock_holders` (host, PID, process
//! start, trigger, command) and refreshes the row's heartbeat while it holds the lock, so
//! the engine judges a PostgreSQL holder from the same facts as a file lock's. A holder on
//! another machine is `ProcessState::Unknown`: its PID cannot be checked from here.
//!
//! - `session`: the connection, its statements and the facts they read;
//! - `claim`: this process's holds, shared by its syncs, which take turns.

mod claim;
mod session;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::OwnedMutexGuard;

use super::{AcquireError, LockFacts, LockState, WaitBudget, clean_facts};
use crate::db::pg::PgTarget;
use crate::model::Trigger;
pub use claim::settled;
use claim::{Claim, Claims};
use session::{Attempt, Session};

/// One customer's lock in one database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LockKey {
    customer: i64,
    key: i64,
}

impl LockKey {
    /// A hash of the customer: any id fits (two `int4` keys would not hold an `i64`), and
    /// small keys that other applications use are avoided. Advisory locks are per database.
    pub fn of(customer: i64) -> Self {
        let digest = Sha256::digest([b"testio-sync/sync-lock/v1/".as_slice(), &customer.to_be_bytes()].concat());
        let mut first = [0; 8];
        first.copy_from_slice(&digest[..8]);
        Self { customer, key: i64::from_be_bytes(first) }
    }

    /// `pg_locks` shows a `bigint` key's high half as `classid` and its low half as `objid`.
    fn class_id(self) -> u32 {
        ((self.key as u64) >> 32) as u32
    }

    fn object_id(self) -> u32 {
        self.key as u64 as u32
    }
}

/// One sync's claim on a PostgreSQL lock; the same shape as the file lock's `SyncLock`.
pub struct PgSyncLock {
    target: Arc<PgTarget>,
    key: LockKey,
    budget: WaitBudget,
    claims: Arc<Claims>,
    /// A connection kept between tries while another process holds the lock.
    idle: Option<Session>,
    held: Option<Held>,
}

/// The in-process turn ends before the claim may end the session.
struct Held {
    turn: Option<OwnedMutexGuard<()>>,
    claim: Arc<Claim>,
    lost: Arc<OnceLock<String>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.turn.take());
        self.claim.leave();
    }
}

impl PgSyncLock {
    /// `wait` is how long `wait_for_release` may keep a sync waiting for another process.
    pub fn new(target: Arc<PgTarget>, customer_id: i64, wait: Duration) -> Self {
        Self::in_process(target, customer_id, wait, claim::PROCESS.clone())
    }

    fn in_process(target: Arc<PgTarget>, customer_id: i64, wait: Duration, claims: Arc<Claims>) -> Self {
        Self { target, key: LockKey::of(customer_id), budget: WaitBudget::new(wait), claims, idle: None, held: None }
    }

    /// Takes the lock without waiting for another process (see `sync-lock.acquire`),
    /// refreshing the heartbeat every `beat_every` while it is held.
    pub async fn acquire(&mut self, trigger: Trigger, beat_every: Duration) -> Result<LockFacts, AcquireError> {
        if self.held.is_some() {
            return Ok(clean_facts());
        }
        let claim = self.claims.of(&self.target.to_string(), self.key);
        let (previous, lost) = self.take_or_share(&claim, trigger, beat_every).await?;
        let turn = claim.turn.clone().lock_owned().await;
        let held = Held { turn: Some(turn), claim: claim.clone(), lost };
        if previous.is_none() {
            // The hold is this process's already: name this sync in the record.
            let session = claim.session.lock().await;
            let written = match session.as_ref() {
                Some(session) => session.write_record(trigger).await,
                None => Err(anyhow::anyhow!("the lock's session ended")),
            };
            written.map_err(|e| AcquireError::Unavailable(format!("{e:#}")))?;
        }
        self.held = Some(held);
        Ok(previous.unwrap_or_else(clean_facts))
    }

    /// Shares this process's hold, or takes the lock; on taking it, also returns what the
    /// table held before. The claim's session stays locked throughout, so two syncs of this
    /// process never race each other for the lock.
    async fn take_or_share(
        &mut self,
        claim: &Claim,
        trigger: Trigger,
        beat_every: Duration,
    ) -> Result<(Option<LockFacts>, Arc<OnceLock<String>>), AcquireError> {
        let mut shared = claim.session.lock().await;
        if let Some(session) = shared.as_ref() {
            claim.join();
            return Ok((None, session.lost()));
        }
        let mut session = match self.idle.take() {
            Some(session) => session,
            None => Session::open(self.target.clone(), self.key).await.map_err(unavailable)?,
        };
        match session.try_take(trigger).await.map_err(unavailable)? {
            Attempt::Taken(previous) => {
                session.beat(beat_every);
                let lost = session.lost();
                *shared = Some(session);
                claim.join();
                Ok((Some(previous), lost))
            }
            Attempt::Busy => {
                let state = session.state().await.map_err(unavailable)?;
                self.idle = Some(session);
                Err(AcquireError::Held(state.facts))
            }
        }
    }

    /// Sleeps one poll interval, or reports that the wait budget is spent.
    pub async fn wait_for_release(&mut self) -> bool {
        self.budget.poll().await
    }

    pub fn release(&mut self) {
        self.held = None;
        self.idle = None;
    }

    /// Why the held lock was lost (its connection ended), once it was; writes must stop.
    pub fn lost(&self) -> Option<String> {
        self.held.as_ref().and_then(|h| h.lost.get().cloned())
    }
}

/// A lock that could not be tried: the message names the server and database.
fn unavailable(e: anyhow::Error) -> AcquireError {
    AcquireError::Unavailable(format!("could not use the sync lock: {e:#}"))
}

/// The lock as `status` shows it, without disturbing a holder; `None` for a database no
/// sync has used yet.
pub async fn inspect(target: &PgTarget, customer_id: i64) -> anyhow::Result<Option<LockState>> {
    session::inspect(target, LockKey::of(customer_id)).await
}

#[cfg(test)]
mod tests;
