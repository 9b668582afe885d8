//! A simulated account, a scratch folder and a way to run the binary against them.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use std::collections::BTreeSet;
use std::sync::Arc;

use rusqlite::Connection;
use testio_pgtest::{CONTENT, PASSWORD, PgServer};
use testio_sim::{Faults, SimConfig, Simulator};
use tokio::io::AsyncBufReadExt;

pub const BIN: &str = env!("CARGO_BIN_EXE_testio-sync");

pub struct Account {
    pub sim: Simulator,
    pub dir: tempfile::TempDir,
    /// The account's PostgreSQL mirror; `None`: the SQLite file [`Account::db`].
    pub pg: Option<PgDb>,
}

/// The `pg_locks` rows of the sync locks held in the connection's own database (the
/// server is shared by the tests that run at once).
pub const MINE: &str = "locktype = 'advisory' AND granted \
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// Where a test's mirror lives; tests that run on both take one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of its own on the test binary's shared PostgreSQL.
pub struct PgDb {
    pub server: Arc<PgServer>,
    pub name: String,
}

impl PgDb {
    pub fn new() -> Self {
        let server = PgServer::shared();
        let name = server.create_db();
        Self { server, name }
    }

    /// With the fixture's password: every output is checked not to show it.
    pub fn url(&self) -> String {
        self.server.url(&self.name)
    }

    /// See [`Account::content`].
    pub fn content(&self) -> BTreeSet<String> {
        let mut rows = BTreeSet::new();
        for (table, columns) in CONTENT {
            let sql = format!("SELECT ROW({columns})::text FROM {table}");
            let texts: Vec<String> = self.with(|c| c.query(&sql, &[]).unwrap().iter().map(|r| r.get(0)).collect());
            rows.extend(texts.into_iter().map(|text| format!("{table}: {text}")));
        }
        rows
    }

    /// Runs `work` on a connection of its own, off the async threads (the blocking client
    /// must not run on them).
    pub fn with<T>(&self, work: impl FnOnce(&mut postgres::Client) -> T) -> T {
        tokio::task::block_in_place(|| {
            let mut client = postgres::Client::connect(&self.url(), postgres::NoTls)
                .unwrap_or_else(|e| panic!("a connection to {}: {e}\n{}", self.name, self.server.log()));
            work(&mut client)
        })
    }
}

/// What a run of the binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// The test server's password shows nowhere: not on stdout, not on stderr.
    pub fn assert_no_password(&self) {
        let shown = self.stdout.contains(PASSWORD) || self.stderr.contains(PASSWORD);
        assert!(!shown, "the password shows:\n{}\n{}", self.stdout, self.stderr);
    }

    /// Asserts the exit code, showing stderr when it is wrong.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        self
    }
}

impl Account {
    pub async fn start(products: u32, features: u32, tests: u32) -> Self {
        Self::with(SimConfig { products, features, tests, ..SimConfig::default() }).await
    }

    pub async fn with(config: SimConfig) -> Self {
        Self::on(Backend::Sqlite, config).await
    }

    /// An account whose mirror is on `backend`.
    pub async fn on(backend: Backend, config: SimConfig) -> Self {
        let sim = Simulator::start(config, 0).await.expect("the simulator starts");
        let pg = (backend == Backend::Postgres).then(PgDb::new);
        Self { sim, dir: tempfile::tempdir().expect("a temp dir"), pg }
    }

    /// A one-product account whose API answers nothing for ten minutes: a sync started
    /// against it records its start, then waits on its first request until it is stopped.
    pub async fn stalled() -> Self {
        let faults = Faults { slow_percent: 100, slow: Duration::from_secs(600), ..Faults::default() };
        Self::with(SimConfig { products: 1, features: 1, tests: 5, faults, ..SimConfig::default() }).await
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("cache.db")
    }

