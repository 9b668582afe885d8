//! `testio-sync customer list`: the registry, and where each customer's token comes from.
//! Never a token.

use serde_json::Value;

use super::Database;
use crate::cli::{Exit, output};
use crate::customers::Customer;
use crate::tokens::{self, Keyring, Source};

#[derive(clap::Args)]
pub struct Args {
    /// Print the customers as a JSON array on stdout
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    database: Database,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let (db, registry) = args.database.existing()?;
    let customers = match registry {
        Some(mut registry) => registry.list()?,
        None => Vec::new(),
    };
    let keyring = Keyring::system();
    let listed: Vec<(Customer, Source)> = customers
        .into_iter()
        .map(|c| {
            let source = tokens::source(c.name.as_deref().unwrap_or_default(), &keyring);
            (c, source)
        })
        .collect();
    if args.json {
        let rows = listed.iter().map(|(c, source)| json(c, source)).collect::<anyhow::Result<Vec<_>>>()?;
        output::line(Value::Array(rows))?;
        return Ok(Exit::Success);
    }
    if listed.is_empty() {
        output::line(format_args!(
            "No customers in {}: commands sync the unnamed customer of TESTIO_CUSTOMER_API_TOKEN. Add one with \
             `testio-sync customer add NAME`.",
            db.location()
        ))?;
        return Ok(Exit::Success);
    }
    let width = listed.iter().filter_map(|(c, _)| c.name.as_ref()).map(String::len).max().unwrap_or(0).max(4);
    output::line(format_args!(
        "{:<width$}  {:>5}  {:<7}  {:<6}  {:<12}  {:<12}  {:<8}  {:<32}  token",
        "name", "id", "default", "active", "products", "since", "interval", "base url"
    ))?;
    for (c, source) in &listed {
        output::line(format_args!(
            "{:<width$}  {:>5}  {:<7}  {:<6}  {:<12}  {:<12}  {:<8}  {:<32}  {source}",
            c.label(),
            c.customer_id,
            if c.default { "yes" } else { "" },
            if c.active { "yes" } else { "no" },
            c.product_ids.as_ref().map_or("all".to_string(), |ids| ids
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",")),
            c.since.as_deref().unwrap_or("all"),
            c.interval_seconds.map_or("global".to_string(), |s| format!("{s}s")),
            c.base_url.as_deref().unwrap_or("global"),
        ))?;
    }
    Ok(Exit::Success)
}

/// The row as JSON, with `token` saying where it comes from: `env VAR`, `keyring` or `missing`.
fn json(customer: &Customer, source: &Source) -> anyhow::Result<Value> {
    let mut row = serde_json::to_value(customer)?;
    if let Value::Object(fields) = &mut row {
        fields.insert("token".to_string(), Value::from(source.to_string()));
    }
    Ok(row)
}
