//! The new-tests phase: the recorded problem ranges first, then each product's pages,
//! newest first, walked in rounds until every product's walk has stopped.

use std::collections::{HashMap, HashSet};

use crate::bindings::customer_api::{ProductSummary, TestSummary, TestsPageRequest};
use crate::bindings::events::{Level, Progress};
use crate::bindings::store::{StoredTest, TestsCoverage};
use crate::bindings::types::{Options, Phase, SyncError, Timestamp};
use crate::discovery::{PageDecision, ProductCursor};
use crate::engine::apply;
use crate::host::{ApiResult, Host};
use crate::problems::Ledger;
use crate::salvage;
use crate::tally::Tally;
use crate::{failures, freshness};

/// Products walked side by side. Enough to keep the host's requests in flight (10 by
/// default) busy; a wider round would only hold more parsed pages in the host's memory.
const PRODUCTS_PER_ROUND: usize = 20;

/// Retries the recorded problem ranges first, then walks the products' pages in rounds:
/// each round fetches the next page of up to [`PRODUCTS_PER_ROUND`] products still going,
/// in one batch, so the host can run them concurrently; as a product finishes, the next one
/// takes its place.
pub fn sync<H: Host>(
    host: &mut H,
    products: &[ProductSummary],
    since: Option<Timestamp>,
    options: &Options,
    tally: &mut Tally,
) -> Result<(), SyncError> {
    let force = options.force_refresh || options.nuke;
    let ids: Vec<u64> = products.iter().map(|p| p.id).collect();
    let mut ledger = Ledger::read(host, &ids)?;
    let retried = ledger.retry(host, since)?;
    tally.tests_discovered += retried.discovered;
    tally.tests_updated += retried.updated;
    tally.warnings.extend(retried.warnings);
    tally.errors.extend(retried.errors);
    // A forced walk reads every page, so nothing is left to re-check.
    let due = match options.max_age_seconds {
        Some(max_age) if !force && !ids.is_empty() => freshness::due(host, &ids, since, max_age)?,
        _ => HashMap::new(),
    };
    let mut cursors = open_cursors(host, &ids, since, force, due)?;
    walk(host, &mut ledger, &mut cursors, tally)?;
    let left: Vec<_> = cursors.iter_mut().flat_map(ProductCursor::take_due).collect();
    freshness::fetch_by_id(host, left, tally)
}

/// Walks the products' pages in rounds until every walk has stopped.
fn walk<H: Host>(
    host: &mut H,
    ledger: &mut Ledger,
    cursors: &mut [ProductCursor],
    tally: &mut Tally,
) -> Result<(), SyncError> {
    let total = cursors.len() as u32;
    let mut progress = Progress { phase: Phase::NewTests, product_id: None, done: 0, total, items: 0 };
    loop {
        let (active, requests): (Vec<usize>, Vec<_>) = cursors
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.next_request().map(|r| (i, r)))
            .take(PRODUCTS_PER_ROUND)
            .unzip();
        if active.is_empty() {
            return Ok(());
        }
        let pages = host.fetch_tests_pages(&requests);
        let fetched_ids: Vec<u64> = pages.iter().flatten().flat_map(|p| p.items.iter().map(|t| t.id)).collect();
        let known: HashSet<u64> = host.known_tests(&fetched_ids).map_err(SyncError::StoreFailed)?.into_iter().collect();
        for ((index, request), page) in active.into_iter().zip(&requests).zip(pages) {
            let cursor = &mut cursors[index];
            apply_page(host, ledger, cursor, request, page, &known, tally)?;
            progress.items = tally.tests_discovered + tally.tests_updated;
            if cursor.next_request().is_none() {
                host.set_tests_coverage(cursor.product_id(), cursor.coverage()).map_err(SyncError::StoreFailed)?;
                if cursor.reached_end() {
                    tally.walked_to_end.push(cursor.product_id());
                }
                progress.done += 1;
                host.report_progress(Progress { product_id: Some(cursor.product_id()), ..progress });
            }
        }
        host.report_progress(progress);
    }
}

