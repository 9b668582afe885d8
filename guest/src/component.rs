//! The wasm edge: the `engine` export, and the world's imports behind the [`Host`] port.

use crate::bindings::clock;
use crate::bindings::customer_api::{self, FeaturesRequest, Payload, TestsPageRequest};
use crate::bindings::engine::Guest;
use crate::bindings::events::{self, Level, Progress};
use crate::bindings::policy::Guest as PolicyGuest;
use crate::bindings::store::{
    self, BugCandidate, FeaturePlacement, ProblemRange, ProblemReport, StoredTest, TestsCoverage,
};
use crate::bindings::sync_lock::{self, AcquireError, LockFacts};
use crate::bindings::types::{EntityKind, Phase, SyncError, SyncRequest, SyncResult, Timestamp, Trigger};
use crate::host::{ApiResult, Fetched, Host};
use crate::{engine, lock, plan};

struct Component;

impl Guest for Component {
    fn execute_sync(request: SyncRequest, trigger: Trigger) -> Result<SyncResult, SyncError> {
        forward_panics();
        engine::execute_sync(&mut Imports, &request, trigger)
    }
}

impl PolicyGuest for Component {
    fn covers(running: SyncRequest, wanted: SyncRequest) -> bool {
        plan::covers(&running, &wanted)
    }

    fn describe_lock(held: bool, facts: LockFacts, now: Timestamp) -> String {
        lock::describe_lock(held, &facts, now)
    }
}

crate::bindings::export!(Component with_types_in crate::bindings);

/// Without WASI a panic is a bare trap; send its message to the host's log first.
fn forward_panics() {
    std::panic::set_hook(Box::new(|info| events::log(Level::Error, &format!("engine panicked: {info}"))));
}

struct Imports;

impl Host for Imports {
    type Payload = Payload;

    fn acquire_lock(&mut self, trigger: Trigger, heartbeat_seconds: u32) -> Result<LockFacts, AcquireError> {
        sync_lock::acquire(trigger, heartbeat_seconds)
    }
    fn wait_for_release(&mut self) -> bool {
        sync_lock::wait_for_release()
    }
    fn release_lock(&mut self) {
        sync_lock::release()
    }
    fn now(&mut self) -> Timestamp {
        clock::now()
    }
    fn monotonic_nanos(&mut self) -> u64 {
        clock::monotonic_nanos()
    }
    fn log(&mut self, level: Level, message: &str) {
        events::log(level, message)
    }
    fn phase_finished(&mut self, phase: Phase, items: u32) {
        events::phase_finished(phase, items)
    }
    fn report_progress(&mut self, update: Progress) {
        events::report_progress(update)
    }
    fn sync_started(&mut self, trigger: Trigger, phases: &[Phase]) -> u64 {
        events::sync_started(trigger, phases)
    }
    fn sync_finished(&mut self, run_id: u64, outcome: &Result<SyncResult, SyncError>) {
        events::sync_finished(run_id, outcome.as_ref())
    }

    fn list_products(&mut self) -> ApiResult<Payload, customer_api::ProductSummary> {
        customer_api::list_products().map(|l| Fetched { items: l.products, body: l.body })
    }
    fn fetch_features(&mut self, requests: &[FeaturesRequest]) -> Vec<ApiResult<Payload, u64>> {
        let results = customer_api::fetch_features(requests);
        results.into_iter().map(|r| r.map(|l| Fetched { items: l.feature_ids, body: l.body })).collect()
    }
    fn fetch_tests_pages(
        &mut self,
        requests: &[TestsPageRequest],
    ) -> Vec<ApiResult<Payload, customer_api::TestSummary>> {
        let results = customer_api::fetch_tests_pages(requests);
        results.into_iter().map(|r| r.map(|p| Fetched { items: p.tests, body: p.body })).collect()
    }
    fn fetch_tests(&mut self, ids: &[u64]) -> Vec<ApiResult<Payload, customer_api::TestSummary>> {
        let results = customer_api::fetch_tests(ids);
        results.into_iter().map(|r| r.map(|p| Fetched { items: p.tests, body: p.body })).collect()
    }
    fn fetch_bugs(
        &mut self,
        batches: &[Vec<u64>],
        handled: &[u16],
    ) -> Vec<ApiResult<Payload, customer_api::BugSummary>> {
        let results = customer_api::fetch_bugs(batches, handled);
        results.into_iter().map(|r| r.map(|l| Fetched { items: l.bugs, body: l.body })).collect()
    }

    fn write_products(&mut self, body: &Payload, ids: &[u64]) -> Result<(), String> {
        store::write_products(body, ids)
    }
    fn write_features(
        &mut self,
        product_id: u64,
        lists: &[&Payload],
        features: &[FeaturePlacement],
    ) -> Result<(), String> {
        store::write_features(product_id, lists, features)
    }
    fn tests_coverage_of(&mut self, product_ids: &[u64]) -> Result<Vec<TestsCoverage>, String> {
        store::tests_coverage_of(product_ids)
    }
    fn set_tests_coverage(&mut self, product_id: u64, coverage: TestsCoverage) -> Result<(), String> {
        store::set_tests_coverage(product_id, coverage)
    }
    fn known_tests(&mut self, ids: &[u64]) -> Result<Vec<u64>, String> {
        store::known_tests(ids)
    }
    fn write_tests(&mut self, product_id: u64, page: &Payload, ids: &[u64]) -> Result<(), String> {
        store::write_tests(product_id, page, ids)
    }
    fn problem_ranges(&mut self, product_ids: &[u64]) -> Result<Vec<ProblemRange>, String> {
        store::problem_ranges(product_ids)
    }
    fn add_problem_range(&mut self, report: &ProblemReport, seen_at: Timestamp) -> Result<(), String> {
        store::add_problem_range(*report, seen_at)
    }
    fn update_problem_range(
        &mut self,
        id: u64,
        report: &ProblemReport,
        attempts: u32,
        seen_at: Timestamp,
    ) -> Result<(), String> {
        store::update_problem_range(id, *report, attempts, seen_at)
    }
    fn clear_problem_range(&mut self, id: u64) -> Result<(), String> {
        store::clear_problem_range(id)
    }
    fn tests_to_recheck(
        &mut self,
        product_ids: &[u64],
        final_statuses: &[String],
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> Result<Vec<StoredTest>, String> {
        store::tests_to_recheck(product_ids, final_statuses, since, written_before)
    }
    fn remove_tests(&mut self, ids: &[u64]) -> Result<u32, String> {
        store::remove_tests(ids)
    }
    fn bug_candidates(&mut self, product_ids: &[u64], since: Option<Timestamp>) -> Result<Vec<BugCandidate>, String> {
        store::bug_candidates(product_ids, since)
    }
    fn write_bugs(&mut self, bugs: &Payload, ids: &[u64], test_ids: &[u64]) -> Result<(), String> {
        store::write_bugs(bugs, ids, test_ids)
    }
    fn sweep(
        &mut self,
        kind: EntityKind,
        product_ids: Option<&[u64]>,
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> Result<u32, String> {
        store::sweep(kind, product_ids, since, written_before)
    }
    fn flush(&mut self) -> Result<(), String> {
        store::flush()
    }
}
