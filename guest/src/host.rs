//! The port through which the engine reaches the world. One method per import the
//! engine uses; `Payload` is the host-held response body, opaque to the engine.

use crate::bindings::customer_api::{
    ApiError, BugSummary, FeaturesRequest, ProductSummary, TestSummary, TestsPageRequest,
};
use crate::bindings::events::{Level, Progress};
use crate::bindings::store::{BugCandidate, FeaturePlacement, ProblemRange, ProblemReport, StoredTest, TestsCoverage};
use crate::bindings::sync_lock::{AcquireError, LockFacts};
use crate::bindings::types::{EntityKind, Phase, SyncError, SyncResult, Timestamp, Trigger};

/// A fetched response: the summary the engine decides on, and the body to write from.
pub struct Fetched<P, T> {
    pub items: Vec<T>,
    pub body: P,
}

pub type ApiResult<P, T> = Result<Fetched<P, T>, ApiError>;

pub trait Host {
    type Payload;

    fn acquire_lock(&mut self, trigger: Trigger, heartbeat_seconds: u32) -> Result<LockFacts, AcquireError>;
    fn wait_for_release(&mut self) -> bool;
    fn release_lock(&mut self);

    fn now(&mut self) -> Timestamp;
    fn monotonic_nanos(&mut self) -> u64;
    fn log(&mut self, level: Level, message: &str);
    fn report_progress(&mut self, update: Progress);
    fn phase_finished(&mut self, phase: Phase, items: u32);
    fn sync_started(&mut self, trigger: Trigger, phases: &[Phase]) -> u64;
    fn sync_finished(&mut self, run_id: u64, outcome: &Result<SyncResult, SyncError>);

    fn list_products(&mut self) -> ApiResult<Self::Payload, ProductSummary>;
    fn fetch_features(&mut self, requests: &[FeaturesRequest]) -> Vec<ApiResult<Self::Payload, u64>>;
    fn fetch_tests_pages(&mut self, requests: &[TestsPageRequest]) -> Vec<ApiResult<Self::Payload, TestSummary>>;
    fn fetch_tests(&mut self, ids: &[u64]) -> Vec<ApiResult<Self::Payload, TestSummary>>;
    fn fetch_bugs(&mut self, batches: &[Vec<u64>], handled: &[u16]) -> Vec<ApiResult<Self::Payload, BugSummary>>;

    fn write_products(&mut self, body: &Self::Payload, ids: &[u64]) -> Result<(), String>;
    fn write_features(
        &mut self,
        product_id: u64,
        lists: &[&Self::Payload],
        features: &[FeaturePlacement],
    ) -> Result<(), String>;
    fn known_tests(&mut self, ids: &[u64]) -> Result<Vec<u64>, String>;
    fn write_tests(&mut self, product_id: u64, page: &Self::Payload, ids: &[u64]) -> Result<(), String>;
    fn tests_coverage_of(&mut self, product_ids: &[u64]) -> Result<Vec<TestsCoverage>, String>;
    fn set_tests_coverage(&mut self, product_id: u64, coverage: TestsCoverage) -> Result<(), String>;
    fn problem_ranges(&mut self, product_ids: &[u64]) -> Result<Vec<ProblemRange>, String>;
    fn add_problem_range(&mut self, report: &ProblemReport, seen_at: Timestamp) -> Result<(), String>;
    fn update_problem_range(
        &mut self,
        id: u64,
        report: &ProblemReport,
        attempts: u32,
        seen_at: Timestamp,
    ) -> Result<(), String>;
    fn clear_problem_range(&mut self, id: u64) -> Result<(), String>;
    fn tests_to_recheck(
        &mut self,
        product_ids: &[u64],
        final_statuses: &[String],
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> Result<Vec<StoredTest>, String>;
    fn remove_tests(&mut self, ids: &[u64]) -> Result<u32, String>;
    fn bug_candidates(&mut self, product_ids: &[u64], since: Option<Timestamp>) -> Result<Vec<BugCandidate>, String>;
    fn write_bugs(&mut self, bugs: &Self::Payload, ids: &[u64], test_ids: &[u64]) -> Result<(), String>;
    fn sweep(
        &mut self,
        kind: EntityKind,
        product_ids: Option<&[u64]>,
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> Result<u32, String>;
    fn flush(&mut self) -> Result<(), String>;
}
