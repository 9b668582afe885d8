//! The account's simulated clock and each test's way through its life on it: `initialized`,
//! `waiting`, `running`, `locked` (awaiting the customer's review), `customer_finalized`, then
//! `archived`; about one test in twelve is `cancelled` on the way. Bugs follow their test.
//!
//! What a request returns is a pure function of the seed, the sizes, the index, the clock and
//! the controls so far (when tests were added, which reviews were finished), so the same
//! history of controls gives the same bytes.

use std::collections::BTreeMap;

use chrono::TimeDelta;

use crate::generation::{Bug, MAX_TESTS_PER_PRODUCT, ProductData, Rng, Stream, Test, natural_end};

const HOUR: i64 = 3600;
/// A test added now ends this long after now. The clock starts as if the newest test had
/// just been added, so its newest three tests still run.
const NEW_TEST_ENDS_IN: i64 = 3 * HOUR + HOUR / 2;
/// A test is created two days before it starts: `initialized`, then `waiting` for the last day.
const CREATED_BEFORE_START: i64 = 48 * HOUR;
const WAITING_BEFORE_START: i64 = 24 * HOUR;
/// Hours from a test's end to the customer's review (`locked` meanwhile) …
const REVIEW_DELAY_HOURS: (usize, usize) = (24, 96);
/// … and from the review to archiving (`customer_finalized` meanwhile).
const FINALIZED_HOURS: (usize, usize) = (24, 72);
/// One test in this many is cancelled, at a moment between its creation and its review.
const CANCEL_ONE_IN: usize = 12;
/// Of the tests the account starts with, indexes 0, 7, 14, … (counted from the oldest) are
/// never reviewed by themselves: once ended they stay `locked` until [`Timeline::finish_reviews`].
const STUCK_EVERY: u32 = 7;
/// The customer accepts this share of bugs and rejects the rest; half of the accepted ones
/// are fixed before the test is archived.
const ACCEPTED_PERCENT: u64 = 70;
const FIXED_PERCENT: u64 = 50;
/// The clock stops at the end of year 9999, so every time stays printable.
const LATEST: i64 = 253_402_300_799;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Initialized,
    Waiting,
    Running,
    Locked,
    CustomerFinalized,
    Archived,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Initialized => "initialized",
            Status::Waiting => "waiting",
            Status::Running => "running",
            Status::Locked => "locked",
            Status::CustomerFinalized => "customer_finalized",
            Status::Archived => "archived",
            Status::Cancelled => "cancelled",
        }
    }
}

/// When one test reaches each stage, in seconds since the epoch.
struct Course {
    /// How much later than its natural window the test runs (it was added late).
    shift: TimeDelta,
    start: i64,
    end: i64,
    /// When the customer's review is done; None while it waits for the control.
    reviewed: Option<i64>,
    /// From the review to archiving.
    finalized_for: i64,
    cancelled: Option<i64>,
}

impl Course {
    fn status(&self, now: i64) -> Status {
        if self.cancelled.is_some_and(|at| at <= now) {
            return Status::Cancelled;
        }
        match self.reviewed {
            _ if now < self.start - WAITING_BEFORE_START => Status::Initialized,
            _ if now < self.start => Status::Waiting,
            _ if now < self.end => Status::Running,
            Some(at) if now >= at + self.finalized_for => Status::Archived,
            Some(at) if now >= at => Status::CustomerFinalized,
            _ => Status::Locked,
        }
    }

    /// `now`, or the moment the test was archived or cancelled if that is earlier: nothing
    /// about the test changes after it.
    fn frozen(&self, now: i64) -> i64 {
        let settled = self.cancelled.or(self.reviewed.map(|at| at + self.finalized_for));
        settled.map_or(now, |at| now.min(at))
    }

    /// A bug's status at `at`: `new` while its test runs, `forwarded` while the test awaits
    /// review, then the customer's verdict.
    fn bug_status(&self, verdict: &Verdict, at: i64) -> &'static str {
        match self.reviewed {
            _ if at < self.end => "new",
            Some(reviewed) if at >= reviewed => verdict.at(at - reviewed),
            _ => "forwarded",
        }
    }
}

/// What the customer decides about one bug, drawn from the seed.
struct Verdict {
    accepted: bool,
    /// Seconds from the review to the fix, for accepted bugs that get fixed.
    fixed_after: Option<i64>,
}

impl Verdict {
    fn draw(mut rng: Rng, finalized_for: i64) -> Self {
        let accepted = rng.chance(ACCEPTED_PERCENT);
        let fixed = rng.chance(FIXED_PERCENT);
        let after = rng.below(finalized_for as usize) as i64;
        Verdict { accepted, fixed_after: (accepted && fixed).then_some(after) }
    }

