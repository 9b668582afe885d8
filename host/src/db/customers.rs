//! The customer registry: the `customers` table, in a SQLite file or a PostgreSQL mirror
//! (one SQL text for both, see `portable.rs`). Never a token (see `crate::tokens`). Every
//! change runs in one transaction that holds the registry's write lock from its start, so
//! what it read cannot change before it writes.

use anyhow::{Context, bail};

use super::Location;
use super::columns::now_column;
use super::portable::{Conn, Row, Value};
use crate::customers::Customer;
use crate::tokens;

/// The longest name the rule allows.
pub const MAX_NAME_LEN: usize = 64;

const COLUMNS: &str =
    "name, customer_id, base_url, product_ids, sync_since, refresh_interval_seconds, is_active, is_default";

/// The registry in one database. Blocking: not on an async thread.
pub struct Registry {
    conn: Conn,
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

fn text(value: &str) -> Value {
    Value::Text(Some(value.to_string()))
}

impl Registry {
    /// Opens the database, creating a SQLite file if needed, and brings its schema up to date.
    pub fn open(at: &Location) -> anyhow::Result<Self> {
        Ok(Self { conn: Conn::open(at, true)? })
    }

    /// The registry of an existing database; `None` when there is no SQLite file, which is
    /// an empty registry. Creates nothing.
    pub fn read(at: &Location) -> anyhow::Result<Option<Self>> {
        match at {
            Location::Sqlite(path) if !path.is_file() => Ok(None),
            _ => Ok(Some(Self { conn: Conn::open(at, false)? })),
        }
    }

    pub fn list(&mut self) -> anyhow::Result<Vec<Customer>> {
        let rows = self.conn.rows(&format!("SELECT {COLUMNS} FROM customers ORDER BY name"), &[]);
        rows.and_then(|rows| rows.iter().map(customer).collect()).context("could not read the customers")
    }

    pub fn is_empty(&mut self) -> anyhow::Result<bool> {
        is_empty(&mut self.conn)
    }

    pub fn get(&mut self, name: &str) -> anyhow::Result<Option<Customer>> {
        get(&mut self.conn, name)
    }

    /// `name`'s row, or an error that lists the customers there are.
    pub fn named(&mut self, name: &str) -> anyhow::Result<Customer> {
        named(&mut self.conn, name)
    }

    /// The default customer; an error naming the customers when none is.
    pub fn the_default(&mut self) -> anyhow::Result<Customer> {
        match self.conn.row(&format!("SELECT {COLUMNS} FROM customers WHERE is_default"), &[])? {
            Some(row) => customer(&row),
            None => bail!(
                "no customer is the default (customers: {}); choose one with `testio-sync customer default NAME`",
                names(&mut self.conn)?
            ),
        }
    }

    /// Why `new` cannot be added, naming what already exists; checked again by [`Self::add`].
    pub fn check_new(&mut self, new: &Customer) -> anyhow::Result<()> {
        check_new(&mut self.conn, new)
    }

    /// The local id a new customer gets: above every id the registry and the sync log know,
    /// so that it never takes over rows synced before (1 in a fresh database).
    pub fn next_customer_id(&mut self) -> anyhow::Result<i64> {
        let sql = "SELECT COALESCE(MAX(customer_id), 0) FROM
                     (SELECT customer_id FROM customers UNION ALL SELECT customer_id FROM sync_events) AS ids";
        let highest = self.conn.row(sql, &[])?.context("no answer")?.int(0)?;
        highest.checked_add(1).context("every local customer id is taken; give one with --customer-id")
    }

    /// The local ids that hold synced rows but belong to no registered customer, lowest first.
    pub fn unowned_ids(&mut self) -> anyhow::Result<Vec<i64>> {
        let sql = "SELECT DISTINCT customer_id FROM sync_events
                   WHERE customer_id NOT IN (SELECT customer_id FROM customers) ORDER BY customer_id";
        self.conn.rows(sql, &[])?.iter().map(|row| row.int(0)).collect()
    }

