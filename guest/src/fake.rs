//! An in-memory account and store behind the [`Host`] port, for the engine's tests.

use std::collections::{BTreeMap, BTreeSet};

use crate::bindings::customer_api::{
    ApiError, BugSummary, EndTime, Failure, FeaturesRequest, ProductSummary, TestSummary, TestsPageRequest,
};
use crate::bindings::events::{Level, Progress};
use crate::bindings::store::{BugCandidate, FeaturePlacement, ProblemRange, ProblemReport, StoredTest, TestsCoverage};
use crate::bindings::sync_lock::{AcquireError, HolderRecord, LockFacts, ProcessState};
use crate::bindings::types::{
    EntityKind, Options, Phase, Scope, SyncError, SyncRequest, SyncResult, Timestamp, Trigger,
};
use crate::host::{ApiResult, Fetched, Host};

/// The fake's wall clock, which stands still.
pub const NOW: Timestamp = 1_780_000_000_000;

/// A request for the default phases (products, features, new tests) of these products.
pub fn sync_request(product_ids: Option<Vec<u64>>) -> SyncRequest {
    SyncRequest {
        phases: vec![Phase::NewTests, Phase::Features, Phase::Products],
        scope: Scope { product_ids, since: None, entity_types: None },
        options: Options { force_refresh: false, incremental_only: false, nuke: false, max_age_seconds: None },
    }
}

/// A fake payload is the ids it holds: what the store writes is checked against it.
pub type Body = Vec<u64>;

#[derive(Default)]
pub struct FakeHost {
    pub products: Vec<ProductSummary>,
    /// Features per (product, section).
    pub features: BTreeMap<(u64, Option<u64>), Vec<u64>>,
    /// Tests per product, newest first, with their end times.
    pub tests: BTreeMap<u64, Vec<(u64, i64)>>,
    pub reject_token: bool,
    /// Another process holds the lock, as these facts describe, for `waits_until_free` waits.
    pub lock_holder: Option<LockFacts>,
    pub waits_until_free: u32,
    /// How many waits the host allows before it gives up.
    pub wait_budget: u32,
    /// What the lock file held when the lock was free.
    pub lock_left_behind: Option<LockFacts>,
    pub lock_unavailable: bool,
    /// Products whose every request fails like this.
    pub failing_products: BTreeMap<u64, Failure>,
    pub failing_writes: bool,
    /// Per product, offsets whose test the API cannot render: a page covering one is a 500.
    pub bad_offsets: BTreeMap<u64, BTreeSet<u64>>,
    /// After this many page requests, every page request fails without an answer.
    pub fail_after_requests: Option<usize>,
    pub problems: Vec<ProblemRange>,
    pub last_range_id: u64,
    /// Tests whose bugs the API cannot list in time: a batch holding one answers 524.
    pub bug_timeouts: BTreeSet<u64>,
    /// Every bugs request fails like this.
    pub bugs_failure: Option<Failure>,
    /// Every bug list also holds bug 9990 of test 999, which was not asked for.
    pub misfiled_bug: bool,
    /// Stored tests' statuses; `running` when absent.
    pub test_status: BTreeMap<u64, String>,
    /// The API's statuses of its tests; `running` when absent.
    pub api_status: BTreeMap<u64, String>,
    /// Every test fetched by id.
    pub by_id_requests: Vec<u64>,

    pub stored_products: BTreeSet<u64>,
    pub stored_features: BTreeMap<u64, Vec<u64>>,
    pub stored_tests: BTreeMap<u64, u64>,
    pub coverage: BTreeMap<u64, TestsCoverage>,
    /// Stored bugs and the test each belongs to.
    pub stored_bugs: BTreeMap<u64, u64>,
    /// Tests whose bugs were written.
    pub bugs_synced: BTreeSet<u64>,
    pub bug_requests: Vec<Vec<u64>>,
    /// The statuses the engine said it handles itself on its last bugs request.
    pub handled: Vec<u16>,
    pub calls: Vec<String>,
    pub page_requests: Vec<TestsPageRequest>,
    pub lock_held: bool,
    /// The heartbeat period the engine asked for.
    pub heartbeat_seconds: u32,
    pub waits: u32,
    pub log: Vec<String>,
    pub finished: Vec<Result<SyncResult, SyncError>>,
    pub clock: u64,
    /// How far the wall clock has moved past [`NOW`], in ms.
    pub later: i64,
    /// When each stored row was written: ("product" | "feature" | "test", id).
    pub stamps: BTreeMap<(&'static str, u64), Timestamp>,
    /// Every sweep the engine asked for: the kind and the products.
    pub sweeps: Vec<(EntityKind, Option<Vec<u64>>)>,
}

impl FakeHost {
    /// Runs one sync from the command line.
    pub fn sync(&mut self, request: SyncRequest) -> Result<SyncResult, SyncError> {
        crate::engine::execute_sync(self, &request, Trigger::Cli)
    }

