//! Problem ranges: runs of offsets in a product's test list that failed with HTTP 500
//! even one test per page. A sync records each one it finds, with the tests on either
//! side, so it can be recognised again. The next sync retries the recorded ranges before
//! it walks the products, and clears a record once its range comes back whole.
//!
//! Which stored range a failing run is, is decided here, not by the store: a range of
//! the same product between the same neighbours (same ids; none matches none). The store
//! only adds a range or updates the one the [`Ledger`] names. Each range counts once per
//! sync, however often the sync meets it (the retry, then the walk).

use std::collections::HashSet;

use crate::bindings::customer_api::{ApiError, EndTime, TestSummary, TestsPageRequest};
use crate::bindings::events::Level;
use crate::bindings::store::{Neighbour, ProblemRange, ProblemReport};
use crate::bindings::types::{SyncError, Timestamp};
use crate::host::{ApiResult, Fetched, Host};
use crate::salvage::Salvaged;
use crate::{discovery, failures, ids};

/// What a sync did about problem ranges, for the tally.
#[derive(Default, Debug, PartialEq)]
pub struct Retried {
    pub discovered: u32,
    pub updated: u32,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

/// How the retry of one recorded range went.
enum Retry<P> {
    /// Every offset came back, between the same neighbours as before.
    Recovered(Vec<Fetched<P, TestSummary>>),
    /// Some offset still fails with HTTP 500.
    StillFailing,
    /// The neighbours are not where they were: newer tests pushed the range elsewhere.
    Moved,
    /// The list now ends before the range: its tests are gone.
    Gone,
    /// Another failure; judged like any failed request.
    Failed(ApiError),
}

/// The problem ranges of the products in scope: the stored ones, and what this sync has
/// recorded so far.
pub struct Ledger {
    stored: Vec<ProblemRange>,
    /// Ranges this sync already counted: stored ones by id, and the ones it added.
    counted: HashSet<u64>,
    added: Vec<ProblemReport>,
}

impl Ledger {
    /// Reads the stored ranges of these products; none for no products.
    pub fn read<H: Host>(host: &mut H, product_ids: &[u64]) -> Result<Self, SyncError> {
        // The store reads an empty list as "every product".
        let stored = if product_ids.is_empty() {
            Vec::new()
        } else {
            host.problem_ranges(product_ids).map_err(SyncError::StoreFailed)?
        };
        Ok(Self { stored, counted: HashSet::new(), added: Vec::new() })
    }

    /// Records a run found failing now, unless this sync has counted it already; returns
    /// the error to report, once per range and sync.
    pub fn record<H: Host>(&mut self, host: &mut H, report: &ProblemReport) -> Result<Option<String>, SyncError> {
        if self.added.iter().any(|added| same_range(added, report)) {
            return Ok(None);
        }
        let seen_at = host.now();
        let stored = self.stored.iter().find(|r| same_range(&r.report, report));
        match stored {
            Some(range) if self.counted.contains(&range.id) => return Ok(None),
            Some(range) => {
                let attempts = range.attempts.saturating_add(1);
                host.update_problem_range(range.id, report, attempts, seen_at).map_err(SyncError::StoreFailed)?;
                self.counted.insert(range.id);
            }
            None => {
                host.add_problem_range(report, seen_at).map_err(SyncError::StoreFailed)?;
                self.added.push(*report);
            }
        }
        Ok(Some(describe(report)))
    }

