//! The BUGS phase's reads and writes (see `db/bugs.rs` for their meaning).

use anyhow::Result;
use chrono::{DateTime, Utc};
use postgres::types::ToSql;

use super::Conn;
use super::values::{id, ids, instant, last_per_id};
use crate::api::BugRecord;
use crate::db::bugs::BugCandidate;
use crate::db::columns::non_blank;
use crate::model::Timestamp;

/// PostgreSQL sorts NULL first in a descending order; SQLite's `end_at IS NULL` puts it last.
const CANDIDATES: &str = "
SELECT id, product_id, status, bugs_synced_at FROM tests
WHERE customer_id = $1 AND product_id = ANY($2)
  AND ($3::timestamptz IS NULL OR end_at IS NULL OR end_at >= $3)
ORDER BY end_at DESC NULLS LAST, id DESC";

/// A batch in one statement: the bugs of `$3` become the given ones (a delete that spares
/// the rows the upsert writes, so both may share the statement), and those tests' bugs
/// are marked synced.
const WRITE: &str = "
WITH gone AS (
  DELETE FROM bugs WHERE customer_id = $1 AND test_id = ANY($3) AND id <> ALL($4)),
written AS (
  INSERT INTO bugs (customer_id, id, test_id, title, severity, status, raw_data, synced_at, reported_by,
                    test_feature_id, actual_result, expected_result, steps, reported_at, known)
  SELECT $1, b.id, b.test_id, b.title, b.severity, b.status, b.raw_data::jsonb, $2, b.reported_by,
         b.test_feature_id, b.actual_result, b.expected_result, b.steps, b.reported_at, b.known
  FROM unnest($4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
              $11::bigint[], $12::text[], $13::text[], $14::text[], $15::timestamptz[], $16::bool[])
    AS b (id, test_id, title, severity, status, raw_data, reported_by, test_feature_id,
          actual_result, expected_result, steps, reported_at, known)
  ON CONFLICT (customer_id, id) DO UPDATE SET
    test_id = excluded.test_id, title = excluded.title, severity = excluded.severity,
    status = excluded.status, raw_data = excluded.raw_data, synced_at = excluded.synced_at,
    reported_by = excluded.reported_by, test_feature_id = excluded.test_feature_id,
    actual_result = excluded.actual_result, expected_result = excluded.expected_result,
    steps = excluded.steps, reported_at = excluded.reported_at, known = excluded.known)
UPDATE tests SET bugs_synced_at = $2 WHERE customer_id = $1 AND id = ANY($3)";

pub fn candidates(c: &mut Conn, product_ids: &[u64], since: Option<Timestamp>) -> Result<Vec<BugCandidate>> {
    let select = c.prepared(CANDIDATES)?;
    let since = since.and_then(instant);
    let rows = c.client.query(&select, &[&c.customer, &ids(product_ids)?, &since])?;
    rows.iter()
        .map(|r| {
            Ok(BugCandidate {
                id: r.try_get::<_, i64>(0)? as u64,
                product_id: r.try_get::<_, i64>(1)? as u64,
                status: r.try_get(2)?,
                bugs_synced_at: r.try_get::<_, Option<DateTime<Utc>>>(3)?.map(|t| t.timestamp_millis()),
            })
        })
        .collect()
}

pub fn write(c: &mut Conn, bugs: &[&BugRecord], test_ids: &[u64]) -> Result<()> {
    let batch = BugColumns::of(bugs)?;
    let (test_ids, now) = (ids(test_ids)?, Utc::now());
    let write = c.prepared(WRITE)?;
    let head: [&(dyn ToSql + Sync); 3] = [&c.customer, &now, &test_ids];
    let params: Vec<_> = head.into_iter().chain(batch.params()).collect();
    c.client.execute(&write, &params)?;
    Ok(())
}

/// A batch of bugs as one array per column, valued as SQLite's `upsert_bug` values them;
/// a bug that names no test is skipped (the engine only writes bugs of its batch's tests).
#[derive(Default)]
struct BugColumns<'a> {
    ids: Vec<i64>,
    test_ids: Vec<i64>,
    titles: Vec<&'a str>,
    severities: Vec<Option<&'a str>>,
    statuses: Vec<Option<&'a str>>,
    raw: Vec<&'a str>,
    reported_by: Vec<Option<&'a str>>,
    test_feature_ids: Vec<Option<i64>>,
    actual: Vec<Option<String>>,
    expected: Vec<Option<String>>,
    steps: Vec<Option<String>>,
    reported_at: Vec<Option<DateTime<Utc>>>,
    known: Vec<bool>,
}

impl<'a> BugColumns<'a> {
    fn of(bugs: &[&'a BugRecord]) -> Result<Self> {
        let mut columns = Self::default();
        let named = bugs.iter().copied().filter(|b| b.test_id().is_some());
        for bug in last_per_id(named, |b| b.fields.id) {
            let Some(test_id) = bug.test_id() else { continue };
            let f = &bug.fields;
            columns.ids.push(id(f.id)?);
            columns.test_ids.push(id(test_id)?);
            columns.titles.push(f.title.as_deref().unwrap_or("Untitled"));
            columns.severities.push(f.severity.as_deref());
            columns.statuses.push(bug.status());
            columns.raw.push(bug.raw.get());
            columns.reported_by.push(f.author.as_ref().and_then(|a| a.name.as_deref()));
            columns.test_feature_ids.push(f.test_feature.as_ref().and_then(|t| t.id).map(id).transpose()?);
            columns.actual.push(non_blank(f.actual_result.as_deref()));
            columns.expected.push(non_blank(f.expected_result.as_deref()));
            columns.steps.push(non_blank(bug.steps().as_deref()));
            columns.reported_at.push(bug.reported_at.at().and_then(instant));
            columns.known.push(bug.known());
        }
        Ok(columns)
    }

    /// `$4` to `$16` of WRITE.
    fn params(&self) -> [&(dyn ToSql + Sync); 13] {
        [
            &self.ids,
            &self.test_ids,
            &self.titles,
            &self.severities,
            &self.statuses,
            &self.raw,
            &self.reported_by,
            &self.test_feature_ids,
            &self.actual,
            &self.expected,
            &self.steps,
            &self.reported_at,
            &self.known,
        ]
    }
}
