//! Faults the simulator injects, so that a client's resilience can be tested against
//! what real accounts do: broken pages, rate limits, dropped connections, outages,
//! malformed bodies, slow answers and tokens that stop working. Every choice is a pure
//! function of the seed and the request number (counted from 1 over the simulator's
//! life), so a run with the same requests sees the same faults.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::generation::mix;

/// Which faults to inject. The default injects none.
#[derive(Clone, Default, Debug)]
pub struct Faults {
    /// Per product, offsets of its newest-first test list whose test the API "cannot
    /// render": a page of tests that covers one answers HTTP 500.
    pub bad_offsets: BTreeMap<u64, BTreeSet<u64>>,
    /// Tests whose bugs the API "cannot list in time": a bugs request whose
    /// `filter_test_cycle_ids` holds one of them answers HTTP 524.
    pub slow_bug_tests: BTreeSet<u64>,
    /// Every Nth request answers HTTP 429 with `Retry-After: retry_after_secs`.
    pub rate_limit_every: Option<u64>,
    pub retry_after_secs: u64,
    /// Percent of requests whose connection is dropped in the middle of the answer.
    pub reset_percent: u8,
    /// Percent of requests answered HTTP 503.
    pub unavailable_percent: u8,
    /// Percent of requests answered only after `slow` (longer than a client's timeout, to test it).
    pub slow_percent: u8,
    pub slow: Duration,
    /// The rate limits, resets, 503s and slow answers above stop after this request.
    pub flaky_until: Option<u64>,
    /// Requests whose path (relative to the base URL) starts with one of these get a
    /// body that is not valid JSON.
    pub malformed_paths: Vec<String>,
    /// Every request after this many answers HTTP 401, as if the token were revoked.
    pub unauthorized_after: Option<u64>,
}

/// What to do to one request instead of (or before) answering it normally.
#[derive(Debug, PartialEq)]
pub enum Injected {
    Unauthorized,
    RateLimited { retry_after_secs: u64 },
    Unavailable,
    Reset,
    Slow(Duration),
}

/// Separate random streams per fault, so that the resets do not fall on the 503s.
#[derive(Clone, Copy)]
enum Stream {
    Reset = 1,
    Unavailable,
    Slow,
}

impl Faults {
    /// The fault for request number `n` (from 1), if any.
    pub fn for_request(&self, seed: u64, n: u64) -> Option<Injected> {
        if self.unauthorized_after.is_some_and(|after| n > after) {
            return Some(Injected::Unauthorized);
        }
        if self.flaky_until.is_some_and(|until| n > until) {
            return None;
        }
        if self.rate_limit_every.is_some_and(|every| every > 0 && n.is_multiple_of(every)) {
            return Some(Injected::RateLimited { retry_after_secs: self.retry_after_secs });
        }
        let roll = |stream: Stream, percent: u8| {
            percent > 0 && mix(seed ^ mix(n ^ ((stream as u64) << 56))) % 100 < u64::from(percent)
        };
        if roll(Stream::Unavailable, self.unavailable_percent) {
            return Some(Injected::Unavailable);
        }
        if roll(Stream::Reset, self.reset_percent) {
            return Some(Injected::Reset);
        }
        roll(Stream::Slow, self.slow_percent).then_some(Injected::Slow(self.slow))
    }

    /// Whether a page of `product`'s tests covering `offsets` hits a bad test.
    pub fn breaks_page(&self, product: u64, offsets: std::ops::Range<u64>) -> bool {
        self.bad_offsets.get(&product).is_some_and(|bad| bad.range(offsets).next().is_some())
    }

    /// Whether a bugs request for these tests times out.
    pub fn times_out_bugs(&self, test_ids: &[u64]) -> bool {
        test_ids.iter().any(|id| self.slow_bug_tests.contains(id))
    }

    /// Whether the body for this path (relative to the base URL) should be malformed.
    pub fn malforms(&self, path: &str) -> bool {
        self.malformed_paths.iter().any(|prefix| path.starts_with(prefix.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_hit_about_that_share_of_requests_and_the_same_ones_every_time() {
        let faults = Faults { reset_percent: 5, unavailable_percent: 5, ..Faults::default() };
        let hits: Vec<u64> = (1..=2000).filter(|&n| faults.for_request(1, n).is_some()).collect();
        assert!((150..250).contains(&hits.len()), "{} of 2000", hits.len());
        let again: Vec<u64> = (1..=2000).filter(|&n| faults.for_request(1, n).is_some()).collect();
        assert_eq!(hits, again);
        let resets = (1..=2000).filter(|&n| faults.for_request(1, n) == Some(Injected::Reset)).count();
        assert!((50..150).contains(&resets), "{resets}");
    }

    #[test]
    fn every_nth_request_is_rate_limited_until_the_flaky_period_ends() {
        let faults =
            Faults { rate_limit_every: Some(5), retry_after_secs: 1, flaky_until: Some(12), ..Faults::default() };
        let limited: Vec<u64> = (1..=20).filter(|&n| faults.for_request(1, n).is_some()).collect();
        assert_eq!(limited, [5, 10]);
    }

    #[test]
    fn a_revoked_token_wins_over_everything_else() {
        let faults = Faults { unauthorized_after: Some(3), rate_limit_every: Some(1), ..Faults::default() };
        assert_eq!(faults.for_request(1, 3), Some(Injected::RateLimited { retry_after_secs: 0 }));
        assert_eq!(faults.for_request(1, 4), Some(Injected::Unauthorized));
    }

    #[test]
    fn a_page_breaks_when_it_covers_a_bad_offset() {
        let faults = Faults { bad_offsets: [(2, [37, 38].into())].into(), ..Faults::default() };
        assert!(faults.breaks_page(2, 25..50));
        assert!(faults.breaks_page(2, 38..39));
        assert!(!faults.breaks_page(2, 39..50));
        assert!(!faults.breaks_page(1, 25..50));
    }
}
