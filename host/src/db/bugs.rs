//! The BUGS phase's reads and writes: which stored tests may need their bugs, and a
//! batch's bugs written as the complete set of bugs of its tests.

use rusqlite::{Transaction, params};

use super::Store;
use super::columns::{column_millis, id_column, non_blank, now_column, stored_id, time_column};
use crate::api::BugRecord;
use crate::model::Timestamp;

/// A stored test whose bugs the engine may fetch.
#[derive(Clone, Debug, PartialEq)]
pub struct BugCandidate {
    pub id: u64,
    pub product_id: u64,
    /// Its status as last stored.
    pub status: String,
    /// When its bugs were last written; `None` if never.
    pub bugs_synced_at: Option<Timestamp>,
}

impl Store {
    /// The customer's tests of these products that ended at or after `since` (or have
    /// no end), newest first.
    pub fn bug_candidates(&self, product_ids: &[u64], since: Option<Timestamp>) -> rusqlite::Result<Vec<BugCandidate>> {
        // Ids come from the engine as numbers, so inlining them is safe.
        let list = product_ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let since = since.and_then(time_column);
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, product_id, status, bugs_synced_at FROM tests
             WHERE customer_id = ?1 AND product_id IN ({list}) AND (?2 IS NULL OR end_at IS NULL OR end_at >= ?2)
             ORDER BY end_at IS NULL, end_at DESC, id DESC"
        ))?;
        let rows = stmt.query_map(params![self.customer_id, since], |r| {
            Ok(BugCandidate {
                id: r.get(0)?,
                product_id: r.get(1)?,
                status: r.get(2)?,
                bugs_synced_at: r.get::<_, Option<String>>(3)?.as_deref().and_then(column_millis),
            })
        })?;
        rows.collect()
    }

    /// Replaces the bugs of `test_ids` with `bugs` and marks those tests' bugs as synced.
    pub fn write_bugs(&mut self, bugs: &[&BugRecord], test_ids: &[u64]) -> rusqlite::Result<()> {
        let customer = self.customer_id;
        let tx = self.conn.transaction()?;
        let now = now_column();
        let test_ids = test_ids.iter().map(|&id| id_column(id)).collect::<rusqlite::Result<Vec<_>>>()?;
        for test_id in &test_ids {
            tx.prepare_cached("DELETE FROM bugs WHERE customer_id = ?1 AND test_id = ?2")?
                .execute(params![customer, test_id])?;
        }
        for bug in bugs {
            upsert_bug(&tx, customer, bug, &now)?;
        }
        for test_id in &test_ids {
            tx.prepare_cached("UPDATE tests SET bugs_synced_at = ?3 WHERE customer_id = ?1 AND id = ?2")?
                .execute(params![customer, test_id, now])?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn upsert_bug(tx: &Transaction, customer: i64, bug: &BugRecord, now: &str) -> rusqlite::Result<()> {
    let f = &bug.fields;
    // The engine only writes bugs that name a test of their batch.
    let Some(test_id) = bug.test_id() else { return Ok(()) };
    tx.prepare_cached(
        "INSERT INTO bugs (customer_id, id, test_id, title, severity, status, raw_data, synced_at, reported_by,
                           test_feature_id, actual_result, expected_result, steps, reported_at, known)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (customer_id, id) DO UPDATE SET
           test_id = excluded.test_id, title = excluded.title, severity = excluded.severity,
           status = excluded.status, raw_data = excluded.raw_data, synced_at = excluded.synced_at,
           reported_by = excluded.reported_by, test_feature_id = excluded.test_feature_id,
           actual_result = excluded.actual_result, expected_result = excluded.expected_result,
           steps = excluded.steps, reported_at = excluded.reported_at, known = excluded.known",
    )?
    .execute(params![
        customer,
        id_column(f.id)?,
        id_column(test_id)?,
        f.title.as_deref().unwrap_or("Untitled"),
        f.severity,
        bug.status(),
        bug.raw.get(),
        now,
        f.author.as_ref().and_then(|a| a.name.as_deref()),
        // A reference SQLite cannot store is no reference.
        stored_id(f.test_feature.as_ref().and_then(|t| t.id)),
        non_blank(f.actual_result.as_deref()),
        non_blank(f.expected_result.as_deref()),
        non_blank(bug.steps().as_deref()),
        bug.reported_at.at().and_then(time_column),
        bug.known()
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{parse_bugs, parse_tests};

    /// A store holding tests 7 (ended 2026-01-02), 8 (ended 2026-03-01) and 9 (no end) of product 1.
    fn store(dir: &tempfile::TempDir, customer: i64) -> Store {
        let mut store = Store::open(&dir.path().join("t.db"), customer).unwrap();
        let body = br#"{"exploratory_tests":[
            {"id":7,"status":"archived","end_at":"2026-01-02T00:00:00Z"},
            {"id":8,"status":"running","end_at":"2026-03-01T00:00:00Z"},
            {"id":9,"status":"running"}]}"#;
        let tests = parse_tests(body).unwrap();
        store.write_tests(1, &tests.iter().collect::<Vec<_>>()).unwrap();
        store
    }

    fn bugs(json: &str) -> Vec<BugRecord> {
        parse_bugs(json.as_bytes()).unwrap()
    }

    #[test]
    fn candidates_are_newest_first_honour_since_and_show_when_bugs_were_synced() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir, 1);
        let ids = |c: Vec<BugCandidate>| c.iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(store.bug_candidates(&[1], None).unwrap()), [8, 7, 9]);
        let february = chrono::DateTime::parse_from_rfc3339("2026-02-01T00:00:00Z").unwrap().timestamp_millis();
        assert_eq!(ids(store.bug_candidates(&[1], Some(february)).unwrap()), [8, 9], "no end is kept");
        assert!(store.bug_candidates(&[2], None).unwrap().is_empty());

        store.write_bugs(&[], &[7]).unwrap();
        let candidates = store.bug_candidates(&[1], None).unwrap();
        assert!(candidates[1].bugs_synced_at.is_some() && candidates[0].bugs_synced_at.is_none());
        assert_eq!(candidates[1].status, "archived");
    }

    #[test]
    fn a_batch_replaces_its_tests_bugs_and_leaves_other_customers_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut theirs = store(&dir, 2);
        let first = bugs(r#"{"bugs":[{"id":70,"test":{"id":7}},{"id":71,"test":{"id":7}},{"id":80,"test":{"id":8}}]}"#);
        theirs.write_bugs(&first.iter().collect::<Vec<_>>(), &[7, 8]).unwrap();
        let mut ours = store(&dir, 1);
        ours.write_bugs(&first.iter().collect::<Vec<_>>(), &[7, 8]).unwrap();
        let second = bugs(r#"{"bugs":[{"id":71,"title":"  Renamed","test":{"id":7}}]}"#);
        ours.write_bugs(&second.iter().collect::<Vec<_>>(), &[7, 8]).unwrap();
        let rows = |customer: i64| -> Vec<(i64, String)> {
            let sql = "SELECT id, title FROM bugs WHERE customer_id = ?1 ORDER BY id";
            let mut stmt = ours.conn.prepare(sql).unwrap();
            stmt.query_map([customer], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
        };
        assert_eq!(rows(1), [(71, "  Renamed".to_string())], "bugs gone upstream are gone here too");
        assert_eq!(rows(2).len(), 3);
    }
}