    /// `products` products; product p has `features` features and `tests` tests, the
    /// newest with the highest id. Every third product has two sections.
    pub fn account(products: u64, features: u64, tests: u64) -> Self {
        let mut host = FakeHost::default();
        for p in 1..=products {
            let sections = if p % 3 == 0 { vec![p * 10 + 1, p * 10 + 2] } else { vec![] };
            let ids: Vec<u64> = (0..features).map(|j| p * 1000 + j).collect();
            if sections.is_empty() {
                host.features.insert((p, None), ids);
            } else {
                let (a, b) = ids.split_at(ids.len() / 2 + 1);
                host.features.insert((p, Some(sections[0])), a.to_vec());
                let mut second = b.to_vec();
                second.insert(0, a[a.len() - 1]);
                host.features.insert((p, Some(sections[1])), second);
            }
            host.products.push(ProductSummary {
                id: p,
                name: format!("Product {p}"),
                section_ids: sections,
                sections_with_default_ids: vec![p * 10],
            });
            host.add_tests(p, tests);
        }
        host
    }

    /// Adds `count` tests newer than every existing test of the product.
    pub fn add_tests(&mut self, product: u64, count: u64) {
        let list = self.tests.entry(product).or_default();
        let start = list.len() as u64;
        for n in start..start + count {
            list.insert(0, (product * 1_000_000 + n, n as i64 * 3_600_000));
        }
    }

    pub fn stored_tests_of(&self, product: u64) -> usize {
        self.stored_tests.values().filter(|&&p| p == product).count()
    }

    /// How many bugs a test has: 0 to 2, by its id.
    pub fn bugs_of(&self, test_id: u64) -> usize {
        (test_id % 3) as usize
    }

    pub fn bugs_of_product(&self, product: u64) -> usize {
        self.tests[&product].iter().map(|t| self.bugs_of(t.0)).sum()
    }

    fn fetch_bug_batch(&self, batch: &[u64]) -> ApiResult<Body, BugSummary> {
        let endpoint = format!("bugs?filter_test_cycle_ids={batch:?}");
        if let Some(failure) = self.bugs_failure {
            return Err(Self::api_error(failure, endpoint));
        }
        if batch.iter().any(|id| self.bug_timeouts.contains(id)) {
            return Err(Self::api_error(Failure::HttpStatus(524), endpoint));
        }
        let mut bugs: Vec<BugSummary> = batch
            .iter()
            .flat_map(|&test| {
                (1..=self.bugs_of(test) as u64).map(move |k| BugSummary { id: test * 10 + k, test_id: Some(test) })
            })
            .collect();
        if self.misfiled_bug {
            bugs.push(BugSummary { id: 9990, test_id: Some(999) });
        }
        let body = bugs.iter().map(|b| b.id).collect();
        Ok(Fetched { items: bugs, body })
    }

    /// Makes every request for a product fail like this.
    pub fn fail_product(&mut self, product: u64, failure: Failure) {
        self.failing_products.insert(product, failure);
    }

    fn api_error(failure: Failure, endpoint: String) -> ApiError {
        ApiError { failure, endpoint, attempts: 1, message: format!("{failure:?}") }
    }

    fn fetch_page(&self, r: &TestsPageRequest) -> ApiResult<Body, TestSummary> {
        let endpoint = format!("products/{}/exploratory_tests?page={}&per_page={}", r.product_id, r.page, r.per_page);
        if self.fail_after_requests.is_some_and(|n| self.page_requests.len() >= n) {
            return Err(Self::api_error(Failure::Network, endpoint));
        }
        if let Some(&failure) = self.failing_products.get(&r.product_id) {
            return Err(Self::api_error(failure, endpoint));
        }
        let skip = u64::from(r.page - 1) * u64::from(r.per_page);
        let covered = skip..skip + u64::from(r.per_page);
        if self.bad_offsets.get(&r.product_id).is_some_and(|bad| bad.iter().any(|o| covered.contains(o))) {
            return Err(Self::api_error(Failure::HttpStatus(500), endpoint));
        }
        let all = self.tests.get(&r.product_id).cloned().unwrap_or_default();
        let page: Vec<(u64, i64)> = all.into_iter().skip(skip as usize).take(r.per_page as usize).collect();
        let items = page.iter().map(|&(id, end)| self.summary(id, end)).collect();
        Ok(Fetched { items, body: page.iter().map(|t| t.0).collect() })
    }
}

impl Host for FakeHost {
    type Payload = Body;

