//! The customer registry: the `customers` table. Never a token (see `crate::tokens`).
//! Every change runs in one IMMEDIATE transaction: it takes the write lock at `BEGIN`, so
//! what it read cannot change before it writes.

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use super::Location;
use super::columns::now_column;
use crate::customers::Customer;
use crate::tokens;

/// The longest name the rule allows.
pub const MAX_NAME_LEN: usize = 64;

const COLUMNS: &str =
    "name, customer_id, base_url, product_ids, sync_since, refresh_interval_seconds, is_active, is_default";

/// The registry in one database file.
pub struct Registry {
    conn: Connection,
}

/// `^[a-z][a-z0-9_-]{0,63}$`: one spelling per name, safe in file names and log lines.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !(starts_well && rest_ok && name.len() <= MAX_NAME_LEN) {
        bail!(
            "customer name {name:?} is not valid; use 1 to {MAX_NAME_LEN} lower-case letters, digits, '-' or '_', \
             starting with a letter"
        );
    }
    Ok(())
}

impl Registry {
    /// Opens the database, creating it if needed, and brings its schema up to date.
    pub fn open(at: &Location) -> anyhow::Result<Self> {
        match at {
            Location::Sqlite(path) => Ok(Self { conn: super::connect(path, OpenFlags::SQLITE_OPEN_CREATE)? }),
            Location::Postgres(_) => bail!("the customer registry is not available on {at} yet; use a SQLite --db"),
        }
    }

    /// The registry of an existing database; `None` when there is no file, which is an
    /// empty registry. Creates nothing.
    pub fn read(at: &Location) -> anyhow::Result<Option<Self>> {
        match at {
            Location::Sqlite(path) if path.is_file() => {
                Ok(Some(Self { conn: super::connect(path, OpenFlags::empty())? }))
            }
            _ => Ok(None),
        }
    }

    pub fn list(&self) -> anyhow::Result<Vec<Customer>> {
        let sql = format!("SELECT {COLUMNS} FROM customers ORDER BY name");
        let mut statement = self.conn.prepare(&sql)?;
        let rows = statement.query_map([], customer)?;
        rows.collect::<rusqlite::Result<_>>().context("could not read the customers")
    }

    pub fn is_empty(&self) -> anyhow::Result<bool> {
        Ok(self.conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM customers)", [], |r| r.get(0))?)
    }

    pub fn get(&self, name: &str) -> anyhow::Result<Option<Customer>> {
        get(&self.conn, name)
    }

    /// `name`'s row, or an error that lists the customers there are.
    pub fn named(&self, name: &str) -> anyhow::Result<Customer> {
        named(&self.conn, name)
    }

    /// The default customer; an error naming the customers when none is.
    pub fn the_default(&self) -> anyhow::Result<Customer> {
        let sql = format!("SELECT {COLUMNS} FROM customers WHERE is_default = 1");
        match self.conn.query_row(&sql, [], customer).optional()? {
            Some(customer) => Ok(customer),
            None => bail!(
                "no customer is the default (customers: {}); choose one with `testio-sync customer default NAME`",
                names(&self.conn)?
            ),
        }
    }

    /// Why `new` cannot be added, naming what already exists; checked again by [`Self::add`].
    pub fn check_new(&self, new: &Customer) -> anyhow::Result<()> {
        check_new(&self.conn, new)
    }

