//! The PostgreSQL store: one customer's rows in a shared mirror, over one blocking
//! connection (the `postgres` crate runs its own small runtime, so a store lives on the
//! store-writer thread or in `spawn_blocking`, never on an async thread).
//!
//! The same tables and meanings as SQLite (see `schema.rs`), and the same outputs: times
//! are read as `timestamptz` and shown in SQLite's column format. Each page is one
//! transaction of a few batched statements (`INSERT … SELECT FROM unnest(…)`), prepared
//! once per connection.

mod bugs;
mod coverage;
mod problems;
mod recheck;
pub(crate) mod schema;
mod status;
mod sweep;
mod sync_log;
pub mod target;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
mod values;
mod writes;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use postgres::{Client, Statement};

use super::backend::SyncStore;
use super::bugs::BugCandidate;
use super::coverage::TestsCoverage;
use super::problems::{ProblemReport, ProblemRow};
use super::recheck::StoredTest;
use super::status::SyncRecord;
use super::writes::Placement;
use crate::api::{BugRecord, ProductRecord, TestRecord};
use crate::model::{EntityKind, SyncError, SyncResult, Timestamp};
pub use target::PgTarget;

pub struct PgStore {
    conn: Conn,
    target: Arc<PgTarget>,
}

/// The connection, with this customer and the statements prepared on it.
struct Conn {
    client: Client,
    customer: i64,
    statements: HashMap<&'static str, Statement>,
    /// Pages of tests written in this session.
    pages_written: u32,
}

impl PgStore {
    /// Connects and brings the schema up to date.
    pub fn open(target: Arc<PgTarget>, customer_id: i64) -> Result<Self> {
        let mut client = migrated(&target)?;
        // A crash of the server may lose the last commits, never their order or
        // consistency: the trade SQLite's `synchronous=NORMAL` makes. This session only.
        client
            .batch_execute("SET synchronous_commit = off; SET plan_cache_mode = force_custom_plan")
            .map_err(|e| target.fail(e.into()))?;
        Ok(Self { conn: Conn { client, customer: customer_id, statements: HashMap::new(), pages_written: 0 }, target })
    }

    /// Runs `work` on the connection; PostgreSQL errors come out naming the server.
    fn run<T>(&mut self, work: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        work(&mut self.conn).map_err(|e| self.target.fail(e))
    }
}

/// Connects and brings the schema up to date, without reading any rows: a sync does this
/// before it starts, so that a mirror it cannot reach or use is one error, up front.
pub fn upgrade(target: &PgTarget) -> Result<()> {
    migrated(target).map(drop)
}

pub(crate) fn migrated(target: &PgTarget) -> Result<Client> {
    let mut client = target.connect()?;
    client.batch_execute(&schema::script()).map_err(|e| target.fail(e.into()))?;
    Ok(client)
}

impl Conn {
    /// The statement for `sql`, prepared on first use.
    fn prepared(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }
}

impl SyncStore for PgStore {
    fn customer_id(&self) -> i64 {
        self.conn.customer
    }

    fn write_products(&mut self, products: &[&ProductRecord]) -> Result<()> {
        self.run(|c| writes::products(c, products))
    }

    fn write_features(&mut self, product_id: u64, features: &[Placement]) -> Result<()> {
        self.run(|c| writes::features(c, product_id, features))
    }

    fn write_tests(&mut self, product_id: u64, tests: &[&TestRecord]) -> Result<()> {
        self.run(|c| writes::tests(c, product_id, tests))
    }

    fn write_bugs(&mut self, bugs: &[&BugRecord], test_ids: &[u64]) -> Result<()> {
        self.run(|c| bugs::write(c, bugs, test_ids))
    }

    fn set_tests_coverage(&mut self, product_id: u64, coverage: TestsCoverage) -> Result<()> {
        self.run(|c| coverage::set(c, product_id, coverage))
    }

    fn add_problem_range(&mut self, report: &ProblemReport, seen_at: Timestamp) -> Result<()> {
        self.run(|c| problems::add(c, report, seen_at))
    }

    fn update_problem_range(
        &mut self,
        id: u64,
        report: &ProblemReport,
        attempts: u32,
        seen_at: Timestamp,
    ) -> Result<()> {
        self.run(|c| problems::update(c, id, report, attempts, seen_at))
    }

    fn clear_problem_range(&mut self, id: u64) -> Result<()> {
        self.run(|c| problems::clear(c, id))
    }

    fn remove_tests(&mut self, ids: &[u64]) -> Result<u32> {
        self.run(|c| recheck::remove(c, ids))
    }

    fn sweep(
        &mut self,
        kind: EntityKind,
        product_ids: Option<&[u64]>,
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> Result<u32> {
        self.run(|c| sweep::sweep(c, kind, product_ids, since, written_before))
    }

    fn known_tests(&mut self, ids: &[u64]) -> Result<Vec<u64>> {
        self.run(|c| writes::known_tests(c, ids))
    }

    fn tests_coverage(&mut self, product_ids: &[u64]) -> Result<Vec<TestsCoverage>> {
        self.run(|c| coverage::of(c, product_ids))
    }

    fn problem_ranges(&mut self, product_ids: &[u64]) -> Result<Vec<ProblemRow>> {
        self.run(|c| problems::of(c, product_ids))
    }

    fn tests_to_recheck(
        &mut self,
        product_ids: &[u64],
        final_statuses: &[String],
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> Result<Vec<StoredTest>> {
        self.run(|c| recheck::due(c, product_ids, final_statuses, since, written_before))
    }

    fn bug_candidates(&mut self, product_ids: &[u64], since: Option<Timestamp>) -> Result<Vec<BugCandidate>> {
        self.run(|c| bugs::candidates(c, product_ids, since))
    }

    fn start_run(&mut self, trigger: &str, phases: &str) -> Result<i64> {
        self.run(|c| sync_log::start(c, trigger, phases))
    }

    fn touch_run(&mut self, run_id: i64) -> Result<()> {
        self.run(|c| sync_log::touch(c, run_id))
    }

    fn close_run(&mut self, run_id: i64, status: &str, message: &str) -> Result<()> {
        self.run(|c| sync_log::close(c, run_id, status, message))
    }

    fn finish_run(&mut self, run_id: i64, outcome: &std::result::Result<SyncResult, SyncError>) -> Result<()> {
        self.run(|c| sync_log::finish(c, run_id, outcome))
    }

    fn metadata(&mut self, key: &str) -> Result<Option<String>> {
        self.run(|c| sync_log::metadata(c, key))
    }

    fn row_counts(&mut self) -> Result<Vec<(&'static str, i64)>> {
        self.run(status::row_counts)
    }

    fn history(&mut self, limit: u32) -> Result<Vec<SyncRecord>> {
        self.run(|c| status::history(c, limit))
    }

    fn scope_counts(&mut self, product_ids: Option<&[u64]>) -> Result<Vec<(&'static str, i64)>> {
        self.run(|c| sweep::scope_counts(c, product_ids))
    }
}