    fn at(&self, since_review: i64) -> &'static str {
        match self.fixed_after {
            Some(after) if since_review >= after => "fixed",
            _ if self.accepted => "accepted",
            _ => "rejected",
        }
    }
}

fn hours(rng: &mut Rng, (low, high): (usize, usize)) -> i64 {
    rng.between(low, high) as i64 * HOUR
}

/// What the controls did to one product.
#[derive(Default)]
struct History {
    count: u32,
    /// (first index, hours): tests from that index on run this much later than their natural
    /// window, because they were added after the clock had passed it. Grows with the index.
    shifts: Vec<(u32, i64)>,
    /// Reviews finished by the control: test index → when.
    finished: BTreeMap<u32, i64>,
}

impl History {
    fn shift_hours(&self, n: u32) -> i64 {
        self.shifts.iter().rev().find(|(first, _)| *first <= n).map_or(0, |&(_, hours)| hours)
    }
}

/// The clock and every product's history of controls.
pub struct Timeline {
    now: i64,
    /// The account's initial size: only tests below it can be stuck (see [`STUCK_EVERY`]).
    initial_tests: u32,
    /// Indexed by product id - 1.
    products: Vec<History>,
}

impl Timeline {
    pub fn new(products: u32, tests: u32) -> Self {
        let history = |_| History { count: tests, ..History::default() };
        Timeline {
            now: natural_end(tests) - NEW_TEST_ENDS_IN,
            initial_tests: tests,
            products: (0..products).map(history).collect(),
        }
    }

    /// Seconds since the epoch.
    pub fn now(&self) -> i64 {
        self.now
    }

    pub fn advance(&mut self, seconds: i64) {
        self.now = self.now.saturating_add(seconds).min(LATEST);
    }

    fn history(&self, product_id: u64) -> Option<&History> {
        self.products.get(usize::try_from(product_id.checked_sub(1)?).ok()?)
    }

    fn history_mut(&mut self, product_id: u64) -> Option<&mut History> {
        self.products.get_mut(usize::try_from(product_id.checked_sub(1)?).ok()?)
    }

    /// The product's number of tests (0 for an unknown product).
    pub fn count(&self, product_id: u64) -> u32 {
        self.history(product_id).map_or(0, |history| history.count)
    }

    /// Appends tests that end after every existing one and, however far the clock has moved,
    /// after now; returns false for an unknown product.
    pub fn add_tests(&mut self, product_id: u64, count: u32) -> bool {
        let now = self.now;
        let Some(history) = self.history_mut(product_id) else {
            return false;
        };
        let first = history.count;
        history.count = first.saturating_add(count).min(MAX_TESTS_PER_PRODUCT);
        let late = now + NEW_TEST_ENDS_IN - natural_end(first);
        let shift = (late + HOUR - 1).div_euclid(HOUR);
        if shift > history.shift_hours(first) {
            history.shifts.push((first, shift));
        }
        true
    }

    fn course(&self, product: &ProductData, n: u32) -> Course {
        let history = self.history(product.id()).expect("the timeline has every product of the catalog");
        let shift = TimeDelta::hours(history.shift_hours(n));
        let (start, end) = product.test_window(n, shift);
        let (start, end) = (start.timestamp(), end.timestamp());
        let mut rng = product.rng(Stream::Lifecycle, n.into());
        let review_delay = hours(&mut rng, REVIEW_DELAY_HOURS);
        let finalized_for = hours(&mut rng, FINALIZED_HOURS);
        let cancels = rng.below(CANCEL_ONE_IN) == 0;
        let created = start - CREATED_BEFORE_START;
        let cancel_at = created + rng.below((end + review_delay - created) as usize) as i64;
        let stuck = n < self.initial_tests && n.is_multiple_of(STUCK_EVERY);
        let reviewed = history.finished.get(&n).copied().or((!stuck).then_some(end + review_delay));
        // Stuck tests are never cancelled, so that every 7th one really waits; nor is a test
        // whose review was finished early.
        let cancelled = (cancels && !stuck).then_some(cancel_at).filter(|at| reviewed.is_none_or(|done| *at < done));
        Course { shift, start, end, reviewed, finalized_for, cancelled }
    }

    pub fn status(&self, product: &ProductData, n: u32) -> Status {
        self.course(product, n).status(self.now)
    }