    /// The local id a new customer gets: above every id the registry and the sync log know,
    /// so that it never takes over rows synced before (1 in a fresh database).
    pub fn next_customer_id(&self) -> anyhow::Result<i64> {
        let highest: i64 = self.conn.query_row(
            "SELECT MAX(COALESCE((SELECT MAX(customer_id) FROM customers), 0),
                        COALESCE((SELECT MAX(customer_id) FROM sync_events), 0))",
            [],
            |r| r.get(0),
        )?;
        highest.checked_add(1).context("every local customer id is taken; give one with --customer-id")
    }

    /// The local ids that hold synced rows but belong to no registered customer, lowest first.
    pub fn unowned_ids(&self) -> anyhow::Result<Vec<i64>> {
        let mut statement = self.conn.prepare(
            "SELECT DISTINCT customer_id FROM sync_events
             WHERE customer_id NOT IN (SELECT customer_id FROM customers) ORDER BY customer_id",
        )?;
        let ids = statement.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// Records `new`; the first customer, or one added with `default`, becomes the default.
    /// Returns the row as stored.
    pub fn add(&mut self, new: &Customer) -> anyhow::Result<Customer> {
        let tx = self.write()?;
        check_new(&tx, new)?;
        let first: bool = tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM customers)", [], |r| r.get(0))?;
        let default = new.default || first;
        if default {
            tx.execute("UPDATE customers SET is_default = 0 WHERE is_default = 1", [])?;
        }
        let name = new.name.as_deref().context("a registered customer has a name")?;
        let product_ids = new.product_ids.as_ref().map(serde_json::to_string).transpose()?;
        let interval = new.interval_seconds.map(i64::try_from).transpose()?;
        let now = now_column();
        tx.execute(
            &format!(
                "INSERT INTO customers (token_key, created_at, updated_at, {COLUMNS})
                 VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ),
            params![
                tokens::token_key(name),
                now,
                name,
                new.customer_id,
                new.base_url,
                product_ids,
                new.since,
                interval,
                new.active,
                default
            ],
        )
        .context("could not record the customer")?;
        let added = named(&tx, name)?;
        tx.commit()?;
        Ok(added)
    }

    /// Makes `name` the default; returns the previous default's name, if another.
    pub fn set_default(&mut self, name: &str) -> anyhow::Result<Option<String>> {
        let tx = self.write()?;
        named(&tx, name)?;
        let previous: Option<String> =
            tx.query_row("SELECT name FROM customers WHERE is_default = 1", [], |r| r.get(0)).optional()?;
        tx.execute("UPDATE customers SET is_default = 0, updated_at = ?1 WHERE is_default = 1", [now_column()])?;
        tx.execute(
            "UPDATE customers SET is_default = 1, updated_at = ?2 WHERE name = ?1",
            params![name, now_column()],
        )?;
        tx.commit()?;
        Ok(previous.filter(|p| p != name))
    }

    /// Checks that `name` may be removed: it exists, and it is not the default while other
    /// customers exist (they would have none). Returns its row.
    pub fn check_removal(&self, name: &str) -> anyhow::Result<Customer> {
        check_removal(&self.conn, name)
    }

    /// Removes `name` from the registry and, with `purge`, every row synced under its local
    /// id in every table, the sync log included, all in one transaction.
    pub fn remove(&mut self, name: &str, purge: bool) -> anyhow::Result<Customer> {
        let tx = self.write()?;
        let removed = check_removal(&tx, name)?;
        if purge {
            for table in customer_tables(&tx)? {
                tx.execute(&format!("DELETE FROM \"{table}\" WHERE customer_id = ?1"), [removed.customer_id])
                    .with_context(|| format!("could not delete {name}'s rows from {table}"))?;
            }
        }
        tx.execute("DELETE FROM customers WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(removed)
    }

    /// How many rows the local id `customer_id` holds, over every table.
    pub fn rows_of(&self, customer_id: i64) -> anyhow::Result<i64> {
        let mut total = 0;
        for table in customer_tables(&self.conn)? {
            let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE customer_id = ?1");
            total += self.conn.query_row(&sql, [customer_id], |r| r.get::<_, i64>(0))?;
        }
        Ok(total)
    }

    fn write(&mut self) -> anyhow::Result<Transaction<'_>> {
        Ok(self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
    }
}

fn get(conn: &Connection, name: &str) -> anyhow::Result<Option<Customer>> {
    let sql = format!("SELECT {COLUMNS} FROM customers WHERE name = ?1");
    Ok(conn.query_row(&sql, [name], customer).optional()?)
}

fn named(conn: &Connection, name: &str) -> anyhow::Result<Customer> {
    match get(conn, name)? {
        Some(customer) => Ok(customer),
        None => bail!("there is no customer {name:?}; customers: {}", names(conn)?),
    }
}

