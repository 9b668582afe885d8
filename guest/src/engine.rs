//! One sync, start to finish, over the [`Host`] port: lock, sync log, token check,
//! phases in order, result.

use crate::bindings::customer_api::ProductSummary;
use crate::bindings::events::{Level, Progress};
use crate::bindings::types::{Phase, SyncError, SyncRequest, SyncResult, Trigger};
use crate::failures::{self, Verdict};
use crate::host::Host;
use crate::tally::Tally;
use crate::{bugs, features, ids, lock, new_tests, nuke, plan};

pub fn execute_sync<H: Host>(host: &mut H, request: &SyncRequest, trigger: Trigger) -> Result<SyncResult, SyncError> {
    let started = host.monotonic_nanos();
    let phases = plan::resolve(request)?;
    let reclaimed = lock::take(host, trigger)?;
    let run_id = host.sync_started(trigger, &phases);
    let mut tally = Tally::default();
    tally.warnings.extend(reclaimed);
    let outcome = run_locked(host, request, &phases, &mut tally).map(|()| tally.finish(elapsed_seconds(host, started)));
    host.sync_finished(run_id, &outcome);
    host.release_lock();
    outcome
}

fn run_locked<H: Host>(
    host: &mut H,
    request: &SyncRequest,
    phases: &[Phase],
    tally: &mut Tally,
) -> Result<(), SyncError> {
    let started = host.now();
    // Listing the products first checks the token before anything is written.
    let mut listed = host.list_products().map_err(|e| failures::whole_sync_error(&e))?;
    listed.items.retain(|p| ids::storable(p.id, "product", "products", &mut tally.warnings));
    let (products, missing) = plan::products_in_scope(&listed.items, &request.scope);
    tally.warnings.extend(missing.iter().map(|id| format!("product {id} is not in the account; skipped it")));
    run_phases(host, request, phases, &listed.body, &products, tally)?;
    if request.options.nuke {
        let walked = std::mem::take(&mut tally.walked_to_end);
        nuke::sweep(host, &request.scope, started, &walked, tally)?;
    }
    Ok(())
}

