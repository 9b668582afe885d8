//! The bugs phase: which stored tests need their bugs fetched, batches of
//! [`BATCH_SIZE`] test ids, and a batch the API times out on (HTTP 524) split in two
//! until every part answers or a single test is left.

use crate::bindings::customer_api::BugSummary;
use crate::bindings::events::{Level, Progress};
use crate::bindings::store::BugCandidate;
use crate::bindings::types::{Options, Phase, SyncError, Timestamp};
use crate::failures::{self, Verdict};
use crate::host::{Fetched, Host};
use crate::tally::Tally;
use crate::{freshness, ids};

/// Test ids per bugs request, as the API is known to answer in time.
pub const BATCH_SIZE: usize = 15;

/// The tests whose bugs to fetch, in the store's order, and how many were skipped: a
/// test in a final status takes no more bugs, so its bugs are fetched once; another test's
/// bugs are skipped while they are younger than `fresh_since`. A forced sync skips nothing.
pub fn due(candidates: &[BugCandidate], force: bool, fresh_since: Option<Timestamp>) -> (Vec<u64>, usize) {
    let skip = |c: &BugCandidate| match c.bugs_synced_at {
        Some(_) if force => false,
        Some(_) if freshness::is_final(&c.status) => true,
        Some(synced) => fresh_since.is_some_and(|since| synced >= since),
        None => false,
    };
    let ids: Vec<u64> = candidates.iter().filter(|c| !skip(c)).map(|c| c.id).collect();
    let skipped = candidates.len() - ids.len();
    (ids, skipped)
}

/// Splits a batch in two, the first half the larger (15 → 8 + 7).
fn bisect(batch: Vec<u64>) -> [Vec<u64>; 2] {
    let mut first = batch;
    let second = first.split_off(first.len().div_ceil(2));
    [first, second]
}

/// Fetches and stores the bugs of the tests in scope. A batch that fails otherwise than
/// by timing out costs the bugs of its tests (an error naming them); a 401 or 403 stops
/// the sync.
pub fn sync<H: Host>(
    host: &mut H,
    product_ids: &[u64],
    since: Option<Timestamp>,
    options: &Options,
    tally: &mut Tally,
) -> Result<(), SyncError> {
    let force = options.force_refresh || options.nuke;
    let candidates = host.bug_candidates(product_ids, since).map_err(SyncError::StoreFailed)?;
    let fresh_since = options.max_age_seconds.map(|age| freshness::cutoff(host.now(), age));
    let (ids, skipped) = due(&candidates, force, fresh_since);
    if skipped > 0 {
        host.log(
            Level::Info,
            &format!(
                "bugs: skipped {skipped} tests whose bugs are still fresh (fetched within the freshness limit, or \
                 once for archived and cancelled tests); a forced sync fetches them again"
            ),
        );
    }
    let total = ids.len() as u32;
    let mut progress = Progress { phase: Phase::Bugs, product_id: None, done: 0, total, items: 0 };
    let mut pending: Vec<Vec<u64>> = ids.chunks(BATCH_SIZE).map(<[u64]>::to_vec).collect();
    while !pending.is_empty() {
        let results = host.fetch_bugs(&pending, &[failures::TIMED_OUT]);
        let mut split = Vec::new();
        for (batch, result) in pending.into_iter().zip(results) {
            match result {
                Ok(list) => store(host, &batch, list, tally)?,
                Err(e) if failures::batch_timed_out(&e) && batch.len() > 1 => {
                    host.log(
                        Level::Info,
                        &format!("bugs of {} tests timed out (HTTP 524); asking for them in halves", batch.len()),
                    );
                    split.extend(bisect(batch));
                    continue;
                }
                Err(e) => apply(host, failures::judge_bugs(&e, &batch), tally)?,
            }
            progress.done += batch.len() as u32;
        }
        progress.items = tally.bugs_refreshed;
        host.report_progress(progress);
        pending = split;
    }
    if total == 0 {
        host.report_progress(progress);
    }
    Ok(())
}

