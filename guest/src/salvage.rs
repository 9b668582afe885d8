//! Shrink and salvage. A real account answers HTTP 500 for a page of tests that holds a
//! test it cannot render. Such a page is fetched again in smaller pages, 10 → 5 → 2 → 1
//! tests each, and every size only re-fetches the parts that failed at the size before.
//! So every good test of the page is kept, the request count stays bounded (46 more
//! requests when all 25 tests of a page are bad, 10 for one bad test), and the offsets
//! that fail even alone are pinned down, to be recorded as problem ranges.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::bindings::customer_api::{ApiError, TestSummary, TestsPageRequest};
use crate::failures;
use crate::host::Host;

/// The page sizes tried after the normal size (25) failed, in order.
pub const SHRINK_SIZES: [u32; 4] = [10, 5, 2, 1];

/// One page that came back while shrinking.
pub struct Chunk<P> {
    /// The offset of its first test.
    pub first_offset: u64,
    pub tests: Vec<TestSummary>,
    pub body: P,
}

/// What shrinking a page brought back.
pub struct Salvaged<P> {
    /// The pages that came back. Together they cover every good offset of the range, and
    /// may reach past it (a page of 10 over a range of 25 does).
    pub chunks: Vec<Chunk<P>>,
    /// The offsets that failed even alone, ascending.
    pub bad_offsets: Vec<u64>,
    /// A failure other than HTTP 500 that stopped the shrinking (the chunks fetched
    /// before it are still good).
    pub stopped: Option<ApiError>,
}

impl<P> Salvaged<P> {
    /// The tests at the offsets of `range`, in offset order, each with the index of the
    /// chunk it came from.
    pub fn tests_in(&self, range: &Range<u64>) -> Vec<(usize, &TestSummary)> {
        self.by_offset().into_iter().filter(|(offset, _)| range.contains(offset)).map(|(_, found)| found).collect()
    }

    /// The test at `offset`, if any chunk holds it.
    pub fn at(&self, offset: u64) -> Option<&TestSummary> {
        self.by_offset().remove(&offset).map(|(_, test)| test)
    }

    /// The bad offsets as runs of neighbouring offsets, each `(first, last)` inclusive.
    pub fn bad_runs(&self) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &offset in &self.bad_offsets {
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == offset => *last = offset,
                _ => runs.push((offset, offset)),
            }
        }
        runs
    }

    fn by_offset(&self) -> BTreeMap<u64, (usize, &TestSummary)> {
        let mut map = BTreeMap::new();
        for (index, chunk) in self.chunks.iter().enumerate() {
            for (i, test) in chunk.tests.iter().enumerate() {
                map.entry(chunk.first_offset + i as u64).or_insert((index, test));
            }
        }
        map
    }
}

/// Fetches the tests at the offsets of `range` of a product in ever smaller pages,
/// narrowing at each size to the pages that failed with HTTP 500.
pub fn shrink<H: Host>(host: &mut H, product_id: u64, range: Range<u64>) -> Salvaged<H::Payload> {
    let mut salvaged = Salvaged { chunks: Vec::new(), bad_offsets: Vec::new(), stopped: None };
    let mut failing = vec![range.clone()];
    for size in SHRINK_SIZES {
        let requests = pages_over(product_id, &failing, size);
        let results = host.fetch_tests_pages(&requests);
        failing.clear();
        for (request, result) in requests.iter().zip(results) {
            let first_offset = u64::from(request.page - 1) * u64::from(size);
            match result {
                Ok(page) => salvaged.chunks.push(Chunk { first_offset, tests: page.items, body: page.body }),
                Err(error) if failures::page_is_broken(&error) => {
                    // Only the part inside the range is chased; the rest belongs to another page.
                    let part = first_offset.max(range.start)..(first_offset + u64::from(size)).min(range.end);
                    if !part.is_empty() {
                        failing.push(part);
                    }
                }
                Err(error) => {
                    salvaged.stopped = Some(error);
                    return salvaged;
                }
            }
        }
        if failing.is_empty() {
            return salvaged;
        }
    }
    salvaged.bad_offsets = failing.iter().flat_map(Clone::clone).collect();
    salvaged
}

