//! One sync, start to finish, over the [`Host`] port: lock, sync log, token check,
//! phases in order, result.

use std::collections::HashSet;

use crate::bindings::customer_api::{ProductSummary, TestSummary, TestsPageRequest};
use crate::bindings::events::{Level, Progress};
use crate::bindings::store::TestsCoverage;
use crate::bindings::types::{Options, Phase, Scope, SyncError, SyncResult, Trigger};
use crate::discovery::PageDecision;
use crate::discovery::ProductCursor;
use crate::host::{ApiResult, Host};
use crate::policy::{self, Verdict};
use crate::tally::Tally;
use crate::{bugs, features, lock, plan, problems, salvage};

pub struct Request {
    pub phases: Vec<Phase>,
    pub scope: Scope,
    pub options: Options,
    pub trigger: Trigger,
}

pub fn execute_sync<H: Host>(host: &mut H, request: Request) -> Result<SyncResult, SyncError> {
    let started = host.monotonic_nanos();
    let phases = validate(&request)?;
    let reclaimed = lock::take(host, request.trigger)?;
    let run_id = host.sync_started(request.trigger, &phases);
    let mut tally = Tally::default();
    tally.warnings.extend(reclaimed);
    let outcome =
        run_locked(host, &request, &phases, &mut tally).map(|()| tally.finish(elapsed_seconds(host, started)));
    host.sync_finished(run_id, &outcome);
    host.release_lock();
    outcome
}

fn validate(request: &Request) -> Result<Vec<Phase>, SyncError> {
    if request.scope.product_ids.as_ref().is_some_and(|ids| ids.is_empty()) {
        return Err(SyncError::InvalidRequest(
            "the product id list is empty; leave it out to sync every product".into(),
        ));
    }
    let phases = plan::phases(&request.phases, &request.scope, &request.options);
    if phases.is_empty() {
        return Err(SyncError::InvalidRequest(
            "nothing to do: the requested phases write none of the requested entity types".into(),
        ));
    }
    Ok(phases)
}

fn run_locked<H: Host>(host: &mut H, request: &Request, phases: &[Phase], tally: &mut Tally) -> Result<(), SyncError> {
    // Listing the products first checks the token before anything is written.
    let listed = host.list_products().map_err(|e| policy::whole_sync_error(&e))?;
    let (products, missing) = plan::products_in_scope(&listed.items, &request.scope);
    tally.warnings.extend(missing.iter().map(|id| format!("product {id} is not in the account; skipped it")));
    run_phases(host, request, phases, &listed.body, &products, tally)
}

fn run_phases<H: Host>(
    host: &mut H,
    request: &Request,
    phases: &[Phase],
    product_list: &H::Payload,
    products: &[ProductSummary],
    tally: &mut Tally,
) -> Result<(), SyncError> {
    let force = request.options.force_refresh || request.options.nuke;
    let since = request.scope.since;
    let product_ids: Vec<u64> = products.iter().map(|p| p.id).collect();
    for &phase in phases {
        host.report_progress(Progress { phase, product_id: None, done: 0, total: products.len() as u32, items: 0 });
        tally.phase(phase, |tally| match phase {
            Phase::Products => sync_products(host, product_list, products, tally),
            Phase::Features => sync_features(host, products, tally),
            Phase::NewTests => sync_tests(host, products, since, force, tally),
            Phase::Bugs => bugs::sync(host, &product_ids, since, force, tally),
        })?;
        // A write-behind store reports a failed write here at the latest.
        host.flush().map_err(SyncError::StoreFailed)?;
    }
    Ok(())
}

fn sync_products<H: Host>(
    host: &mut H,
    product_list: &H::Payload,
    products: &[ProductSummary],
    tally: &mut Tally,
) -> Result<(), SyncError> {
    let ids: Vec<u64> = products.iter().map(|p| p.id).collect();
    tally.products_synced += host.write_products(product_list, &ids).map_err(SyncError::StoreFailed)?;
    let items = tally.products_synced;
    host.report_progress(Progress { phase: Phase::Products, product_id: None, done: 1, total: 1, items });
    Ok(())
}

