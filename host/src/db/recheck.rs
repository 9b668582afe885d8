//! The freshness reads and writes: stored tests due for a re-check, with where each sits in
//! its product's list, and the removal of tests the API no longer returns.

use rusqlite::params_from_iter;
use rusqlite::types::Value;

use super::Store;
use super::columns::time_column;
use super::sweep::delete_tests;
use crate::model::Timestamp;

/// A stored test due for a re-check.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTest {
    pub id: u64,
    pub product_id: u64,
    pub status: String,
    /// Its place among the product's stored tests, newest `end_at` first, from 0.
    pub position: u32,
}

impl Store {
    /// The tests of these products in none of `final_statuses`, last written before
    /// `written_before`, ended at or after `since` (or without an end), by product and position.
    pub fn tests_to_recheck(
        &self,
        product_ids: &[u64],
        final_statuses: &[String],
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> rusqlite::Result<Vec<StoredTest>> {
        // Ids are numbers, so inlining them is safe; statuses are bound.
        let products = product_ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let finals = (0..final_statuses.len()).map(|i| format!("?{}", i + 4)).collect::<Vec<_>>().join(",");
        let finals = if finals.is_empty() { "NULL".to_string() } else { finals };
        let sql = format!(
            "SELECT id, product_id, status, position FROM (
               SELECT id, product_id, status, synced_at, end_at,
                      ROW_NUMBER() OVER (PARTITION BY product_id ORDER BY end_at IS NULL, end_at DESC, id DESC) - 1
                        AS position
               FROM tests WHERE customer_id = ?1 AND product_id IN ({products}))
             WHERE status NOT IN ({finals}) AND (synced_at IS NULL OR synced_at < ?2)
               AND (?3 IS NULL OR end_at IS NULL OR end_at >= ?3)
             ORDER BY product_id, position"
        );
        let mut values = vec![
            Value::Integer(self.customer_id),
            time_column(written_before).map_or(Value::Null, Value::Text),
            since.and_then(time_column).map_or(Value::Null, Value::Text),
        ];
        values.extend(final_statuses.iter().cloned().map(Value::Text));
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(values), |r| {
            Ok(StoredTest {
                id: r.get::<_, i64>(0)? as u64,
                product_id: r.get::<_, i64>(1)? as u64,
                status: r.get(2)?,
                position: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
            })
        })?;
        rows.collect()
    }

    /// Deletes these tests with their features, platforms and bugs; how many rows went.
    pub fn remove_tests(&mut self, ids: &[u64]) -> rusqlite::Result<u32> {
        let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let chosen = format!("SELECT id FROM tests WHERE customer_id = ?1 AND id IN ({list})");
        let tx = self.conn.transaction()?;
        let deleted = delete_tests(&tx, &chosen, [self.customer_id])?;
        tx.commit()?;
        Ok(u32::try_from(deleted).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_tests;

    fn store_with(dir: &tempfile::TempDir) -> Store {
        let mut store = Store::open(&dir.path().join("t.db"), 1).unwrap();
        let body = br#"{"exploratory_tests":[
            {"id":1,"status":"archived","end_at":"2026-01-01T00:00:00Z"},
            {"id":2,"status":"locked","end_at":"2026-02-01T00:00:00Z"},
            {"id":3,"status":"running","end_at":"2026-03-01T00:00:00Z"},
            {"id":4,"status":"cancelled"}]}"#;
        let tests = parse_tests(body).unwrap();
        store.write_tests(7, &tests.iter().collect::<Vec<_>>()).unwrap();
        store
    }

    fn finals() -> Vec<String> {
        vec!["archived".into(), "cancelled".into()]
    }

    #[test]
    fn live_tests_written_before_the_cutoff_come_with_their_place_in_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(&dir);
        let later = chrono::Utc::now().timestamp_millis() + 1_000;
        let due = store.tests_to_recheck(&[7], &finals(), None, later).unwrap();
        let got: Vec<(u64, &str, u32)> = due.iter().map(|t| (t.id, t.status.as_str(), t.position)).collect();
        assert_eq!(got, [(3, "running", 0), (2, "locked", 1)], "newest first; 1 and 4 are final");
        assert!(store.tests_to_recheck(&[7], &finals(), None, later - 60_000).unwrap().is_empty(), "fresh");
        let march = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z").unwrap().timestamp_millis();
        assert_eq!(store.tests_to_recheck(&[7], &finals(), Some(march), later).unwrap().len(), 1, "within since");
        assert!(store.tests_to_recheck(&[8], &finals(), None, later).unwrap().is_empty());
    }

    #[test]
    fn removed_tests_take_their_rows_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_with(&dir);
        assert_eq!(store.remove_tests(&[2, 99]).unwrap(), 1);
        let later = chrono::Utc::now().timestamp_millis() + 1_000;
        assert_eq!(store.tests_to_recheck(&[7], &finals(), None, later).unwrap().len(), 1);
    }
}