/// `a, b (default)`, or `none yet (add one with …)`, for messages.
fn names(conn: &Connection) -> anyhow::Result<String> {
    let mut statement = conn.prepare("SELECT name, is_default FROM customers ORDER BY name")?;
    let names: Vec<String> = statement
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?
        .map(|row| row.map(|(name, default)| if default { format!("{name} (default)") } else { name }))
        .collect::<rusqlite::Result<_>>()?;
    if names.is_empty() {
        return Ok("none yet (add one with `testio-sync customer add NAME`)".to_string());
    }
    Ok(names.join(", "))
}

fn check_new(conn: &Connection, new: &Customer) -> anyhow::Result<()> {
    let name = new.name.as_deref().context("a registered customer has a name")?;
    check_name(name)?;
    if get(conn, name)?.is_some() {
        bail!("customer {name} already exists; customers: {}", names(conn)?);
    }
    let key = tokens::token_key(name);
    let twin: Option<String> =
        conn.query_row("SELECT name FROM customers WHERE token_key = ?1", [&key], |r| r.get(0)).optional()?;
    if let Some(twin) = twin {
        bail!(
            "{name} would use the same token variable as {twin} ({}); choose another name; customers: {}",
            tokens::variable(name),
            names(conn)?
        );
    }
    let owner: Option<String> = conn
        .query_row("SELECT name FROM customers WHERE customer_id = ?1", [new.customer_id], |r| r.get(0))
        .optional()?;
    if let Some(owner) = owner {
        bail!("local id {} already belongs to customer {owner}; choose another --customer-id", new.customer_id);
    }
    Ok(())
}