fn sync_features<H: Host>(host: &mut H, products: &[ProductSummary], tally: &mut Tally) -> Result<(), SyncError> {
    let per_product: Vec<_> = products.iter().map(features::requests_for).collect();
    let requests: Vec<_> = per_product.iter().flatten().cloned().collect();
    let mut results = host.fetch_features(&requests).into_iter();
    for (done, (product, requests)) in products.iter().zip(&per_product).enumerate() {
        let mut lists = Vec::new();
        for (request, result) in requests.iter().zip(results.by_ref()) {
            match result {
                Ok(list) => lists.push((request.section_id, list)),
                Err(e) => apply(host, policy::judge(&e, product.id, "features"), tally)?,
            }
        }
        let placements = features::merge(lists.iter().map(|(s, l)| (*s, l.items.as_slice())));
        let bodies: Vec<&H::Payload> = lists.iter().map(|(_, l)| &l.body).collect();
        if !bodies.is_empty() {
            tally.features_refreshed +=
                host.write_features(product.id, &bodies, &placements).map_err(SyncError::StoreFailed)?;
        }
        let update = Progress {
            phase: Phase::Features,
            product_id: Some(product.id),
            done: done as u32 + 1,
            total: products.len() as u32,
            items: tally.features_refreshed,
        };
        host.report_progress(update);
    }
    Ok(())
}

/// Products walked side by side. Enough to keep the host's requests in flight (10 by
/// default) busy; a wider round would only hold more parsed pages in the host's memory.
const PRODUCTS_PER_ROUND: usize = 20;

/// Retries the recorded problem ranges first, then walks the products' pages in rounds:
/// each round fetches the next page of up to [`PRODUCTS_PER_ROUND`] products still going,
/// in one batch, so the host can run them concurrently; as a product finishes, the next one
/// takes its place.
fn sync_tests<H: Host>(
    host: &mut H,
    products: &[ProductSummary],
    since: Option<i64>,
    force: bool,
    tally: &mut Tally,
) -> Result<(), SyncError> {
    let ids: Vec<u64> = products.iter().map(|p| p.id).collect();
    if !ids.is_empty() {
        let retried = problems::retry_recorded(host, &ids, since)?;
        tally.tests_discovered += retried.discovered;
        tally.tests_updated += retried.updated;
        tally.warnings.extend(retried.warnings);
        tally.errors.extend(retried.errors);
    }
    let mut cursors = open_cursors(host, &ids, since, force)?;
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
            apply_page(host, cursor, request, page, &known, tally)?;
            progress.items = tally.tests_discovered + tally.tests_updated;
            if cursor.next_request().is_none() {
                host.set_tests_coverage(cursor.product_id(), cursor.coverage()).map_err(SyncError::StoreFailed)?;
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
    since: Option<i64>,
    force: bool,
) -> Result<Vec<ProductCursor>, SyncError> {
    let earlier = host.tests_coverage_of(ids).map_err(SyncError::StoreFailed)?;
    let mut cursors = Vec::with_capacity(ids.len());
    for (&id, earlier) in ids.iter().zip(earlier) {
        if !matches!(earlier, TestsCoverage::None) {
            host.set_tests_coverage(id, TestsCoverage::None).map_err(SyncError::StoreFailed)?;
        }
        cursors.push(ProductCursor::new(id, since, force, earlier));
    }
    Ok(cursors)
}

/// Writes what the cursor decides to keep of one fetched page, salvages a broken one,
/// or records its failure.
fn apply_page<H: Host>(
    host: &mut H,
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
        Err(e) if policy::page_is_broken(&e) => salvage_page(host, cursor, request, tally),
        Err(e) => {
            cursor.finish();
            apply(host, policy::judge(&e, cursor.product_id(), "tests"), tally)
        }
    }
}

/// Shrinks a page that failed with HTTP 500, writes every test that came back, and
/// records the offsets that did not as problem ranges.
fn salvage_page<H: Host>(
    host: &mut H,
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
    for report in problems::record(host, product_id, &salvaged)? {
        tally.errors.push(problems::describe(&report));
    }
    if let Some(error) = salvaged.stopped {
        cursor.finish();
        apply(host, policy::judge(&error, product_id, "tests"), tally)?;
    }
    Ok(())
}

fn count(decision: PageDecision, tally: &mut Tally) {
    tally.tests_discovered += decision.discovered;
    tally.tests_updated += decision.updated;
    tally.warnings.extend(decision.warnings);
}

/// Carries out the verdict on one product's failed request.
fn apply<H: Host>(host: &mut H, verdict: Verdict, tally: &mut Tally) -> Result<(), SyncError> {
    match verdict {
        Verdict::Abort(error) => return Err(error),
        Verdict::Gone(warning) => tally.warnings.push(warning),
        Verdict::Lost(error) => tally.errors.push(error),
        Verdict::Malformed(error) => {
            host.log(Level::Warn, &error);
            tally.errors.push(error);
        }
    }
    Ok(())
}

