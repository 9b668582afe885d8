//! `sync --nuke`: says what the scope holds and what the nuke will do, and asks (or needs
//! `--yes`). The engine does the rest: it rewrites the scope, then deletes what the API no
//! longer returns, and only once every phase succeeded.

use anyhow::Context;

use super::output;
use crate::db::Location;

/// Shows the rows of customer `customer_id` in scope and asks; `Err` when the user did not
/// confirm.
pub fn confirm(db: &Location, customer_id: i64, product_ids: Option<&[u64]>, yes: bool) -> anyhow::Result<()> {
    let whose = match product_ids {
        Some(ids) => format!("products {}", ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
        None => "all products".to_string(),
    };
    output::note(format_args!(
        "--nuke fetches every row of customer {} ({whose}) again, then deletes from {} the rows the API no longer \
         returns. Nothing is deleted unless the whole sync succeeds. The scope holds:",
        customer_id, db
    ));
    for (table, count) in scope_counts(db, customer_id, product_ids)? {
        output::note(format_args!("  {table:<16} {count:>9}"));
    }
    if !yes {
        output::confirm("--nuke deletes data", "Nothing was deleted")?;
    }
    Ok(())
}

/// A database that does not exist yet holds nothing.
fn scope_counts(
    db: &Location,
    customer_id: i64,
    product_ids: Option<&[u64]>,
) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let Some(mut store) = db.open_existing(customer_id)? else { return Ok(Vec::new()) };
    store.scope_counts(product_ids).context("could not count the rows in scope")
}
