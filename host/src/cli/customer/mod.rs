//! `testio-sync customer add|list|remove|default`: the customer registry in the database.
//! Tokens never go there: see `crate::tokens`.

mod add;
mod default;
mod list;
mod remove;

use std::path::PathBuf;

use super::Exit;
use crate::config::Mirror;
use crate::db::customers::Registry;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Register a customer; its token goes to the OS keyring, unless
    /// TESTIO_CUSTOMER_API_TOKEN_<NAME> holds it
    Add(add::Args),
    /// List the customers and where each one's token comes from (never the token)
    List(list::Args),
    /// Remove a customer from the registry; its synced rows are kept unless --purge
    Remove(remove::Args),
    /// Make a customer the default: the one commands without --customer use
    Default(default::Args),
}

pub async fn run(args: Args) -> anyhow::Result<Exit> {
    match args.command {
        Command::Add(args) => add::run(args).await,
        // Blocking: the registry may be in PostgreSQL, whose client must not run on an async thread.
        Command::List(args) => tokio::task::block_in_place(|| list::run(args)),
        Command::Remove(args) => remove::run(args).await,
        Command::Default(args) => tokio::task::block_in_place(|| default::run(args)),
    }
}

/// The database the registry is in.
#[derive(clap::Args)]
struct Database {
    /// The database: a SQLite file, or a postgres://user@host/db URL
    /// [env: TESTIO_DB_URL, TESTIO_DB_PATH] [default: ~/.testio-mcp/cache.db]
    #[arg(long, value_name = "PATH|URL")]
    db: Option<PathBuf>,
}

impl Database {
    fn mirror(&self) -> anyhow::Result<Mirror> {
        Mirror::resolve(self.db.as_deref())
    }

    /// The registry, checked as `status` checks a database; `None` when there is no database
    /// file yet (no customers). Creates nothing.
    fn existing(&self) -> anyhow::Result<(Mirror, Option<Registry>)> {
        let db = self.mirror()?;
        if let Mirror::File(file) = &db
            && !file.path.exists()
        {
            return Ok((db, None));
        }
        db.check_existing()?;
        let registry = Registry::read(&db.location())?;
        Ok((db, registry))
    }

    /// The registry of an existing database; with none, the error that there is no customer
    /// `name`.
    fn registry_for(&self, name: &str) -> anyhow::Result<(Mirror, Registry)> {
        match self.existing()? {
            (db, Some(registry)) => Ok((db, registry)),
            (db, None) => Err(crate::customers::unregistered(&db.location(), name)),
        }
    }
}
