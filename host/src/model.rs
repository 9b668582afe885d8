//! The host's own words for a sync: what is asked, what came of it, and what the engine
//! reports on the way. The WIT types carry the same meanings across the boundary; they
//! are converted to and from these at one edge (`runtime` and `capabilities`), so the rest
//! of the host does not change when the contract does.

/// A point in time, in milliseconds since the Unix epoch (UTC).
pub type Timestamp = i64;

/// One step of a sync, in the order the engine runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Products,
    Features,
    NewTests,
    Bugs,
}

impl Phase {
    /// The name the sync log, `--json` and MCP use.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Products => "products",
            Phase::Features => "features",
            Phase::NewTests => "new_tests",
            Phase::Bugs => "bugs",
        }
    }
}

/// A kind of row a sync writes; `Scope::entity_types` limits a sync to some.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityKind {
    Products,
    Features,
    Tests,
    Bugs,
}

/// Who asked for a sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Cli,
    Scheduler,
    Mcp,
}

impl Trigger {
    /// The name the sync log and the lock record use.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Cli => "cli",
            Trigger::Scheduler => "scheduler",
            Trigger::Mcp => "mcp",
        }
    }

    pub fn named(name: &str) -> Option<Trigger> {
        [Trigger::Cli, Trigger::Scheduler, Trigger::Mcp].into_iter().find(|t| t.name() == name)
    }
}

/// What a sync covers; `None` means everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope {
    pub product_ids: Option<Vec<u64>>,
    /// Only tests that ended at or after this.
    pub since: Option<Timestamp>,
    pub entity_types: Option<Vec<EntityKind>>,
}

/// How a sync behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Options {
    /// Walk every page again and update every test.
    pub force_refresh: bool,
    /// Only discover new tests.
    pub incremental_only: bool,
    /// Start the scope afresh (rewrite it, then delete what the API no longer returns).
    pub nuke: bool,
    /// How old, in seconds, a live test's stored data may get before it is re-checked;
    /// `None`: never re-check.
    pub max_age_seconds: Option<u32>,
}

/// A sync someone asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncRequest {
    /// Empty means the engine's default phases.
    pub phases: Vec<Phase>,
    pub scope: Scope,
    pub options: Options,
    pub trigger: Trigger,
}

/// The most product ids a request may name. An account has tens of products; the bound
/// keeps a runaway list from filling the engine's memory (its cap is the host's to set).
pub const MAX_PRODUCT_IDS: usize = 10_000;

impl SyncRequest {
    /// Refuses, before it reaches the engine, a request larger than the host feeds an
    /// engine instance.
    pub fn check(&self) -> Result<(), SyncError> {
        match &self.scope.product_ids {
            Some(ids) if ids.len() > MAX_PRODUCT_IDS => Err(SyncError::InvalidRequest(format!(
                "{} product ids is more than the {MAX_PRODUCT_IDS} one sync takes; sync them in parts, or leave the \
                 list out to sync every product",
                ids.len()
            ))),
            _ => Ok(()),
        }
    }

    /// Products, features and new tests of `scope`: what the CLI, the scheduler and MCP run.
    pub fn default_phases(scope: Scope, options: Options, trigger: Trigger) -> Self {
        Self { phases: vec![Phase::Products, Phase::Features, Phase::NewTests], scope, options, trigger }
    }
}

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncResult {
    /// The phases that ran to completion without an error.
    pub phases_completed: Vec<Phase>,
    pub products_synced: u32,
    pub features_refreshed: u32,
    /// Tests written that were not stored before.
    pub tests_discovered: u32,
    /// Tests written that were stored before.
    pub tests_updated: u32,
    pub bugs_refreshed: u32,
    /// Live tests fetched again because their stored data was older than the limit.
    pub tests_rechecked: u32,
    /// Of those, the ones whose status had changed.
    pub tests_changed: u32,
    /// Rows deleted because the API no longer returns them.
    pub rows_removed: u32,
    pub duration_seconds: f64,
    pub warnings: Vec<String>,
    /// Parts of the scope whose data was lost; non-empty means a partial failure.
    pub errors: Vec<String>,
}

/// Why a sync did not run, or stopped as a whole; each message is for people.
#[derive(Clone, Debug, PartialEq)]
pub enum SyncError {
    LockBusy(String),
    /// The lock file could not be used at all.
    LockFailed(String),
    Unauthorized(String),
    Forbidden(String),
    InvalidRequest(String),
    StoreFailed(String),
    ApiFailed(String),
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::LockBusy(m) => write!(f, "sync lock busy: {m}"),
            SyncError::LockFailed(m) => write!(f, "sync lock error: {m}"),
            SyncError::Unauthorized(m) => write!(f, "token rejected: {m}"),
            SyncError::Forbidden(m) => write!(f, "access forbidden: {m}"),
            SyncError::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            SyncError::StoreFailed(m) => write!(f, "database error: {m}"),
            SyncError::ApiFailed(m) => write!(f, "Customer API error: {m}"),
        }
    }
}

/// How much one of the engine's log lines matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// Where a sync has got to within a phase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub phase: Phase,
    /// The product that just finished, if the update is about one.
    pub product_id: Option<u64>,
    pub done: u32,
    pub total: u32,
    /// Rows written so far in this phase.
    pub items: u32,
}
