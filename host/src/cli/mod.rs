//! The `testio-sync` command line: one file per command.

mod component;
mod customer;
mod daemon;
#[cfg(feature = "simulator")]
mod demo;
mod envfile;
mod history;
mod mcp;
mod nuke;
mod output;
mod problems;
mod report;
mod shared;
#[cfg(feature = "simulator")]
mod sim;
mod status;
mod sync;

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue};
use clap::{CommandFactory, Parser, Subcommand};

pub const EXIT_HELP: &str = "Exit codes: 0 success; 1 failure (nothing or not everything could run: bad input, \
rejected token, database or engine error); 2 partial failure (the sync ran, but some products or phases failed; \
see the errors); 3 the sync lock is held by another sync; 130 or 143 the sync was interrupted by SIGINT or SIGTERM (it stopped between pages, and the sync log says `interrupted`).";

#[derive(Parser)]
#[command(name = "testio-sync", version, about = "Mirror a Test IO customer account into a local SQLite database or a shared PostgreSQL one", after_help = EXIT_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Read settings from this file (KEY=VALUE lines) instead of ~/.testio-mcp.env or ./.env;
    /// variables already set win
    // envfile.rs reads it before clap parses; declared here for --help and so clap accepts it.
    #[arg(long = "env-file", global = true, value_name = "PATH")]
    _env_file: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Sync into the database: the registry's default customer (else the one of
    /// TESTIO_CUSTOMER_API_TOKEN), --customer NAME, or --all-customers
    #[command(after_help = EXIT_HELP)]
    Sync(sync::Args),
    /// Show the database path, row counts per table, the last sync and the lock holder
    Status(status::Args),
    /// List the latest syncs from the sync log
    History(history::Args),
    /// List the problem ranges: test offsets that fail with HTTP 500 even one per page
    Problems(problems::Args),
    /// Manage the customers this database serves: add, list, remove, default
    Customer(customer::Args),
    /// Serve MCP on stdin/stdout (tools sync_data, sync_status, sync_history), with the
    /// background scheduler unless TESTIO_REFRESH_INTERVAL_SECONDS=0
    Mcp(mcp::Args),
    /// Sync in the background every TESTIO_REFRESH_INTERVAL_SECONDS until SIGINT or SIGTERM
    Daemon(daemon::Args),
    /// Serve the built-in Customer API simulator on 127.0.0.1
    #[cfg(feature = "simulator")]
    Sim(sim::Args),
    /// Sync a simulated account into a fresh local database, then sync it again
    #[cfg(feature = "simulator")]
    Demo(demo::Args),
    /// Write the engine component (the wasm the sync runs) to a file, for other hosts
    Component(component::Args),
}

/// How a command ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    Partial = 2,
    LockBusy = 3,
    Interrupted = 130,
    Terminated = 143,
}

impl Exit {
    /// Of two outcomes, the one to exit with: a signal, then a failure, a busy lock, a
    /// partial failure, success (the numbers do not order them: 3 is milder than 1).
    pub fn worst(self, other: Exit) -> Exit {
        let rank = |exit: Exit| match exit {
            Exit::Success => 0,
            Exit::Partial => 1,
            Exit::LockBusy => 2,
            Exit::Failure => 3,
            Exit::Interrupted | Exit::Terminated => 4,
        };
        if rank(other) > rank(self) { other } else { self }
    }
}

