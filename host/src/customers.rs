//! Which customer a command works for: a registry row (`customer add`), or, while the
//! registry is empty, the implicit unnamed customer of `TESTIO_CUSTOMER_API_TOKEN`,
//! `TESTIO_CUSTOMER_ID`, `TESTIO_PRODUCT_IDS` and `TESTIO_SYNC_SINCE`, exactly as before
//! there was a registry. Nothing here creates a database.

use serde::Serialize;

use crate::config::{self, MAX_ID};
use crate::db::Location;
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
pub fn resolve(db: &Location, name: Option<&str>) -> anyhow::Result<Customer> {
    match (name, Registry::read(db)?) {
        (Some(name), Some(mut registry)) => registry.named(name),
        (Some(name), None) => Err(unregistered(db, name)),
        (None, Some(mut registry)) => match registry.is_empty()? {
            true => implicit(),
            false => registry.the_default(),
        },
        (None, None) => implicit(),
    }
}

/// The error for `name` when there is no database, hence no registry, at `db`.
pub fn unregistered(db: &Location, name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "there is no customer {name:?}: no customers are registered in {db}; add one with `testio-sync customer add \
         {name}`"
    )
}

/// Every active customer, by name; the implicit customer while the registry is empty.
pub fn active(db: &Location) -> anyhow::Result<Vec<Customer>> {
    let customers = match Registry::read(db)? {
        Some(mut registry) => registry.list()?,
        None => Vec::new(),
    };
    if customers.is_empty() {
        return Ok(vec![implicit()?]);
    }
    Ok(customers.into_iter().filter(|c| c.active).collect())
}

/// The customer's API token: `TESTIO_CUSTOMER_API_TOKEN` for the implicit one; for a named
/// one its variable, else the OS keyring (see [`tokens`]). May ask the keyring over D-Bus.
pub fn token_for(customer: &Customer) -> anyhow::Result<(String, String)> {
    let Some(name) = &customer.name else {
        return Ok((config::token_from_env()?, crate::api::TOKEN_VAR.to_string()));
    };
    let from = match tokens::from_variable(name)? {
        Some(_) => tokens::variable(name),
        None => format!("the OS keyring's token for {name} (or set {})", tokens::variable(name)),
    };
    Ok((tokens::lookup(name, &Keyring::system())?, from))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(name: &str, customer_id: i64, active: bool) -> Customer {
        Customer {
            name: Some(name.to_string()),
            customer_id,
            base_url: None,
            product_ids: None,
            since: None,
            interval_seconds: None,
            active,
            default: false,
        }
    }

    #[test]
    fn without_a_database_there_is_only_the_implicit_customer_and_nothing_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let db = Location::Sqlite(dir.path().join("cache.db"));
        assert_eq!(resolve(&db, None).unwrap().name, None);
        assert_eq!(active(&db).unwrap().len(), 1);
        let unknown = format!("{:#}", resolve(&db, Some("acme")).unwrap_err());
        assert!(unknown.contains("no customers are registered"), "{unknown}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_name_resolves_to_its_row_and_no_name_to_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let db = Location::Sqlite(dir.path().join("cache.db"));
        let mut registry = Registry::open(&db).unwrap();
        assert_eq!(resolve(&db, None).unwrap().name, None, "an empty registry: the implicit customer");
        registry.add(&registered("acme", 1, true)).unwrap();
        registry.add(&registered("beta", 2, false)).unwrap();
        assert_eq!(resolve(&db, Some("beta")).unwrap(), registered("beta", 2, false));
        assert_eq!(resolve(&db, None).unwrap(), Customer { default: true, ..registered("acme", 1, true) });
        let unknown = format!("{:#}", resolve(&db, Some("gamma")).unwrap_err());
        assert!(unknown.contains("there is no customer \"gamma\"; customers: acme (default), beta"), "{unknown}");
        let names: Vec<_> = active(&db).unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, [Some("acme".to_string())], "inactive customers are left out");
    }
}