    /// Records `new`; the first customer, or one added with `default`, becomes the default.
    /// Returns the row as stored.
    pub fn add(&mut self, new: &Customer) -> anyhow::Result<Customer> {
        self.conn.write(|conn| {
            check_new(conn, new)?;
            let default = new.default || is_empty(conn)?;
            if default {
                conn.execute("UPDATE customers SET is_default = FALSE WHERE is_default", &[])?;
            }
            let name = new.name.as_deref().context("a registered customer has a name")?;
            let product_ids = new.product_ids.as_ref().map(serde_json::to_string).transpose()?;
            let interval = new.interval_seconds.map(i64::try_from).transpose()?;
            let sql = format!(
                "INSERT INTO customers (token_key, created_at, updated_at, {COLUMNS})
                 VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            );
            let params = [
                text(&tokens::token_key(name)),
                text(&now_column()),
                text(name),
                Value::Int(Some(new.customer_id)),
                Value::Text(new.base_url.clone()),
                Value::Text(product_ids),
                Value::Text(new.since.clone()),
                Value::Int(interval),
                Value::Bool(new.active),
                Value::Bool(default),
            ];
            conn.execute(&sql, &params).context("could not record the customer")?;
            named(conn, name)
        })
    }

    /// Makes `name` the default; returns the previous default's name, if another.
    pub fn set_default(&mut self, name: &str) -> anyhow::Result<Option<String>> {
        self.conn.write(|conn| {
            named(conn, name)?;
            let previous =
                conn.row("SELECT name FROM customers WHERE is_default", &[])?.map(|r| r.text(0)).transpose()?;
            let now = text(&now_column());
            conn.execute(
                "UPDATE customers SET is_default = FALSE, updated_at = $1 WHERE is_default",
                std::slice::from_ref(&now),
            )?;
            conn.execute(
                "UPDATE customers SET is_default = TRUE, updated_at = $1 WHERE name = $2",
                &[now, text(name)],
            )?;
            Ok(previous.filter(|p| p != name))
        })
    }

    /// Checks that `name` may be removed: it exists, and it is not the default while other
    /// customers exist (they would have none). Returns its row.
    pub fn check_removal(&mut self, name: &str) -> anyhow::Result<Customer> {
        check_removal(&mut self.conn, name)
    }

    /// Removes `name` from the registry and, with `purge`, every row synced under its local
    /// id in every table, the sync log included, all in one transaction.
    pub fn remove(&mut self, name: &str, purge: bool) -> anyhow::Result<Customer> {
        self.conn.write(|conn| {
            let removed = check_removal(conn, name)?;
            if purge {
                for table in conn.customer_tables()? {
                    let sql = format!("DELETE FROM \"{table}\" WHERE customer_id = $1");
                    conn.execute(&sql, &[Value::Int(Some(removed.customer_id))])
                        .with_context(|| format!("could not delete {name}'s rows from {table}"))?;
                }
            }
            conn.execute("DELETE FROM customers WHERE name = $1", &[text(name)])?;
            Ok(removed)
        })
    }

