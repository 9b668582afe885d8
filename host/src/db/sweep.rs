//! A nuke's reads and writes: how many rows a scope holds (shown before the user
//! confirms), and the sweep at its end, which deletes the rows of a scope that the sync did
//! not write again, with the rows that belong to them.

use rusqlite::{Transaction, params};

use super::Store;
use super::columns::time_column;
use crate::model::{EntityKind, Timestamp};

/// `AND product_id IN (…)`, or nothing for every product. Ids are numbers, so inlining
/// them is safe.
fn of_products(column: &str, product_ids: Option<&[u64]>) -> String {
    product_ids.map_or(String::new(), |ids| {
        let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        format!(" AND {column} IN ({list})")
    })
}

impl Store {
    /// How many rows per table the scope holds, for the confirmation before a nuke.
    pub fn scope_counts(&self, product_ids: Option<&[u64]>) -> rusqlite::Result<Vec<(&'static str, i64)>> {
        let products = of_products("product_id", product_ids);
        let tests = format!("test_id IN (SELECT id FROM tests WHERE customer_id = ?1{products})");
        let filters = [
            ("products", of_products("id", product_ids)),
            ("features", products.clone()),
            ("tests", products.clone()),
            ("test_features", format!(" AND {tests}")),
            ("test_platforms", format!(" AND {tests}")),
            ("bugs", format!(" AND {tests}")),
            ("problem_ranges", products),
        ];
        filters
            .into_iter()
            .map(|(table, filter)| {
                let sql = format!("SELECT COUNT(*) FROM {table} WHERE customer_id = ?1{filter}");
                Ok((table, self.conn.query_row(&sql, params![self.customer_id], |r| r.get(0))?))
            })
            .collect()
    }

    /// Deletes the rows of `kind` in scope last written before `written_before`, with
    /// what belongs to them; returns how many rows went, over every table.
    pub fn sweep(
        &mut self,
        kind: EntityKind,
        product_ids: Option<&[u64]>,
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> rusqlite::Result<u32> {
        let before = time_column(written_before);
        let customer = self.customer_id;
        let tx = self.conn.transaction()?;
        let deleted = match kind {
            EntityKind::Products => {
                let stale = format!(
                    "SELECT id FROM products WHERE customer_id = ?1{} AND (last_synced IS NULL OR last_synced < ?2)",
                    of_products("id", product_ids)
                );
                delete_products(&tx, customer, &stale, &before)?
            }
            EntityKind::Features => tx.execute(
                &format!(
                    "DELETE FROM features WHERE customer_id = ?1{} AND last_synced < ?2",
                    of_products("product_id", product_ids)
                ),
                params![customer, before],
            )?,
            EntityKind::Tests => {
                let since = since.and_then(time_column);
                let stale = format!(
                    "SELECT id FROM tests WHERE customer_id = ?1{} AND (synced_at IS NULL OR synced_at < ?2)
                       AND (?3 IS NULL OR end_at IS NULL OR end_at >= ?3)",
                    of_products("product_id", product_ids)
                );
                delete_tests(&tx, &stale, params![customer, before, since])?
            }
            EntityKind::Bugs => 0,
        };
        tx.commit()?;
        Ok(u32::try_from(deleted).unwrap_or(u32::MAX))
    }
}

/// Deletes the tests `stale` selects (its parameters are `params`), and their rows.
pub fn delete_tests(tx: &Transaction, stale: &str, params: impl rusqlite::Params + Copy) -> rusqlite::Result<usize> {
    let mut deleted = 0;
    for table in ["bugs", "test_features", "test_platforms"] {
        deleted +=
            tx.execute(&format!("DELETE FROM {table} WHERE customer_id = ?1 AND test_id IN ({stale})"), params)?;
    }
    Ok(deleted + tx.execute(&format!("DELETE FROM tests WHERE customer_id = ?1 AND id IN ({stale})"), params)?)
}

/// Deletes the products `stale` selects, with their features, tests and what the engine
/// kept about them.
fn delete_products(tx: &Transaction, customer: i64, stale: &str, before: &Option<String>) -> rusqlite::Result<usize> {
    let tests = format!("SELECT id FROM tests WHERE customer_id = ?1 AND product_id IN ({stale})");
    let mut deleted = delete_tests(tx, &tests, params![customer, before])?;
    for table in ["features", "tests_coverage", "problem_ranges"] {
        deleted += tx.execute(
            &format!("DELETE FROM {table} WHERE customer_id = ?1 AND product_id IN ({stale})"),
            params![customer, before],
        )?;
    }
    Ok(deleted
        + tx.execute(
            &format!("DELETE FROM products WHERE customer_id = ?1 AND id IN ({stale})"),
            params![customer, before],
        )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{parse_products, parse_tests};

    /// Products 1 and 2, with tests 10 and 11 of product 1 and 20 of product 2, written at
    /// the real clock's now; the returned time is after every write.
    fn stored(dir: &tempfile::TempDir, customer: i64) -> (Store, Timestamp) {
        let mut store = Store::open(&dir.path().join("t.db"), customer).unwrap();
        let products = parse_products(br#"{"products":[{"id":1},{"id":2}]}"#).unwrap();
        store.write_products(&products.iter().collect::<Vec<_>>()).unwrap();
        for (product, body) in [
            (
                1,
                r#"{"exploratory_tests":[{"id":10,"end_at":"2026-01-01T00:00:00Z"},{"id":11,"end_at":"2026-03-01T00:00:00Z"}]}"#,
            ),
            (2, r#"{"exploratory_tests":[{"id":20}]}"#),
        ] {
            let tests = parse_tests(body.as_bytes()).unwrap();
            store.write_tests(product, &tests.iter().collect::<Vec<_>>()).unwrap();
        }
        (store, chrono::Utc::now().timestamp_millis() + 1)
    }

    fn ids(store: &Store, sql: &str) -> Vec<i64> {
        let mut stmt = store.conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn a_sweep_deletes_only_what_was_not_written_since_in_its_scope() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, later) = stored(&dir, 1);
        let (_, _) = stored(&dir, 2);
        assert_eq!(store.sweep(EntityKind::Tests, Some(&[1]), None, later - 60_000).unwrap(), 0, "written since");
        let february = chrono::DateTime::parse_from_rfc3339("2026-02-01T00:00:00Z").unwrap().timestamp_millis();
        assert_eq!(store.sweep(EntityKind::Tests, Some(&[1]), Some(february), later).unwrap(), 1);
        assert_eq!(
            ids(&store, "SELECT id FROM tests WHERE customer_id = 1 ORDER BY id"),
            [10, 20],
            "only 11 was in scope"
        );
        assert_eq!(store.sweep(EntityKind::Products, Some(&[2]), None, later).unwrap(), 2, "product 2 and its test");
        assert_eq!(ids(&store, "SELECT id FROM products WHERE customer_id = 1"), [1]);
        assert_eq!(ids(&store, "SELECT id FROM tests WHERE customer_id = 1"), [10]);
        assert_eq!(
            ids(&store, "SELECT COUNT(*) FROM tests WHERE customer_id = 2"),
            [3],
            "another customer's rows stay"
        );
    }

    #[test]
    fn the_scope_is_counted_per_table() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = stored(&dir, 1);
        let counts = store.scope_counts(Some(&[1])).unwrap();
        assert!(counts.contains(&("tests", 2)) && counts.contains(&("products", 1)), "{counts:?}");
        assert!(store.scope_counts(None).unwrap().contains(&("tests", 3)));
    }
}