/// One cursor per product, starting from what earlier walks covered. Coverage is cleared
/// before any test is written, so a walk that gets interrupted is resumed next time.
fn open_cursors<H: Host>(
    host: &mut H,
    ids: &[u64],
    since: Option<Timestamp>,
    force: bool,
    mut due: HashMap<u64, Vec<StoredTest>>,
) -> Result<Vec<ProductCursor>, SyncError> {
    let earlier = host.tests_coverage_of(ids).map_err(SyncError::StoreFailed)?;
    let mut cursors = Vec::with_capacity(ids.len());
    for (&id, earlier) in ids.iter().zip(earlier) {
        if !matches!(earlier, TestsCoverage::None) {
            host.set_tests_coverage(id, TestsCoverage::None).map_err(SyncError::StoreFailed)?;
        }
        cursors.push(ProductCursor::new(id, since, force, earlier).with_due(due.remove(&id).unwrap_or_default()));
    }
    Ok(cursors)
}

/// Writes what the cursor decides to keep of one fetched page, salvages a broken one,
/// or records its failure.
fn apply_page<H: Host>(
    host: &mut H,
    ledger: &mut Ledger,
    cursor: &mut ProductCursor,
    request: &TestsPageRequest,
    page: ApiResult<H::Payload, TestSummary>,
    known: &HashSet<u64>,
    tally: &mut Tally,
) -> Result<(), SyncError> {
    match page {
        Ok(page) => {
            let decision = cursor.accept(&page.items, known);
            if !decision.write.is_empty() {
                host.write_tests(cursor.product_id(), &page.body, &decision.write).map_err(SyncError::StoreFailed)?;
            }
            count(decision, tally);
            Ok(())
        }
        Err(e) if failures::page_is_broken(&e) => salvage_page(host, ledger, cursor, request, tally),
        Err(e) => {
            cursor.finish();
            apply(host, failures::judge(&e, cursor.product_id(), "tests"), tally)
        }
    }
}

/// Shrinks a page that failed with HTTP 500, writes every test that came back, and
/// records the offsets that did not as problem ranges.
fn salvage_page<H: Host>(
    host: &mut H,
    ledger: &mut Ledger,
    cursor: &mut ProductCursor,
    request: &TestsPageRequest,
    tally: &mut Tally,
) -> Result<(), SyncError> {
    let product_id = cursor.product_id();
    let start = u64::from(request.page - 1) * u64::from(request.per_page);
    let range = start..start + u64::from(request.per_page);
    host.log(
        Level::Warn,
        &format!("product {product_id}: page {} failed with HTTP 500; fetching it in smaller pages", request.page),
    );
    let salvaged = salvage::shrink(host, product_id, range.clone());
    let found = salvaged.tests_in(&range);
    let tests: Vec<TestSummary> = found.iter().map(|(_, t)| (*t).clone()).collect();
    let ids: Vec<u64> = tests.iter().map(|t| t.id).collect();
    let known: HashSet<u64> = host.known_tests(&ids).map_err(SyncError::StoreFailed)?.into_iter().collect();
    let decision = cursor.accept_with_gaps(&tests, &known, salvaged.bad_offsets.len());
    for (index, chunk) in salvaged.chunks.iter().enumerate() {
        let write: Vec<u64> =
            found.iter().filter(|(i, t)| *i == index && decision.write.contains(&t.id)).map(|(_, t)| t.id).collect();
        if !write.is_empty() {
            host.write_tests(product_id, &chunk.body, &write).map_err(SyncError::StoreFailed)?;
        }
    }
    count(decision, tally);
    tally.errors.extend(ledger.record_salvage(host, product_id, &salvaged)?);
    if let Some(error) = salvaged.stopped {
        cursor.finish();
        apply(host, failures::judge(&error, product_id, "tests"), tally)?;
    }
    Ok(())
}

fn count(decision: PageDecision, tally: &mut Tally) {
    tally.tests_discovered += decision.discovered;
    tally.tests_updated += decision.updated;
    tally.tests_rechecked += decision.rechecked;
    tally.tests_changed += decision.changed;
    tally.warnings.extend(decision.warnings);
}

#[cfg(test)]
mod tests {
    use crate::bindings::customer_api::Failure;
    use crate::bindings::store::TestsCoverage;
    use crate::fake::{FakeHost, sync_request};

    #[test]
    fn a_second_sync_discovers_nothing_and_reads_two_pages_per_product() {
        let mut host = FakeHost::account(3, 5, 60);
        host.sync(sync_request(None)).unwrap();
        host.page_requests.clear();
        let result = host.sync(sync_request(None)).unwrap();
        assert_eq!(result.tests_discovered, 0);
        assert_eq!(result.tests_updated, 150, "two pages of 25 seen again per product");
        assert_eq!(host.page_requests.len(), 6);
    }