fn check_removal(conn: &Connection, name: &str) -> anyhow::Result<Customer> {
    let customer = named(conn, name)?;
    let others: Vec<String> = {
        let mut statement = conn.prepare("SELECT name FROM customers WHERE name <> ?1 ORDER BY name")?;
        statement.query_map([name], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    if customer.default && !others.is_empty() {
        bail!(
            "{name} is the default customer; make another the default first (`testio-sync customer default NAME`; \
             customers: {}). Nothing was removed",
            others.join(", ")
        );
    }
    Ok(customer)
}

/// Every table whose rows belong to a customer: those with a `customer_id` column, found in
/// the schema so that a table added later is purged too.
fn customer_tables(conn: &Connection) -> anyhow::Result<Vec<String>> {
    let mut statement = conn.prepare(
        "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c
         WHERE m.type = 'table' AND c.name = 'customer_id' AND m.name <> 'customers' ORDER BY m.name",
    )?;
    let tables = statement.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(tables)
}

fn customer(row: &Row) -> rusqlite::Result<Customer> {
    let product_ids: Option<String> = row.get(3)?;
    let product_ids = product_ids
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(Customer {
        name: Some(row.get(0)?),
        customer_id: row.get(1)?,
        base_url: row.get(2)?,
        product_ids,
        since: row.get(4)?,
        interval_seconds: row.get(5)?,
        active: row.get(6)?,
        default: row.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named_customer(name: &str, customer_id: i64) -> Customer {
        Customer {
            name: Some(name.to_string()),
            customer_id,
            base_url: None,
            product_ids: Some(vec![598, 599]),
            since: Some("30 days ago".to_string()),
            interval_seconds: Some(600),
            active: true,
            default: false,
        }
    }

    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(&Location::Sqlite(dir.path().join("cache.db"))).unwrap();
        (dir, registry)
    }

    fn error(result: anyhow::Result<impl std::fmt::Debug>) -> String {
        format!("{:#}", result.unwrap_err())
    }

    #[test]
    fn names_follow_the_rule() {
        for good in ["a", "acme", "acme-eu", "acme_eu", "a1", &"a".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Acme", "1acme", "-a", "acme eu", "acmé", &"a".repeat(65), "a/b"] {
            assert!(error(check_name(bad)).contains("is not valid"), "{bad}");
        }
    }

    #[test]
    fn the_first_customer_is_the_default_and_rows_read_back_as_stored() {
        let (_dir, mut registry) = registry();
        assert!(registry.is_empty().unwrap());
        assert_eq!(registry.next_customer_id().unwrap(), 1);
        let first = registry.add(&named_customer("acme", 1)).unwrap();
        assert_eq!(first, Customer { default: true, ..named_customer("acme", 1) });
        let second = registry.add(&named_customer("beta", 2)).unwrap();
        assert!(!second.default);
        assert_eq!(registry.list().unwrap(), vec![first.clone(), second]);
        assert_eq!(registry.the_default().unwrap(), first);
        assert_eq!(registry.next_customer_id().unwrap(), 3);
    }

    #[test]
    fn one_default_at_a_time() {
        let (_dir, mut registry) = registry();
        registry.add(&named_customer("acme", 1)).unwrap();
        registry.add(&Customer { default: true, ..named_customer("beta", 2) }).unwrap();
        assert_eq!(registry.the_default().unwrap().name.as_deref(), Some("beta"));
        assert_eq!(registry.set_default("acme").unwrap().as_deref(), Some("beta"));
        assert_eq!(registry.set_default("acme").unwrap(), None, "already the default");
        let defaults: Vec<_> = registry.list().unwrap().into_iter().filter(|c| c.default).collect();
        assert_eq!(defaults.len(), 1);
        assert!(
            error(registry.set_default("gamma"))
                .contains("there is no customer \"gamma\"; customers: acme (default), beta")
        );
    }

    #[test]
    fn a_duplicate_name_variable_or_id_is_refused_and_names_what_exists() {
        let (_dir, mut registry) = registry();
        registry.add(&named_customer("acme-eu", 1)).unwrap();
        assert!(error(registry.add(&named_customer("acme-eu", 2))).contains("customer acme-eu already exists"));
        let twin = error(registry.add(&named_customer("acme_eu", 2)));
        assert!(
            twin.contains("acme_eu would use the same token variable as acme-eu (TESTIO_CUSTOMER_API_TOKEN_ACME_EU)"),
            "{twin}"
        );
        let taken = error(registry.add(&named_customer("beta", 1)));
        assert!(taken.contains("local id 1 already belongs to customer acme-eu"), "{taken}");
        assert_eq!(registry.list().unwrap().len(), 1);
    }

    #[test]
    fn the_default_is_removed_last_and_a_purge_deletes_only_that_customers_rows() {
        let (_dir, mut registry) = registry();
        registry.add(&named_customer("acme", 1)).unwrap();
        registry.add(&named_customer("beta", 2)).unwrap();
        for id in [1, 2] {
            registry
                .conn
                .execute(
                    "INSERT INTO sync_events (customer_id, started_at, status, trigger_source, phases)
                 VALUES (?1, 'now', 'success', 'cli', 'products')",
                    [id],
                )
                .unwrap();
            registry.conn.execute("INSERT INTO sync_metadata VALUES (?1, 'k', 'v')", [id]).unwrap();
            registry
                .conn
                .execute("INSERT INTO products (customer_id, id, title, data) VALUES (?1, 7, 't', '{}')", [id])
                .unwrap();
        }
        let refused = error(registry.remove("acme", true));
        assert!(refused.contains("acme is the default customer; make another the default first"), "{refused}");
        assert!(refused.contains("customers: beta"), "{refused}");
        assert_eq!(registry.rows_of(1).unwrap(), 3, "nothing was deleted");

        assert_eq!(registry.remove("beta", false).unwrap().customer_id, 2);
        assert_eq!(registry.rows_of(2).unwrap(), 3, "kept");
        assert_eq!(registry.unowned_ids().unwrap(), vec![2]);
        assert_eq!(registry.next_customer_id().unwrap(), 3, "never a kept customer's id");
        registry.remove("acme", true).unwrap();
        assert_eq!(registry.rows_of(1).unwrap(), 0, "purged, the sync log included");
        assert_eq!(registry.rows_of(2).unwrap(), 3, "another customer's rows are untouched");
        assert!(registry.is_empty().unwrap());
        assert!(error(registry.remove("acme", false)).contains("customers: none yet"));
    }

    #[test]
    fn every_table_with_a_customer_id_is_purged() {
        let (_dir, registry) = registry();
        let tables = customer_tables(&registry.conn).unwrap();
        for table in ["bugs", "problem_ranges", "products", "sync_events", "sync_metadata", "tests", "tests_coverage"] {
            assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
        }
        assert!(!tables.iter().any(|t| t == "customers"));
    }

    #[test]
    fn reading_a_missing_database_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Registry::read(&Location::Sqlite(dir.path().join("cache.db"))).unwrap().is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
