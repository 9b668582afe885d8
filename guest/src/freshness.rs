//! Freshness: which stored tests can still change, and how to re-check the ones whose data
//! is older than the limit (`options.max-age-seconds`) at the fewest requests.
//!
//! Pages the walk reads anyway re-check what is on them. For the tests left, walking further
//! down a product's list costs one request per page and re-checks every test on it; fetching
//! a test by id costs one request per test. [`pages_to_walk`] picks the depth that makes the
//! sum smallest; what the deeper walk does not meet (its position had moved) is fetched by id.
//! A test the API answers 404 for by id is gone upstream: it is removed from the mirror, and
//! a warning names it.

use std::collections::HashMap;

use crate::bindings::customer_api::{ApiError, Failure, TestSummary};
use crate::bindings::events::Level;
use crate::bindings::store::StoredTest;
use crate::bindings::types::{SyncError, Timestamp};
use crate::failures;
use crate::host::{ApiResult, Host};
use crate::tally::Tally;
use crate::{engine, ids};

/// Statuses after which a test no longer changes (nor takes bugs): the reference's rule.
pub const FINAL_STATUSES: [&str; 2] = ["archived", "cancelled"];

pub fn is_final(status: &str) -> bool {
    FINAL_STATUSES.contains(&status)
}

/// The start of the freshness window: data written before it is due again.
pub fn cutoff(now: Timestamp, max_age_seconds: u32) -> Timestamp {
    now.saturating_sub(i64::from(max_age_seconds) * 1000)
}

/// How many pages of `page_size` to have walked in all, having walked `walked`, so that
/// re-checking the tests at these offsets costs the fewest requests: one per page walked
/// further, one per test left to fetch by id. A tie goes to fetching by id, which moves
/// less data.
pub fn pages_to_walk(walked: u32, offsets: &[u64], page_size: u32) -> u32 {
    let size = u64::from(page_size);
    let mut deeper: Vec<u64> = offsets.iter().copied().filter(|&o| o >= u64::from(walked) * size).collect();
    deeper.sort_unstable();
    let (mut best_cost, mut best_depth) = (deeper.len() as u64, u64::from(walked));
    for &offset in &deeper {
        let depth = offset / size + 1;
        let covered = deeper.partition_point(|&o| o < depth * size) as u64;
        let cost = depth - u64::from(walked) + (deeper.len() as u64 - covered);
        if cost < best_cost {
            (best_cost, best_depth) = (cost, depth);
        }
    }
    u32::try_from(best_depth).unwrap_or(u32::MAX)
}

/// The stored tests due for a re-check, by product.
pub fn due<H: Host>(
    host: &mut H,
    product_ids: &[u64],
    since: Option<Timestamp>,
    max_age_seconds: u32,
) -> Result<HashMap<u64, Vec<StoredTest>>, SyncError> {
    let cutoff = cutoff(host.now(), max_age_seconds);
    let finals: Vec<String> = FINAL_STATUSES.iter().map(|s| s.to_string()).collect();
    let stored = host.tests_to_recheck(product_ids, &finals, since, cutoff).map_err(SyncError::StoreFailed)?;
    let mut by_product: HashMap<u64, Vec<StoredTest>> = HashMap::new();
    for test in stored {
        by_product.entry(test.product_id).or_default().push(test);
    }
    Ok(by_product)
}

/// Re-checked and changed: what one fresh copy of a due test says.
pub fn count(stored: &StoredTest, fresh: &TestSummary, tally: &mut Tally) {
    tally.tests_rechecked += 1;
    if stored.status != fresh.status {
        tally.tests_changed += 1;
    }
}

/// Fetches the due tests no walk met, one by one, and writes them; removes the ones the
/// API no longer returns.
pub fn fetch_by_id<H: Host>(host: &mut H, left: Vec<StoredTest>, tally: &mut Tally) -> Result<(), SyncError> {
    if left.is_empty() {
        return Ok(());
    }
    let ids: Vec<u64> = left.iter().map(|t| t.id).collect();
    host.log(Level::Info, &format!("re-checking {} tests one by one", ids.len()));
    let answers = host.fetch_tests(&ids);
    let mut gone = Vec::new();
    for (stored, answer) in left.iter().zip(answers) {
        if let Some(gone_one) = settle(host, stored, answer, tally)? {
            gone.push(gone_one);
        }
    }
    remove(host, &gone, tally)
}

/// Writes one test fetched by id; returns it when the API no longer has it.
fn settle<H: Host>(
    host: &mut H,
    stored: &StoredTest,
    answer: ApiResult<H::Payload, TestSummary>,
    tally: &mut Tally,
) -> Result<Option<(u64, String)>, SyncError> {
    let page = match answer {
        Ok(page) => page,
        Err(ApiError { failure: Failure::HttpStatus(failures::NOT_FOUND), endpoint, .. }) => {
            return Ok(Some((stored.id, endpoint)));
        }
        Err(error) => return lost(host, stored, &error, tally).map(|()| None),
    };
    let Some(fresh) = page.items.iter().find(|t| t.id == stored.id) else {
        tally.errors.push(format!(
            "product {}: test {} could not be re-checked: the API answered with another test",
            stored.product_id, stored.id
        ));
        return Ok(None);
    };
    let source = format!("exploratory_tests/{}", stored.id);
    if ids::storable(fresh.id, &format!("product {}: test", stored.product_id), &source, &mut tally.warnings) {
        host.write_tests(stored.product_id, &page.body, &[fresh.id]).map_err(SyncError::StoreFailed)?;
        tally.tests_updated += 1;
        count(stored, fresh, tally);
    }
    Ok(None)
}

