//! `--nuke`: deleting one customer's synced rows (all of them, or those of some
//! products) in one transaction, so that the next sync starts them afresh.

use rusqlite::params;

use super::Store;

/// The customer's rows of one table that a nuke deletes, as a `WHERE` clause with the
/// customer id as `?1`. Children come before their tests, so the sub-selects still see them.
fn targets(product_ids: Option<&[u64]>) -> Vec<(&'static str, String)> {
    let Some(ids) = product_ids else {
        return [
            "bugs",
            "test_features",
            "test_platforms",
            "tests",
            "features",
            "products",
            "problem_ranges",
            "tests_coverage",
        ]
        .into_iter()
        .map(|table| (table, "customer_id = ?1".to_string()))
        .collect();
    };
    // Ids are numbers parsed from the command line, so inlining them is safe.
    let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let of_tests = format!(
        "customer_id = ?1 AND test_id IN (SELECT id FROM tests WHERE customer_id = ?1 AND product_id IN ({list}))"
    );
    let of_products = format!("customer_id = ?1 AND product_id IN ({list})");
    vec![
        ("bugs", of_tests.clone()),
        ("test_features", of_tests.clone()),
        ("test_platforms", of_tests),
        ("tests", of_products.clone()),
        ("problem_ranges", of_products.clone()),
        ("tests_coverage", of_products),
    ]
}

impl Store {
    /// How many rows per table a nuke of this scope would delete.
    pub fn nuke_counts(&self, product_ids: Option<&[u64]>) -> rusqlite::Result<Vec<(&'static str, i64)>> {
        targets(product_ids)
            .into_iter()
            .map(|(table, filter)| {
                let sql = format!("SELECT COUNT(*) FROM {table} WHERE {filter}");
                Ok((table, self.conn.query_row(&sql, params![self.customer_id], |r| r.get(0))?))
            })
            .collect()
    }

    /// Deletes the scope's rows in one transaction; returns how many per table.
    pub fn nuke(&mut self, product_ids: Option<&[u64]>) -> rusqlite::Result<Vec<(&'static str, i64)>> {
        let customer = self.customer_id;
        let tx = self.conn.transaction()?;
        let mut deleted = Vec::new();
        for (table, filter) in targets(product_ids) {
            let rows = tx.execute(&format!("DELETE FROM {table} WHERE {filter}"), params![customer])?;
            deleted.push((table, rows as i64));
        }
        tx.commit()?;
        Ok(deleted)
    }
}
