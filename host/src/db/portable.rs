//! One SQL text, run on either database, for code too small to deserve a text per database
//! (the customer registry). Placeholders are `$1`, `$2`, … numbered in the order they first
//! appear: SQLite reads them as named parameters, numbered in that order, PostgreSQL as
//! positions. Flags are written `TRUE`/`FALSE` and tested bare (`WHERE is_default`), which
//! both read the same way.

use std::sync::Arc;

use anyhow::{Context, Result};
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::Location;
use super::pg::PgTarget;

/// A parameter or a column value. Nulls are typed, so that PostgreSQL knows what they are.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Bool(bool),
}

pub enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres { client: postgres::Client, target: Arc<PgTarget> },
}

impl Conn {
    /// The database at `at`, its schema brought up to date; `create` lets a SQLite file be
    /// made. Blocking: not on an async thread.
    pub fn open(at: &Location, create: bool) -> Result<Self> {
        Ok(match at {
            Location::Sqlite(path) => {
                let flags = if create { rusqlite::OpenFlags::SQLITE_OPEN_CREATE } else { rusqlite::OpenFlags::empty() };
                Self::Sqlite(super::connect(path, flags)?)
            }
            Location::Postgres(target) => {
                Self::Postgres { client: super::pg::migrated(target)?, target: target.clone() }
            }
        })
    }

    /// Every row `sql` returns.
    pub fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        match self {
            Self::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let columns = statement.column_count();
                let rows = statement.query_map(rusqlite::params_from_iter(params), |row| {
                    (0..columns).map(|i| row.get_ref(i).map(from_sqlite)).collect::<rusqlite::Result<_>>().map(Row)
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            }
            Self::Postgres { client, target } => {
                let params: Vec<_> = params.iter().map(pg_param).collect();
                let rows = client.query(sql, &params).map_err(|e| target.fail(e.into()))?;
                rows.iter().map(from_pg).collect()
            }
        }
    }

    /// The first row `sql` returns, if any.
    pub fn row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<()> {
        match self {
            Self::Sqlite(conn) => conn.execute(sql, rusqlite::params_from_iter(params)).map(drop)?,
            Self::Postgres { client, target } => {
                let params: Vec<_> = params.iter().map(pg_param).collect();
                client.execute(sql, &params).map(drop).map_err(|e| target.fail(e.into()))?
            }
        }
        Ok(())
    }

    /// Runs `work` in one transaction that holds the registry's write lock from its start,
    /// so that what it read cannot change before it writes; rolled back on an error.
    pub fn write<T>(&mut self, work: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        // SQLite: the write lock at BEGIN. PostgreSQL: writers of the registry queue, readers don't.
        let begin = match self {
            Self::Sqlite(_) => "BEGIN IMMEDIATE",
            Self::Postgres { .. } => "BEGIN; LOCK TABLE customers IN SHARE ROW EXCLUSIVE MODE",
        };
        self.batch(begin)?;
        match work(self) {
            Ok(value) => self.batch("COMMIT").map(|()| value),
            Err(e) => {
                // The error that matters is the work's; a failed rollback ends with the connection.
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Every table whose rows belong to a customer: those with a `customer_id` column,
    /// found in the schema so that a table added later is included; not the registry
    /// itself, nor the lock's holder records.
    pub fn customer_tables(&mut self) -> Result<Vec<String>> {
        let sql = match self {
            Self::Sqlite(_) => {
                "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c
                 WHERE m.type = 'table' AND c.name = 'customer_id' AND m.name <> 'customers' ORDER BY m.name"
            }
            Self::Postgres { .. } => {
                "SELECT table_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND column_name = 'customer_id'
                   AND table_name NOT IN ('customers', 'sync_lock_holders') ORDER BY table_name"
            }
        };
        self.rows(sql, &[])?.iter().map(|row| row.text(0)).collect()
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        match self {
            Self::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Self::Postgres { client, target } => client.batch_execute(sql).map_err(|e| target.fail(e.into())),
        }
    }
}

/// One row's values, read by position.
pub struct Row(Vec<Value>);

impl Row {
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.value(i)? {
            Value::Int(n) => Ok(*n),
            Value::Text(None) => Ok(None),
            other => anyhow::bail!("column {i} is {other:?}, not a number"),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64> {
        self.opt_int(i)?.with_context(|| format!("column {i} is null"))
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.value(i)? {
            Value::Text(text) => Ok(text.clone()),
            Value::Int(None) => Ok(None),
            other => anyhow::bail!("column {i} is {other:?}, not text"),
        }
    }

    pub fn text(&self, i: usize) -> Result<String> {
        self.opt_text(i)?.with_context(|| format!("column {i} is null"))
    }

    /// A flag: SQLite keeps it as 0 or 1.
    pub fn flag(&self, i: usize) -> Result<bool> {
        match self.value(i)? {
            Value::Bool(flag) => Ok(*flag),
            Value::Int(Some(n)) => Ok(*n != 0),
            other => anyhow::bail!("column {i} is {other:?}, not a flag"),
        }
    }

    fn value(&self, i: usize) -> Result<&Value> {
        self.0.get(i).with_context(|| format!("no column {i}"))
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Value::Int(n) => n.to_sql(),
            Value::Text(text) => text.to_sql(),
            Value::Bool(flag) => flag.to_sql(),
        }
    }
}

fn from_sqlite(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Integer(n) => Value::Int(Some(n)),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Value::Text(Some(String::from_utf8_lossy(bytes).into_owned())),
        ValueRef::Real(x) => Value::Text(Some(x.to_string())),
        ValueRef::Null => Value::Text(None),
    }
}

fn pg_param(value: &Value) -> &(dyn postgres::types::ToSql + Sync) {
    match value {
        Value::Int(n) => n,
        Value::Text(text) => text,
        Value::Bool(flag) => flag,
    }
}

fn from_pg(row: &postgres::Row) -> Result<Row> {
    use postgres::types::Type;
    let values = row.columns().iter().enumerate().map(|(i, column)| {
        Ok(match *column.type_() {
            Type::BOOL => Value::Bool(row.try_get(i)?),
            Type::INT8 => Value::Int(row.try_get(i)?),
            Type::INT4 => Value::Int(row.try_get::<_, Option<i32>>(i)?.map(i64::from)),
            _ => Value::Text(row.try_get(i)?),
        })
    });
    values.collect::<Result<_>>().map(Row)
}