    /// Records a problem range for every run of offsets the salvage could not fetch (a
    /// neighbour that the salvage did not bring back is fetched on its own); returns the
    /// errors to report.
    pub fn record_salvage<H: Host>(
        &mut self,
        host: &mut H,
        product_id: u64,
        salvaged: &Salvaged<H::Payload>,
    ) -> Result<Vec<String>, SyncError> {
        let mut errors = Vec::new();
        for report in reports(host, product_id, salvaged) {
            errors.extend(self.record(host, &report)?);
        }
        Ok(errors)
    }
}

/// The same range: same product, same neighbour ids.
fn same_range(a: &ProblemReport, b: &ProblemReport) -> bool {
    let id = |n: &Option<Neighbour>| n.as_ref().map(|n| n.id);
    a.product_id == b.product_id && id(&a.before) == id(&b.before) && id(&a.after) == id(&b.after)
}

/// One report per run of offsets the salvage could not fetch, with its neighbours.
fn reports<H: Host>(host: &mut H, product_id: u64, salvaged: &Salvaged<H::Payload>) -> Vec<ProblemReport> {
    let runs = salvaged.bad_runs();
    let mut wanted: Vec<u64> = Vec::new();
    for &(first, last) in &runs {
        let sides = [first.checked_sub(1), Some(last + 1)];
        wanted.extend(sides.into_iter().flatten().filter(|&o| salvaged.at(o).is_none()));
    }
    wanted.sort_unstable();
    wanted.dedup();
    let fetched = fetch_offsets(host, product_id, &wanted);
    let neighbour_at = |offset: u64| {
        let fetched = wanted.iter().position(|&o| o == offset).and_then(|i| fetched[i].as_ref().ok());
        salvaged.at(offset).or_else(|| fetched.and_then(|page| page.items.first())).map(neighbour)
    };
    runs.into_iter()
        .map(|(first, last)| ProblemReport {
            product_id,
            first_offset: offset_u32(first),
            last_offset: offset_u32(last),
            before: first.checked_sub(1).and_then(neighbour_at),
            after: neighbour_at(last + 1),
        })
        .collect()
}

/// The error that says what a recorded range lost.
pub fn describe(report: &ProblemReport) -> String {
    let count = report.last_offset - report.first_offset + 1;
    let tests = if count == 1 { "1 test" } else { &format!("{count} tests") };
    format!(
        "product {}: {tests} at offsets {}-{} fail with HTTP 500 even one per page; recorded as a problem range (see `testio-sync problems`), retried by the next sync",
        report.product_id, report.first_offset, report.last_offset
    )
}

impl Ledger {
    /// Retries the stored ranges: writes the tests of every range that comes back whole
    /// and clears its record; records again the ones that still fail.
    pub fn retry<H: Host>(&mut self, host: &mut H, since: Option<Timestamp>) -> Result<Retried, SyncError> {
        let mut retried = Retried::default();
        if self.stored.is_empty() {
            return Ok(retried);
        }
        let plans: Vec<Vec<u64>> = self.stored.iter().map(offsets_to_check).collect();
        let requests: Vec<TestsPageRequest> = self
            .stored
            .iter()
            .zip(&plans)
            .flat_map(|(r, offsets)| single_pages(r.report.product_id, offsets))
            .collect();
        let mut answers = host.fetch_tests_pages(&requests).into_iter();
        let mut cleared = HashSet::new();
        for (range, offsets) in self.stored.clone().iter().zip(&plans) {
            let answers: Vec<_> = answers.by_ref().take(offsets.len()).collect();
            if self.settle(host, range, judge(range, answers), since, &mut retried)? {
                cleared.insert(range.id);
            }
        }
        // A cleared range that fails again later in this sync is a new one.
        self.stored.retain(|r| !cleared.contains(&r.id));
        Ok(retried)
    }

