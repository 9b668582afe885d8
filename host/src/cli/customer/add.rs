//! `testio-sync customer add NAME`: records a customer in the registry. Its token stays
//! where it is when `TESTIO_CUSTOMER_API_TOKEN_<NAME>` holds it; otherwise it is typed (echo
//! off) or read from stdin, and goes to the OS keyring. Everything is checked before
//! anything is written: a refusal leaves the database and the keyring as they were.

use crate::db::Location;
use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use anyhow::{anyhow, bail};
use tokio::task::block_in_place;

use super::Database;
use crate::api::{self, ApiClient, Failure, request_limit};
use crate::cli::shared::whole_number;
use crate::cli::{Exit, output};
use crate::config::{self, ProductIds};
use crate::customers::{self, Customer, IMPLICIT_CUSTOMER_ID};
use crate::db::customers::{Registry, check_name};
use crate::tokens::{self, KEYRING_SERVICE, Keyring};

/// How long the token check's one request may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args)]
pub struct Args {
    /// The customer's name: 1 to 64 lower-case letters, digits, '-' or '_', starting with a
    /// letter. Its token variable is TESTIO_CUSTOMER_API_TOKEN_<NAME> (upper case, '-' as '_')
    name: String,
    /// The local id its rows are stored under [default: one above every id in use]
    #[arg(long, value_name = "ID", value_parser = whole_number(1, i64::MAX))]
    customer_id: Option<i64>,
    /// Its Customer API base URL [default: TESTIO_CUSTOMER_API_BASE_URL, else the public API]
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// Only these products (ids separated by commas or spaces) [default: all]
    #[arg(long, value_name = "IDS", num_args = 1.., value_parser = ProductIds::parse)]
    product_ids: Vec<ProductIds>,
    /// Only tests that ended on or after this (as `sync --since`, kept as typed, so that a
    /// relative form counts from each sync) [default: all]
    #[arg(long, value_name = "WHEN", value_parser = customers::check_since)]
    since: Option<String>,
    /// Seconds between its background syncs [default: TESTIO_REFRESH_INTERVAL_SECONDS]
    #[arg(long, value_name = "SECS", value_parser = whole_number::<u64>(0, 2_592_000))]
    interval: Option<u64>,
    /// Record it as inactive: `--all-customers` and the scheduler leave it out
    #[arg(long)]
    inactive: bool,
    /// Make it the default customer (the first one added always is)
    #[arg(long)]
    default: bool,
    /// Read the token from the first line of stdin instead of asking on the terminal
    #[arg(long)]
    token_stdin: bool,
    /// Do not check the token against the API (GET products) before recording it
    #[arg(long)]
    no_check: bool,
    #[command(flatten)]
    database: Database,
}

/// The token, and the variable that holds it; `None`: typed, for the keyring to keep.
struct Token {
    value: String,
    variable: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<Exit> {
    check_name(&args.name)?;
    if let Some(url) = &args.base_url {
        api::base_url_with_slash(url)?;
    }
    // The registry's reads and writes block (a PostgreSQL client must not run on an async thread).
    let (db, customer) = block_in_place(|| {
        let (db, mut registry) = args.database.existing()?;
        anyhow::Ok((db.location(), args.customer(registry.as_mut())?))
    })?;
    let keyring = Keyring::system();
    let token = args.token(&keyring)?;
    let checked = match args.no_check {
        true => None,
        false => Some(check_token(&customer, &token).await?),
    };
    args.database.mirror()?.check_for_sync()?;
    let added = block_in_place(|| record(&db, &customer, &token, &keyring))?;
    report(&added, &token, checked)?;
    if args.customer_id.is_none() {
        block_in_place(|| hint_unowned(&db, &added))?;
    }
    Ok(Exit::Success)
}

impl Args {
    /// The customer to record, checked against the registry (if there is one yet).
    fn customer(&self, mut registry: Option<&mut Registry>) -> anyhow::Result<Customer> {
        let customer_id = match (self.customer_id, registry.as_deref_mut()) {
            (Some(id), _) => id,
            (None, Some(registry)) => registry.next_customer_id()?,
            // What a fresh database's registry would give.
            (None, None) => IMPLICIT_CUSTOMER_ID,
        };
        let customer = Customer {
            name: Some(self.name.clone()),
            customer_id,
            base_url: self.base_url.clone(),
            product_ids: ProductIds::all(&self.product_ids),
            since: self.since.clone(),
            interval_seconds: self.interval,
            active: !self.inactive,
            default: self.default,
        };
        if let Some(registry) = registry {
            registry.check_new(&customer)?;
        }
        Ok(customer)
    }

