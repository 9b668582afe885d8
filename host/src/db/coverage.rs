//! `tests_coverage`: how far each product's last uninterrupted walk of its tests reached.

use rusqlite::{OptionalExtension, params};

use super::Store;
use super::columns::id_column;
use crate::model::Timestamp;

/// How much of a product's test history its last uninterrupted walk covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestsCoverage {
    /// No finished walk on record.
    None,
    /// Every test that ended at or after this.
    Since(Timestamp),
    /// Every test.
    All,
}

impl Store {
    pub fn tests_coverage(&self, product_ids: &[u64]) -> rusqlite::Result<Vec<TestsCoverage>> {
        let mut select = self
            .conn
            .prepare_cached("SELECT since_ms FROM tests_coverage WHERE customer_id = ?1 AND product_id = ?2")?;
        product_ids
            .iter()
            .map(|&id| {
                let row: Option<Option<i64>> =
                    select.query_row(params![self.customer_id, id_column(id)?], |r| r.get(0)).optional()?;
                Ok(match row {
                    None => TestsCoverage::None,
                    Some(None) => TestsCoverage::All,
                    Some(Some(since)) => TestsCoverage::Since(since),
                })
            })
            .collect()
    }

    pub fn set_tests_coverage(&self, product_id: u64, coverage: TestsCoverage) -> rusqlite::Result<()> {
        let (customer, product) = (self.customer_id, id_column(product_id)?);
        let since = match coverage {
            TestsCoverage::None => {
                let sql = "DELETE FROM tests_coverage WHERE customer_id = ?1 AND product_id = ?2";
                self.conn.prepare_cached(sql)?.execute(params![customer, product])?;
                return Ok(());
            }
            TestsCoverage::All => None,
            TestsCoverage::Since(since) => Some(since),
        };
        let sql = "INSERT INTO tests_coverage (customer_id, product_id, since_ms) VALUES (?1, ?2, ?3)
                   ON CONFLICT (customer_id, product_id) DO UPDATE SET since_ms = excluded.since_ms";
        self.conn.prepare_cached(sql)?.execute(params![customer, product, since])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_round_trips_per_customer_and_product() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        let store = Store::open(&path, 1).unwrap();
        let other = Store::open(&path, 2).unwrap();
        store.set_tests_coverage(1, TestsCoverage::All).unwrap();
        store.set_tests_coverage(2, TestsCoverage::Since(1_000)).unwrap();
        store.set_tests_coverage(3, TestsCoverage::All).unwrap();
        store.set_tests_coverage(3, TestsCoverage::None).unwrap();
        let read = store.tests_coverage(&[1, 2, 3, 4]).unwrap();
        assert!(matches!(
            read.as_slice(),
            [TestsCoverage::All, TestsCoverage::Since(1_000), TestsCoverage::None, TestsCoverage::None]
        ));
        assert!(matches!(other.tests_coverage(&[1]).unwrap().as_slice(), [TestsCoverage::None]));
    }
}