    /// How many rows the local id `customer_id` holds, over every table.
    pub fn rows_of(&mut self, customer_id: i64) -> anyhow::Result<i64> {
        let mut total = 0;
        for table in self.conn.customer_tables()? {
            let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE customer_id = $1");
            total += self.conn.row(&sql, &[Value::Int(Some(customer_id))])?.context("no count")?.int(0)?;
        }
        Ok(total)
    }
}

fn is_empty(conn: &mut Conn) -> anyhow::Result<bool> {
    conn.row("SELECT NOT EXISTS (SELECT 1 FROM customers)", &[])?.context("no answer")?.flag(0)
}

fn get(conn: &mut Conn, name: &str) -> anyhow::Result<Option<Customer>> {
    let row = conn.row(&format!("SELECT {COLUMNS} FROM customers WHERE name = $1"), &[text(name)])?;
    row.as_ref().map(customer).transpose()
}

fn named(conn: &mut Conn, name: &str) -> anyhow::Result<Customer> {
    match get(conn, name)? {
        Some(customer) => Ok(customer),
        None => bail!("there is no customer {name:?}; customers: {}", names(conn)?),
    }
}

/// `a, b (default)`, or `none yet (add one with …)`, for messages.
fn names(conn: &mut Conn) -> anyhow::Result<String> {
    let rows = conn.rows("SELECT name, is_default FROM customers ORDER BY name", &[])?;
    let names = rows
        .iter()
        .map(|row| Ok(if row.flag(1)? { format!("{} (default)", row.text(0)?) } else { row.text(0)? }))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if names.is_empty() {
        return Ok("none yet (add one with `testio-sync customer add NAME`)".to_string());
    }
    Ok(names.join(", "))
}

/// The name of the customer whose `column` is `value`, if any.
fn owner(conn: &mut Conn, column: &str, value: Value) -> anyhow::Result<Option<String>> {
    let row = conn.row(&format!("SELECT name FROM customers WHERE {column} = $1"), &[value])?;
    row.map(|r| r.text(0)).transpose()
}

fn check_new(conn: &mut Conn, new: &Customer) -> anyhow::Result<()> {
    let name = new.name.as_deref().context("a registered customer has a name")?;
    check_name(name)?;
    if get(conn, name)?.is_some() {
        bail!("customer {name} already exists; customers: {}", names(conn)?);
    }
    if let Some(twin) = owner(conn, "token_key", text(&tokens::token_key(name)))? {
        bail!(
            "{name} would use the same token variable as {twin} ({}); choose another name; customers: {}",
            tokens::variable(name),
            names(conn)?
        );
    }
    if let Some(owner) = owner(conn, "customer_id", Value::Int(Some(new.customer_id)))? {
        bail!("local id {} already belongs to customer {owner}; choose another --customer-id", new.customer_id);
    }
    Ok(())
}

fn check_removal(conn: &mut Conn, name: &str) -> anyhow::Result<Customer> {
    let customer = named(conn, name)?;
    let others = conn.rows("SELECT name FROM customers WHERE name <> $1 ORDER BY name", &[text(name)])?;
    let others = others.iter().map(|row| row.text(0)).collect::<anyhow::Result<Vec<_>>>()?;
    if customer.default && !others.is_empty() {
        bail!(
            "{name} is the default customer; make another the default first (`testio-sync customer default NAME`; \
             customers: {}). Nothing was removed",
            others.join(", ")
        );
    }
    Ok(customer)
}

fn customer(row: &Row) -> anyhow::Result<Customer> {
    let product_ids = row.opt_text(3)?.map(|text| serde_json::from_str(&text)).transpose();
    let interval = row.opt_int(5)?.map(u64::try_from).transpose();
    Ok(Customer {
        name: Some(row.text(0)?),
        customer_id: row.int(1)?,
        base_url: row.opt_text(2)?,
        product_ids: product_ids.context("a customer's product ids are not a JSON array")?,
        since: row.opt_text(4)?,
        interval_seconds: interval.context("a customer's refresh interval is negative")?,
        active: row.flag(6)?,
        default: row.flag(7)?,
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
        removal_and_purge(&mut registry);
    }

    #[test]
    fn the_registry_in_postgresql_behaves_as_in_sqlite() {
        let db = crate::db::pg::testing::TestDb::new();
        let at = Location::Postgres(db.target.clone());
        assert!(Registry::read(&at).unwrap().expect("a server's registry").is_empty().unwrap());
        let mut registry = Registry::open(&at).unwrap();
        let added = registry.add(&named_customer("acme", 1)).unwrap();
        assert_eq!(added, Customer { default: true, ..named_customer("acme", 1) }, "read back as stored");
        assert_eq!(registry.set_default("acme").unwrap(), None);
        registry.remove("acme", false).unwrap();
        removal_and_purge(&mut registry);
        let tables = registry.conn.customer_tables().unwrap();
        assert!(!tables.iter().any(|t| t == "sync_lock_holders" || t == "customers"), "{tables:?}");
    }

    /// Two customers with rows; the default goes last; a purge takes only its own rows.
    fn removal_and_purge(registry: &mut Registry) {
        registry.add(&named_customer("acme", 1)).unwrap();
        registry.add(&named_customer("beta", 2)).unwrap();
        for id in [1, 2] {
            let id = [Value::Int(Some(id))];
            let rows = [
                "INSERT INTO sync_events (customer_id, started_at, status, trigger_source, phases)
                 VALUES ($1, '2026-11-30T00:00:00Z', 'success', 'cli', 'products')",
                "INSERT INTO sync_metadata (customer_id, key, value) VALUES ($1, 'k', 'v')",
                "INSERT INTO products (customer_id, id, title, data) VALUES ($1, 7, 't', '{}')",
            ];
            for sql in rows {
                registry.conn.execute(sql, &id).unwrap();
            }
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
        let (_dir, mut registry) = registry();
        let tables = registry.conn.customer_tables().unwrap();
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