    #[test]
    fn a_walk_that_did_not_finish_is_resumed_in_full_next_time() {
        let mut host = FakeHost::account(2, 1, 60);
        host.fail_product(2, Failure::HttpStatus(503));
        host.sync(sync_request(None)).unwrap();
        assert!(matches!(host.coverage[&1], TestsCoverage::All));
        assert!(matches!(host.coverage[&2], TestsCoverage::None), "a failed walk covers nothing");
        host.failing_products.clear();
        host.sync(sync_request(None)).unwrap();
        assert!(matches!(host.coverage[&2], TestsCoverage::All));
        // As if the next walk of product 2 had been killed after its newest page.
        host.coverage.insert(2, TestsCoverage::None);
        for n in 0..35 {
            host.stored_tests.remove(&(2_000_000 + n));
        }
        host.page_requests.clear();
        let result = host.sync(sync_request(None)).unwrap();
        let pages_of = |p: u64| host.page_requests.iter().filter(|r| r.product_id == p).count();
        assert_eq!((pages_of(1), pages_of(2)), (2, 3), "product 2 is walked to its end, not stopped at known tests");
        assert_eq!(host.stored_tests_of(2), 60);
        assert_eq!(result.tests_discovered, 35);
        assert!(matches!(host.coverage[&2], TestsCoverage::All));
    }

    #[test]
    fn newer_tests_are_discovered_exactly() {
        let mut host = FakeHost::account(3, 5, 60);
        host.sync(sync_request(None)).unwrap();
        for p in 1..=3 {
            host.add_tests(p, 5);
        }
        let result = host.sync(sync_request(None)).unwrap();
        assert_eq!(result.tests_discovered, 15);
    }

    #[test]
    fn pages_of_different_products_are_fetched_in_one_batch() {
        let mut host = FakeHost::account(4, 1, 30);
        host.sync(sync_request(None)).unwrap();
        let batches: Vec<&String> = host.calls.iter().filter(|c| c.starts_with("fetch_tests_pages")).collect();
        assert_eq!(batches, ["fetch_tests_pages x4", "fetch_tests_pages x4"]);
    }

    #[test]
    fn a_round_holds_at_most_twenty_products_and_every_product_is_walked() {
        let mut host = FakeHost::account(25, 1, 30);
        let result = host.sync(sync_request(None)).unwrap();
        let batches: Vec<&String> = host.calls.iter().filter(|c| c.starts_with("fetch_tests_pages")).collect();
        assert_eq!(
            batches,
            ["fetch_tests_pages x20", "fetch_tests_pages x20", "fetch_tests_pages x5", "fetch_tests_pages x5"]
        );
        assert_eq!(result.tests_discovered, 25 * 30);
        assert_eq!(host.stored_tests.len(), 25 * 30);
    }

    #[test]
    fn a_broken_page_is_salvaged_and_its_bad_tests_recovered_by_the_next_sync() {
        let mut host = FakeHost::account(2, 1, 200);
        host.bad_offsets.insert(2, [37, 38].into());
        let result = host.sync(sync_request(None)).unwrap();
        assert_eq!(host.stored_tests_of(2), 198);
        assert_eq!(host.stored_tests_of(1), 200);
        assert_eq!(result.tests_discovered, 398);
        assert_eq!(result.errors.len(), 1, "{:?}", result.errors);
        assert!(result.errors[0].contains("2 tests at offsets 37-38"), "{:?}", result.errors);
        assert_eq!(host.problems.len(), 1);

        host.bad_offsets.clear();
        host.page_requests.clear();
        let result = host.sync(sync_request(None)).unwrap();
        assert!(result.errors.is_empty(), "{:?}", result.errors);
        assert_eq!(host.stored_tests_of(2), 200);
        assert_eq!(result.tests_discovered, 2);
        assert!(host.problems.is_empty());
        let first = &host.page_requests[0];
        assert_eq!((first.product_id, first.per_page), (2, 1), "the recorded range is retried first");
    }

    #[test]
    fn a_product_that_fails_every_page_stops_after_two_wholly_broken_pages() {
        let mut host = FakeHost::account(2, 1, 200);
        host.bad_offsets.insert(2, (0..200).collect());
        let result = host.sync(sync_request(None)).unwrap();
        assert_eq!(host.stored_tests_of(1), 200);
        assert_eq!(host.stored_tests_of(2), 0);
        let pages_of_2 = host.page_requests.iter().filter(|r| r.product_id == 2).count();
        assert!(pages_of_2 <= 2 * 47 + 4, "{pages_of_2} requests");
        assert!(result.warnings.iter().any(|w| w.contains("2 pages in a row")), "{:?}", result.warnings);
    }
}