fn elapsed_seconds<H: Host>(host: &mut H, started: u64) -> f64 {
    host.monotonic_nanos().saturating_sub(started) as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::customer_api::Failure;
    use crate::bindings::sync_lock::{Holder, HolderRecord, LockFacts, ProcessState};
    use crate::fake::{FakeHost, NOW};

    fn request(product_ids: Option<Vec<u64>>) -> Request {
        Request {
            phases: vec![Phase::NewTests, Phase::Features, Phase::Products],
            scope: Scope { product_ids, since: None, entity_types: None },
            options: Options { force_refresh: false, incremental_only: false, nuke: false },
            trigger: Trigger::Cli,
        }
    }

    #[test]
    fn a_cold_sync_stores_the_whole_account_and_counts_it() {
        let mut host = FakeHost::account(3, 5, 60);
        let result = execute_sync(&mut host, request(None)).unwrap();
        assert_eq!(result.phases_completed, vec![Phase::Products, Phase::Features, Phase::NewTests]);
        assert_eq!((result.products_synced, result.features_refreshed), (3, 15));
        assert_eq!((result.tests_discovered, result.tests_updated), (180, 0));
        assert_eq!(host.stored_tests.len(), 180);
        assert_eq!(host.stored_features[&3].len(), 5, "a feature in two sections is written once");
        assert!(result.errors.is_empty() && result.warnings.is_empty());
        assert!(result.duration_seconds > 0.0);
    }

    #[test]
    fn the_sync_log_brackets_the_phases_inside_the_lock() {
        let mut host = FakeHost::account(2, 1, 3);
        execute_sync(&mut host, request(None)).unwrap();
        let calls: Vec<&str> = host.calls.iter().map(String::as_str).collect();
        assert_eq!(&calls[..3], ["acquire", "started", "list_products"]);
        assert_eq!(&calls[calls.len() - 2..], ["finished", "release"]);
        assert!(!host.lock_held);
    }

    #[test]
    fn a_second_sync_discovers_nothing_and_reads_two_pages_per_product() {
        let mut host = FakeHost::account(3, 5, 60);
        execute_sync(&mut host, request(None)).unwrap();
        host.page_requests.clear();
        let result = execute_sync(&mut host, request(None)).unwrap();
        assert_eq!(result.tests_discovered, 0);
        assert_eq!(result.tests_updated, 150, "two pages of 25 seen again per product");
        assert_eq!(host.page_requests.len(), 6);
    }

    #[test]
    fn a_walk_that_did_not_finish_is_resumed_in_full_next_time() {
        let mut host = FakeHost::account(2, 1, 60);
        host.fail_product(2, Failure::HttpStatus(503));
        execute_sync(&mut host, request(None)).unwrap();
        assert!(matches!(host.coverage[&1], TestsCoverage::All));
        assert!(matches!(host.coverage[&2], TestsCoverage::None), "a failed walk covers nothing");
        host.failing_products.clear();
        execute_sync(&mut host, request(None)).unwrap();
        assert!(matches!(host.coverage[&2], TestsCoverage::All));
        // As if the next walk of product 2 had been killed after its newest page.
        host.coverage.insert(2, TestsCoverage::None);
        for n in 0..35 {
            host.stored_tests.remove(&(2_000_000 + n));
        }
        host.page_requests.clear();
        let result = execute_sync(&mut host, request(None)).unwrap();
        let pages_of = |p: u64| host.page_requests.iter().filter(|r| r.product_id == p).count();
        assert_eq!((pages_of(1), pages_of(2)), (2, 3), "product 2 is walked to its end, not stopped at known tests");
        assert_eq!(host.stored_tests_of(2), 60);
        assert_eq!(result.tests_discovered, 35);
        assert!(matches!(host.coverage[&2], TestsCoverage::All));
    }

    #[test]
    fn newer_tests_are_discovered_exactly() {
        let mut host = FakeHost::account(3, 5, 60);
        execute_sync(&mut host, request(None)).unwrap();
        for p in 1..=3 {
            host.add_tests(p, 5);
        }
        let result = execute_sync(&mut host, request(None)).unwrap();
        assert_eq!(result.tests_discovered, 15);
    }

    #[test]
    fn pages_of_different_products_are_fetched_in_one_batch() {
        let mut host = FakeHost::account(4, 1, 30);
        execute_sync(&mut host, request(None)).unwrap();
        let batches: Vec<&String> = host.calls.iter().filter(|c| c.starts_with("fetch_tests_pages")).collect();
        assert_eq!(batches, ["fetch_tests_pages x4", "fetch_tests_pages x4"]);
    }

    #[test]
    fn a_round_holds_at_most_twenty_products_and_every_product_is_walked() {
        let mut host = FakeHost::account(25, 1, 30);
        let result = execute_sync(&mut host, request(None)).unwrap();
        let batches: Vec<&String> = host.calls.iter().filter(|c| c.starts_with("fetch_tests_pages")).collect();
        assert_eq!(
            batches,
            ["fetch_tests_pages x20", "fetch_tests_pages x20", "fetch_tests_pages x5", "fetch_tests_pages x5"]
        );
        assert_eq!(result.tests_discovered, 25 * 30);
        assert_eq!(host.stored_tests.len(), 25 * 30);
    }

    #[test]
    fn product_ids_limit_every_phase() {
        let mut host = FakeHost::account(3, 5, 60);
        let result = execute_sync(&mut host, request(Some(vec![2]))).unwrap();
        assert_eq!(host.stored_products.iter().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(host.stored_features.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(host.stored_tests_of(2), 60);
        assert_eq!(host.stored_tests.len(), 60);
        assert_eq!(result.products_synced, 1);
    }

    #[test]
    fn a_failing_product_does_not_stop_the_others() {
        let mut host = FakeHost::account(3, 5, 60);
        host.fail_product(2, Failure::HttpStatus(503));
        let result = execute_sync(&mut host, request(None)).unwrap();
        assert_eq!(host.stored_tests_of(1), 60);
        assert_eq!(host.stored_tests_of(3), 60);
        assert_eq!(host.stored_tests_of(2), 0);
        assert_eq!(result.errors.len(), 2, "{:?}", result.errors);
        assert!(result.errors[0].starts_with("product 2: features"));
        assert!(result.errors[1].contains("products/2/exploratory_tests"), "{:?}", result.errors);
        assert_eq!(result.phases_completed, vec![Phase::Products]);
    }

    #[test]
    fn a_rejected_token_stops_before_anything_is_written_and_the_sync_log_says_why() {
        let mut host = FakeHost::account(2, 1, 3);
        host.reject_token = true;
        let error = execute_sync(&mut host, request(None)).unwrap_err();
        assert!(matches!(error, SyncError::Unauthorized(ref m) if m.contains("rejected the token")));
        assert!(host.stored_products.is_empty());
        assert!(matches!(host.finished.as_slice(), [Err(SyncError::Unauthorized(_))]));
        assert!(!host.lock_held);
    }

    #[test]
    fn a_busy_lock_is_reported_and_nothing_else_happens() {
        let mut host = FakeHost::account(2, 1, 3);
        let holder = Holder {
            pid: 42,
            process_started_at: 0,
            host_name: "build-1".into(),
            acquired_at: NOW - 60_000,
            trigger: Trigger::Scheduler,
            command: "testio-sync daemon".into(),
        };
        let facts = LockFacts { holder: HolderRecord::Written(holder), process: ProcessState::Running, heartbeat: NOW };
        host.lock_holder = Some(facts);
        host.waits_until_free = u32::MAX;
        let error = execute_sync(&mut host, request(None)).unwrap_err();
        assert!(matches!(error, SyncError::LockBusy(ref m) if m.contains("PID 42 (testio-sync daemon")), "{error:?}");
        assert_eq!(host.calls, ["acquire"]);

        let mut host = FakeHost::account(2, 1, 3);
        host.lock_unavailable = true;
        assert!(matches!(execute_sync(&mut host, request(None)), Err(SyncError::StoreFailed(_))));
        assert_eq!(host.calls, ["acquire"]);
    }

    #[test]
    fn a_failing_store_stops_the_sync_and_the_sync_log_says_why() {
        let mut host = FakeHost::account(2, 1, 3);
        host.failing_writes = true;
        let error = execute_sync(&mut host, request(None)).unwrap_err();
        assert!(matches!(error, SyncError::StoreFailed(ref m) if m == "disk I/O error"));
        assert!(matches!(host.finished.as_slice(), [Err(SyncError::StoreFailed(_))]));
        assert!(!host.lock_held);
    }

    #[test]
    fn unknown_product_ids_are_a_warning() {
        let mut host = FakeHost::account(2, 1, 3);
        let result = execute_sync(&mut host, request(Some(vec![1, 99]))).unwrap();
        assert_eq!(result.warnings, ["product 99 is not in the account; skipped it"]);
    }

    #[test]
    fn an_empty_id_list_is_refused_up_front() {
        let mut host = FakeHost::account(1, 1, 1);
        assert!(matches!(execute_sync(&mut host, request(Some(vec![]))), Err(SyncError::InvalidRequest(_))));
        assert!(host.calls.is_empty());
    }

    #[test]
    fn the_bugs_phase_runs_last_over_the_tests_of_the_products_in_scope() {
        let mut host = FakeHost::account(3, 1, 20);
        let mut with_bugs = request(Some(vec![1, 3]));
        with_bugs.phases = vec![Phase::Bugs, Phase::NewTests];
        let result = execute_sync(&mut host, with_bugs).unwrap();
        assert_eq!(result.phases_completed, vec![Phase::NewTests, Phase::Bugs]);
        let expected = host.bugs_of_product(1) + host.bugs_of_product(3);
        assert_eq!((result.bugs_refreshed as usize, host.stored_bugs.len()), (expected, expected));
        assert_eq!(host.bugs_synced.len(), 40);
        let bugs_at = host.calls.iter().position(|c| c.starts_with("fetch_bugs")).unwrap();
        assert!(host.calls[..bugs_at].iter().any(|c| c.starts_with("fetch_tests_pages")));
    }

    #[test]
    fn a_broken_page_is_salvaged_and_its_bad_tests_recovered_by_the_next_sync() {
        let mut host = FakeHost::account(2, 1, 200);
        host.bad_offsets.insert(2, [37, 38].into());
        let result = execute_sync(&mut host, request(None)).unwrap();
        assert_eq!(host.stored_tests_of(2), 198);
        assert_eq!(host.stored_tests_of(1), 200);
        assert_eq!(result.tests_discovered, 398);
        assert_eq!(result.errors.len(), 1, "{:?}", result.errors);
        assert!(result.errors[0].contains("2 tests at offsets 37-38"), "{:?}", result.errors);
        assert_eq!(host.problems.len(), 1);

        host.bad_offsets.clear();
        host.page_requests.clear();
        let result = execute_sync(&mut host, request(None)).unwrap();
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
        let result = execute_sync(&mut host, request(None)).unwrap();
        assert_eq!(host.stored_tests_of(1), 200);
        assert_eq!(host.stored_tests_of(2), 0);
        let pages_of_2 = host.page_requests.iter().filter(|r| r.product_id == 2).count();
        assert!(pages_of_2 <= 2 * 47 + 4, "{pages_of_2} requests");
        assert!(result.warnings.iter().any(|w| w.contains("2 pages in a row")), "{:?}", result.warnings);
    }

    #[test]
    fn a_missing_product_is_a_warning_and_the_others_go_on() {
        let mut host = FakeHost::account(3, 2, 30);
        host.fail_product(2, Failure::HttpStatus(404));
        let result = execute_sync(&mut host, request(None)).unwrap();
        assert!(result.errors.is_empty(), "{:?}", result.errors);
        assert_eq!(result.warnings.len(), 2, "features and tests: {:?}", result.warnings);
        assert!(result.warnings.iter().all(|w| w.starts_with("product 2:")));
        assert_eq!(host.stored_tests.len(), 60);
    }

    #[test]
    fn a_forbidden_product_stops_the_sync_naming_it() {
        let mut host = FakeHost::account(3, 2, 30);
        host.fail_product(2, Failure::HttpStatus(403));
        let error = execute_sync(&mut host, request(None)).unwrap_err();
        assert!(matches!(error, SyncError::Forbidden(ref m) if m.contains("products/2/features")), "{error:?}");
        assert!(!host.lock_held);
    }

    #[test]
    fn a_malformed_answer_is_logged_as_a_warning_and_counted_as_lost() {
        let mut host = FakeHost::account(3, 2, 30);
        host.fail_product(2, Failure::BadPayload);
        let result = execute_sync(&mut host, request(None)).unwrap();
        assert_eq!(result.errors.len(), 2);
        assert!(host.log.iter().any(|m| m.contains("products/2/features")), "{:?}", host.log);
        assert_eq!(host.stored_tests.len(), 60);
    }
}
