//! What the capabilities and the read commands need of a store, whichever database holds
//! the mirror: SQLite ([`super::Store`], `sqlite.rs`) or PostgreSQL ([`super::pg::PgStore`]).
//!
//! One value serves one customer's rows over one connection. Every write is one
//! transaction. The trait is synchronous and object-safe: a store runs on the store-writer
//! thread or inside `spawn_blocking`, never on an async thread. Errors are one line that
//! already says what failed (for PostgreSQL: which server and database); callers add what
//! they were doing.

use super::bugs::BugCandidate;
use super::coverage::TestsCoverage;
use super::problems::{ProblemReport, ProblemRow};
use super::recheck::StoredTest;
use super::status::SyncRecord;
use super::writes::Placement;
use crate::api::{BugRecord, ProductRecord, TestRecord};
use anyhow::Result;

use crate::model::{EntityKind, SyncError, SyncResult, Timestamp};

pub trait SyncStore: Send {
    /// The local customer whose rows this store reads and writes.
    fn customer_id(&self) -> i64;

    // The engine's writes (`capabilities/store.rs`).
    fn write_products(&mut self, products: &[&ProductRecord]) -> Result<()>;
    fn write_features(&mut self, product_id: u64, features: &[Placement]) -> Result<()>;
    fn write_tests(&mut self, product_id: u64, tests: &[&TestRecord]) -> Result<()>;
    /// Replaces the bugs of `test_ids` with `bugs` and marks those tests' bugs as synced.
    fn write_bugs(&mut self, bugs: &[&BugRecord], test_ids: &[u64]) -> Result<()>;
    fn set_tests_coverage(&mut self, product_id: u64, coverage: TestsCoverage) -> Result<()>;
    fn add_problem_range(&mut self, report: &ProblemReport, seen_at: Timestamp) -> Result<()>;
    fn update_problem_range(
        &mut self,
        id: u64,
        report: &ProblemReport,
        attempts: u32,
        seen_at: Timestamp,
    ) -> Result<()>;
    fn clear_problem_range(&mut self, id: u64) -> Result<()>;
    /// Deletes these tests with their features, platforms and bugs; how many rows went.
    fn remove_tests(&mut self, ids: &[u64]) -> Result<u32>;
    /// Deletes the rows of `kind` in scope last written before `written_before`, with what
    /// belongs to them; how many rows went, over every table.
    fn sweep(
        &mut self,
        kind: EntityKind,
        product_ids: Option<&[u64]>,
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> Result<u32>;

    // The engine's reads.
    /// The ids among `ids` that are already stored, in the order asked.
    fn known_tests(&mut self, ids: &[u64]) -> Result<Vec<u64>>;
    /// One entry per product asked, in the order asked.
    fn tests_coverage(&mut self, product_ids: &[u64]) -> Result<Vec<TestsCoverage>>;
    /// The problem ranges of these products (all when empty), oldest first.
    fn problem_ranges(&mut self, product_ids: &[u64]) -> Result<Vec<ProblemRow>>;
    fn tests_to_recheck(
        &mut self,
        product_ids: &[u64],
        final_statuses: &[String],
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> Result<Vec<StoredTest>>;
    /// The tests of these products that ended at or after `since` (or have no end), newest first.
    fn bug_candidates(&mut self, product_ids: &[u64], since: Option<Timestamp>) -> Result<Vec<BugCandidate>>;

    // The sync log (`capabilities/events.rs` and `mod.rs`).
    /// Records a sync that starts now; the caller holds the lock, so rows left `running`
    /// become `interrupted`.
    fn start_run(&mut self, trigger: &str, phases: &str) -> Result<i64>;
    fn touch_run(&mut self, run_id: i64) -> Result<()>;
    /// Closes a sync that ended without a result (`failure` or `interrupted`).
    fn close_run(&mut self, run_id: i64, status: &str, message: &str) -> Result<()>;
    fn finish_run(&mut self, run_id: i64, outcome: &std::result::Result<SyncResult, SyncError>) -> Result<()>;

    // The read commands: status, history, problems (above), MCP, the scheduler and nuke.
    fn metadata(&mut self, key: &str) -> Result<Option<String>>;
    fn row_counts(&mut self) -> Result<Vec<(&'static str, i64)>>;
    /// The latest `limit` syncs of this customer, newest first.
    fn history(&mut self, limit: u32) -> Result<Vec<SyncRecord>>;
    /// How many rows per table a nuke's scope holds.
    fn scope_counts(&mut self, product_ids: Option<&[u64]>) -> Result<Vec<(&'static str, i64)>>;
}
