//! A simulated account, a scratch folder and a way to run the binary against them.

use std::path::{Path, PathBuf};
use std::process::Output;

use rusqlite::Connection;
use testio_sync::sim::{SimConfig, Simulator};

pub const BIN: &str = env!("CARGO_BIN_EXE_testio-sync");

pub struct Account {
    pub sim: Simulator,
    pub dir: tempfile::TempDir,
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
        let sim = Simulator::start(config, 0).await.expect("the simulator starts");
        Self { sim, dir: tempfile::tempdir().expect("a temp dir") }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("cache.db")
    }

    /// `testio-sync sync --db <db> ARGS` with the simulator's URL and token.
    pub async fn sync(&self, args: &[&str]) -> Run {
        let db = self.db();
        let mut full = vec!["sync", "--db", db.to_str().unwrap()];
        full.extend_from_slice(args);
        self.run(&full, self.sim.token()).await
    }

    pub async fn run(&self, args: &[&str], token: &str) -> Run {
        self.run_with(args, token, &[]).await
    }

    pub async fn run_with(&self, args: &[&str], token: &str, env: &[(&str, &str)]) -> Run {
        command(args)
            .envs(env.iter().copied())
            .env("TESTIO_CUSTOMER_API_BASE_URL", self.sim.base_url())
            .env("TESTIO_CUSTOMER_API_TOKEN", token)
            .output()
            .await
            .expect("the binary runs")
            .into()
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

/// The binary with a clean environment: no settings leak in from the machine.
pub fn command(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).env("RUST_LOG", "info").env_remove("TESTIO_CUSTOMER_API_TOKEN");
    for var in [
        "TESTIO_PRODUCT_IDS",
        "TESTIO_SYNC_SINCE",
        "TESTIO_DB_PATH",
        "TESTIO_SYNC_LOCK_TIMEOUT_SECONDS",
        "TESTIO_CUSTOMER_ID",
    ] {
        cmd.env_remove(var);
    }
    cmd
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
    let mut rows = Vec::new();
    for table in ["products", "features", "tests", "test_features", "test_platforms", "bugs", "sync_metadata"] {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2")).unwrap();
        let width = stmt.column_count();
        let mut query = stmt.query([]).unwrap();
        while let Some(row) = query.next().unwrap() {
            let cells: Vec<String> = (0..width).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect();
            rows.push(format!("{table}: {}", cells.join("|")));
        }
    }
    rows
}
