//! Which customer a command works for: a registry row (`customer add`), or, while the
//! registry is empty, the implicit unnamed customer of `TESTIO_CUSTOMER_API_TOKEN`,
//! `TESTIO_CUSTOMER_ID`, `TESTIO_PRODUCT_IDS` and `TESTIO_SYNC_SINCE`, exactly as before
//! there was a registry. Nothing here creates a database.

use std::path::Path;

use serde::Serialize;

use crate::config::{self, MAX_ID};
use crate::db::customers::Registry;
use crate::tokens::{self, Keyring};

/// The local id of the implicit customer when `TESTIO_CUSTOMER_ID` is unset.
pub const IMPLICIT_CUSTOMER_ID: i64 = 1;

/// One customer: where its data comes from and what is synced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Customer {
    /// `None`: the implicit unnamed customer.
    pub name: Option<String>,
    /// The local id written to every row's `customer_id`.
    pub customer_id: i64,
    /// `None`: `TESTIO_CUSTOMER_API_BASE_URL`, else the default.
    pub base_url: Option<String>,
    /// `None`: every product.
    pub product_ids: Option<Vec<u64>>,
    /// As typed (`30 days ago`), so that a relative form counts from each sync; `None`: all.
    pub since: Option<String>,
    /// `None`: `TESTIO_REFRESH_INTERVAL_SECONDS`.
    pub interval_seconds: Option<u64>,
    pub active: bool,
    pub default: bool,
}

impl Customer {
    /// `acme` or `the unnamed customer`, for messages.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| "the unnamed customer".to_string())
    }
}

/// `name`'s row, or with no name the registry's default; while the registry is empty (or
/// there is no database yet), the implicit customer.
pub fn resolve(db: &Path, name: Option<&str>) -> anyhow::Result<Customer> {
    let registry = Registry::read(db)?;
    match (name, registry) {
        (Some(name), Some(registry)) => registry.named(name),
        (Some(name), None) => Err(unregistered(db, name)),
        (None, Some(registry)) if !registry.is_empty()? => registry.the_default(),
        (None, _) => implicit(),
    }
}

/// The error for `name` when there is no database, hence no registry, at `db`.
pub fn unregistered(db: &Path, name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "there is no customer {name:?}: no customers are registered in {}; add one with `testio-sync customer add \
         {name}`",
        db.display()
    )
}

/// Every active customer, by name; the implicit customer while the registry is empty.
pub fn active(db: &Path) -> anyhow::Result<Vec<Customer>> {
    let customers = match Registry::read(db)? {
        Some(registry) => registry.list()?,
        None => Vec::new(),
    };
    if customers.is_empty() {
        return Ok(vec![implicit()?]);
    }
    Ok(customers.into_iter().filter(|c| c.active).collect())
}

/// The customer's API token: `TESTIO_CUSTOMER_API_TOKEN` for the implicit one; for a named
/// one its variable, else the OS keyring (see [`tokens`]). May ask the keyring over D-Bus.
pub fn token_for(customer: &Customer) -> anyhow::Result<String> {
    match &customer.name {
        None => config::token_from_env(),
        Some(name) => tokens::lookup(name, &Keyring::system()),
    }
}

/// The unnamed customer the environment describes, each variable checked as clap checks it.
pub fn implicit() -> anyhow::Result<Customer> {
    let customer_id = config::setting("TESTIO_CUSTOMER_ID", config::whole_number(1, MAX_ID as i64))?;
    let product_ids = config::setting("TESTIO_PRODUCT_IDS", config::parse_product_ids)?.filter(|ids| !ids.is_empty());
    let since = config::setting("TESTIO_SYNC_SINCE", check_since)?;
    Ok(Customer {
        name: None,
        customer_id: customer_id.unwrap_or(IMPLICIT_CUSTOMER_ID),
        base_url: None,
        product_ids,
        since,
        interval_seconds: None,
        active: true,
        default: true,
    })
}

/// A `--since` text, checked now and kept as typed.
pub fn check_since(text: &str) -> Result<String, String> {
    crate::since::parse(text, chrono::Utc::now()).map(|_| text.trim().to_string())
}
