//! Incremental discovery of a product's tests: which page to fetch next, which tests of
//! a page to write, and when to stop. Pages come newest first.
//!
//! Stop rules, in the order they are checked for each page:
//! - an empty page, or a page of only tests already seen in this sync (an API that
//!   ignores pagination would otherwise loop forever);
//! - a page whose tests all ended before `since`;
//! - a short page (fewer tests than asked for);
//! - in incremental mode, the page after the first page that held an already-known test
//!   (one safety page, for tests that ended out of order).
//!
//! Incremental mode needs more than known tests: an earlier walk must have covered the
//! scope without interruption (see `tests-coverage`). A walk killed half-way leaves known
//! tests with a gap behind them, and stopping at them would lose the gap for good.
//!
//! There is no page cap: a cold, forced or resumed walk goes to the product's end.
//!
//! A walk also re-checks the product's stored tests that are due (see `freshness`): those
//! on its pages count as checked, and where an incremental walk would stop it walks on as
//! far as `freshness::pages_to_walk` finds cheapest; the rest are left for fetching by id.

use std::collections::HashSet;

use crate::bindings::customer_api::{EndTime, TestSummary, TestsPageRequest};
use crate::bindings::store::StoredTest;
use crate::bindings::store::TestsCoverage;
use crate::bindings::types::Timestamp;
use crate::{freshness, ids};

pub const PAGE_SIZE: u32 = 25;
/// After this many pages in a row of which not one test could be fetched, the product's
/// walk stops: an API that fails every page would otherwise be walked forever.
pub const MAX_BROKEN_PAGES_IN_A_ROW: u32 = 2;

/// What to do with one page.
#[derive(Debug, Default, PartialEq)]
pub struct PageDecision {
    /// Tests to write, in page order.
    pub write: Vec<u64>,
    /// How many of `write` were not in the store before.
    pub discovered: u32,
    /// How many of `write` were already in the store.
    pub updated: u32,
    /// How many of `write` were due for a re-check, and how many of those changed status.
    pub rechecked: u32,
    pub changed: u32,
    pub warnings: Vec<String>,
}

/// Why a walk ended.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    /// At the product's oldest test, or at the `since` boundary. Tests that could not be
    /// fetched on the way are problem ranges, which the next sync retries first.
    Reached,
    /// At already-known tests, in incremental mode.
    KnownTests,
    /// Before either: a failed request, pages that all failed, or an API that ignores pagination.
    Abandoned,
}

pub struct ProductCursor {
    product_id: u64,
    since: Option<Timestamp>,
    /// What an earlier walk covered, before this one began.
    earlier: TestsCoverage,
    /// Whether already-known tests may end the walk.
    incremental: bool,
    page: u32,
    seen: HashSet<u64>,
    /// The page on which the first already-known test showed up.
    known_page: Option<u32>,
    /// Pages in a row that held no test that could be fetched.
    broken_pages: u32,
    ending: Option<Ending>,
    /// Stored tests due for a re-check that this walk has not met yet.
    due: Vec<StoredTest>,
    /// New tests met so far: they push the stored ones further down the list.
    discovered: u32,
    /// Walk on to this page for the due tests, past where known tests would stop it.
    extend_to: Option<u32>,
}

impl ProductCursor {
    pub fn new(product_id: u64, since: Option<Timestamp>, force: bool, earlier: TestsCoverage) -> Self {
        let incremental = !force && covers(earlier, since);
        let (page, seen, known_page, broken_pages, ending) = (1, HashSet::new(), None, 0, None);
        let (due, discovered, extend_to) = (Vec::new(), 0, None);
        Self {
            product_id,
            since,
            earlier,
            incremental,
            page,
            seen,
            known_page,
            broken_pages,
            ending,
            due,
            discovered,
            extend_to,
        }
    }

    /// Also re-checks these stored tests of the product.
    pub fn with_due(mut self, due: Vec<StoredTest>) -> Self {
        self.due = due;
        self
    }

    /// The due tests this walk did not meet, to fetch by id.
    pub fn take_due(&mut self) -> Vec<StoredTest> {
        std::mem::take(&mut self.due)
    }