    pub fn test<'p>(&self, product: &'p ProductData, n: u32) -> Test<'p> {
        let course = self.course(product, n);
        product.test(n, course.shift, course.status(self.now).as_str())
    }

    /// The bugs of test n reported so far (or before it was cancelled), with their status.
    pub fn bugs(&self, product: &ProductData, n: u32) -> Vec<Bug> {
        let course = self.course(product, n);
        let at = course.frozen(self.now);
        product.bugs(n, course.shift, |bug_id, reported| {
            let verdict = Verdict::draw(product.rng(Stream::Verdict, bug_id), course.finalized_for);
            (reported <= at).then(|| course.bug_status(&verdict, at))
        })
    }

    /// Ends the reviews of up to `count` of the product's `locked` tests, oldest first, now;
    /// returns their indexes.
    pub fn finish_reviews(&mut self, product: &ProductData, count: usize) -> Vec<u32> {
        let locked: Vec<u32> =
            (0..self.count(product.id())).filter(|&n| self.status(product, n) == Status::Locked).take(count).collect();
        let now = self.now;
        let history = self.history_mut(product.id()).expect("the timeline has every product of the catalog");
        history.finished.extend(locked.iter().map(|&n| (n, now)));
        locked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::Catalog;

    fn course(reviewed: Option<i64>, cancelled: Option<i64>) -> Course {
        let start = 100 * HOUR;
        Course { shift: TimeDelta::zero(), start, end: start + 10, reviewed, finalized_for: 50, cancelled }
    }

    #[test]
    fn a_test_goes_through_every_stage_in_order() {
        let course = course(Some(100 * HOUR + 30), None);
        let start = course.start;
        let at = |t| course.status(t).as_str();
        let seen: Vec<_> = [start - WAITING_BEFORE_START - 1, start - 1, start, start + 10, start + 30, start + 80]
            .into_iter()
            .map(at)
            .collect();
        assert_eq!(seen, ["initialized", "waiting", "running", "locked", "customer_finalized", "archived"]);
    }

    #[test]
    fn a_cancelled_test_and_its_bugs_stop_changing() {
        let course = course(Some(100 * HOUR + 30), Some(100 * HOUR + 5));
        assert_eq!(course.status(100 * HOUR + 4), Status::Running);
        assert_eq!(course.status(100 * HOUR + 5), Status::Cancelled);
        assert_eq!(course.frozen(i64::MAX), 100 * HOUR + 5);
        let verdict = Verdict { accepted: true, fixed_after: None };
        assert_eq!(course.bug_status(&verdict, course.frozen(i64::MAX)), "new");
    }

    #[test]
    fn bugs_are_new_then_forwarded_then_judged_then_fixed() {
        let course = course(Some(100 * HOUR + 30), None);
        let verdict = Verdict { accepted: true, fixed_after: Some(20) };
        let seen: Vec<_> =
            [5, 15, 30, 49, 50, 1000].map(|t| course.bug_status(&verdict, course.frozen(100 * HOUR + t))).to_vec();
        assert_eq!(seen, ["new", "forwarded", "accepted", "accepted", "fixed", "fixed"]);
        let stuck = self::course(None, None);
        assert_eq!(stuck.bug_status(&verdict, stuck.frozen(i64::MAX)), "forwarded");
    }

    #[test]
    fn a_default_account_has_a_realistic_mix() {
        let catalog = Catalog::new(1, 3, 2);
        let timeline = Timeline::new(3, 500);
        for product in catalog.products() {
            let statuses: Vec<Status> = (0..500).map(|n| timeline.status(product, n)).collect();
            let share = |status| statuses.iter().filter(|&&s| s == status).count();
            let every_7th = statuses.iter().step_by(7);
            assert!(every_7th.clone().all(|s| [Status::Locked, Status::Running].contains(s)), "{statuses:?}");
            assert_eq!(every_7th.filter(|&&s| s == Status::Locked).count(), 71, "test 497 still runs");
            assert!(share(Status::Archived) > 250, "most are archived: {}", share(Status::Archived));
            assert!((20..80).contains(&share(Status::CustomerFinalized)), "{}", share(Status::CustomerFinalized));
            assert!((15..60).contains(&share(Status::Cancelled)), "{}", share(Status::Cancelled));
            assert!((1..=3).contains(&share(Status::Running)), "{}", share(Status::Running));
            assert!(statuses[..490].iter().all(|s| ![Status::Running, Status::Waiting].contains(s)));
        }
    }

    #[test]
    fn tests_added_after_the_clock_moved_on_still_end_in_the_future() {
        let catalog = Catalog::new(1, 1, 2);
        let product = catalog.product(1).unwrap();
        let mut timeline = Timeline::new(1, 10);
        timeline.advance(30 * 24 * HOUR);
        timeline.add_tests(1, 2);
        for n in [10, 11] {
            let course = timeline.course(product, n);
            assert!(course.end > timeline.now(), "test {n} ends after now");
            assert!(course.end - timeline.now() <= NEW_TEST_ENDS_IN + HOUR * i64::from(n - 9));
        }
        assert!(timeline.course(product, 10).end > timeline.course(product, 9).end);
        assert_eq!(timeline.course(product, 9).shift, TimeDelta::zero(), "earlier tests stay where they were");
    }
}