    /// Carries out how the retry of one range went; returns whether its record was cleared.
    fn settle<H: Host>(
        &mut self,
        host: &mut H,
        range: &ProblemRange,
        retry: Retry<H::Payload>,
        since: Option<Timestamp>,
        retried: &mut Retried,
    ) -> Result<bool, SyncError> {
        let product_id = range.report.product_id;
        let span = format!("offsets {}-{}", range.report.first_offset, range.report.last_offset);
        match retry {
            Retry::Recovered(pages) => {
                write_recovered(host, product_id, since, &pages, retried)?;
                host.clear_problem_range(range.id).map_err(SyncError::StoreFailed)?;
                let message = format!("product {product_id}: the problem range at {span} came back whole; cleared it");
                host.log(Level::Info, &message);
                return Ok(true);
            }
            Retry::StillFailing => retried.errors.extend(self.record(host, &range.report)?),
            Retry::Moved => retried.warnings.push(format!(
                "product {product_id}: the problem range at {span} has moved (newer tests arrived); it is recorded again when a sync meets it"
            )),
            Retry::Gone => {
                host.clear_problem_range(range.id).map_err(SyncError::StoreFailed)?;
                retried.warnings.push(format!(
                    "product {product_id}: the test list now ends before the problem range at {span}; cleared it"
                ));
                return Ok(true);
            }
            Retry::Failed(error) => match failures::judge(&error, product_id, "tests") {
                failures::Verdict::Abort(e) => return Err(e),
                failures::Verdict::Gone(m) => retried.warnings.push(m),
                failures::Verdict::Lost(m) | failures::Verdict::Malformed(m) => retried.errors.push(m),
            },
        }
        Ok(false)
    }
}

/// The range's offsets, plus its neighbours' when it has them.
fn offsets_to_check(range: &ProblemRange) -> Vec<u64> {
    let (first, last) = (u64::from(range.report.first_offset), u64::from(range.report.last_offset));
    let start = if range.report.before.is_some() { first.saturating_sub(1) } else { first };
    let end = if range.report.after.is_some() { last + 1 } else { last };
    (start..=end).collect()
}

/// Decides from the answers for `offsets_to_check` how the retry went.
fn judge<P>(range: &ProblemRange, answers: Vec<ApiResult<P, TestSummary>>) -> Retry<P> {
    let mut pages = Vec::new();
    for answer in answers {
        match answer {
            Ok(page) => pages.push(page),
            Err(e) if failures::page_is_broken(&e) => return Retry::StillFailing,
            Err(e) => return Retry::Failed(e),
        }
    }
    let id_at = |i: usize| pages.get(i).and_then(|p| p.items.first()).map(|t| t.id);
    let report = &range.report;
    let mut inner = 0..pages.len();
    if let Some(before) = &report.before {
        if id_at(0) != Some(before.id) {
            return Retry::Moved;
        }
        inner.start += 1;
    }
    if let Some(after) = &report.after {
        if id_at(pages.len() - 1) != Some(after.id) {
            return Retry::Moved;
        }
        inner.end -= 1;
    }
    if pages[inner.clone()].iter().all(|p| p.items.is_empty()) {
        return Retry::Gone;
    }
    Retry::Recovered(pages.drain(inner).collect())
}

fn write_recovered<H: Host>(
    host: &mut H,
    product_id: u64,
    since: Option<Timestamp>,
    pages: &[Fetched<H::Payload, TestSummary>],
    retried: &mut Retried,
) -> Result<(), SyncError> {
    let fetched: Vec<u64> = pages.iter().flat_map(|p| p.items.iter().map(|t| t.id)).collect();
    let known: HashSet<u64> = host.known_tests(&fetched).map_err(SyncError::StoreFailed)?.into_iter().collect();
    let what = format!("product {product_id}: test");
    for page in pages {
        let warnings = &mut retried.warnings;
        let write: Vec<u64> = page
            .items
            .iter()
            .filter(|t| {
                ids::storable(t.id, &what, "a problem range", warnings)
                    && discovery::keep(product_id, since, t, warnings)
            })
            .map(|t| t.id)
            .collect();
        if write.is_empty() {
            continue;
        }
        host.write_tests(product_id, &page.body, &write).map_err(SyncError::StoreFailed)?;
        let updated = write.iter().filter(|id| known.contains(id)).count() as u32;
        retried.updated += updated;
        retried.discovered += write.len() as u32 - updated;
    }
    Ok(())
}

/// Fetches single tests by offset, one per page, in one batch.
fn fetch_offsets<H: Host>(host: &mut H, product_id: u64, offsets: &[u64]) -> Vec<ApiResult<H::Payload, TestSummary>> {
    if offsets.is_empty() {
        return Vec::new();
    }
    host.fetch_tests_pages(&single_pages(product_id, offsets))
}

/// With one test per page, the test at offset `o` is page `o + 1`.
fn single_pages(product_id: u64, offsets: &[u64]) -> Vec<TestsPageRequest> {
    offsets.iter().map(|&o| TestsPageRequest { product_id, page: offset_u32(o + 1), per_page: 1 }).collect()
}

fn offset_u32(offset: u64) -> u32 {
    u32::try_from(offset).unwrap_or(u32::MAX)
}

fn neighbour(test: &TestSummary) -> Neighbour {
    let end_at = match test.end_at {
        EndTime::At(t) => Some(t),
        _ => None,
    };
    Neighbour { id: test.id, end_at }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;
    use crate::salvage;

    /// Salvages the page at offsets 25..50 of a 200-test product with these bad offsets
    /// and records what failed; returns the errors to report.
    fn meet(host: &mut FakeHost, ledger: &mut Ledger, bad: &[u64]) -> Vec<String> {
        host.bad_offsets.insert(1, bad.iter().copied().collect());
        let salvaged = salvage::shrink(host, 1, 25..50);
        ledger.record_salvage(host, 1, &salvaged).unwrap()
    }

    fn found_and_recorded(bad: &[u64]) -> (FakeHost, Vec<String>) {
        let mut host = FakeHost::account(1, 1, 200);
        let mut ledger = Ledger::read(&mut host, &[1]).unwrap();
        let errors = meet(&mut host, &mut ledger, bad);
        (host, errors)
    }

    #[test]
    fn a_run_is_recorded_once_with_the_tests_on_either_side() {
        let (host, errors) = found_and_recorded(&[37, 38]);
        assert_eq!(host.problems.len(), 1);
        let range = &host.problems[0];
        assert_eq!((range.report.first_offset, range.report.last_offset, range.attempts), (37, 38, 1));
        assert_eq!(range.report.before.as_ref().map(|n| n.id), Some(host.tests[&1][36].0));
        assert_eq!(range.report.after.as_ref().map(|n| n.id), Some(host.tests[&1][39].0));
        assert_eq!(range.first_seen, crate::fake::NOW);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("2 tests at offsets 37-38"), "{errors:?}");
    }

