//! `testio-sync problems`: the recorded problem ranges, offsets of tests that fail with
//! HTTP 500 even one per page.

use super::status::Database;
use super::{Exit, output};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    database: Database,
    /// Print the ranges as a JSON array on stdout
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let (_, mut store) = args.database.open()?;
    let rows = store.problem_ranges(&[])?;
    if args.json {
        output::line(serde_json::to_string(&rows)?)?;
        return Ok(Exit::Success);
    }
    if rows.is_empty() {
        output::line("No problem ranges: every test page could be fetched.")?;
        return Ok(Exit::Success);
    }
    output::line(format_args!(
        "{:>8}  {:>13}  {:>18}  {:>18}  {:>8}  {:<26}  last seen",
        "product", "offsets", "test before", "test after", "attempts", "first seen"
    ))?;
    for row in rows {
        let id = |id: Option<u64>| id.map_or("-".to_string(), |id| id.to_string());
        output::line(format_args!(
            "{:>8}  {:>13}  {:>18}  {:>18}  {:>8}  {:<26}  {}",
            row.product_id,
            format!("{}-{}", row.first_offset, row.last_offset),
            id(row.before_test_id),
            id(row.after_test_id),
            row.attempts,
            row.first_seen,
            row.last_seen
        ))?;
    }
    Ok(Exit::Success)
}