    fn acquire_lock(&mut self, _trigger: Trigger, heartbeat_seconds: u32) -> Result<LockFacts, AcquireError> {
        self.calls.push("acquire".into());
        self.heartbeat_seconds = heartbeat_seconds;
        if self.lock_unavailable {
            return Err(AcquireError::Unavailable("could not open /data/sync.lock: permission denied".into()));
        }
        match &self.lock_holder {
            Some(holder) if self.waits < self.waits_until_free => return Err(AcquireError::Held(holder.clone())),
            _ => {}
        }
        self.lock_held = true;
        let clean = LockFacts { holder: HolderRecord::Empty, process: ProcessState::Unknown, heartbeat: NOW };
        Ok(self.lock_left_behind.take().unwrap_or(clean))
    }
    fn wait_for_release(&mut self) -> bool {
        if self.waits >= self.wait_budget {
            return false;
        }
        self.waits += 1;
        true
    }
    fn now(&mut self) -> Timestamp {
        NOW + self.later
    }
    fn log(&mut self, _level: Level, message: &str) {
        self.log.push(message.to_string());
    }
    fn release_lock(&mut self) {
        self.calls.push("release".into());
        self.lock_held = false;
    }
    fn monotonic_nanos(&mut self) -> u64 {
        self.clock += 250_000_000;
        self.clock
    }
    fn report_progress(&mut self, _update: Progress) {}
    fn phase_finished(&mut self, phase: Phase, items: u32) {
        self.calls.push(format!("phase_finished {phase:?} {items}"));
    }
    fn sync_started(&mut self, _trigger: Trigger, _phases: &[Phase]) -> u64 {
        self.calls.push("started".into());
        7
    }
    fn sync_finished(&mut self, run_id: u64, outcome: &Result<SyncResult, SyncError>) {
        assert_eq!(run_id, 7);
        self.calls.push("finished".into());
        self.finished.push(outcome.clone());
    }

    fn list_products(&mut self) -> ApiResult<Body, ProductSummary> {
        self.calls.push("list_products".into());
        if self.reject_token {
            let mut e = Self::api_error(Failure::HttpStatus(401), "products".into());
            e.message = "the API rejected the token".into();
            return Err(e);
        }
        Ok(Fetched { items: self.products.clone(), body: self.products.iter().map(|p| p.id).collect() })
    }

    fn fetch_features(&mut self, requests: &[FeaturesRequest]) -> Vec<ApiResult<Body, u64>> {
        self.calls.push(format!("fetch_features x{}", requests.len()));
        requests
            .iter()
            .map(|r| {
                if let Some(&failure) = self.failing_products.get(&r.product_id) {
                    return Err(Self::api_error(failure, format!("products/{}/features", r.product_id)));
                }
                let ids = self.features.get(&(r.product_id, r.section_id)).cloned().unwrap_or_default();
                Ok(Fetched { items: ids.clone(), body: ids })
            })
            .collect()
    }

    fn fetch_tests_pages(&mut self, requests: &[TestsPageRequest]) -> Vec<ApiResult<Body, TestSummary>> {
        self.calls.push(format!("fetch_tests_pages x{}", requests.len()));
        requests
            .iter()
            .map(|r| {
                let answer = self.fetch_page(r);
                self.page_requests.push(*r);
                answer
            })
            .collect()
    }

    fn fetch_tests(&mut self, ids: &[u64]) -> Vec<ApiResult<Body, TestSummary>> {
        self.calls.push(format!("fetch_tests x{}", ids.len()));
        self.by_id_requests.extend(ids);
        let all: Vec<(u64, i64)> = self.tests.values().flatten().copied().collect();
        ids.iter()
            .map(|&id| match all.iter().find(|t| t.0 == id) {
                Some(&(id, end)) => Ok(Fetched { items: vec![self.summary(id, end)], body: vec![id] }),
                None => Err(Self::api_error(Failure::HttpStatus(404), format!("exploratory_tests/{id}"))),
            })
            .collect()
    }
    fn fetch_bugs(&mut self, batches: &[Vec<u64>], handled: &[u16]) -> Vec<ApiResult<Body, BugSummary>> {
        self.calls.push(format!("fetch_bugs x{}", batches.len()));
        self.handled = handled.to_vec();
        batches
            .iter()
            .map(|batch| {
                self.bug_requests.push(batch.clone());
                self.fetch_bug_batch(batch)
            })
            .collect()
    }

