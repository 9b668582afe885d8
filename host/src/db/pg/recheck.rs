//! The freshness reads and writes (see `db/recheck.rs`).

use anyhow::Result;

use super::Conn;
use super::sweep::delete_tests;
use super::values::{ids, instant, small};
use crate::db::recheck::StoredTest;
use crate::model::Timestamp;

/// A test's position counts every stored test of its product, newest `end_at` first.
const DUE: &str = "
SELECT id, product_id, status, position FROM (
  SELECT id, product_id, status, synced_at, end_at,
         ROW_NUMBER() OVER (PARTITION BY product_id ORDER BY end_at DESC NULLS LAST, id DESC) - 1 AS position
  FROM tests WHERE customer_id = $1 AND product_id = ANY($2)) AS ranked
WHERE status <> ALL($3) AND (synced_at IS NULL OR synced_at < $4)
  AND ($5::timestamptz IS NULL OR end_at IS NULL OR end_at >= $5)
ORDER BY product_id, position";

pub fn due(
    c: &mut Conn,
    product_ids: &[u64],
    final_statuses: &[String],
    since: Option<Timestamp>,
    written_before: Timestamp,
) -> Result<Vec<StoredTest>> {
    let select = c.prepared(DUE)?;
    let params = (ids(product_ids)?, instant(written_before), since.and_then(instant));
    let rows = c.client.query(&select, &[&c.customer, &params.0, &final_statuses, &params.1, &params.2])?;
    rows.iter()
        .map(|r| {
            Ok(StoredTest {
                id: r.try_get::<_, i64>(0)? as u64,
                product_id: r.try_get::<_, i64>(1)? as u64,
                status: r.try_get(2)?,
                position: small(r.try_get(3)?, "position").unwrap_or(u32::MAX),
            })
        })
        .collect()
}

pub fn remove(c: &mut Conn, test_ids: &[u64]) -> Result<u32> {
    let chosen = ids(test_ids)?;
    let customer = c.customer;
    let mut tx = c.client.transaction()?;
    let deleted = delete_tests(&mut tx, customer, &chosen)?;
    tx.commit()?;
    Ok(u32::try_from(deleted).unwrap_or(u32::MAX))
}
