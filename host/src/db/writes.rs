//! Writes of fetched records. Each function is one transaction with cached statements.

use std::collections::HashMap;

use rusqlite::{Transaction, params};

use super::Store;
use super::columns::{id_column, now_column, stored_id, time_column};
use crate::api::{FeatureRecord, ProductRecord, TestRecord};

/// A feature to write and the sections it was listed in.
pub struct Placement<'a> {
    pub feature: &'a FeatureRecord,
    pub section_ids: &'a [u64],
}

impl Store {
    pub fn write_products(&mut self, products: &[&ProductRecord]) -> rusqlite::Result<()> {
        let customer = self.customer_id;
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO products (customer_id, id, title, product_type, data, last_synced)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (customer_id, id) DO UPDATE SET
                   title = excluded.title, product_type = excluded.product_type,
                   data = excluded.data, last_synced = excluded.last_synced",
            )?;
            let now = now_column();
            for p in products {
                upsert.execute(params![
                    customer,
                    id_column(p.fields.id)?,
                    p.title(),
                    p.fields.product_type,
                    p.raw.get(),
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn write_features(&mut self, product_id: u64, features: &[Placement]) -> rusqlite::Result<()> {
        let (customer, product) = (self.customer_id, id_column(product_id)?);
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO features (customer_id, id, product_id, title, description, howtofind,
                                       user_stories, section_ids, raw_data, last_synced)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (customer_id, id) DO UPDATE SET
                   product_id = excluded.product_id, title = excluded.title,
                   description = excluded.description, howtofind = excluded.howtofind,
                   user_stories = excluded.user_stories, section_ids = excluded.section_ids,
                   raw_data = excluded.raw_data, last_synced = excluded.last_synced",
            )?;
            let now = now_column();
            for Placement { feature, section_ids } in features {
                let f = &feature.fields;
                upsert.execute(params![
                    customer,
                    id_column(f.id)?,
                    product,
                    f.title.as_deref().unwrap_or(""),
                    f.description,
                    f.howtofind,
                    json_list(f.user_stories.as_deref().unwrap_or_default()),
                    json_list(section_ids),
                    feature.raw.get(),
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The ids among `ids` that are already stored for this customer (never one SQLite
    /// cannot store).
    pub fn known_tests(&self, ids: &[u64]) -> rusqlite::Result<Vec<u64>> {
        let mut exists = self.conn.prepare_cached("SELECT 1 FROM tests WHERE customer_id = ?1 AND id = ?2")?;
        let mut known = Vec::new();
        for &id in ids {
            let Some(stored) = stored_id(Some(id)) else { continue };
            if exists.exists(params![self.customer_id, stored])? {
                known.push(id);
            }
        }
        Ok(known)
    }

    pub fn write_tests(&mut self, product_id: u64, tests: &[&TestRecord]) -> rusqlite::Result<()> {
        let customer = self.customer_id;
        let tx = self.conn.transaction()?;
        let now = now_column();
        for test in tests {
            upsert_test(&tx, customer, product_id, test, &now)?;
            replace_test_features(&tx, customer, test)?;
            replace_test_platforms(&tx, customer, test)?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn upsert_test(tx: &Transaction, customer: i64, product_id: u64, test: &TestRecord, now: &str) -> rusqlite::Result<()> {
    let f = &test.fields;
    let environment = f.test_environment.as_ref().and_then(|e| {
        let (id, title) = (e.id?, e.title.as_deref()?);
        Some(serde_json::json!({ "id": id, "title": title }).to_string())
    });
    tx.prepare_cached(
        "INSERT INTO tests (customer_id, id, product_id, data, status, start_at, end_at, synced_at,
                            created_by, submitted_by, title, testing_type, goal, instructions,
                            out_of_scope, enable_low, enable_high, enable_critical, test_environment)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
         ON CONFLICT (customer_id, id) DO UPDATE SET
           product_id = excluded.product_id, data = excluded.data, status = excluded.status,
           start_at = excluded.start_at, end_at = excluded.end_at, synced_at = excluded.synced_at,
           created_by = excluded.created_by, submitted_by = excluded.submitted_by,
           title = excluded.title, testing_type = excluded.testing_type, goal = excluded.goal,
           instructions = excluded.instructions, out_of_scope = excluded.out_of_scope,
           enable_low = excluded.enable_low, enable_high = excluded.enable_high,
           enable_critical = excluded.enable_critical, test_environment = excluded.test_environment",
    )?
    .execute(params![
        customer,
        id_column(f.id)?,
        id_column(product_id)?,
        test.raw.get(),
        f.status.as_deref().unwrap_or("unknown"),
        test.start_at.at().and_then(time_column),
        test.end_at.at().and_then(time_column),
        now,
        f.created_by,
        f.submitted_by,
        f.title.as_deref().or(f.test_title.as_deref()),
        f.testing_type.as_deref().unwrap_or("test_case"),
        f.goal_text,
        f.instructions_text,
        f.out_of_scope_text,
        f.enable_low,
        f.enable_high,
        f.enable_critical,
        environment
    ])?;
    Ok(())
}

/// A test's features are replaced as a whole, so ones removed upstream do not linger.
fn replace_test_features(tx: &Transaction, customer: i64, test: &TestRecord) -> rusqlite::Result<()> {
    let test_id = id_column(test.fields.id)?;
    tx.prepare_cached("DELETE FROM test_features WHERE customer_id = ?1 AND test_id = ?2")?
        .execute(params![customer, test_id])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO test_features (customer_id, id, test_id, feature_id, title, description,
                                               howtofind, user_stories, enable_default, enable_content, enable_visual)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for feature in test.fields.features.iter().flatten() {
        // Without both ids, or with one SQLite cannot store, there is no row to write.
        let (Some(id), Some(feature_id)) = (stored_id(feature.id), stored_id(feature.feature_id)) else { continue };
        insert.execute(params![
            customer,
            id,
            test_id,
            feature_id,
            feature.title.as_deref().unwrap_or(""),
            feature.description,
            feature.howtofind,
            json_list(feature.user_stories.as_deref().unwrap_or_default()),
            feature.enable_default.unwrap_or(false),
            feature.enable_content.unwrap_or(false),
            feature.enable_visual.unwrap_or(false)
        ])?;
    }
    Ok(())
}

/// One row per operating system of the test's requirements; replaced as a whole.
fn replace_test_platforms(tx: &Transaction, customer: i64, test: &TestRecord) -> rusqlite::Result<()> {
    let test_id = id_column(test.fields.id)?;
    tx.prepare_cached("DELETE FROM test_platforms WHERE customer_id = ?1 AND test_id = ?2")?
        .execute(params![customer, test_id])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO test_platforms (customer_id, test_id, operating_system_id, operating_system_name, category)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for requirement in test.fields.requirements.iter().flatten() {
        let Some(os) = &requirement.operating_system else { continue };
        let Some(name) = &os.name else { continue };
        // An operating system id SQLite cannot store skips the row, as a missing name does.
        let Ok(os_id) = os.id.map(id_column).transpose() else { continue };
        let category = requirement.category.as_ref().and_then(|c| c.key.as_deref());
        insert.execute(params![customer, test_id, os_id, name, category])?;
    }
    Ok(())
}

pub(crate) fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Looks records up by id for a write, in the order the engine asked for them.
pub fn select<'a, R>(records: &'a [R], ids: &[u64], id_of: fn(&R) -> u64) -> Result<Vec<&'a R>, String> {
    let by_id: HashMap<u64, &R> = records.iter().map(|r| (id_of(r), r)).collect();
    ids.iter()
        .map(|id| {
            by_id.get(id).copied().ok_or_else(|| format!("record {id} is not in the payload it was said to come from"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_tests;

    fn page(platforms: &[(u64, &str)], features: &[(u64, u64)]) -> Vec<TestRecord> {
        let requirements: Vec<serde_json::Value> = platforms
            .iter()
            .map(|(id, name)| serde_json::json!({"category": {"key": "computer"}, "operating_system": {"id": id, "name": name}}))
            .collect();
        let features: Vec<serde_json::Value> = features
            .iter()
            .map(|(id, feature_id)| serde_json::json!({"id": id, "feature_id": feature_id, "title": "f"}))
            .collect();
        let body = serde_json::json!({"exploratory_tests": [{
            "id": 7, "status": "running", "end_at": "2026-01-02T03:04:05+02:00",
            "test_environment": {"id": 3, "title": "Prod", "password": "secret"},
            "requirements": requirements, "features": features
        }]});
        parse_tests(body.to_string().as_bytes()).unwrap()
    }

    fn rows(store: &Store, sql: &str) -> Vec<String> {
        let mut stmt = store.conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn a_test_written_again_keeps_only_its_current_platforms_and_features() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db"), 1).unwrap();
        let first = page(&[(1, "Windows"), (2, "macOS")], &[(70, 5), (71, 6)]);
        store.write_tests(9, &first.iter().collect::<Vec<_>>()).unwrap();
        let second = page(&[(2, "macOS")], &[(71, 6)]);
        store.write_tests(9, &second.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(rows(&store, "SELECT operating_system_name FROM test_platforms"), ["macOS"]);
        assert_eq!(rows(&store, "SELECT CAST(id AS TEXT) FROM test_features"), ["71"]);
        assert_eq!(rows(&store, "SELECT end_at FROM tests"), ["2026-01-02 01:04:05.000000"]);
        assert_eq!(rows(&store, "SELECT test_environment FROM tests"), [r#"{"id":3,"title":"Prod"}"#]);
    }

    #[test]
    fn an_id_sqlite_cannot_store_never_wraps_a_child_row_with_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db"), 1).unwrap();
        let body = serde_json::json!({"exploratory_tests": [{
            "id": 7,
            "requirements": [{"operating_system": {"id": u64::MAX, "name": "Huge"}},
                             {"operating_system": {"id": 1, "name": "Windows"}}],
            "features": [{"id": u64::MAX, "feature_id": 5}, {"id": 70, "feature_id": u64::MAX},
                         {"id": 71, "feature_id": 6}]
        }]});
        let tests = parse_tests(body.to_string().as_bytes()).unwrap();
        store.write_tests(9, &tests.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(rows(&store, "SELECT operating_system_name FROM test_platforms"), ["Windows"]);
        assert_eq!(rows(&store, "SELECT CAST(id AS TEXT) FROM test_features"), ["71"]);

        let huge = parse_tests(format!(r#"{{"exploratory_tests":[{{"id":{}}}]}}"#, u64::MAX).as_bytes()).unwrap();
        let error = store.write_tests(9, &huge.iter().collect::<Vec<_>>()).unwrap_err().to_string();
        assert!(error.contains("id 18446744073709551615 is above 9223372036854775807"), "{error}");
        assert_eq!(rows(&store, "SELECT CAST(id AS TEXT) FROM tests"), ["7"], "nothing wrapped to -1");
        assert_eq!(store.known_tests(&[u64::MAX, 7]).unwrap(), [7]);
    }

    #[test]
    fn rows_of_another_customer_are_neither_seen_nor_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let records = page(&[(1, "Windows")], &[]);
        Store::open(&path, 1).unwrap().write_tests(9, &records.iter().collect::<Vec<_>>()).unwrap();
        let mut other = Store::open(&path, 2).unwrap();
        assert!(other.known_tests(&[7]).unwrap().is_empty());
        other.write_tests(10, &records.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(rows(&other, "SELECT customer_id || ':' || product_id FROM tests ORDER BY 1"), ["1:9", "2:10"]);
    }
}
