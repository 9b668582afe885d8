//! A named customer's API token: where it is looked up, first hit wins, and the OS keyring.
//!
//! 1. `TESTIO_CUSTOMER_API_TOKEN_<KEY>`, the name upper-cased with every character other
//!    than A–Z and 0–9 turned into `_` (`acme-eu` → `TESTIO_CUSTOMER_API_TOKEN_ACME_EU`);
//! 2. the OS keyring: service `testio-mcp`, user the customer's name (the reference's entry,
//!    so a token it stored is found as it is).
//!
//! A token is never written to the database, a file, argv, a log or an error: messages name
//! the variable or the keyring, never the value.

use std::sync::Arc;

use anyhow::bail;
use keyring_core::{CredentialStore, Entry, Error};

/// The keyring's service name, the reference's.
pub const KEYRING_SERVICE: &str = "testio-mcp";
/// `TESTIO_KEYRING=off` forces "no keyring" (tests, CI, servers that should never ask one).
pub const KEYRING_SWITCH: &str = "TESTIO_KEYRING";
const VARIABLE_PREFIX: &str = "TESTIO_CUSTOMER_API_TOKEN_";

/// The variable's suffix for `name`: `acme-eu` → `ACME_EU`. Two names with one key would
/// share a variable, so the registry keeps keys unique.
pub fn token_key(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

/// `TESTIO_CUSTOMER_API_TOKEN_ACME_EU` for `acme-eu`.
pub fn variable(name: &str) -> String {
    format!("{VARIABLE_PREFIX}{}", token_key(name))
}

/// The token in `name`'s variable: `None` when unset; an error when set but blank.
pub fn from_variable(name: &str) -> anyhow::Result<Option<String>> {
    let var = variable(name);
    match std::env::var(&var) {
        Ok(token) if token.trim().is_empty() => {
            bail!("{var} is set but empty; put {name}'s token in it, or unset it to use the OS keyring")
        }
        Ok(token) => Ok(Some(token.trim().to_string())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{var} is not valid UTF-8"),
    }
}

/// Where a customer's token comes from, for `customer list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The variable, by name.
    Variable(String),
    Keyring,
    Missing,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Variable(var) => write!(f, "env {var}"),
            Source::Keyring => f.write_str("keyring"),
            Source::Missing => f.write_str("missing"),
        }
    }
}

/// Where `name`'s token would come from; nothing is shown of it.
pub fn source(name: &str, keyring: &Keyring) -> Source {
    match from_variable(name) {
        Ok(Some(_)) => Source::Variable(variable(name)),
        _ if matches!(keyring.get(name), Ok(Some(_))) => Source::Keyring,
        _ => Source::Missing,
    }
}

/// `name`'s token: its variable, else the keyring; else an error naming the variable.
pub fn lookup(name: &str, keyring: &Keyring) -> anyhow::Result<String> {
    if let Some(token) = from_variable(name)? {
        return Ok(token);
    }
    let var = variable(name);
    match keyring.get(name) {
        Ok(Some(token)) => Ok(token),
        Ok(None) => bail!("there is no token for customer {name}: set {var} (the OS keyring holds none for it)"),
        Err(refused) => bail!("there is no token for customer {name}: set {var} ({refused})"),
    }
}

/// Why the keyring could not be used. It holds the keyring's message, never a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The OS keyring, or why there is none. A store is passed in, never set globally, so that
/// unit tests use keyring-core's mock store and nothing else.
pub struct Keyring {
    store: Result<Arc<CredentialStore>, Refused>,
}

impl Keyring {
    /// The OS keyring (Secret Service over D-Bus), unless `TESTIO_KEYRING=off` or the build
    /// has none. Its calls are blocking D-Bus round trips.
    pub fn system() -> Self {
        if std::env::var(KEYRING_SWITCH).is_ok_and(|v| v.trim().eq_ignore_ascii_case("off")) {
            return Self::none(format!("{KEYRING_SWITCH}=off turns the OS keyring off"));
        }
        Self::platform()
    }

    #[cfg(feature = "os-keyring")]
    fn platform() -> Self {
        match zbus_secret_service_keyring_store::Store::new() {
            Ok(store) => Self::with_store(store),
            Err(e) => Self::none(format!("no OS keyring is available: {e}")),
        }
    }

    #[cfg(not(feature = "os-keyring"))]
    fn platform() -> Self {
        Self::none("this build has no OS keyring (built without the os-keyring feature)".to_string())
    }

    pub fn with_store(store: Arc<CredentialStore>) -> Self {
        Self { store: Ok(store) }
    }

    fn none(why: String) -> Self {
        Self { store: Err(Refused(why)) }
    }

    /// Whether there is a keyring to ask at all, or why not.
    pub fn usable(&self) -> Result<(), Refused> {
        self.store.as_ref().map(drop).map_err(Clone::clone)
    }

    fn entry(&self, name: &str) -> Result<Entry, Refused> {
        let store = self.store.as_ref().map_err(Clone::clone)?;
        Entry::new_in_store(store, KEYRING_SERVICE, name).map_err(refused)
    }

