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

/// A test and the rows that belong to it, by the column that names the test.
const TEST_ROWS: [(&str, &str); 4] =
    [("bugs", "test_id"), ("test_features", "test_id"), ("test_platforms", "test_id"), ("tests", "id")];

/// A product and what the engine kept about it, by the column that names the product (its
/// tests go first, through `TEST_ROWS`).
const PRODUCT_ROWS: [(&str, &str); 4] = [
    ("features", "product_id"),
    ("tests_coverage", "product_id"),
    ("problem_ranges", "product_id"),
    ("products", "id"),
];

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
            delete_tests(&mut tx, customer, &tests)? + delete_rows(&mut tx, &PRODUCT_ROWS, customer, &stale)?
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
    delete_rows(tx, &TEST_ROWS, customer, test_ids)
}

/// Deletes the customer's rows whose `column` is one of `ids` from each table, in one
/// statement; how many rows went. The names are this file's constants, never input.
fn delete_rows(tx: &mut Transaction, tables: &[(&str, &str)], customer: i64, ids: &[i64]) -> Result<u64> {
    let deletes: Vec<String> = (tables.iter().enumerate())
        .map(|(i, (table, column))| {
            format!("d{i} AS (DELETE FROM {table} WHERE customer_id = $1 AND {column} = ANY($2) RETURNING 1)")
        })
        .collect();
    let counts: Vec<String> = (0..tables.len()).map(|i| format!("(SELECT count(*) FROM d{i})")).collect();
    let sql = format!("WITH {} SELECT {}", deletes.join(", "), counts.join(" + "));
    let deleted: i64 = tx.query_one(&sql, &[&customer, &ids])?.try_get(0)?;
    Ok(u64::try_from(deleted).unwrap_or_default())
}

fn column(rows: Vec<postgres::Row>) -> Result<Vec<i64>> {
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}