fn run_phases<H: Host>(
    host: &mut H,
    request: &SyncRequest,
    phases: &[Phase],
    product_list: &H::Payload,
    products: &[ProductSummary],
    tally: &mut Tally,
) -> Result<(), SyncError> {
    let since = request.scope.since;
    let product_ids: Vec<u64> = products.iter().map(|p| p.id).collect();
    for &phase in phases {
        host.report_progress(Progress { phase, product_id: None, done: 0, total: products.len() as u32, items: 0 });
        tally.phase(phase, |tally| match phase {
            Phase::Products => sync_products(host, product_list, products, tally),
            Phase::Features => sync_features(host, products, tally),
            Phase::NewTests => new_tests::sync(host, products, since, &request.options, tally),
            Phase::Bugs => bugs::sync(host, &product_ids, since, &request.options, tally),
        })?;
        // A write-behind store reports a failed write here at the latest, so only now is
        // the phase's work on disk.
        host.flush().map_err(SyncError::StoreFailed)?;
        host.phase_finished(phase, tally.items_of(phase));
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
    host.write_products(product_list, &ids).map_err(SyncError::StoreFailed)?;
    tally.products_synced += ids.len() as u32;
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
                Err(e) => apply(host, failures::judge(&e, product.id, "features"), tally)?,
            }
        }
        let mut placements = features::merge(lists.iter().map(|(s, l)| (*s, l.items.as_slice())));
        let (what, source) = (format!("product {}: feature", product.id), format!("products/{}/features", product.id));
        placements.retain(|f| ids::storable(f.id, &what, &source, &mut tally.warnings));
        let bodies: Vec<&H::Payload> = lists.iter().map(|(_, l)| &l.body).collect();
        if !bodies.is_empty() {
            host.write_features(product.id, &bodies, &placements).map_err(SyncError::StoreFailed)?;
            tally.features_refreshed += placements.len() as u32;
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

/// Carries out the verdict on one product's failed request.
pub fn apply<H: Host>(host: &mut H, verdict: Verdict, tally: &mut Tally) -> Result<(), SyncError> {
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
    use crate::fake::{FakeHost, NOW, sync_request};

    #[test]
    fn a_cold_sync_stores_the_whole_account_and_counts_it() {
        let mut host = FakeHost::account(3, 5, 60);
        let result = host.sync(sync_request(None)).unwrap();
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
        host.sync(sync_request(None)).unwrap();
        let calls: Vec<&str> = host.calls.iter().map(String::as_str).collect();
        assert_eq!(&calls[..3], ["acquire", "started", "list_products"]);
        assert_eq!(&calls[calls.len() - 2..], ["finished", "release"]);
        assert!(!host.lock_held);
    }

    #[test]
    fn product_ids_limit_every_phase() {
        let mut host = FakeHost::account(3, 5, 60);
        let result = host.sync(sync_request(Some(vec![2]))).unwrap();
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
        let result = host.sync(sync_request(None)).unwrap();
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
        let error = host.sync(sync_request(None)).unwrap_err();
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
        let error = host.sync(sync_request(None)).unwrap_err();
        assert!(
            matches!(error, SyncError::LockBusy(ref m) if m.contains("PID 42 on build-1 (testio-sync daemon")),
            "{error:?}"
        );
        assert_eq!(host.calls, ["acquire"]);

        let mut host = FakeHost::account(2, 1, 3);
        host.lock_unavailable = true;
        assert!(matches!(host.sync(sync_request(None)), Err(SyncError::LockFailed(_))));
        assert_eq!(host.calls, ["acquire"]);
    }

    #[test]
    fn a_failing_store_stops_the_sync_and_the_sync_log_says_why() {
        let mut host = FakeHost::account(2, 1, 3);
        host.failing_writes = true;
        let error = host.sync(sync_request(None)).unwrap_err();
        assert!(matches!(error, SyncError::StoreFailed(ref m) if m == "disk I/O error"));
        assert!(matches!(host.finished.as_slice(), [Err(SyncError::StoreFailed(_))]));
        assert!(!host.lock_held);
    }

    #[test]
    fn unknown_product_ids_are_a_warning() {
        let mut host = FakeHost::account(2, 1, 3);
        let result = host.sync(sync_request(Some(vec![1, 99]))).unwrap();
        assert_eq!(result.warnings, ["product 99 is not in the account; skipped it"]);
    }

    #[test]
    fn an_empty_id_list_is_refused_up_front() {
        let mut host = FakeHost::account(1, 1, 1);
        assert!(matches!(host.sync(sync_request(Some(vec![]))), Err(SyncError::InvalidRequest(_))));
        assert!(host.calls.is_empty());
    }

    #[test]
    fn the_bugs_phase_runs_last_over_the_tests_of_the_products_in_scope() {
        let mut host = FakeHost::account(3, 1, 20);
        let mut with_bugs = sync_request(Some(vec![1, 3]));
        with_bugs.phases = vec![Phase::Bugs, Phase::NewTests];
        let result = host.sync(with_bugs).unwrap();
        assert_eq!(result.phases_completed, vec![Phase::NewTests, Phase::Bugs]);
        let expected = host.bugs_of_product(1) + host.bugs_of_product(3);
        assert_eq!((result.bugs_refreshed as usize, host.stored_bugs.len()), (expected, expected));
        assert_eq!(host.bugs_synced.len(), 40);
        let bugs_at = host.calls.iter().position(|c| c.starts_with("fetch_bugs")).unwrap();
        assert!(host.calls[..bugs_at].iter().any(|c| c.starts_with("fetch_tests_pages")));
    }

    #[test]
    fn a_missing_product_is_a_warning_and_the_others_go_on() {
        let mut host = FakeHost::account(3, 2, 30);
        host.fail_product(2, Failure::HttpStatus(404));
        let result = host.sync(sync_request(None)).unwrap();
        assert!(result.errors.is_empty(), "{:?}", result.errors);
        assert_eq!(result.warnings.len(), 2, "features and tests: {:?}", result.warnings);
        assert!(result.warnings.iter().all(|w| w.starts_with("product 2:")));
        assert_eq!(host.stored_tests.len(), 60);
    }

    #[test]
    fn a_forbidden_product_stops_the_sync_naming_it() {
        let mut host = FakeHost::account(3, 2, 30);
        host.fail_product(2, Failure::HttpStatus(403));
        let error = host.sync(sync_request(None)).unwrap_err();
        assert!(matches!(error, SyncError::Forbidden(ref m) if m.contains("products/2/features")), "{error:?}");
        assert!(!host.lock_held);
    }

    #[test]
    fn a_malformed_answer_is_logged_as_a_warning_and_counted_as_lost() {
        let mut host = FakeHost::account(3, 2, 30);
        host.fail_product(2, Failure::BadPayload);
        let result = host.sync(sync_request(None)).unwrap();
        assert_eq!(result.errors.len(), 2);
        assert!(host.log.iter().any(|m| m.contains("products/2/features")), "{:?}", host.log);
        assert_eq!(host.stored_tests.len(), 60);
    }

    #[test]
    fn each_phase_is_reported_finished_only_after_its_writes_committed() {
        let mut host = FakeHost::account(3, 5, 60);
        host.sync(sync_request(None)).unwrap();
        let at = |call: &str| {
            host.calls.iter().position(|c| c == call).unwrap_or_else(|| panic!("{call}: {:?}", host.calls))
        };
        let finished = at("phase_finished Phase::Products 3");
        assert_eq!(host.calls[finished - 1], "flush");
        assert!(at("phase_finished Phase::Features 15") < at("phase_finished Phase::NewTests 180"));

        let mut host = FakeHost::account(2, 1, 3);
        host.failing_writes = true;
        host.sync(sync_request(None)).unwrap_err();
        assert!(!host.calls.iter().any(|c| c.starts_with("phase_finished Phase::NewTests")), "{:?}", host.calls);
    }
}