    /// The stored token; `None` when there is none (or a blank one).
    pub fn get(&self, name: &str) -> Result<Option<String>, Refused> {
        match self.entry(name)?.get_password() {
            Ok(token) if token.trim().is_empty() => Ok(None),
            Ok(token) => Ok(Some(token.trim().to_string())),
            Err(Error::NoEntry) => Ok(None),
            Err(e) => Err(refused(e)),
        }
    }

    pub fn set(&self, name: &str, token: &str) -> Result<(), Refused> {
        self.entry(name)?.set_password(token).map_err(refused)
    }

    /// Deletes the stored token; `false` when there was none.
    pub fn delete(&self, name: &str) -> Result<bool, Refused> {
        match self.entry(name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(Error::NoEntry) => Ok(false),
            Err(e) => Err(refused(e)),
        }
    }
}

/// keyring-core's messages never quote a secret (`BadEncoding` keeps its bytes to itself).
fn refused(e: Error) -> Refused {
    Refused(format!("the OS keyring refused: {e}"))
}

#[cfg(test)]
mod tests {
    use keyring_core::mock;

    use super::*;

    fn mock_keyring() -> (Keyring, Arc<CredentialStore>) {
        let store: Arc<CredentialStore> = mock::Store::new().unwrap();
        (Keyring::with_store(store.clone()), store)
    }

    /// The next call on `name`'s entry in the mock store fails with `error`.
    fn fail_next(store: &Arc<CredentialStore>, name: &str, error: Error) {
        let entry = Entry::new_in_store(store, KEYRING_SERVICE, name).unwrap();
        entry.as_any().downcast_ref::<mock::Cred>().unwrap().set_error(error);
    }

    fn locked() -> Error {
        Error::NoStorageAccess("the collection is locked".into())
    }

    #[test]
    fn a_name_maps_to_one_variable() {
        assert_eq!(variable("acme-eu"), "TESTIO_CUSTOMER_API_TOKEN_ACME_EU");
        assert_eq!(token_key("acme_eu"), token_key("acme-eu"));
        assert_eq!(variable("a1"), "TESTIO_CUSTOMER_API_TOKEN_A1");
    }

    #[test]
    fn a_stored_token_is_read_back_and_deleted() {
        let (keyring, _) = mock_keyring();
        assert_eq!(keyring.get("acme"), Ok(None));
        keyring.set("acme", "tok-acme-1").unwrap();
        assert_eq!(keyring.get("acme"), Ok(Some("tok-acme-1".to_string())));
        assert_eq!(keyring.get("other"), Ok(None), "one entry per customer name");
        assert_eq!(source("acme", &keyring), Source::Keyring);
        assert_eq!(lookup("acme", &keyring).unwrap(), "tok-acme-1");
        assert_eq!(keyring.delete("acme"), Ok(true));
        assert_eq!(keyring.delete("acme"), Ok(false));
        assert_eq!(source("acme", &keyring), Source::Missing);
    }

    #[test]
    fn a_refusing_keyring_is_an_error_that_names_the_variable_and_never_the_token() {
        let (keyring, store) = mock_keyring();
        keyring.set("acme-eu", "tok-secret-9").unwrap();
        fail_next(&store, "acme-eu", locked());
        let error = lookup("acme-eu", &keyring).unwrap_err().to_string();
        assert!(error.contains("set TESTIO_CUSTOMER_API_TOKEN_ACME_EU"), "{error}");
        assert!(error.contains("the OS keyring refused") && error.contains("locked"), "{error}");
        assert!(!error.contains("tok-secret-9"), "{error}");

        fail_next(&store, "acme-eu", locked());
        let refused = keyring.set("acme-eu", "tok-new").unwrap_err();
        assert!(refused.to_string().contains("locked"), "{refused}");
        assert_eq!(keyring.get("acme-eu"), Ok(Some("tok-secret-9".to_string())), "a refused set changes nothing");
    }

    #[test]
    fn a_missing_token_or_keyring_names_the_variable() {
        let (keyring, _) = mock_keyring();
        let error = lookup("acme", &keyring).unwrap_err().to_string();
        assert!(error.contains("set TESTIO_CUSTOMER_API_TOKEN_ACME (the OS keyring holds none"), "{error}");

        let none = Keyring::none("TESTIO_KEYRING=off turns the OS keyring off".to_string());
        assert!(none.usable().unwrap_err().to_string().contains("TESTIO_KEYRING=off"));
        let error = lookup("acme", &none).unwrap_err().to_string();
        assert!(error.contains("set TESTIO_CUSTOMER_API_TOKEN_ACME (TESTIO_KEYRING=off"), "{error}");
        assert_eq!(source("acme", &none), Source::Missing);
    }

    #[test]
    fn a_blank_stored_token_counts_as_none() {
        let (keyring, _) = mock_keyring();
        keyring.set("acme", "  ").unwrap();
        assert_eq!(keyring.get("acme"), Ok(None));
    }
}