    /// What the store may record once this walk is over: what it walked, joined to what
    /// an earlier walk covered; nothing if it was abandoned.
    pub fn coverage(&self) -> TestsCoverage {
        match self.ending {
            Some(Ending::Reached) => wider(self.earlier, self.since.map_or(TestsCoverage::All, TestsCoverage::Since)),
            Some(Ending::KnownTests) => self.earlier,
            Some(Ending::Abandoned) | None => TestsCoverage::None,
        }
    }

    /// Whether the walk got to the product's oldest test (or the `since` boundary).
    pub fn reached_end(&self) -> bool {
        self.ending == Some(Ending::Reached)
    }

    pub fn product_id(&self) -> u64 {
        self.product_id
    }

    /// The next page to fetch, or `None` once the product is finished.
    pub fn next_request(&self) -> Option<TestsPageRequest> {
        self.ending.is_none().then_some(TestsPageRequest {
            product_id: self.product_id,
            page: self.page,
            per_page: PAGE_SIZE,
        })
    }

    /// Stops the walk (e.g. after a failed request).
    pub fn finish(&mut self) {
        self.ending = Some(Ending::Abandoned);
    }

    /// Decides what to write from the page just fetched and advances. `known` holds the
    /// ids of this page that the store had before this sync.
    pub fn accept(&mut self, tests: &[TestSummary], known: &HashSet<u64>) -> PageDecision {
        self.accept_with_gaps(tests, known, 0)
    }

    /// Like `accept`, for a page of which `gaps` tests could not be fetched at all (see
    /// `salvage`): they still take their places in the page, so the page is not short.
    pub fn accept_with_gaps(&mut self, tests: &[TestSummary], known: &HashSet<u64>, gaps: usize) -> PageDecision {
        let mut decision = PageDecision::default();
        let fresh: Vec<&TestSummary> = tests.iter().filter(|t| !self.seen.contains(&t.id)).collect();
        if fresh.is_empty() && gaps == 0 {
            if !tests.is_empty() {
                decision.warnings.push(format!(
                    "product {}: page {} repeated tests already fetched in this sync; the API seems to ignore pagination, so discovery stopped there",
                    self.product_id, self.page
                ));
                self.ending = Some(Ending::Abandoned);
            } else {
                self.ending = Some(Ending::Reached);
            }
            return decision;
        }
        if tests.is_empty() {
            self.broken_page(&mut decision);
            return decision;
        }
        self.broken_pages = 0;
        // A test a store cannot hold is skipped, but still takes its place on the page.
        let source = format!("page {} of products/{}/exploratory_tests", self.page, self.product_id);
        let what = format!("product {}: test", self.product_id);
        let fresh: Vec<&TestSummary> =
            fresh.into_iter().filter(|t| ids::storable(t.id, &what, &source, &mut decision.warnings)).collect();
        let kept: Vec<&TestSummary> =
            fresh.iter().copied().filter(|t| keep(self.product_id, self.since, t, &mut decision.warnings)).collect();
        if kept.is_empty() && !fresh.is_empty() {
            self.ending = Some(Ending::Reached);
            return decision;
        }
        for test in kept {
            self.seen.insert(test.id);
            decision.write.push(test.id);
            if known.contains(&test.id) {
                decision.updated += 1;
            } else {
                decision.discovered += 1;
            }
            self.recheck(test, &mut decision);
        }
        self.discovered += decision.discovered;
        self.advance(tests.len() + gaps, decision.updated > 0);
        decision
    }

    /// Counts a written test that was due for a re-check.
    fn recheck(&mut self, fresh: &TestSummary, decision: &mut PageDecision) {
        let Some(at) = self.due.iter().position(|d| d.id == fresh.id) else { return };
        let stored = self.due.swap_remove(at);
        decision.rechecked += 1;
        decision.changed += u32::from(stored.status != fresh.status);
    }

