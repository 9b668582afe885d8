//! `testio-sync customer default NAME`: the customer commands use without --customer.

use super::Database;
use crate::cli::{Exit, output};

#[derive(clap::Args)]
pub struct Args {
    /// The customer's name
    name: String,
    #[command(flatten)]
    database: Database,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let (_, mut registry) = args.database.registry_for(&args.name)?;
    let name = &args.name;
    match registry.set_default(name)? {
        Some(previous) => output::line(format_args!("{name} is now the default customer (was {previous})"))?,
        None => output::line(format_args!("{name} is the default customer"))?,
    }
    Ok(Exit::Success)
}
