//! The `problem_ranges` table: runs of test offsets that failed with HTTP 500 even one
//! test per page, recorded by the engine and retried by the next sync.

use rusqlite::{Row, params, params_from_iter};
use serde::Serialize;

use super::Store;
use super::columns::{column_millis, id_column, time_column};
use crate::model::Timestamp;

/// A test next to a problem range, by which the engine recognises the range again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbour {
    pub id: u64,
    pub end_at: Option<Timestamp>,
}

/// Where a run of failing offsets was seen, and the tests around it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProblemReport {
    pub product_id: u64,
    pub first_offset: u32,
    pub last_offset: u32,
    pub before: Option<Neighbour>,
    pub after: Option<Neighbour>,
}

/// One stored problem range, as `testio-sync problems` shows it.
#[derive(Serialize, Debug)]
pub struct ProblemRow {
    pub id: i64,
    pub product_id: u64,
    pub first_offset: u32,
    pub last_offset: u32,
    pub before_test_id: Option<u64>,
    pub before_end_at: Option<String>,
    pub after_test_id: Option<u64>,
    pub after_end_at: Option<String>,
    pub attempts: u32,
    pub first_seen: String,
    pub last_seen: String,
}

impl ProblemRow {
    /// Where the range was last seen, and its neighbours.
    pub fn report(&self) -> ProblemReport {
        let neighbour = |id: Option<u64>, end_at: &Option<String>| {
            id.map(|id| Neighbour { id, end_at: end_at.as_deref().and_then(column_millis) })
        };
        ProblemReport {
            product_id: self.product_id,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            before: neighbour(self.before_test_id, &self.before_end_at),
            after: neighbour(self.after_test_id, &self.after_end_at),
        }
    }

    fn from_row(row: &Row) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            product_id: row.get(1)?,
            first_offset: row.get(2)?,
            last_offset: row.get(3)?,
            before_test_id: row.get(4)?,
            before_end_at: row.get(5)?,
            after_test_id: row.get(6)?,
            after_end_at: row.get(7)?,
            attempts: row.get(8)?,
            first_seen: row.get(9)?,
            last_seen: row.get(10)?,
        })
    }
}

const SELECT: &str = "SELECT id, product_id, first_offset, last_offset, before_test_id, before_end_at,
                             after_test_id, after_end_at, attempts, first_seen, last_seen
                      FROM problem_ranges WHERE customer_id = ?1";

impl Store {
    /// This customer's problem ranges of these products (all when empty), oldest first.
    pub fn problem_ranges(&self, product_ids: &[u64]) -> rusqlite::Result<Vec<ProblemRow>> {
        let product_ids = product_ids.iter().map(|&id| id_column(id)).collect::<rusqlite::Result<Vec<_>>>()?;
        let filter = if product_ids.is_empty() {
            String::new()
        } else {
            format!(" AND product_id IN ({})", vec!["?"; product_ids.len()].join(","))
        };
        let mut stmt = self.conn.prepare(&format!("{SELECT}{filter} ORDER BY first_seen, id"))?;
        let values = std::iter::once(self.customer_id).chain(product_ids);
        stmt.query_map(params_from_iter(values), ProblemRow::from_row)?.collect()
    }

    /// Adds a range found failing for the first time.
    pub fn add_problem_range(&self, report: &ProblemReport, seen_at: Timestamp) -> rusqlite::Result<()> {
        let (before_id, before_end) = split(&report.before);
        let (after_id, after_end) = split(&report.after);
        self.conn.execute(
            "INSERT INTO problem_ranges (customer_id, product_id, first_offset, last_offset, before_test_id,
                                         before_end_at, after_test_id, after_end_at, attempts, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9)",
            params![
                self.customer_id,
                id_column(report.product_id)?,
                report.first_offset,
                report.last_offset,
                before_id,
                before_end,
                after_id,
                after_end,
                time_column(seen_at)
            ],
        )?;
        Ok(())
    }

    /// Replaces where range `id` was seen, its attempts and last sighting.
    pub fn update_problem_range(
        &self,
        id: u64,
        report: &ProblemReport,
        attempts: u32,
        seen_at: Timestamp,
    ) -> rusqlite::Result<()> {
        let (before_id, before_end) = split(&report.before);
        let (after_id, after_end) = split(&report.after);
        self.conn.execute(
            "UPDATE problem_ranges SET product_id = ?3, first_offset = ?4, last_offset = ?5, before_test_id = ?6,
               before_end_at = ?7, after_test_id = ?8, after_end_at = ?9, attempts = ?10, last_seen = ?11
             WHERE customer_id = ?1 AND id = ?2",
            params![
                self.customer_id,
                id_column(id)?,
                id_column(report.product_id)?,
                report.first_offset,
                report.last_offset,
                before_id,
                before_end,
                after_id,
                after_end,
                attempts,
                time_column(seen_at)
            ],
        )?;
        Ok(())
    }

    pub fn clear_problem_range(&self, id: u64) -> rusqlite::Result<()> {
        self.conn.execute(
            "DELETE FROM problem_ranges WHERE customer_id = ?1 AND id = ?2",
            params![self.customer_id, id_column(id)?],
        )?;
        Ok(())
    }
}

/// A neighbour's columns; one whose id SQLite cannot store is left out, like a missing one.
fn split(neighbour: &Option<Neighbour>) -> (Option<i64>, Option<String>) {
    match neighbour.and_then(|n| Some((i64::try_from(n.id).ok()?, n.end_at))) {
        Some((id, end_at)) => (Some(id), end_at.and_then(time_column)),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUNE: Timestamp = 1_780_272_000_000;

    fn report(first: u32, before: Option<u64>) -> ProblemReport {
        ProblemReport {
            product_id: 2,
            first_offset: first,
            last_offset: first + 1,
            before: before.map(|id| Neighbour { id, end_at: Some(JUNE) }),
            after: Some(Neighbour { id: 9, end_at: None }),
        }
    }

    #[test]
    fn ranges_are_added_and_updated_as_the_engine_says_per_customer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), 1).unwrap();
        store.add_problem_range(&report(37, Some(5)), JUNE).unwrap();
        store.add_problem_range(&report(0, None), JUNE).unwrap();
        let rows = store.problem_ranges(&[]).unwrap();
        assert_eq!(rows.len(), 2);
        store.update_problem_range(rows[0].id as u64, &report(40, Some(5)), 2, JUNE + 1_000).unwrap();
        let rows = store.problem_ranges(&[2]).unwrap();
        assert_eq!((rows[0].first_offset, rows[0].attempts), (40, 2), "moved and met again");
        assert_eq!(rows[0].first_seen, "2026-06-01 00:00:00.000000");
        assert_eq!(rows[0].last_seen, "2026-06-01 00:00:01.000000");
        assert_eq!(rows[0].report(), report(40, Some(5)), "a report reads back as it was written");
        assert!(store.problem_ranges(&[3]).unwrap().is_empty());
        store.clear_problem_range(rows[0].id as u64).unwrap();
        assert_eq!(store.problem_ranges(&[2]).unwrap().len(), 1);
        let other = Store::open(&dir.path().join("t.db"), 7).unwrap();
        assert!(other.problem_ranges(&[]).unwrap().is_empty(), "another customer's ranges are not seen");
        other.update_problem_range(rows[1].id as u64, &report(1, None), 9, JUNE).unwrap();
        assert_eq!(store.problem_ranges(&[]).unwrap()[0].attempts, 1, "nor updated");
    }
}
