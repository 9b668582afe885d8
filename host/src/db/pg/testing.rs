//! A database of its own on the test binary's shared throwaway PostgreSQL, for the store's
//! and the lock's tests.

use std::sync::Arc;

use testio_pgtest::{PASSWORD, PgServer};

use super::{PgStore, PgTarget};

pub struct TestDb {
    pub server: Arc<PgServer>,
    pub name: String,
    pub target: Arc<PgTarget>,
}

impl TestDb {
    pub fn new() -> Self {
        let server = PgServer::shared();
        let name = server.create_db();
        let target = Arc::new(PgTarget::parse(&server.url(&name)).expect("the test server's URL parses"));
        Self { server, name, target }
    }

    pub fn store(&self, customer_id: i64) -> PgStore {
        PgStore::open(self.target.clone(), customer_id)
            .unwrap_or_else(|e| panic!("{e:#}\nserver log:\n{}", self.server.log()))
    }

    /// A connection for looking at (and breaking) things behind the store's back.
    pub fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.server.url(&self.name), postgres::NoTls).expect("an admin connection")
    }

    /// A target on this server with another database or password.
    pub fn target_with(&self, database: &str, password: &str) -> PgTarget {
        PgTarget::parse(&self.server.url_with_password(database, password)).expect("a URL that parses")
    }
}

/// A message about a connection names the server and the database, never the password.
pub fn assert_names(message: &str, port: u16, database: &str) {
    assert!(message.contains(&format!("127.0.0.1:{port}")), "no host and port in: {message}");
    assert!(message.contains(&format!("database \"{database}\"")), "no database in: {message}");
    assert!(!message.contains(PASSWORD), "the password shows in: {message}");
}

/// A port on 127.0.0.1 where nothing listens: a server that is down.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
