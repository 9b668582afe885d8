//! A nuke's reads and writes (see `db/sweep.rs`): the rows a scope holds, and the sweep
//! that deletes the rows of a scope the sync did not write again, with what belongs to them.

use anyhow::Result;
use postgres::Transaction;

use super::Conn;
use super::values::{ids, instant};
use crate::model::{EntityKind, Timestamp};

/// `$2` is the products of the scope, NULL for every product.
const SCOPE_COUNTS: &str = "
WITH chosen AS (SELECT id FROM tests WHERE customer_id = $1 AND ($2::bigint[] IS NULL OR product_id = ANY($2)))
SELECT (SELECT count(*) FROM products WHERE customer_id = $1 AND ($2::bigint[] IS NULL OR id = ANY($2))),
       (SELECT count(*) FROM features WHERE customer_id = $1 AND ($2::bigint[] IS NULL OR product_id = ANY($2))),
       (SELECT count(*) FROM chosen),
       (SELECT count(*) FROM test_features WHERE customer_id = $1 AND test_id IN (SELECT id FROM chosen)),
       (SELECT count(*) FROM test_platforms WHERE customer_id = $1 AND test_id IN (SELECT id FROM chosen)),
       (SELECT count(*) FROM bugs WHERE customer_id = $1 AND test_id IN (SELECT id FROM chosen)),
       (SELECT count(*) FROM problem_ranges WHERE customer_id = $1 AND ($2::bigint[] IS NULL OR product_id = ANY($2)))";

const SCOPE_TABLES: [&str; 7] =
    ["products", "features", "tests", "test_features", "test_platforms", "bugs", "problem_ranges"];

/// Products in scope not written since `$3`.
const STALE_PRODUCTS: &str = "
SELECT id FROM products WHERE customer_id = $1 AND ($2::bigint[] IS NULL OR id = ANY($2))
  AND (last_synced IS NULL OR last_synced < $3)";

const STALE_FEATURES: &str = "
DELETE FROM features WHERE customer_id = $1 AND ($2::bigint[] IS NULL OR product_id = ANY($2))
  AND last_synced < $3";

/// Tests in scope (and within `$4`, the `since`) not written since `$3`.
const STALE_TESTS: &str = "
SELECT id FROM tests WHERE customer_id = $1 AND ($2::bigint[] IS NULL OR product_id = ANY($2))
  AND (synced_at IS NULL OR synced_at < $3) AND ($4::timestamptz IS NULL OR end_at IS NULL OR end_at >= $4)";

const TESTS_OF_PRODUCTS: &str = "SELECT id FROM tests WHERE customer_id = $1 AND product_id = ANY($2)";

/// Tests `$2` with their rows, in one statement; how many rows went.
const DELETE_TESTS: &str = "
WITH b AS (DELETE FROM bugs WHERE customer_id = $1 AND test_id = ANY($2) RETURNING 1),
     f AS (DELETE FROM test_features WHERE customer_id = $1 AND test_id = ANY($2) RETURNING 1),
     p AS (DELETE FROM test_platforms WHERE customer_id = $1 AND test_id = ANY($2) RETURNING 1),
     t AS (DELETE FROM tests WHERE customer_id = $1 AND id = ANY($2) RETURNING 1)
SELECT (SELECT count(*) FROM b) + (SELECT count(*) FROM f) + (SELECT count(*) FROM p) + (SELECT count(*) FROM t)";

/// Products `$2` with what the engine kept about them (their tests go first).
const DELETE_PRODUCTS: &str = "
WITH f AS (DELETE FROM features WHERE customer_id = $1 AND product_id = ANY($2) RETURNING 1),
     c AS (DELETE FROM tests_coverage WHERE customer_id = $1 AND product_id = ANY($2) RETURNING 1),
     r AS (DELETE FROM problem_ranges WHERE customer_id = $1 AND product_id = ANY($2) RETURNING 1),
     p AS (DELETE FROM products WHERE customer_id = $1 AND id = ANY($2) RETURNING 1)
SELECT (SELECT count(*) FROM f) + (SELECT count(*) FROM c) + (SELECT count(*) FROM r) + (SELECT count(*) FROM p)";

pub fn scope_counts(c: &mut Conn, product_ids: Option<&[u64]>) -> Result<Vec<(&'static str, i64)>> {
    let products = product_ids.map(ids).transpose()?;
    let row = c.client.query_one(SCOPE_COUNTS, &[&c.customer, &products])?;
    SCOPE_TABLES.iter().enumerate().map(|(i, &table)| Ok((table, row.try_get(i)?))).collect()
}

pub fn sweep(
    c: &mut Conn,
    kind: EntityKind,
    product_ids: Option<&[u64]>,
    since: Option<Timestamp>,
    written_before: Timestamp,
) -> Result<u32> {
    let (customer, products, before) = (c.customer, product_ids.map(ids).transpose()?, instant(written_before));
    let mut tx = c.client.transaction()?;
    let deleted = match kind {
        EntityKind::Products => {
            let stale = column(tx.query(STALE_PRODUCTS, &[&customer, &products, &before])?)?;
            let tests = column(tx.query(TESTS_OF_PRODUCTS, &[&customer, &stale])?)?;
            delete_tests(&mut tx, customer, &tests)? + count(&mut tx, DELETE_PRODUCTS, customer, &stale)?
        }
        EntityKind::Features => tx.execute(STALE_FEATURES, &[&customer, &products, &before])?,
        EntityKind::Tests => {
            let since = since.and_then(instant);
            let stale = column(tx.query(STALE_TESTS, &[&customer, &products, &before, &since])?)?;
            delete_tests(&mut tx, customer, &stale)?
        }
        EntityKind::Bugs => 0,
    };
    tx.commit()?;
    Ok(u32::try_from(deleted).unwrap_or(u32::MAX))
}

/// Deletes these tests with their features, platforms and bugs; how many rows went.
pub fn delete_tests(tx: &mut Transaction, customer: i64, test_ids: &[i64]) -> Result<u64> {
    count(tx, DELETE_TESTS, customer, test_ids)
}

fn count(tx: &mut Transaction, sql: &str, customer: i64, ids: &[i64]) -> Result<u64> {
    let deleted: i64 = tx.query_one(sql, &[&customer, &ids])?.try_get(0)?;
    Ok(u64::try_from(deleted).unwrap_or_default())
}

fn column(rows: Vec<postgres::Row>) -> Result<Vec<i64>> {
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}
