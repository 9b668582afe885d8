//! The `problem_ranges` table: runs of test offsets that failed with HTTP 500 even one
//! test per page, recorded by the engine and retried by the next sync.

use chrono::{DateTime, NaiveDateTime};
use rusqlite::{Row, params, params_from_iter};
use serde::Serialize;

use super::{Store, now_column};
use crate::bindings::store::{Neighbour, ProblemRange, ProblemReport};

const COLUMN_TIME: &str = "%Y-%m-%d %H:%M:%S%.f";

/// One stored problem range, as `testio-sync problems` shows it.
#[derive(Serialize, Debug)]
pub struct ProblemRow {
    pub id: i64,
    pub product_id: i64,
    pub first_offset: u32,
    pub last_offset: u32,
    pub before_test_id: Option<i64>,
    pub before_end_at: Option<String>,
    pub after_test_id: Option<i64>,
    pub after_end_at: Option<String>,
    pub attempts: u32,
    pub first_seen: String,
    pub last_seen: String,
}

impl ProblemRow {
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

    /// The record as the engine sees it.
    pub fn to_wit(&self) -> ProblemRange {
        let neighbour = |id: Option<i64>, end_at: &Option<String>| {
            id.map(|id| Neighbour { id: id as u64, end_at: millis(end_at.as_deref()) })
        };
        ProblemRange {
            id: self.id as u64,
            report: ProblemReport {
                product_id: self.product_id as u64,
                first_offset: self.first_offset,
                last_offset: self.last_offset,
                before: neighbour(self.before_test_id, &self.before_end_at),
                after: neighbour(self.after_test_id, &self.after_end_at),
            },
            attempts: self.attempts,
            first_seen: millis(Some(&self.first_seen)).unwrap_or_default(),
            last_seen: millis(Some(&self.last_seen)).unwrap_or_default(),
        }
    }
}

fn millis(column: Option<&str>) -> Option<i64> {
    NaiveDateTime::parse_from_str(column?, COLUMN_TIME).ok().map(|t| t.and_utc().timestamp_millis())
}

fn column(millis: Option<i64>) -> Option<String> {
    DateTime::from_timestamp_millis(millis?).map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
}

const SELECT: &str = "SELECT id, product_id, first_offset, last_offset, before_test_id, before_end_at,
                             after_test_id, after_end_at, attempts, first_seen, last_seen
                      FROM problem_ranges WHERE customer_id = ?1";

impl Store {
    /// This customer's problem ranges of these products (all when empty), oldest first.
    pub fn problem_ranges(&self, product_ids: &[u64]) -> rusqlite::Result<Vec<ProblemRow>> {
        let filter = if product_ids.is_empty() {
            String::new()
        } else {
            format!(" AND product_id IN ({})", vec!["?"; product_ids.len()].join(","))
        };
        let mut stmt = self.conn.prepare(&format!("{SELECT}{filter} ORDER BY first_seen, id"))?;
        let values = std::iter::once(self.customer_id).chain(product_ids.iter().map(|&id| id as i64));
        stmt.query_map(params_from_iter(values), ProblemRow::from_row)?.collect()
    }

    /// Updates the range of the same product with the same neighbours, or adds one.
    pub fn record_problem_range(&mut self, report: &ProblemReport) -> rusqlite::Result<()> {
        let (before_id, before_end) = split(&report.before);
        let (after_id, after_end) = split(&report.after);
        let now = now_column();
        let tx = self.conn.transaction()?;
        let updated = tx.execute(
            "UPDATE problem_ranges SET first_offset = ?5, last_offset = ?6, attempts = attempts + 1, last_seen = ?7
             WHERE customer_id = ?1 AND product_id = ?2 AND before_test_id IS ?3 AND after_test_id IS ?4",
            params![
                self.customer_id,
                report.product_id as i64,
                before_id,
                after_id,
                report.first_offset,
                report.last_offset,
                now
            ],
        )?;
        if updated == 0 {
            tx.execute(
                "INSERT INTO problem_ranges (customer_id, product_id, first_offset, last_offset, before_test_id,
                                             before_end_at, after_test_id, after_end_at, attempts, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9)",
                params![
                    self.customer_id,
                    report.product_id as i64,
                    report.first_offset,
                    report.last_offset,
                    before_id,
                    before_end,
                    after_id,
                    after_end,
                    now
                ],
            )?;
        }
        tx.commit()
    }

    pub fn clear_problem_range(&self, id: u64) -> rusqlite::Result<()> {
        self.conn.execute(
            "DELETE FROM problem_ranges WHERE customer_id = ?1 AND id = ?2",
            params![self.customer_id, id as i64],
        )?;
        Ok(())
    }
}

fn split(neighbour: &Option<Neighbour>) -> (Option<i64>, Option<String>) {
    match neighbour {
        Some(n) => (Some(n.id as i64), column(n.end_at)),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(first: u32, before: Option<u64>) -> ProblemReport {
        ProblemReport {
            product_id: 2,
            first_offset: first,
            last_offset: first + 1,
            before: before.map(|id| Neighbour { id, end_at: Some(1_780_272_000_000) }),
            after: Some(Neighbour { id: 9, end_at: None }),
        }
    }

    #[test]
    fn the_same_range_met_again_is_updated_not_duplicated() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db"), 1).unwrap();
        store.record_problem_range(&report(37, Some(5))).unwrap();
        store.record_problem_range(&report(40, Some(5))).unwrap();
        store.record_problem_range(&report(0, None)).unwrap();
        let rows = store.problem_ranges(&[]).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].first_offset, rows[0].attempts), (40, 2), "moved and met again");
        assert_eq!(rows[0].before_end_at.as_deref(), Some("2026-06-01 00:00:00.000000"));
        let wit = rows[0].to_wit();
        assert_eq!(wit.report.before.unwrap().end_at, Some(1_780_272_000_000));
        assert!(wit.first_seen > 0);
        assert!(store.problem_ranges(&[3]).unwrap().is_empty());
        store.clear_problem_range(rows[0].id as u64).unwrap();
        assert_eq!(store.problem_ranges(&[2]).unwrap().len(), 1);
        let other = Store::open(&dir.path().join("t.db"), 7).unwrap();
        assert!(other.problem_ranges(&[]).unwrap().is_empty(), "another customer's ranges are not seen");
    }
}
