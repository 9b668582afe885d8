//! `tests_coverage`: how far each product's last uninterrupted walk of its tests reached.

use std::collections::HashMap;

use anyhow::Result;

use super::Conn;
use super::values::{id, ids};
use crate::db::coverage::TestsCoverage;

const SELECT: &str = "SELECT product_id, since_ms FROM tests_coverage WHERE customer_id = $1 AND product_id = ANY($2)";
const DELETE: &str = "DELETE FROM tests_coverage WHERE customer_id = $1 AND product_id = $2";
const UPSERT: &str = "INSERT INTO tests_coverage (customer_id, product_id, since_ms) VALUES ($1, $2, $3)
                      ON CONFLICT (customer_id, product_id) DO UPDATE SET since_ms = excluded.since_ms";

/// One entry per product asked, in the order asked.
pub fn of(c: &mut Conn, product_ids: &[u64]) -> Result<Vec<TestsCoverage>> {
    let select = c.prepared(SELECT)?;
    let rows = c.client.query(&select, &[&c.customer, &ids(product_ids)?])?;
    let stored: HashMap<i64, Option<i64>> =
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_>>()?;
    product_ids
        .iter()
        .map(|&product| {
            Ok(match stored.get(&id(product)?) {
                None => TestsCoverage::None,
                Some(None) => TestsCoverage::All,
                Some(&Some(since)) => TestsCoverage::Since(since),
            })
        })
        .collect()
}

pub fn set(c: &mut Conn, product_id: u64, coverage: TestsCoverage) -> Result<()> {
    let product = id(product_id)?;
    let since = match coverage {
        TestsCoverage::None => {
            let delete = c.prepared(DELETE)?;
            c.client.execute(&delete, &[&c.customer, &product])?;
            return Ok(());
        }
        TestsCoverage::All => None,
        TestsCoverage::Since(since) => Some(since),
    };
    let upsert = c.prepared(UPSERT)?;
    c.client.execute(&upsert, &[&c.customer, &product, &since])?;
    Ok(())
}