    fn broken_page(&mut self, decision: &mut PageDecision) {
        self.broken_pages += 1;
        if self.broken_pages < MAX_BROKEN_PAGES_IN_A_ROW {
            self.page += 1;
            return;
        }
        decision.warnings.push(format!(
            "product {}: {} pages in a row could not be fetched at all; stopped walking its tests at page {}",
            self.product_id, self.broken_pages, self.page
        ));
        self.ending = Some(Ending::Abandoned);
    }

    fn advance(&mut self, page_len: usize, page_had_known: bool) {
        if page_had_known && self.incremental && self.known_page.is_none() {
            self.known_page = Some(self.page);
        }
        if page_len < PAGE_SIZE as usize {
            self.ending = Some(Ending::Reached);
        } else if self.known_page.is_some_and(|p| p < self.page) && !self.walks_on_for_due() {
            self.ending = Some(Ending::KnownTests);
        } else {
            self.page += 1;
        }
    }

    /// Where known tests would end the walk: whether to walk on for the due tests. The
    /// depth is decided once, from where the due tests are expected now.
    fn walks_on_for_due(&mut self) -> bool {
        let extend_to = *self.extend_to.get_or_insert_with(|| {
            let offsets: Vec<u64> =
                self.due.iter().map(|d| u64::from(d.position) + u64::from(self.discovered)).collect();
            freshness::pages_to_walk(self.page, &offsets, PAGE_SIZE)
        });
        self.page < extend_to
    }
}

/// Whether coverage `earlier` includes every test a walk with `since` would write.
fn covers(earlier: TestsCoverage, since: Option<Timestamp>) -> bool {
    match (earlier, since) {
        (TestsCoverage::All, _) => true,
        (TestsCoverage::Since(from), Some(since)) => from <= since,
        _ => false,
    }
}

fn wider(a: TestsCoverage, b: TestsCoverage) -> TestsCoverage {
    match (a, b) {
        (TestsCoverage::All, _) | (_, TestsCoverage::All) => TestsCoverage::All,
        (TestsCoverage::Since(x), TestsCoverage::Since(y)) => TestsCoverage::Since(x.min(y)),
        (TestsCoverage::None, other) | (other, TestsCoverage::None) => other,
    }
}