    /// What `--db` takes: the SQLite file's path, or the PostgreSQL URL.
    pub fn db_arg(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url(),
            None => self.db().to_str().expect("a UTF-8 temp path").to_string(),
        }
    }

    /// `testio-sync sync --db <db> ARGS` with the simulator's URL and token.
    pub async fn sync(&self, args: &[&str]) -> Run {
        let db = self.db_arg();
        let mut full = vec!["sync", "--db", &db];
        full.extend_from_slice(args);
        self.run(&full, self.sim.token()).await
    }

    pub async fn run(&self, args: &[&str], token: &str) -> Run {
        self.run_with(args, token, &[]).await
    }

    /// Every run is checked not to show the test server's password.
    pub async fn run_with(&self, args: &[&str], token: &str, env: &[(&str, &str)]) -> Run {
        let run: Run = command(args)
            .envs(env.iter().copied())
            .env("TESTIO_CUSTOMER_API_BASE_URL", self.sim.base_url())
            .env("TESTIO_CUSTOMER_API_TOKEN", token)
            .output()
            .await
            .expect("the binary runs")
            .into();
        run.assert_no_password();
        run
    }

    /// How many test pages the simulator served per product since the last clear.
    pub fn pages_per_product(&self) -> std::collections::BTreeMap<u64, usize> {
        let mut pages = std::collections::BTreeMap::new();
        for r in self.sim.requests() {
            if let Some(product) = product_of_tests_request(&r.path) {
                *pages.entry(product).or_default() += 1;
            }
        }
        pages
    }
}

fn product_of_tests_request(path: &str) -> Option<u64> {
    let rest = path.strip_prefix("/customer/v2/products/")?;
    let (id, tail) = rest.split_once('/')?;
    (tail == "exploratory_tests").then(|| id.parse().ok())?
}