/// A test that could not be re-checked: its stored copy stays, and an error says why.
fn lost<H: Host>(host: &mut H, stored: &StoredTest, error: &ApiError, tally: &mut Tally) -> Result<(), SyncError> {
    let what = format!("test {} (a re-check)", stored.id);
    engine::apply(host, failures::judge(error, stored.product_id, &what), tally)
}

/// Removes the tests the API answered 404 for, naming each.
fn remove<H: Host>(host: &mut H, gone: &[(u64, String)], tally: &mut Tally) -> Result<(), SyncError> {
    if gone.is_empty() {
        return Ok(());
    }
    let ids: Vec<u64> = gone.iter().map(|(id, _)| *id).collect();
    tally.rows_removed += host.remove_tests(&ids).map_err(SyncError::StoreFailed)?;
    for (id, endpoint) in gone {
        tally.warnings.push(format!(
            "test {id} is no longer returned by the API ({endpoint} answered HTTP 404); removed it from the mirror"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_beyond_the_walk_costs_nothing() {
        assert_eq!(pages_to_walk(2, &[], 25), 2);
        assert_eq!(pages_to_walk(2, &[0, 24, 49], 25), 2, "offsets on walked pages are checked already");
    }

    #[test]
    fn one_test_just_past_the_walk_is_fetched_by_id_on_a_tie() {
        // One page further or one test by id: both cost 1; by id moves less data.
        assert_eq!(pages_to_walk(2, &[50], 25), 2);
    }

    #[test]
    fn two_tests_on_the_next_page_make_walking_on_cheaper() {
        assert_eq!(pages_to_walk(2, &[50, 74], 25), 3);
        assert_eq!(pages_to_walk(2, &[50, 75], 25), 2, "on two pages: 2 by id ties 2 pages");
    }

    #[test]
    fn a_dense_band_is_walked_and_a_straggler_far_below_is_fetched_by_id() {
        let mut offsets: Vec<u64> = (50..125).step_by(7).collect();
        offsets.push(4_000);
        // Walking to page 5 (3 more pages) covers 11 tests; the straggler costs 1 by id.
        assert_eq!(pages_to_walk(2, &offsets, 25), 5);
    }

    #[test]
    fn sparse_tests_deep_in_the_list_are_fetched_by_id() {
        let offsets: Vec<u64> = (1..=10).map(|n| n * 400).collect();
        assert_eq!(pages_to_walk(2, &offsets, 25), 2);
    }

    #[test]
    fn every_seventh_test_of_a_long_list_is_cheaper_to_walk_than_to_fetch() {
        let offsets: Vec<u64> = (50..500).step_by(7).collect();
        let depth = pages_to_walk(2, &offsets, 25);
        assert_eq!(depth, 20, "to the end: 18 pages against {} tests", offsets.len());
    }

    #[test]
    fn the_window_starts_max_age_before_now() {
        assert_eq!(cutoff(10_000_000, 3600), 10_000_000 - 3_600_000);
        assert_eq!(cutoff(5, 0), 5, "max age 0: everything written before now is due");
        assert_eq!(cutoff(i64::MIN + 1, u32::MAX), i64::MIN, "no overflow");
    }

    #[test]
    fn archived_and_cancelled_are_final_and_nothing_else() {
        assert!(is_final("archived") && is_final("cancelled"));
        for live in ["initialized", "waiting", "running", "locked", "customer_finalized", ""] {
            assert!(!is_final(live), "{live}");
        }
    }

    mod in_a_sync {
        use crate::bindings::types::SyncRequest;
        use crate::fake::{FakeHost, sync_request};

        const HOUR: i64 = 3_600_000;

        fn every(max_age: u32) -> SyncRequest {
            let mut request = sync_request(None);
            request.options.max_age_seconds = Some(max_age);
            request
        }

        /// One product of 500 tests, every 7th still `locked` (counted from the oldest), the
        /// rest archived, synced once; then reviews finish on the 10 oldest locked ones, 2 new
        /// tests arrive, and two hours pass.
        fn reviews_finished_deep_in_the_list() -> (FakeHost, Vec<u64>) {
            let mut host = FakeHost::account(1, 1, 500);
            let oldest_first: Vec<u64> = host.tests[&1].iter().rev().map(|t| t.0).collect();
            for (n, &id) in oldest_first.iter().enumerate() {
                host.api_status.insert(id, if n % 7 == 0 { "locked" } else { "archived" }.into());
            }
            host.sync(sync_request(None)).unwrap();
            let finished: Vec<u64> = oldest_first.iter().step_by(7).take(10).copied().collect();
            for id in &finished {
                host.api_status.insert(*id, "archived".into());
            }
            host.add_tests(1, 2);
            host.later += 2 * HOUR;
            (host, finished)
        }

        fn differing(host: &FakeHost) -> Vec<u64> {
            let stored = |id: &u64| host.test_status.get(id).map(String::as_str).unwrap_or("running");
            let api = |id: &u64| host.api_status.get(id).map(String::as_str).unwrap_or("running");
            host.stored_tests.keys().filter(|id| stored(id) != api(id)).copied().collect()
        }

        #[test]
        fn reviews_finished_deep_in_the_list_are_brought_up_to_date_by_one_sync() {
            let (mut host, _) = reviews_finished_deep_in_the_list();
            host.page_requests.clear();
            let result = host.sync(every(3600)).unwrap();
            assert!(differing(&host).is_empty(), "tests still differing: {:?}", differing(&host));
            assert_eq!(result.tests_discovered, 2);
            assert_eq!(result.tests_changed, 10);
            assert_eq!(result.tests_rechecked, 72, "every stuck test, on pages walked or walked on for");
            let requests = host.page_requests.len() + host.by_id_requests.len();
            assert_eq!(requests, 21, "no more than walking the whole list of 502 tests");
        }

        #[test]
        fn right_after_a_sync_nothing_is_due_and_the_sync_costs_what_it_did() {
            let (mut host, _) = reviews_finished_deep_in_the_list();
            host.sync(every(3600)).unwrap();
            host.page_requests.clear();
            host.by_id_requests.clear();
            let result = host.sync(every(3600)).unwrap();
            assert_eq!((result.tests_rechecked, host.page_requests.len()), (0, 2));
            assert!(host.by_id_requests.is_empty());
        }

        #[test]
        fn a_few_live_tests_deep_in_the_list_are_fetched_one_by_one() {
            let mut host = FakeHost::account(1, 1, 500);
            let oldest_first: Vec<u64> = host.tests[&1].iter().rev().map(|t| t.0).collect();
            for &id in &oldest_first {
                host.api_status.insert(id, "archived".into());
            }
            let live = [oldest_first[20], oldest_first[100], oldest_first[180]];
            for id in live {
                host.api_status.insert(id, "locked".into());
            }
            host.sync(sync_request(None)).unwrap();
            host.api_status.insert(live[1], "customer_finalized".into());
            host.later += 2 * HOUR;
            host.page_requests.clear();
            let result = host.sync(every(3600)).unwrap();
            let mut asked = host.by_id_requests.clone();
            asked.sort_unstable();
            assert_eq!(asked, live, "three requests, not eighteen pages");
            assert_eq!(host.page_requests.len(), 2);
            assert_eq!((result.tests_rechecked, result.tests_changed), (3, 1));
            assert!(differing(&host).is_empty());
        }

        #[test]
        fn a_live_test_the_api_no_longer_returns_is_removed_and_named() {
            let mut host = FakeHost::account(1, 1, 60);
            host.sync(sync_request(None)).unwrap();
            host.stored_tests.insert(1_000_999, 1);
            host.test_status.insert(1_000_999, "locked".into());
            host.later += 2 * HOUR;
            let result = host.sync(every(3600)).unwrap();
            assert!(!host.stored_tests.contains_key(&1_000_999));
            assert_eq!(result.rows_removed, 1);
            assert!(
                result.warnings.iter().any(|w| w.contains("test 1000999 is no longer returned by the API")),
                "{:?}",
                result.warnings
            );
            assert!(result.errors.is_empty(), "{:?}", result.errors);
        }

        #[test]
        fn archived_and_cancelled_tests_are_never_due_and_max_age_zero_makes_every_live_one_due() {
            let mut host = FakeHost::account(1, 1, 100);
            let ids: Vec<u64> = host.tests[&1].iter().map(|t| t.0).collect();
            for (n, &id) in ids.iter().enumerate() {
                host.api_status.insert(id, ["archived", "cancelled", "running", "customer_finalized"][n % 4].into());
            }
            host.sync(sync_request(None)).unwrap();
            let result = host.sync(every(3600)).unwrap();
            assert_eq!(result.tests_rechecked, 0, "written just now");
            host.later += 1;
            let result = host.sync(every(0)).unwrap();
            assert_eq!(result.tests_rechecked, 50, "the running and customer_finalized ones");
            let final_ids: Vec<u64> = ids.iter().enumerate().filter(|(n, _)| n % 4 < 2).map(|(_, id)| *id).collect();
            assert!(host.by_id_requests.iter().all(|id| !final_ids.contains(id)));
        }

        #[test]
        fn a_forced_sync_reads_nothing_due_and_walks_everything() {
            let (mut host, _) = reviews_finished_deep_in_the_list();
            let mut forced = every(0);
            forced.options.force_refresh = true;
            let result = host.sync(forced).unwrap();
            assert_eq!(result.tests_rechecked, 0, "a forced walk re-reads every test anyway");
            assert!(differing(&host).is_empty());
        }
    }
}