    fn write_products(&mut self, body: &Body, ids: &[u64]) -> Result<(), String> {
        assert!(ids.iter().all(|id| body.contains(id)), "asked to write a product that is not in the payload");
        self.stored_products.extend(ids);
        self.stamp("product", ids);
        Ok(())
    }
    fn write_features(
        &mut self,
        product_id: u64,
        lists: &[&Body],
        features: &[FeaturePlacement],
    ) -> Result<(), String> {
        assert!(features.iter().all(|f| lists.iter().any(|l| l.contains(&f.id))));
        let stored = self.stored_features.entry(product_id).or_default();
        for feature in features {
            if !stored.contains(&feature.id) {
                stored.push(feature.id);
            }
        }
        let ids: Vec<u64> = features.iter().map(|f| f.id).collect();
        self.stamp("feature", &ids);
        Ok(())
    }
    fn known_tests(&mut self, ids: &[u64]) -> Result<Vec<u64>, String> {
        Ok(ids.iter().copied().filter(|id| self.stored_tests.contains_key(id)).collect())
    }
    fn tests_coverage_of(&mut self, product_ids: &[u64]) -> Result<Vec<TestsCoverage>, String> {
        Ok(product_ids.iter().map(|id| self.coverage.get(id).copied().unwrap_or(TestsCoverage::None)).collect())
    }
    fn set_tests_coverage(&mut self, product_id: u64, coverage: TestsCoverage) -> Result<(), String> {
        self.coverage.insert(product_id, coverage);
        Ok(())
    }
    fn problem_ranges(&mut self, product_ids: &[u64]) -> Result<Vec<ProblemRange>, String> {
        let wanted = |p: &ProblemRange| product_ids.is_empty() || product_ids.contains(&p.report.product_id);
        Ok(self.problems.iter().filter(|p| wanted(p)).cloned().collect())
    }
    fn add_problem_range(&mut self, report: &ProblemReport, seen_at: Timestamp) -> Result<(), String> {
        self.last_range_id += 1;
        let range = ProblemRange {
            id: self.last_range_id,
            report: *report,
            attempts: 1,
            first_seen: seen_at,
            last_seen: seen_at,
        };
        self.problems.push(range);
        Ok(())
    }
    fn update_problem_range(
        &mut self,
        id: u64,
        report: &ProblemReport,
        attempts: u32,
        seen_at: Timestamp,
    ) -> Result<(), String> {
        if let Some(range) = self.problems.iter_mut().find(|p| p.id == id) {
            (range.report, range.attempts, range.last_seen) = (*report, attempts, seen_at);
        }
        Ok(())
    }
    fn clear_problem_range(&mut self, id: u64) -> Result<(), String> {
        self.problems.retain(|p| p.id != id);
        Ok(())
    }
    fn tests_to_recheck(
        &mut self,
        product_ids: &[u64],
        final_statuses: &[String],
        _since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> Result<Vec<StoredTest>, String> {
        let mut due = Vec::new();
        for &product in product_ids {
            for (position, id) in self.stored_in_api_order(product).into_iter().enumerate() {
                let status = self.test_status.get(&id).cloned().unwrap_or_else(|| "running".into());
                let old = self.stamps.get(&("test", id)).is_none_or(|&at| at < written_before);
                if old && !final_statuses.contains(&status) {
                    due.push(StoredTest { id, product_id: product, status, position: position as u32 });
                }
            }
        }
        Ok(due)
    }
    fn remove_tests(&mut self, ids: &[u64]) -> Result<u32, String> {
        let before = self.stored_tests.len() + self.stored_bugs.len();
        self.stored_tests.retain(|id, _| !ids.contains(id));
        self.stored_bugs.retain(|_, test| !ids.contains(test));
        Ok((before - self.stored_tests.len() - self.stored_bugs.len()) as u32)
    }
    fn bug_candidates(&mut self, product_ids: &[u64], _since: Option<Timestamp>) -> Result<Vec<BugCandidate>, String> {
        let stored = |id: &u64| self.stored_tests.get(id).is_some_and(|p| product_ids.contains(p));
        let candidate = |id: u64| BugCandidate {
            id,
            product_id: self.stored_tests[&id],
            status: self.test_status.get(&id).cloned().unwrap_or_else(|| "running".into()),
            bugs_synced_at: self.bugs_synced.contains(&id).then_some(NOW),
        };
        Ok(self.tests.values().flatten().map(|t| t.0).filter(stored).map(candidate).collect())
    }
    fn write_bugs(&mut self, bugs: &Body, ids: &[u64], test_ids: &[u64]) -> Result<(), String> {
        assert!(ids.iter().all(|id| bugs.contains(id)), "asked to write a bug that is not in the list");
        self.stored_bugs.retain(|_, test| !test_ids.contains(test));
        for &id in ids {
            self.stored_bugs.insert(id, id / 10);
        }
        self.bugs_synced.extend(test_ids.iter().filter(|id| self.stored_tests.contains_key(id)));
        Ok(())
    }
    fn flush(&mut self) -> Result<(), String> {
        self.calls.push("flush".into());
        Ok(())
    }
    fn write_tests(&mut self, product_id: u64, page: &Body, ids: &[u64]) -> Result<(), String> {
        if self.failing_writes {
            return Err("disk I/O error".into());
        }
        assert!(ids.iter().all(|id| page.contains(id)), "asked to write a test that is not in the page");
        for &id in ids {
            self.stored_tests.insert(id, product_id);
            self.test_status.insert(id, self.api_status_of(id));
        }
        self.stamp("test", ids);
        Ok(())
    }
    fn sweep(
        &mut self,
        kind: EntityKind,
        product_ids: Option<&[u64]>,
        _since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> Result<u32, String> {
        self.sweeps.push((kind, product_ids.map(<[u64]>::to_vec)));
        let in_scope = |product: u64| product_ids.is_none_or(|ids| ids.contains(&product));
        let stale = |stamps: &BTreeMap<(&str, u64), Timestamp>, what, id| {
            stamps.get(&(what, id)).is_none_or(|&at| at < written_before)
        };
        let before =
            self.stored_products.len() + self.stored_features.values().flatten().count() + self.stored_tests.len();
        match kind {
            EntityKind::Products => {
                let gone: Vec<u64> = self
                    .stored_products
                    .iter()
                    .copied()
                    .filter(|&p| in_scope(p) && stale(&self.stamps, "product", p))
                    .collect();
                for product in gone {
                    self.stored_products.remove(&product);
                    self.stored_features.remove(&product);
                    self.stored_tests.retain(|_, p| *p != product);
                }
            }
            EntityKind::Features => {
                for (product, features) in self.stored_features.iter_mut().filter(|(p, _)| in_scope(**p)) {
                    let _ = product;
                    features.retain(|&f| !stale(&self.stamps, "feature", f));
                }
            }
            EntityKind::Tests => {
                self.stored_tests.retain(|&id, p| !(in_scope(*p) && stale(&self.stamps, "test", id)));
            }
            EntityKind::Bugs => return Err("the engine never sweeps bugs".into()),
        }
        let after =
            self.stored_products.len() + self.stored_features.values().flatten().count() + self.stored_tests.len();
        Ok((before - after) as u32)
    }
}

impl FakeHost {
    fn api_status_of(&self, id: u64) -> String {
        self.api_status.get(&id).cloned().unwrap_or_else(|| "running".into())
    }

    fn summary(&self, id: u64, end: i64) -> TestSummary {
        TestSummary { id, end_at: EndTime::At(end), status: self.api_status_of(id) }
    }

    /// A product's stored tests, newest first as the API lists them; ones it no longer
    /// lists last.
    fn stored_in_api_order(&self, product: u64) -> Vec<u64> {
        let listed: Vec<u64> = self.tests.get(&product).into_iter().flatten().map(|t| t.0).collect();
        let mut stored: Vec<u64> = listed.iter().copied().filter(|id| self.stored_tests.contains_key(id)).collect();
        stored.extend(
            self.stored_tests.iter().filter(|(id, p)| **p == product && !listed.contains(id)).map(|(id, _)| *id),
        );
        stored
    }

    /// Notes when these rows were written, for `sweep`.
    fn stamp(&mut self, what: &'static str, ids: &[u64]) {
        let now = NOW + self.later;
        for &id in ids {
            self.stamps.insert((what, id), now);
        }
    }
}
