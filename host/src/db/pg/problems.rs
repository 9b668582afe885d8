//! The `problem_ranges` table (see `db/problems.rs`); times read back in SQLite's format.

use anyhow::Result;
use chrono::{DateTime, Utc};
use postgres::Row;
use postgres::types::ToSql;

use super::Conn;
use super::values::{id, ids, instant, small, stored_id, time_text};
use crate::db::problems::{Neighbour, ProblemReport, ProblemRow};
use crate::model::Timestamp;

/// Every product when the list is empty.
const SELECT: &str = "
SELECT id, product_id, first_offset, last_offset, before_test_id, before_end_at,
       after_test_id, after_end_at, attempts, first_seen, last_seen
FROM problem_ranges
WHERE customer_id = $1 AND (cardinality($2::bigint[]) = 0 OR product_id = ANY($2))
ORDER BY first_seen, id";

const INSERT: &str = "
INSERT INTO problem_ranges (customer_id, product_id, first_offset, last_offset, before_test_id,
                            before_end_at, after_test_id, after_end_at, attempts, first_seen, last_seen)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)";

/// The parameters after `$1` are a [`Sighting`]'s, in the order INSERT takes them.
const UPDATE: &str = "
UPDATE problem_ranges SET product_id = $2, first_offset = $3, last_offset = $4, before_test_id = $5,
  before_end_at = $6, after_test_id = $7, after_end_at = $8, last_seen = $9, attempts = $11
WHERE customer_id = $1 AND id = $10";

const DELETE: &str = "DELETE FROM problem_ranges WHERE customer_id = $1 AND id = $2";

pub fn of(c: &mut Conn, product_ids: &[u64]) -> Result<Vec<ProblemRow>> {
    let select = c.prepared(SELECT)?;
    let rows = c.client.query(&select, &[&c.customer, &ids(product_ids)?])?;
    rows.iter().map(problem_row).collect()
}

fn problem_row(r: &Row) -> Result<ProblemRow> {
    let time = |i: usize| -> Result<Option<String>> { Ok(r.try_get::<_, Option<DateTime<Utc>>>(i)?.map(time_text)) };
    Ok(ProblemRow {
        id: r.try_get(0)?,
        product_id: stored_id(r.try_get(1)?, "product id")?,
        first_offset: small(r.try_get(2)?, "offset")?,
        last_offset: small(r.try_get(3)?, "offset")?,
        before_test_id: r.try_get::<_, Option<i64>>(4)?.map(|v| stored_id(v, "test id")).transpose()?,
        before_end_at: time(5)?,
        after_test_id: r.try_get::<_, Option<i64>>(6)?.map(|v| stored_id(v, "test id")).transpose()?,
        after_end_at: time(7)?,
        attempts: small(r.try_get(8)?, "attempts")?,
        first_seen: time_text(r.try_get(9)?),
        last_seen: time_text(r.try_get(10)?),
    })
}

pub fn add(c: &mut Conn, report: &ProblemReport, seen_at: Timestamp) -> Result<()> {
    let sighting = Sighting::of(report, seen_at)?;
    let insert = c.prepared(INSERT)?;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&c.customer];
    params.extend(sighting.params());
    c.client.execute(&insert, &params)?;
    Ok(())
}

pub fn update(c: &mut Conn, range: u64, report: &ProblemReport, attempts: u32, seen_at: Timestamp) -> Result<()> {
    let sighting = Sighting::of(report, seen_at)?;
    let (range, attempts) = (id(range)?, i64::from(attempts));
    let update = c.prepared(UPDATE)?;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&c.customer];
    params.extend(sighting.params());
    params.extend([&range as &(dyn ToSql + Sync), &attempts]);
    c.client.execute(&update, &params)?;
    Ok(())
}

pub fn clear(c: &mut Conn, range: u64) -> Result<()> {
    let delete = c.prepared(DELETE)?;
    c.client.execute(&delete, &[&c.customer, &id(range)?])?;
    Ok(())
}

/// Where and when a range was seen, as stored.
struct Sighting {
    product: i64,
    first: i64,
    last: i64,
    before_id: Option<i64>,
    before_end: Option<DateTime<Utc>>,
    after_id: Option<i64>,
    after_end: Option<DateTime<Utc>>,
    seen: Option<DateTime<Utc>>,
}

impl Sighting {
    fn of(report: &ProblemReport, seen_at: Timestamp) -> Result<Self> {
        let neighbour = |n: Option<Neighbour>| -> Result<(Option<i64>, Option<DateTime<Utc>>)> {
            Ok((n.map(|n| id(n.id)).transpose()?, n.and_then(|n| n.end_at).and_then(instant)))
        };
        let ((before_id, before_end), (after_id, after_end)) = (neighbour(report.before)?, neighbour(report.after)?);
        Ok(Self {
            product: id(report.product_id)?,
            first: i64::from(report.first_offset),
            last: i64::from(report.last_offset),
            before_id,
            before_end,
            after_id,
            after_end,
            seen: instant(seen_at),
        })
    }

    /// `$2` to `$9` of INSERT and UPDATE.
    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.product,
            &self.first,
            &self.last,
            &self.before_id,
            &self.before_end,
            &self.after_id,
            &self.after_end,
            &self.seen,
        ]
    }
}