/// The pages of `size` tests that cover the ranges, each once, in offset order.
fn pages_over(product_id: u64, ranges: &[Range<u64>], size: u32) -> Vec<TestsPageRequest> {
    let size64 = u64::from(size);
    let mut pages: Vec<u32> = ranges
        .iter()
        .flat_map(|r| (r.start / size64 + 1)..=((r.end - 1) / size64 + 1))
        .map(|page| u32::try_from(page).unwrap_or(u32::MAX))
        .collect();
    pages.sort_unstable();
    pages.dedup();
    pages.into_iter().map(|page| TestsPageRequest { product_id, page, per_page: size }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;

    /// A product of `total` tests with these bad offsets; shrinks the page of 25 at `page_start`.
    fn shrink_page(total: u64, bad: &[u64], page_start: u64) -> (FakeHost, Salvaged<Vec<u64>>) {
        let mut host = FakeHost::account(1, 1, total);
        host.bad_offsets.insert(1, bad.iter().copied().collect());
        let salvaged = shrink(&mut host, 1, page_start..page_start + 25);
        (host, salvaged)
    }

    /// Every good offset of the page is among the salvaged tests, with the right test.
    fn assert_no_good_test_lost(host: &FakeHost, salvaged: &Salvaged<Vec<u64>>, page_start: u64, bad: &[u64]) {
        let range = page_start..page_start + 25;
        let found: Vec<u64> = salvaged.tests_in(&range).iter().map(|(_, t)| t.id).collect();
        let expected: Vec<u64> =
            range.filter(|o| !bad.contains(o)).filter_map(|o| host.tests[&1].get(o as usize).map(|t| t.0)).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn one_bad_offset_costs_ten_requests_and_loses_nothing_else() {
        let (host, salvaged) = shrink_page(100, &[37], 25);
        assert_eq!(salvaged.bad_offsets, [37]);
        assert_no_good_test_lost(&host, &salvaged, 25, &[37]);
        assert_eq!(host.page_requests.len(), 10, "3 pages of 10, 2 of 5, 3 of 2, 2 of 1");
        assert!(salvaged.stopped.is_none());
    }

    #[test]
    fn two_adjacent_bad_offsets_form_one_run() {
        let (host, salvaged) = shrink_page(200, &[37, 38], 25);
        assert_eq!(salvaged.bad_offsets, [37, 38]);
        assert_eq!(salvaged.bad_runs(), [(37, 38)]);
        assert_no_good_test_lost(&host, &salvaged, 25, &[37, 38]);
        assert!(host.page_requests.len() <= 14, "{} requests", host.page_requests.len());
    }

    #[test]
    fn bad_offsets_at_both_edges_of_a_page_are_found() {
        for bad in [[25u64], [49]] {
            let (host, salvaged) = shrink_page(100, &bad, 25);
            assert_eq!(salvaged.bad_offsets, bad);
            assert_no_good_test_lost(&host, &salvaged, 25, &bad);
            assert!(host.page_requests.len() <= 12, "{bad:?}: {} requests", host.page_requests.len());
        }
    }

    #[test]
    fn a_bad_offset_just_past_the_page_is_left_to_its_own_page() {
        // The pages of 10 over offsets 25..50 reach offset 50, which belongs to the next page.
        let (host, salvaged) = shrink_page(100, &[50], 25);
        assert!(salvaged.bad_offsets.is_empty());
        assert_no_good_test_lost(&host, &salvaged, 25, &[]);
    }

    #[test]
    fn a_whole_bad_page_is_pinned_down_in_a_bounded_number_of_requests() {
        let bad: Vec<u64> = (0..25).collect();
        let (host, salvaged) = shrink_page(60, &bad, 0);
        assert_eq!(salvaged.bad_offsets, bad);
        assert_eq!(salvaged.bad_runs(), [(0, 24)]);
        assert_eq!(host.page_requests.len(), 3 + 5 + 13 + 25);
        assert!(salvaged.tests_in(&(0..25)).is_empty());
    }

    #[test]
    fn the_end_of_the_list_inside_the_page_is_not_a_problem() {
        let (host, salvaged) = shrink_page(30, &[27], 25);
        assert_eq!(salvaged.bad_offsets, [27]);
        assert_no_good_test_lost(&host, &salvaged, 25, &[27]);
    }

    #[test]
    fn another_failure_stops_the_shrinking_and_keeps_what_came_back() {
        let mut host = FakeHost::account(1, 1, 100);
        host.bad_offsets.insert(1, [37].into());
        host.fail_after_requests = Some(1);
        let salvaged = shrink(&mut host, 1, 25..50);
        assert!(salvaged.stopped.is_some());
        assert_eq!(salvaged.chunks.len(), 1, "the first page of 10 came back before the failure");
    }
}