    /// The token from its variable, stdin or the terminal. A token that would go to the
    /// keyring is refused before it is typed when there is no keyring.
    fn token(&self, keyring: &Keyring) -> anyhow::Result<Token> {
        let (name, var) = (&self.name, tokens::variable(&self.name));
        if let Some(value) = tokens::from_variable(name)? {
            if self.token_stdin {
                bail!("{var} is set, and it would hide a token read from stdin; unset it, or leave out --token-stdin")
            }
            return Ok(Token { value, variable: Some(var) });
        }
        keyring.usable().map_err(|why| {
            anyhow!("{why}; set {var} and run `testio-sync customer add {name}` again: with it set, no token is stored")
        })?;
        let typed = if self.token_stdin {
            read_line()?
        } else if std::io::stdin().is_terminal() {
            read_hidden(&format!("API token for {name} (not shown): "))?
        } else {
            bail!("there is no token for {name}: set {var}, pass --token-stdin, or run this on a terminal to type it")
        };
        match typed.trim() {
            "" => bail!("the token is empty; nothing was recorded"),
            value => Ok(Token { value: value.to_string(), variable: None }),
        }
    }
}

/// `GET products` with the token: how many products it reads. Nothing is written yet.
async fn check_token(customer: &Customer, token: &Token) -> anyhow::Result<usize> {
    let base = match &customer.base_url {
        Some(url) => url.clone(),
        None => config::setting("TESTIO_CUSTOMER_API_BASE_URL", |url| Ok::<_, String>(url.trim().to_string()))?
            .unwrap_or_else(|| config::DEFAULT_BASE_URL.to_string()),
    };
    let client = ApiClient::new(&base, &token.value, request_limit(1), CHECK_TIMEOUT)?;
    let whose = token.variable.as_ref().map_or("the token given".to_string(), |var| format!("the token in {var}"));
    match client.get("products", api::parse_products).await {
        Ok(products) => Ok(products.len()),
        Err(e) if e.failure == Failure::HttpStatus(401) => {
            bail!("the Customer API at {base} rejected {whose} (HTTP 401); nothing was recorded")
        }
        Err(e) => bail!(
            "could not check {whose} against {base}: {}; nothing was recorded (--no-check records it unchecked)",
            e.message
        ),
    }
}

/// Stores a typed token in the keyring, then the row; if the row cannot be recorded, the
/// keyring gets back what it held.
fn record(db: &Location, customer: &Customer, token: &Token, keyring: &Keyring) -> anyhow::Result<Customer> {
    let add = || Registry::open(db)?.add(customer);
    if token.variable.is_some() {
        return add();
    }
    let name = customer.name.as_deref().unwrap_or_default();
    let previous = keyring.get(name).ok().flatten();
    keyring.set(name, &token.value).map_err(|why| {
        let var = tokens::variable(name);
        anyhow!("{why}; set {var} and run `testio-sync customer add {name}` again: with it set, no token is stored")
    })?;
    let added = add();
    if added.is_err() {
        let restored = match &previous {
            Some(token) => keyring.set(name, token),
            None => keyring.delete(name).map(drop),
        };
        if let Err(why) = restored {
            output::note(format_args!("warning: could not undo the token stored in the OS keyring for {name}: {why}"));
        }
    }
    added
}

fn report(added: &Customer, token: &Token, checked: Option<usize>) -> anyhow::Result<()> {
    let name = added.label();
    let default = if added.default { ", the default" } else { "" };
    let kept = match &token.variable {
        Some(var) => format!("its token is read from {var}"),
        None => format!("its token is in the OS keyring (service {KEYRING_SERVICE}, user {name})"),
    };
    let check = match checked {
        Some(products) => format!("the token reads {products} products"),
        None => "the token was not checked (--no-check)".to_string(),
    };
    output::line(format_args!("Added customer {name} (local id {}{default}): {kept}; {check}.", added.customer_id))
}

/// Rows synced before under ids no customer owns stay theirs: say how to adopt them.
fn hint_unowned(db: &Location, added: &Customer) -> anyhow::Result<()> {
    let Some(mut registry) = Registry::read(db)? else { return Ok(()) };
    let unowned = registry.unowned_ids()?;
    if let Some(first) = unowned.first() {
        let ids: Vec<String> = unowned.iter().map(i64::to_string).collect();
        let name = added.label();
        output::note(format_args!(
            "note: the rows synced so far under local id {} belong to no customer, not to {name}; to make them \
             {name}'s, run `testio-sync customer remove {name} --yes` and add it again with `--customer-id {first}`",
            ids.join(", ")
        ));
    }
    Ok(())
}

/// The first line of stdin (`--token-stdin`).
fn read_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| anyhow!("could not read the token from stdin: {e}"))?;
    Ok(line)
}