/// Whether `flag` was typed on the command line (not taken from its variable).
pub fn typed(flag: &str) -> bool {
    std::env::args().skip(1).any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

/// `value` of `flag` when it applies to `customer` (`None`: the customer's own setting). The
/// variables (TESTIO_PRODUCT_IDS, TESTIO_SYNC_SINCE) belong to the unnamed customer; for a
/// registry customer only what is typed on the command line counts.
pub fn given_for<T>(customer: &crate::customers::Customer, flag: &str, value: Option<T>) -> Option<T> {
    value.filter(|_| customer.name.is_none() || typed(flag))
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

pub fn main() -> ExitCode {
    // First: it sets variables, which only a process without other threads may do.
    let loaded = match envfile::load(std::env::args_os().skip(1)) {
        Ok(loaded) => loaded,
        Err(e) => {
            output::note(format_args!("error: {e:#}"));
            return Exit::Failure.into();
        }
    };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let message = usage_error(&e, loaded.as_ref());
            if promised_json() {
                report::print_failure(message.trim_start_matches("error: "));
            }
            output::note(message);
            return Exit::Failure.into();
        }
    };
    report::init_logging();
    if let Some(loaded) = &loaded {
        tracing::debug!("loaded {} from {}", loaded.keys.join(", "), loaded.path.display());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            output::note(format_args!("error: could not start the async runtime: {e}"));
            return Exit::Failure.into();
        }
    };
    let exit = runtime.block_on(async {
        match cli.command {
            Command::Sync(args) => sync::run(args).await,
            // Blocking: they may read a PostgreSQL mirror, whose client must not run on an
            // async thread.
            Command::Status(args) => tokio::task::block_in_place(|| status::run(args)),
            Command::History(args) => tokio::task::block_in_place(|| history::run(args)),
            Command::Problems(args) => tokio::task::block_in_place(|| problems::run(args)),
            Command::Customer(args) => customer::run(args).await,
            Command::Mcp(args) => mcp::run(args).await,
            Command::Daemon(args) => daemon::run(args).await,
            #[cfg(feature = "simulator")]
            Command::Sim(args) => sim::run(args).await,
            #[cfg(feature = "simulator")]
            Command::Demo(args) => demo::run(args).await,
            Command::Component(args) => component::run(args),
        }
    });
    // A PostgreSQL lock let go at the end clears its holder record first (a few round trips);
    // a server that does not answer frees the lock anyway as the connection closes.
    let settle = std::time::Duration::from_secs(5);
    let _ = runtime.block_on(async { tokio::time::timeout(settle, crate::lock::pg::settled()).await });
    // Work left on the runtime (a detached rmcp task, a blocking read) must not keep a
    // finished command alive: each command has recorded its own outcome by now.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match exit {
        Ok(exit) => exit.into(),
        Err(e) => {
            output::note(format_args!("error: {e:#}"));
            Exit::Failure.into()
        }
    }
}

/// `sync --json` promises a JSON object on stdout, even when its arguments are refused.
fn promised_json() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    args.first().is_some_and(|command| command == "sync") && args.iter().any(|a| a == "--json")
}

/// clap's message (and its list of valid values), not the usage hint after it; for a bad
/// value that came from an environment variable, the variable rather than the flag.
fn usage_error(e: &clap::Error, loaded: Option<&envfile::Loaded>) -> String {
    let rendered = e.to_string();
    let message: Vec<&str> = rendered.lines().take_while(|l| !l.trim().is_empty()).collect();
    let message = message.join("\n");
    blame_the_variable(e, &message, loaded).unwrap_or(message)
}

/// `error: MAX_CONCURRENT_API_REQUESTS="0" is not valid; use a whole number from 1 to 50 (it sets --max-requests)`,
/// when the flag is not on the command line but its variable is set (` (from FILE)` when
/// an env file set it).
fn blame_the_variable(e: &clap::Error, message: &str, loaded: Option<&envfile::Loaded>) -> Option<String> {
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else { return None };
    let flag = arg.split_whitespace().next()?;
    let long = flag.strip_prefix("--")?;
    let given = std::env::args().skip(1).any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let command = Cli::command();
    let var = command
        .get_subcommands()
        .flat_map(|c| c.get_arguments())
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())?
        .to_string_lossy()
        .into_owned();
    let value = std::env::var(&var).ok().filter(|_| !given)?;
    let reason = message.split_once("': ").map_or(message, |(_, reason)| reason);
    let origin = loaded.map_or(String::new(), |l| l.origin(var.as_ref()));
    Some(format!("error: {var}={value:?}{origin} is not valid; {reason} (it sets {flag})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command's arguments parse into their fields: clap checks the definition
    /// against the field types only when a command line is parsed.
    #[test]
    fn every_command_parses_its_defaults() {
        Cli::command().debug_assert();
        let commands: &[&[&str]] = &[
            &["sync", "--db", "x.db"],
            &["status"],
            &["history"],
            &["problems"],
            &["customer", "list"],
            &["customer", "add", "acme", "--product-ids", "1", "2,3", "--no-check"],
            &["customer", "remove", "acme", "--purge", "--yes"],
            &["customer", "default", "acme"],
            &["sync", "--product-ids", "1", "2", "--env-file", "x.env"],
            &["mcp"],
            &["daemon"],
            &["component", "--out", "x.wasm"],
            #[cfg(feature = "simulator")]
            &["sim"],
            #[cfg(feature = "simulator")]
            &["demo"],
        ];
        for args in commands {
            let argv = std::iter::once("testio-sync").chain(args.iter().copied());
            if let Err(e) = Cli::try_parse_from(argv) {
                panic!("{args:?}: {e}");
            }
        }
    }
}