/// Writes the bugs of one answered batch; bugs that name no test of the batch are not
/// stored, since the store could not tell which test they belong to.
fn store<H: Host>(
    host: &mut H,
    batch: &[u64],
    list: Fetched<H::Payload, BugSummary>,
    tally: &mut Tally,
) -> Result<(), SyncError> {
    let source = format!("the bugs of {}", failures::test_list(batch));
    let storable = list.items.iter().filter(|b| ids::storable(b.id, "bug", &source, &mut tally.warnings));
    let (ids, strays): (Vec<&BugSummary>, Vec<&BugSummary>) =
        storable.partition(|b| b.test_id.is_some_and(|t| batch.contains(&t)));
    for stray in strays {
        tally.warnings.push(format!(
            "bug {} was listed for tests {} but names {}; not stored",
            stray.id,
            failures::test_list(batch),
            stray.test_id.map_or("no test".to_string(), |t| format!("test {t}"))
        ));
    }
    let ids: Vec<u64> = ids.iter().map(|b| b.id).collect();
    host.write_bugs(&list.body, &ids, batch).map_err(SyncError::StoreFailed)?;
    tally.bugs_refreshed += ids.len() as u32;
    Ok(())
}

fn apply<H: Host>(host: &mut H, verdict: Verdict, tally: &mut Tally) -> Result<(), SyncError> {
    match verdict {
        Verdict::Abort(error) => return Err(error),
        Verdict::Gone(message) | Verdict::Lost(message) => tally.errors.push(message),
        Verdict::Malformed(message) => {
            host.log(Level::Warn, &message);
            tally.errors.push(message);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::customer_api::Failure;
    use crate::fake::{FakeHost, NOW};

    fn candidate(id: u64, status: &str, synced: bool) -> BugCandidate {
        BugCandidate { id, product_id: 1, status: status.into(), bugs_synced_at: synced.then_some(NOW) }
    }

    /// A host whose product 1 has `tests` stored tests, none with bugs synced yet.
    fn stored(tests: u64) -> FakeHost {
        let mut host = FakeHost::account(1, 1, tests);
        for id in host.tests[&1].iter().map(|t| t.0).collect::<Vec<_>>() {
            host.stored_tests.insert(id, 1);
        }
        host
    }

    fn options(force: bool) -> Options {
        Options { force_refresh: force, incremental_only: false, nuke: false, max_age_seconds: None }
    }

    fn run(host: &mut FakeHost, force: bool) -> Tally {
        let mut tally = Tally::default();
        sync(host, &[1], None, &options(force), &mut tally).unwrap();
        tally
    }

    #[test]
    fn final_tests_with_bugs_fetched_before_are_skipped_unless_forced() {
        let candidates = [
            candidate(1, "archived", true),
            candidate(2, "cancelled", true),
            candidate(3, "archived", false),
            candidate(4, "running", true),
            candidate(5, "customer_finalized", true),
        ];
        assert_eq!(due(&candidates, false, None), (vec![3, 4, 5], 2));
        assert_eq!(due(&candidates, true, None), (vec![1, 2, 3, 4, 5], 0));
    }

    #[test]
    fn bugs_of_live_tests_are_skipped_while_fresh() {
        let candidates = [candidate(1, "running", true), candidate(2, "locked", false), candidate(3, "archived", true)];
        assert_eq!(due(&candidates, false, Some(NOW)), (vec![2], 2), "synced at NOW: still fresh");
        assert_eq!(due(&candidates, false, Some(NOW + 1)), (vec![1, 2], 1), "older than the window");
        assert_eq!(due(&candidates, true, Some(NOW)), (vec![1, 2, 3], 0));
    }

    #[test]
    fn a_batch_is_split_with_the_larger_half_first() {
        let [a, b] = bisect((1..=15).collect());
        assert_eq!((a.len(), b.len()), (8, 7));
        assert_eq!(a.last(), Some(&8));
        let [a, b] = bisect(vec![9, 10]);
        assert_eq!((a, b), (vec![9], vec![10]));
    }

    #[test]
    fn every_test_is_asked_for_once_in_batches_of_fifteen() {
        let mut host = stored(40);
        let tally = run(&mut host, false);
        let sizes: Vec<usize> = host.bug_requests.iter().map(Vec::len).collect();
        assert_eq!(sizes, [15, 15, 10]);
        assert_eq!(host.calls.iter().filter(|c| c.starts_with("fetch_bugs")).count(), 1, "one concurrent round");
        assert_eq!(tally.bugs_refreshed as usize, host.stored_bugs.len());
        assert_eq!(host.stored_bugs.len(), host.bugs_of_product(1));
        assert_eq!(host.bugs_synced.len(), 40, "tests without bugs count as synced too");
        assert!(tally.errors.is_empty());
    }

    #[test]
    fn a_timed_out_batch_is_bisected_down_to_the_test_that_times_out_alone() {
        let mut host = stored(30);
        let bad = host.tests[&1][4].0;
        host.bug_timeouts.insert(bad);
        let tally = run(&mut host, false);
        assert_eq!(tally.errors.len(), 1, "{:?}", tally.errors);
        assert!(tally.errors[0].starts_with(&format!("test {bad}:")), "{:?}", tally.errors);
        assert!(tally.errors[0].contains("HTTP 524"), "{:?}", tally.errors);
        assert_eq!(host.bugs_synced.len(), 29, "every other test's bugs were stored");
        assert!(!host.bugs_synced.contains(&bad));
        let expected = host.bugs_of_product(1) - host.bugs_of(bad);
        assert_eq!(host.stored_bugs.len(), expected);
        // 2 batches, then 8 + 7, 4 + 4, 2 + 2, 1 + 1.
        assert_eq!(host.bug_requests.len(), 10, "{:?}", host.bug_requests);
        assert_eq!(host.handled, [524], "the engine tells the host not to retry what it splits");
    }

    #[test]
    fn two_bad_tests_in_one_batch_lose_only_themselves() {
        let mut host = stored(15);
        let (a, b) = (host.tests[&1][0].0, host.tests[&1][14].0);
        host.bug_timeouts.extend([a, b]);
        let tally = run(&mut host, false);
        assert_eq!(tally.errors.len(), 2, "{:?}", tally.errors);
        assert_eq!(host.bugs_synced.len(), 13);
        assert!(host.bug_requests.len() <= 1 + 2 * 4 + 4, "{} requests", host.bug_requests.len());
    }

    #[test]
    fn other_failures_cost_the_batch_and_a_rejected_token_stops_the_sync() {
        let mut host = stored(20);
        host.bugs_failure = Some(Failure::HttpStatus(503));
        let tally = run(&mut host, false);
        assert_eq!(tally.errors.len(), 2, "one per batch, no bisection: {:?}", tally.errors);
        assert_eq!(host.bug_requests.len(), 2);
        assert!(tally.errors[1].starts_with("tests "), "{:?}", tally.errors);

        host.bugs_failure = Some(Failure::HttpStatus(401));
        let mut tally = Tally::default();
        assert!(matches!(sync(&mut host, &[1], None, &options(false), &mut tally), Err(SyncError::Unauthorized(_))));
    }

    #[test]
    fn a_second_run_skips_final_tests_and_a_forced_one_does_not() {
        let mut host = stored(30);
        let ids: Vec<u64> = host.tests[&1].iter().map(|t| t.0).collect();
        for &id in &ids[..10] {
            host.test_status.insert(id, "archived".into());
        }
        run(&mut host, false);
        host.bug_requests.clear();
        run(&mut host, false);
        let asked: Vec<u64> = host.bug_requests.concat();
        assert_eq!(asked, ids[10..]);
        host.bug_requests.clear();
        run(&mut host, true);
        assert_eq!(host.bug_requests.concat(), ids);
    }

    #[test]
    fn bugs_that_name_another_test_are_a_warning_not_a_row() {
        let mut host = stored(3);
        host.misfiled_bug = true;
        let tally = run(&mut host, false);
        assert_eq!(tally.warnings.len(), 1, "{:?}", tally.warnings);
        assert!(tally.warnings[0].contains("names test 999"), "{:?}", tally.warnings);
        assert!(!host.stored_bugs.contains_key(&9990));
    }
}