/// The binary with a clean environment: no settings or customers' tokens leak in from the
/// machine, and never a desktop keyring.
pub fn command(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).env("RUST_LOG", "info").env("TESTIO_KEYRING", "off").env_remove("TESTIO_CUSTOMER_API_TOKEN");
    for (var, _) in
        std::env::vars_os().filter(|(var, _)| var.to_string_lossy().starts_with("TESTIO_CUSTOMER_API_TOKEN_"))
    {
        cmd.env_remove(var);
    }
    for var in [
        "TESTIO_PRODUCT_IDS",
        "TESTIO_SYNC_SINCE",
        "TESTIO_DB_PATH",
        "TESTIO_DB_URL",
        "PGPASSWORD",
        "TESTIO_SYNC_LOCK_TIMEOUT_SECONDS",
        "TESTIO_CUSTOMER_ID",
        "TESTIO_REFRESH_INTERVAL_SECONDS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A long-running `testio-sync` (daemon, mcp) against the account, its stderr collected.
pub struct Server {
    pub child: tokio::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// The task copying stderr into `stderr`; it ends at EOF, once the process is gone.
    reader: tokio::task::JoinHandle<()>,
}

impl Account {
    /// `testio-sync COMMAND --db <db>` with the simulator's URL and token, plus `env`.
    pub fn spawn(&self, command_name: &str, env: &[(&str, &str)]) -> Server {
        let db = self.db_arg();
        let mut cmd = command(&[command_name, "--db", &db]);
        cmd.envs(env.iter().copied())
            .env("TESTIO_CUSTOMER_API_BASE_URL", self.sim.base_url())
            .env("TESTIO_CUSTOMER_API_TOKEN", self.sim.token());
        Server::spawn(cmd)
    }
}

impl Server {
    /// Starts `cmd` (stdin and stdout null), collecting its stderr.
    pub fn spawn(mut cmd: tokio::process::Command) -> Server {
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary runs");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let collected = stderr.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = collected.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Server { child, stderr, reader }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `text`.
    pub async fn wait_for_log(&self, text: &str) {
        eventually(&format!("the log says {text:?}"), || self.stderr().contains(text).then_some(())).await;
    }

    /// Sends `signal` and returns the exit code and the whole stderr.
    pub async fn stop(self, signal: i32) -> (i32, String) {
        let Server { mut child, stderr, reader } = self;
        // SAFETY: kill(2) on our own child's PID.
        assert_eq!(unsafe { libc::kill(child.id().unwrap() as i32, signal) }, 0);
        let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .expect("the process stops within a minute")
            .unwrap();
        // Every line is in `stderr` once the reader has seen the pipe's end.
        tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("stderr closes when the process is gone")
            .expect("the stderr reader does not panic");
        let stderr = stderr.lock().unwrap().clone();
        (status.code().unwrap_or(-1), stderr)
    }
}

/// Polls `check` until it gives a value; fails after two minutes (a hang, not a timing).
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "gave up waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until a sync has recorded its start, i.e. it holds the lock and is fetching.
pub async fn wait_for_running_sync(db: &Path) {
    eventually("a sync has started", || is_sync_running(db).then_some(())).await;
}

/// Whether the sync log holds a `running` row.
pub fn is_sync_running(db: &Path) -> bool {
    let running = |db: &Path| -> rusqlite::Result<i64> {
        Connection::open(db)?.query_row("SELECT COUNT(*) FROM sync_events WHERE status = 'running'", [], |r| r.get(0))
    };
    // The table appears with the database's first migration.
    db.exists() && running(db).unwrap_or(0) > 0
}

/// Runs the binary with a token but no simulator, for inputs refused before any request.
pub async fn run_offline(args: &[&str]) -> Run {
    command(args).env("TESTIO_CUSTOMER_API_TOKEN", "x").output().await.expect("the binary runs").into()
}

/// The sync log, oldest first: (status, error_message).
pub fn sync_log(db: &Path) -> Vec<(String, Option<String>)> {
    let conn = Connection::open(db).expect("the database opens");
    let mut stmt = conn.prepare("SELECT status, error_message FROM sync_events ORDER BY id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

pub fn count(db: &Path, sql: &str) -> i64 {
    let conn = Connection::open(db).expect("the database opens");
    conn.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every row of every data table (not the sync log), as text, to compare a database
/// before and after.
pub fn snapshot(db: &Path) -> Vec<String> {
    let conn = Connection::open(db).expect("the database opens");
    let tables = ["products", "features", "tests", "test_features", "test_platforms", "bugs", "sync_metadata"];
    tables
        .iter()
        .flat_map(|table| rows_as_text(&conn, table, &format!("SELECT * FROM {table} ORDER BY 1, 2"), []))
        .collect()
}

/// The rows `sql` selects from `table`, each as `table: cell|cell|…`.
pub fn rows_as_text(conn: &Connection, table: &str, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
    let mut statement = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let width = statement.column_count();
    let mut query = statement.query(params).unwrap();
    let mut rows = Vec::new();
    while let Some(row) = query.next().unwrap() {
        let cells: Vec<String> = (0..width).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect();
        rows.push(format!("{table}: {}", cells.join("|")));
    }
    rows
}

/// Reads of the account's mirror that mean the same on either backend.
impl Account {
    /// The one number `sql` selects.
    pub fn count(&self, sql: &str) -> i64 {
        match &self.pg {
            Some(pg) => pg.with(|c| c.query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)),
            None => count(&self.db(), sql),
        }
    }

    /// Runs a statement that changes rows (plants data a test needs).
    pub fn execute(&self, sql: &str) {
        match &self.pg {
            Some(pg) => pg.with(|c| c.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))),
            None => Connection::open(self.db()).unwrap().execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// The sync log, oldest first: (status, error_message).
    pub fn sync_log(&self) -> Vec<(String, Option<String>)> {
        let sql = "SELECT status, error_message FROM sync_events ORDER BY id";
        match &self.pg {
            Some(pg) => pg.with(|c| c.query(sql, &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()),
            None => sync_log(&self.db()),
        }
    }

    /// Whether the sync log holds a `running` row (no table yet: no).
    pub fn is_sync_running(&self) -> bool {
        let sql = "SELECT COUNT(*) FROM sync_events WHERE status = 'running'";
        match &self.pg {
            Some(pg) => pg.with(|c| c.query_one(sql, &[]).map(|r| r.get::<_, i64>(0) > 0).unwrap_or(false)),
            None => is_sync_running(&self.db()),
        }
    }

    /// Waits until a killed holder's lock is free: at once for a file lock (the kernel frees
    /// it with the process); for PostgreSQL, once the server has seen the connection close.
    pub async fn wait_for_lock_release(&self) {
        if let Some(pg) = &self.pg {
            let sql = format!("SELECT COUNT(*) FROM pg_locks WHERE {MINE}");
            let free = || pg.with(|c| c.query_one(&sql, &[]).unwrap().get::<_, i64>(0) == 0);
            eventually("the server has freed the lock", || free().then_some(())).await;
        }
    }

    /// Waits until a sync has recorded its start: it holds the lock and is fetching.
    pub async fn wait_for_running_sync(&self) {
        eventually("a sync has started", || self.is_sync_running().then_some(())).await;
    }

    /// Every content row of every data table (sync times left out), as text.
    pub fn content(&self) -> BTreeSet<String> {
        match &self.pg {
            Some(pg) => pg.content(),
            None => sqlite_content(&self.db()),
        }
    }
}

/// Fails if any file under `dir`, byte for byte, holds one of `secrets`.
pub fn assert_not_in_files(dir: &Path, secrets: &[&str]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_not_in_files(&path, secrets);
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for secret in secrets {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{} holds a token", path.display());
        }
    }
}

fn sqlite_content(db: &Path) -> BTreeSet<String> {
    let conn = Connection::open(db).unwrap();
    CONTENT
        .iter()
        .flat_map(|(table, columns)| rows_as_text(&conn, table, &format!("SELECT {columns} FROM {table}"), []))
        .collect()
}

/// Registry customers in one scratch database (issue 14), each with its own simulated
/// account and token; every run is checked to show no token.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub customers: Vec<Member>,
    /// Each customer's token variable and its value.
    tokens: Vec<(String, String)>,
    /// Every token handed out so far, wrong ones too.
    secrets: Vec<String>,
}

/// One registry customer and its account.
pub struct Member {
    pub name: String,
    /// Its local customer id: the `customer_id` of its rows.
    pub id: i64,
    pub sim: Simulator,
}

impl Registry {
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        Self { dir, customers: Vec::new(), tokens: Vec::new(), secrets: Vec::new() }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("cache.db")
    }

    pub fn get(&self, name: &str) -> &Member {
        self.customers.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no customer {name}"))
    }

    /// Starts `config`'s simulator (its token made unique to `name`) and runs `customer add
    /// NAME --customer-id ID --base-url <its URL> EXTRA`, which checks the token against it.
    /// The simulator's request log is cleared afterwards.
    pub async fn add(&mut self, name: &str, id: i64, config: SimConfig, extra: &[&str]) {
        let token = format!("tok-{name}-{:x}", 0x5eed_0000 + id * 7919);
        let sim =
            Simulator::start(SimConfig { token: token.clone(), ..config }, 0).await.expect("the simulator starts");
        self.set_token(name, &token);
        let (id_text, url) = (id.to_string(), sim.base_url());
        let args = [&["customer", "add", name, "--customer-id", &id_text, "--base-url", &url][..], extra].concat();
        self.run(&args).await.expect(0);
        sim.clear_requests();
        self.customers.push(Member { name: name.to_string(), id, sim });
    }

    /// Puts `token` in `name`'s variable for the runs from now on.
    pub fn set_token(&mut self, name: &str, token: &str) {
        let var = format!("TESTIO_CUSTOMER_API_TOKEN_{}", name.to_uppercase().replace('-', "_"));
        self.tokens.retain(|(v, _)| *v != var);
        self.tokens.push((var, token.to_string()));
        self.secrets.push(token.to_string());
    }

    /// `testio-sync ARGS --db <db>` with every customer's token variable.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let db = self.db();
        let mut cmd = command(&[args, &["--db", db.to_str().unwrap()]].concat());
        cmd.envs(self.token_variables().iter().map(|(var, token)| (var, token)));
        cmd
    }

    /// Each customer's token variable and the token it holds now.
    pub fn token_variables(&self) -> &[(String, String)] {
        &self.tokens
    }

    /// Runs `testio-sync ARGS --db <db>` to its end; neither stdout nor stderr shows a token.
    pub async fn run(&self, args: &[&str]) -> Run {
        let run: Run = self.command(args).output().await.expect("the binary runs").into();
        self.assert_hidden(&run.stdout);
        self.assert_hidden(&run.stderr);
        run
    }

    /// `text` holds no token.
    pub fn assert_hidden(&self, text: &str) {
        for secret in &self.secrets {
            assert!(!text.contains(secret.as_str()), "a token is shown:\n{text}");
        }
    }

    /// No file under the scratch folder holds a token.
    pub fn assert_no_token_in_files(&self) {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        assert_not_in_files(self.dir.path(), &secrets);
    }
}