    #[test]
    fn a_neighbour_outside_what_was_salvaged_is_fetched_alone() {
        // Offset 49 ends the page; its older neighbour (50) is on the next page.
        let (host, _) = found_and_recorded(&[49]);
        assert_eq!(host.problems[0].report.after.as_ref().map(|n| n.id), Some(host.tests[&1][50].0));
        assert!(host.page_requests.iter().any(|r| r.per_page == 1 && r.page == 51));
    }

    #[test]
    fn a_range_that_comes_back_is_written_and_cleared() {
        let (mut host, _) = found_and_recorded(&[37, 38]);
        host.bad_offsets.clear();
        host.page_requests.clear();
        let retried = Ledger::read(&mut host, &[1]).unwrap().retry(&mut host, None).unwrap();
        assert_eq!(retried.discovered, 2);
        assert!(host.problems.is_empty());
        assert!(host.stored_tests.contains_key(&host.tests[&1][37].0));
        assert_eq!(host.page_requests.len(), 4, "the two offsets and their two neighbours");
    }

    #[test]
    fn a_range_that_still_fails_is_recorded_again() {
        let (mut host, _) = found_and_recorded(&[37]);
        let retried = Ledger::read(&mut host, &[1]).unwrap().retry(&mut host, None).unwrap();
        assert_eq!(retried.errors.len(), 1);
        assert_eq!((host.problems.len(), host.problems[0].attempts), (1, 2));
    }

    #[test]
    fn a_range_met_by_the_retry_and_again_by_the_walk_counts_once_per_sync() {
        let (mut host, _) = found_and_recorded(&[37]);
        let mut ledger = Ledger::read(&mut host, &[1]).unwrap();
        let retried = ledger.retry(&mut host, None).unwrap();
        let met_again = meet(&mut host, &mut ledger, &[37]);
        assert_eq!(retried.errors.len(), 1);
        assert!(met_again.is_empty(), "{met_again:?}");
        assert_eq!((host.problems.len(), host.problems[0].attempts), (1, 2));
    }

    #[test]
    fn a_range_pushed_along_by_newer_tests_is_left_alone_then_updated_where_the_walk_meets_it() {
        let (mut host, _) = found_and_recorded(&[37]);
        host.bad_offsets.clear();
        host.add_tests(1, 3);
        let mut ledger = Ledger::read(&mut host, &[1]).unwrap();
        let retried = ledger.retry(&mut host, None).unwrap();
        assert!(retried.warnings[0].contains("has moved"), "{:?}", retried.warnings);
        assert_eq!(host.problems.len(), 1);
        let errors = meet(&mut host, &mut ledger, &[40]);
        assert_eq!(errors.len(), 1);
        let range = &host.problems[0];
        assert_eq!(
            (host.problems.len(), range.report.first_offset, range.attempts),
            (1, 40, 2),
            "same neighbours, same range"
        );
    }

    #[test]
    fn a_cleared_range_that_fails_again_in_the_same_sync_is_a_new_record() {
        let (mut host, _) = found_and_recorded(&[37]);
        host.bad_offsets.clear();
        let mut ledger = Ledger::read(&mut host, &[1]).unwrap();
        ledger.retry(&mut host, None).unwrap();
        assert!(host.problems.is_empty());
        let errors = meet(&mut host, &mut ledger, &[37]);
        assert_eq!((errors.len(), host.problems.len(), host.problems[0].attempts), (1, 1, 1));
    }

    #[test]
    fn no_products_read_no_ranges() {
        let (mut host, _) = found_and_recorded(&[37]);
        let ledger = Ledger::read(&mut host, &[]).unwrap();
        assert!(ledger.stored.is_empty(), "an empty list must not mean every product");
    }
}