/// One line typed on the terminal with echo off; echo comes back whatever happens.
fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    let fd = libc::STDIN_FILENO;
    // SAFETY: tcgetattr fills the termios it is given; an all-zero termios is a valid value.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        bail!("could not turn off the terminal's echo: {}", std::io::Error::last_os_error());
    }
    let mut hidden = saved;
    hidden.c_lflag &= !libc::ECHO;
    hidden.c_lflag |= libc::ECHONL;
    // SAFETY: sets the terminal of stdin from a termios read from it.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &hidden) } != 0 {
        bail!("could not turn off the terminal's echo: {}", std::io::Error::last_os_error());
    }
    output::prompt(prompt);
    let line = read_line();
    // SAFETY: as above, with the settings read before.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    line
}

#[cfg(test)]
mod tests {
    use keyring_core::mock;

    use super::*;

    fn acme() -> Customer {
        Customer {
            name: Some("acme".to_string()),
            customer_id: 1,
            base_url: None,
            product_ids: None,
            since: None,
            interval_seconds: None,
            active: true,
            default: false,
        }
    }

    fn typed(value: &str) -> Token {
        Token { value: value.to_string(), variable: None }
    }

    #[test]
    fn a_typed_token_goes_to_the_keyring_and_never_to_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = Location::Sqlite(dir.path().join("cache.db"));
        let keyring = Keyring::with_store(mock::Store::new().unwrap());
        let added = record(&db, &acme(), &typed("tok-typed-1"), &keyring).unwrap();
        assert!(added.default, "the first customer is the default");
        assert_eq!(keyring.get("acme").unwrap().as_deref(), Some("tok-typed-1"));
        for file in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            assert!(!bytes.windows(11).any(|w| w == b"tok-typed-1"), "the database and its WAL hold no token");
        }
    }

    #[test]
    fn a_row_that_cannot_be_recorded_gives_the_keyring_back_what_it_held() {
        let dir = tempfile::tempdir().unwrap();
        let nowhere = Location::Sqlite(dir.path().join("missing").join("cache.db"));
        let keyring = Keyring::with_store(mock::Store::new().unwrap());
        assert!(record(&nowhere, &acme(), &typed("tok-new"), &keyring).is_err());
        assert_eq!(keyring.get("acme").unwrap(), None, "nothing was there before");

        keyring.set("acme", "tok-old").unwrap();
        assert!(record(&nowhere, &acme(), &typed("tok-new"), &keyring).is_err());
        assert_eq!(keyring.get("acme").unwrap().as_deref(), Some("tok-old"));
    }
}