/// Keeps a test of a product unless it provably ended before `since`; an unreadable
/// `end_at` keeps it, with a warning.
pub fn keep(product_id: u64, since: Option<Timestamp>, test: &TestSummary, warnings: &mut Vec<String>) -> bool {
    match &test.end_at {
        EndTime::At(end) => since.is_none_or(|since| *end >= since),
        EndTime::Missing => true,
        EndTime::Unparsable(text) => {
            warnings
                .push(format!("product {product_id}: test {} has an unparsable end_at ({text:?}); kept it", test.id));
            true
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    const HOUR: i64 = 3_600_000;

    /// A product's tests, newest first: ids count down from `newest`, one hour apart.
    fn page_of(newest: u64, len: usize) -> Vec<TestSummary> {
        (0..len as u64)
            .map(|i| TestSummary {
                id: newest - i,
                end_at: EndTime::At((newest - i) as i64 * HOUR),
                status: "running".into(),
            })
            .collect()
    }

    /// Drives a cursor over an account of `total` tests (ids 1..=total) where ids up to
    /// `known_up_to` are already stored. Returns (pages fetched, decisions).
    fn walk(total: u64, known_up_to: u64, since: Option<i64>, force: bool) -> (u32, Vec<PageDecision>) {
        let (pages, decisions, _) = walk_from(total, known_up_to, since, force, TestsCoverage::All);
        (pages, decisions)
    }

    /// Like `walk`, after an earlier walk that covered `earlier`; also returns the coverage to record.
    fn walk_from(
        total: u64,
        known_up_to: u64,
        since: Option<i64>,
        force: bool,
        earlier: TestsCoverage,
    ) -> (u32, Vec<PageDecision>, TestsCoverage) {
        let mut cursor = ProductCursor::new(1, since, force, earlier);
        let mut decisions = Vec::new();
        let mut pages = 0;
        while let Some(req) = cursor.next_request() {
            pages += 1;
            let skip = (req.page - 1) as u64 * req.per_page as u64;
            let len = total.saturating_sub(skip).min(req.per_page as u64) as usize;
            let tests = if len == 0 { vec![] } else { page_of(total - skip, len) };
            let known = tests.iter().map(|t| t.id).filter(|&id| id <= known_up_to).collect();
            decisions.push(cursor.accept(&tests, &known));
            assert!(pages < 10_000, "discovery did not stop");
        }
        (pages, decisions, cursor.coverage())
    }

    fn assert_coverage(actual: TestsCoverage, expected: TestsCoverage, why: &str) {
        let same = match (actual, expected) {
            (TestsCoverage::Since(a), TestsCoverage::Since(b)) => a == b,
            (TestsCoverage::All, TestsCoverage::All) | (TestsCoverage::None, TestsCoverage::None) => true,
            _ => false,
        };
        assert!(same, "{why}: got {actual:?}, expected {expected:?}");
    }

    fn written(decisions: &[PageDecision]) -> usize {
        decisions.iter().map(|d| d.write.len()).sum()
    }

    #[test]
    fn a_cold_sync_walks_every_page_with_no_cap() {
        let (pages, decisions) = walk(3_000, 0, None, false);
        assert_eq!(written(&decisions), 3_000);
        assert_eq!(pages, 121, "120 full pages and one empty page");
        assert_eq!(decisions.iter().map(|d| d.discovered).sum::<u32>(), 3_000);
    }

    #[test]
    fn an_up_to_date_product_costs_two_pages() {
        let (pages, decisions) = walk(500, 500, None, false);
        assert_eq!(pages, 2);
        assert_eq!(decisions.iter().map(|d| d.discovered).sum::<u32>(), 0);
        assert_eq!(decisions.iter().map(|d| d.updated).sum::<u32>(), 50);
    }

    #[test]
    fn new_tests_ahead_of_known_ones_are_all_discovered() {
        let (pages, decisions) = walk(530, 500, None, false);
        assert_eq!(decisions.iter().map(|d| d.discovered).sum::<u32>(), 30);
        assert_eq!(pages, 3, "page 2 holds the first known test, page 3 is the safety page");
    }

    #[test]
    fn force_walks_past_known_tests_to_the_end() {
        let (_, decisions) = walk(300, 300, None, true);
        assert_eq!(written(&decisions), 300);
        assert_eq!(decisions.iter().map(|d| d.updated).sum::<u32>(), 300);
    }

    #[test]
    fn since_stops_at_the_first_page_that_is_entirely_older() {
        // Tests 1..=100; since = test 60's end: tests 60..=100 qualify.
        let (pages, decisions) = walk(100, 0, Some(60 * HOUR), false);
        let all: Vec<u64> = decisions.iter().flat_map(|d| d.write.clone()).collect();
        assert_eq!(all.len(), 41);
        assert!(all.iter().all(|&id| id >= 60));
        assert_eq!(pages, 3, "page 2 is partly older, page 3 wholly older");
    }

    #[test]
    fn a_short_page_ends_the_walk() {
        let (pages, _) = walk(30, 0, None, false);
        assert_eq!(pages, 2);
    }

    #[test]
    fn unparsable_end_at_is_kept_with_a_warning_even_with_since() {
        let mut cursor = ProductCursor::new(4, Some(10 * HOUR), false, TestsCoverage::All);
        let tests = vec![
            TestSummary { id: 9, end_at: EndTime::Unparsable("yesterday-ish".into()), status: String::new() },
            TestSummary { id: 8, end_at: EndTime::Missing, status: String::new() },
            TestSummary { id: 7, end_at: EndTime::At(HOUR), status: String::new() },
        ];
        let decision = cursor.accept(&tests, &HashSet::new());
        assert_eq!(decision.write, vec![9, 8]);
        assert_eq!(decision.warnings.len(), 1);
        assert!(decision.warnings[0].contains("test 9"), "{:?}", decision.warnings);
        assert!(decision.warnings[0].contains("product 4"));
    }

    #[test]
    fn a_page_with_unfetchable_tests_is_not_taken_for_the_last_one() {
        let mut cursor = ProductCursor::new(1, None, false, TestsCoverage::All);
        let decision = cursor.accept_with_gaps(&page_of(100, 23), &HashSet::new(), 2);
        assert_eq!(decision.write.len(), 23);
        assert_eq!(cursor.next_request().map(|r| r.page), Some(2));
        let all_bad = cursor.accept_with_gaps(&[], &HashSet::new(), 25);
        assert!(all_bad.write.is_empty());
        assert_eq!(cursor.next_request().map(|r| r.page), Some(3), "a wholly bad page does not end the walk");
        let second = cursor.accept_with_gaps(&[], &HashSet::new(), 25);
        assert!(second.warnings[0].contains("2 pages in a row"), "{:?}", second.warnings);
        assert!(cursor.next_request().is_none(), "two in a row do");
    }

    #[test]
    fn an_api_that_ignores_pagination_stops_with_a_warning() {
        let mut cursor = ProductCursor::new(1, None, true, TestsCoverage::All);
        let everything = page_of(40, 40);
        let first = cursor.accept(&everything, &HashSet::new());
        assert_eq!(first.write.len(), 40);
        assert!(cursor.next_request().is_some());
        let second = cursor.accept(&everything, &HashSet::new());
        assert!(second.write.is_empty());
        assert!(second.warnings[0].contains("ignore pagination"));
        assert!(cursor.next_request().is_none());
        assert_coverage(cursor.coverage(), TestsCoverage::None, "a walk that could not finish covers nothing");
    }

    #[test]
    fn a_walk_interrupted_before_the_end_is_resumed_to_the_end() {
        // An earlier walk stored the 250 newest tests of 500 and was killed: no coverage.
        let (pages, decisions, coverage) = walk_from(500, 500, None, false, TestsCoverage::None);
        assert_eq!(pages, 21, "every page, not two");
        assert_eq!(written(&decisions), 500);
        assert_coverage(coverage, TestsCoverage::All, "a resumed walk covers everything");
    }

    #[test]
    fn coverage_records_how_far_a_walk_reached() {
        let since = Some(60 * HOUR);
        let (_, _, cold) = walk_from(100, 0, since, false, TestsCoverage::None);
        assert_coverage(cold, TestsCoverage::Since(60 * HOUR), "a cold walk covers its since");
        let (_, _, incremental) = walk_from(530, 500, None, false, TestsCoverage::All);
        assert_coverage(incremental, TestsCoverage::All, "stopping at known tests keeps the earlier coverage");
        let (_, _, widened) = walk_from(100, 100, Some(10 * HOUR), false, TestsCoverage::Since(60 * HOUR));
        assert_coverage(widened, TestsCoverage::Since(10 * HOUR), "an earlier since walks past known tests");
        let (_, _, narrower) = walk_from(100, 100, Some(80 * HOUR), true, TestsCoverage::All);
        assert_coverage(narrower, TestsCoverage::All, "a narrower walk keeps the wider earlier coverage");
    }

    #[test]
    fn coverage_of_a_since_walk_does_not_cover_an_older_since() {
        assert!(covers(TestsCoverage::Since(10), Some(20)));
        assert!(!covers(TestsCoverage::Since(20), Some(10)));
        assert!(!covers(TestsCoverage::Since(20), None));
        assert!(!covers(TestsCoverage::None, Some(20)));
        assert!(covers(TestsCoverage::All, None));
    }

    #[test]
    fn a_test_id_no_store_can_hold_is_skipped_with_a_warning_and_the_walk_goes_on() {
        let mut cursor = ProductCursor::new(1, None, false, TestsCoverage::None);
        let mut page = page_of(1_000, PAGE_SIZE as usize - 1);
        page.insert(3, TestSummary { id: u64::MAX, end_at: EndTime::Missing, status: String::new() });
        let decision = cursor.accept(&page, &HashSet::new());
        assert_eq!(decision.write.len(), PAGE_SIZE as usize - 1);
        assert!(!decision.write.contains(&u64::MAX));
        assert!(decision.warnings[0].contains("test 18446744073709551615 from page 1 of products/1/exploratory_tests"));
        assert_eq!(cursor.next_request().map(|r| r.page), Some(2), "the page was full, so the walk goes on");
    }
}
