//! Where a PostgreSQL mirror lives, and what went wrong reaching it. Messages name the
//! server, the database and the user, built from the parsed settings, never from the text
//! the user gave: that may hold the password.

use std::error::Error as _;
use std::fmt;
use std::io::ErrorKind;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{Config, Connection, NoTls, Socket};

use crate::lock::process::HOST_NAME;

/// How long a connection attempt may take, unless the URL says (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PgTarget {
    config: Config,
    label: String,
}

impl PgTarget {
    /// A `postgres://` URL (or `key=value` settings). Without a password in it,
    /// `PGPASSWORD` is used; without a host, `localhost`.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        Self::parse_with(url, std::env::var("PGPASSWORD").ok())
    }

    fn parse_with(url: &str, env_password: Option<String>) -> anyhow::Result<Self> {
        let mut config: Config = url.parse().map_err(|e: tokio_postgres::Error| {
            // The cause names the setting (`invalid value for option `port``), not its value.
            let cause = e.source().map_or_else(|| e.to_string(), ToString::to_string);
            anyhow::anyhow!("the PostgreSQL connection URL is not valid: {cause}")
        })?;
        if config.get_password().is_none()
            && let Some(password) = env_password
        {
            config.password(password);
        }
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            config.host("localhost");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            // So that `pg_stat_activity` names the process even before it holds anything.
            config.application_name(format!("testio-sync (PID {} on {})", std::process::id(), *HOST_NAME));
        }
        let label = label(&config);
        Ok(Self { config, label })
    }

    /// A blocking connection, for the store (never on an async thread).
    pub fn connect(&self) -> anyhow::Result<postgres::Client> {
        let mut config = postgres::Config::from(self.config.clone());
        config.notice_callback(|notice| tracing::debug!("PostgreSQL: {}", notice.message()));
        config.connect(NoTls).map_err(|e| self.fail(e.into()))
    }

    /// An async connection, for the lock; the caller drives the connection.
    pub async fn connect_async(&self) -> anyhow::Result<(tokio_postgres::Client, Connection<Socket, NoTlsStream>)> {
        self.config.connect(NoTls).await.map_err(|e| self.fail(e.into()))
    }

    /// A PostgreSQL error as one line that names the server and database; other errors
    /// pass unchanged.
    pub fn fail(&self, error: anyhow::Error) -> anyhow::Error {
        match error.downcast::<tokio_postgres::Error>() {
            Ok(e) => anyhow::anyhow!(explain(&e, self)),
            Err(other) => other,
        }
    }
}

/// `PostgreSQL at db.example.com:5432, database "mirror", user "alice"`
impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

fn label(config: &Config) -> String {
    let ports = config.get_ports();
    let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
    let hosts: Vec<String> = if config.get_hosts().is_empty() {
        config.get_hostaddrs().iter().enumerate().map(|(i, a)| format!("{a}:{}", port(i))).collect()
    } else {
        config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| match host {
                Host::Tcp(name) => format!("{name}:{}", port(i)),
                Host::Unix(dir) => format!("{} (socket, port {})", dir.display(), port(i)),
            })
            .collect()
    };
    let user = config.get_user().unwrap_or("(the login name)");
    let database = config.get_dbname().unwrap_or(user);
    format!("PostgreSQL at {}, database \"{database}\", user \"{user}\"", hosts.join(","))
}

/// What a failed connection or statement means for the user, naming `at`.
fn explain(e: &tokio_postgres::Error, at: &PgTarget) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        return match code {
            c if *c == SqlState::INVALID_PASSWORD => {
                format!("{at} rejected the password (check the connection URL or PGPASSWORD)")
            }
            c if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                format!("{at} refused the login: {}", db.message())
            }
            c if *c == SqlState::INVALID_CATALOG_NAME => {
                format!("{at}: the database does not exist; create it first (createdb)")
            }
            c if *c == SqlState::INSUFFICIENT_PRIVILEGE => {
                format!("{at}: {}; make the user the database's owner", db.message())
            }
            c if *c == SqlState::TOO_MANY_CONNECTIONS || *c == SqlState::CANNOT_CONNECT_NOW => {
                format!("{at} is not accepting connections: {}", db.message())
            }
            c if *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CRASH_SHUTDOWN => {
                format!("lost the connection to {at}: {}", db.message())
            }
            _ => format!("{at}: {} (SQLSTATE {})", db.message(), code.code()),
        };
    }
    if e.is_closed() {
        return format!("lost the connection to {at}");
    }
    match io_kind(e) {
        Some(ErrorKind::ConnectionRefused) => {
            format!("could not connect to {at}: connection refused; is PostgreSQL running and listening there?")
        }
        Some(ErrorKind::TimedOut) => format!("could not connect to {at}: timed out"),
        Some(ErrorKind::NotFound) => format!("could not connect to {at}: no such host or socket"),
        Some(kind) => format!("lost the connection to {at} ({kind})"),
        None => match e.source() {
            Some(cause) if cause.to_string() == "password missing" => {
                format!("{at} asks for a password; put it in the connection URL or set PGPASSWORD")
            }
            Some(cause) => format!("{at}: {e}: {cause}"),
            None => format!("{at}: {e}"),
        },
    }
}

/// The I/O error behind `e`, if there is one.
fn io_kind(e: &tokio_postgres::Error) -> Option<ErrorKind> {
    let mut cause = e.source();
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cause = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_names_server_database_and_user_never_the_password() {
        let target = PgTarget::parse_with("postgres://alice:s3cret@db.example.com:6543/mirror", None).unwrap();
        assert_eq!(target.to_string(), "PostgreSQL at db.example.com:6543, database \"mirror\", user \"alice\"");
        let defaults = PgTarget::parse_with("postgres://bob@/", Some("pw".into())).unwrap();
        assert_eq!(defaults.config.get_password(), Some(b"pw".as_slice()), "from PGPASSWORD");
        assert_eq!(defaults.to_string(), "PostgreSQL at localhost:5432, database \"bob\", user \"bob\"");
    }

    #[test]
    fn a_server_that_asks_for_a_password_none_was_given_for_says_so() {
        let db = crate::db::pg::testing::TestDb::new();
        let url = format!("postgres://postgres@127.0.0.1:{}/{}", db.server.port(), db.name);
        let target = PgTarget::parse_with(&url, None).unwrap();
        let error = target.connect().err().expect("refused").to_string();
        crate::db::pg::testing::assert_names(&error, db.server.port(), &db.name);
        assert!(error.contains("asks for a password; put it in the connection URL or set PGPASSWORD"), "{error}");
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        for url in ["postgres://alice:s3cret@db:notaport/mirror", "postgres://alice:s3cret@db/mirror?colour=red"] {
            let error = PgTarget::parse_with(url, None).err().expect("refused").to_string();
            assert!(error.starts_with("the PostgreSQL connection URL is not valid: "), "{error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
    }
}
