//! Problem ranges: runs of offsets in a product's test list that failed with HTTP 500
//! even one test per page. A sync records each one it finds, with the tests on either
//! side, so it can be recognised again. The next sync retries the recorded ranges before
//! it walks the products, and clears a record once its range comes back whole.

use std::collections::HashSet;

use crate::bindings::customer_api::{EndTime, TestSummary, TestsPageRequest};
use crate::bindings::store::{Neighbour, ProblemRange, ProblemReport};
use crate::bindings::types::{SyncError, Timestamp};
use crate::host::{ApiResult, Fetched, Host};
use crate::salvage::Salvaged;
use crate::{discovery, policy};

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
    Failed(crate::bindings::customer_api::ApiError),
}

/// Records a problem range for every run of offsets the salvage could not fetch. A
/// neighbour that the salvage did not bring back is fetched on its own.
pub fn record<H: Host>(
    host: &mut H,
    product_id: u64,
    salvaged: &Salvaged<H::Payload>,
) -> Result<Vec<ProblemReport>, SyncError> {
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
    let mut reports = Vec::new();
    for (first, last) in runs {
        let report = ProblemReport {
            product_id,
            first_offset: offset_u32(first),
            last_offset: offset_u32(last),
            before: first.checked_sub(1).and_then(neighbour_at),
            after: neighbour_at(last + 1),
        };
        host.record_problem_range(&report).map_err(SyncError::StoreFailed)?;
        reports.push(report);
    }
    Ok(reports)
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

/// Retries the recorded ranges of these products: writes the tests of every range that
/// comes back whole and clears its record; records again the ones that still fail.
pub fn retry_recorded<H: Host>(
    host: &mut H,
    product_ids: &[u64],
    since: Option<Timestamp>,
) -> Result<Retried, SyncError> {
    let mut retried = Retried::default();
    let ranges = host.problem_ranges(product_ids).map_err(SyncError::StoreFailed)?;
    if ranges.is_empty() {
        return Ok(retried);
    }
    let plans: Vec<Vec<u64>> = ranges.iter().map(offsets_to_check).collect();
    let requests: Vec<TestsPageRequest> =
        ranges.iter().zip(&plans).flat_map(|(r, offsets)| single_pages(r.report.product_id, offsets)).collect();
    let mut answers = host.fetch_tests_pages(&requests).into_iter();
    for (range, offsets) in ranges.iter().zip(&plans) {
        let answers: Vec<_> = answers.by_ref().take(offsets.len()).collect();
        let product_id = range.report.product_id;
        let span = format!("offsets {}-{}", range.report.first_offset, range.report.last_offset);
        match judge(range, answers) {
            Retry::Recovered(pages) => {
                write_recovered(host, product_id, since, &pages, &mut retried)?;
                host.clear_problem_range(range.id).map_err(SyncError::StoreFailed)?;
                host.log(
                    crate::bindings::events::Level::Info,
                    &format!("product {product_id}: the problem range at {span} came back whole; cleared it"),
                );
            }
            Retry::StillFailing => {
                host.record_problem_range(&range.report).map_err(SyncError::StoreFailed)?;
                retried.errors.push(describe(&range.report));
            }
            Retry::Moved => retried.warnings.push(format!(
                "product {product_id}: the problem range at {span} has moved (newer tests arrived); it is recorded again when a sync meets it"
            )),
            Retry::Gone => {
                host.clear_problem_range(range.id).map_err(SyncError::StoreFailed)?;
                retried.warnings.push(format!(
                    "product {product_id}: the test list now ends before the problem range at {span}; cleared it"
                ));
            }
            Retry::Failed(error) => match policy::judge(&error, product_id, "tests") {
                policy::Verdict::Abort(e) => return Err(e),
                policy::Verdict::Gone(m) => retried.warnings.push(m),
                policy::Verdict::Lost(m) | policy::Verdict::Malformed(m) => retried.errors.push(m),
            },
        }
    }
    Ok(retried)
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
            Err(e) if policy::page_is_broken(&e) => return Retry::StillFailing,
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
    let ids: Vec<u64> = pages.iter().flat_map(|p| p.items.iter().map(|t| t.id)).collect();
    let known: HashSet<u64> = host.known_tests(&ids).map_err(SyncError::StoreFailed)?.into_iter().collect();
    for page in pages {
        let write: Vec<u64> = page
            .items
            .iter()
            .filter(|t| discovery::keep(product_id, since, t, &mut retried.warnings))
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

    fn found_and_recorded(bad: &[u64]) -> (FakeHost, Vec<ProblemReport>) {
        let mut host = FakeHost::account(1, 1, 200);
        host.bad_offsets.insert(1, bad.iter().copied().collect());
        let salvaged = salvage::shrink(&mut host, 1, 25..50);
        let reports = record(&mut host, 1, &salvaged).unwrap();
        (host, reports)
    }

    #[test]
    fn a_run_is_recorded_once_with_the_tests_on_either_side() {
        let (host, reports) = found_and_recorded(&[37, 38]);
        assert_eq!(reports.len(), 1);
        let report = &reports[0];
        assert_eq!((report.first_offset, report.last_offset), (37, 38));
        assert_eq!(report.before.as_ref().map(|n| n.id), Some(host.tests[&1][36].0));
        assert_eq!(report.after.as_ref().map(|n| n.id), Some(host.tests[&1][39].0));
        assert_eq!(host.problems.len(), 1);
        assert!(describe(report).contains("2 tests at offsets 37-38"), "{}", describe(report));
    }

    #[test]
    fn a_neighbour_outside_what_was_salvaged_is_fetched_alone() {
        // Offset 49 ends the page; its older neighbour (50) is on the next page.
        let (host, reports) = found_and_recorded(&[49]);
        assert_eq!(reports[0].after.as_ref().map(|n| n.id), Some(host.tests[&1][50].0));
        assert!(host.page_requests.iter().any(|r| r.per_page == 1 && r.page == 51));
    }

    #[test]
    fn a_range_that_comes_back_is_written_and_cleared() {
        let (mut host, _) = found_and_recorded(&[37, 38]);
        host.bad_offsets.clear();
        host.page_requests.clear();
        let retried = retry_recorded(&mut host, &[1], None).unwrap();
        assert_eq!(retried.discovered, 2);
        assert!(host.problems.is_empty());
        assert!(host.stored_tests.contains_key(&host.tests[&1][37].0));
        assert_eq!(host.page_requests.len(), 4, "the two offsets and their two neighbours");
    }

    #[test]
    fn a_range_that_still_fails_is_recorded_again() {
        let (mut host, _) = found_and_recorded(&[37]);
        let retried = retry_recorded(&mut host, &[1], None).unwrap();
        assert_eq!(retried.errors.len(), 1);
        assert_eq!(host.problems[0].attempts, 2);
    }

    #[test]
    fn a_range_pushed_along_by_newer_tests_is_left_alone() {
        let (mut host, _) = found_and_recorded(&[37]);
        host.bad_offsets.clear();
        host.add_tests(1, 3);
        let retried = retry_recorded(&mut host, &[1], None).unwrap();
        assert!(retried.warnings[0].contains("has moved"), "{:?}", retried.warnings);
        assert_eq!(host.problems.len(), 1);
    }
}
