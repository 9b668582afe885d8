//! The SQLite [`Store`] as a [`SyncStore`]: each method is the store's own, unchanged.

use anyhow::Result;

use super::Store;
use super::backend::SyncStore;
use super::bugs::BugCandidate;
use super::coverage::TestsCoverage;
use super::problems::{ProblemReport, ProblemRow};
use super::recheck::StoredTest;
use super::status::SyncRecord;
use super::writes::Placement;
use crate::api::{BugRecord, ProductRecord, TestRecord};
use crate::model::{EntityKind, SyncError, SyncResult, Timestamp};

impl SyncStore for Store {
    fn customer_id(&self) -> i64 {
        Store::customer_id(self)
    }

    fn write_products(&mut self, products: &[&ProductRecord]) -> Result<()> {
        Ok(Store::write_products(self, products)?)
    }

    fn write_features(&mut self, product_id: u64, features: &[Placement]) -> Result<()> {
        Ok(Store::write_features(self, product_id, features)?)
    }

    fn write_tests(&mut self, product_id: u64, tests: &[&TestRecord]) -> Result<()> {
        Ok(Store::write_tests(self, product_id, tests)?)
    }

    fn write_bugs(&mut self, bugs: &[&BugRecord], test_ids: &[u64]) -> Result<()> {
        Ok(Store::write_bugs(self, bugs, test_ids)?)
    }

    fn set_tests_coverage(&mut self, product_id: u64, coverage: TestsCoverage) -> Result<()> {
        Ok(Store::set_tests_coverage(self, product_id, coverage)?)
    }

    fn add_problem_range(&mut self, report: &ProblemReport, seen_at: Timestamp) -> Result<()> {
        Ok(Store::add_problem_range(self, report, seen_at)?)
    }

    fn update_problem_range(
        &mut self,
        id: u64,
        report: &ProblemReport,
        attempts: u32,
        seen_at: Timestamp,
    ) -> Result<()> {
        Ok(Store::update_problem_range(self, id, report, attempts, seen_at)?)
    }

    fn clear_problem_range(&mut self, id: u64) -> Result<()> {
        Ok(Store::clear_problem_range(self, id)?)
    }

    fn remove_tests(&mut self, ids: &[u64]) -> Result<u32> {
        Ok(Store::remove_tests(self, ids)?)
    }

    fn sweep(
        &mut self,
        kind: EntityKind,
        product_ids: Option<&[u64]>,
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> Result<u32> {
        Ok(Store::sweep(self, kind, product_ids, since, written_before)?)
    }

    fn known_tests(&mut self, ids: &[u64]) -> Result<Vec<u64>> {
        Ok(Store::known_tests(self, ids)?)
    }

    fn tests_coverage(&mut self, product_ids: &[u64]) -> Result<Vec<TestsCoverage>> {
        Ok(Store::tests_coverage(self, product_ids)?)
    }

    fn problem_ranges(&mut self, product_ids: &[u64]) -> Result<Vec<ProblemRow>> {
        Ok(Store::problem_ranges(self, product_ids)?)
    }

    fn tests_to_recheck(
        &mut self,
        product_ids: &[u64],
        final_statuses: &[String],
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> Result<Vec<StoredTest>> {
        Ok(Store::tests_to_recheck(self, product_ids, final_statuses, since, written_before)?)
    }

    fn bug_candidates(&mut self, product_ids: &[u64], since: Option<Timestamp>) -> Result<Vec<BugCandidate>> {
        Ok(Store::bug_candidates(self, product_ids, since)?)
    }

    fn start_run(&mut self, trigger: &str, phases: &str) -> Result<i64> {
        Ok(Store::start_run(self, trigger, phases)?)
    }

    fn touch_run(&mut self, run_id: i64) -> Result<()> {
        Ok(Store::touch_run(self, run_id)?)
    }

    fn close_run(&mut self, run_id: i64, status: &str, message: &str) -> Result<()> {
        Ok(Store::close_run(self, run_id, status, message)?)
    }

    fn finish_run(&mut self, run_id: i64, outcome: &std::result::Result<SyncResult, SyncError>) -> Result<()> {
        Ok(Store::finish_run(self, run_id, outcome)?)
    }

    fn metadata(&mut self, key: &str) -> Result<Option<String>> {
        Ok(Store::metadata(self, key)?)
    }

    fn row_counts(&mut self) -> Result<Vec<(&'static str, i64)>> {
        Ok(Store::row_counts(self)?)
    }

    fn history(&mut self, limit: u32) -> Result<Vec<SyncRecord>> {
        Ok(Store::history(self, limit)?)
    }

    fn scope_counts(&mut self, product_ids: Option<&[u64]>) -> Result<Vec<(&'static str, i64)>> {
        Ok(Store::scope_counts(self, product_ids)?)
    }
}
