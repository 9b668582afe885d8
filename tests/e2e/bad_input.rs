//! The bad-input matrix (issue 12, "Keep them fixed"): hostile inputs family by family, each
//! run through the real binary. For every entry: the exit code, a message that names what is
//! wrong, no token or password shown, no panic, and the scratch folder as it was, byte for
//! byte (or, where a sync legitimately ran, a database that passes `integrity_check` with
//! the same rows per table). Add an entry whenever a defect is found. The MCP-lines family
//! (hostile JSON-RPC lines on the server's stdin) is its own table test in `mcp.rs`, since it
//! talks to one long-running server.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use rusqlite::Connection;
use testio_sim::SimConfig;
use tokio::process::Child;
use tokio::time::error::Elapsed;

use crate::support::{Account, BIN, Run, command, eventually, is_sync_running};

const TOKEN: &str = "matrix-token-3f9c2e";
/// The password of the base URLs with user info: it must never be shown.
const PASSWORD: &str = "pw-7c1e55";
/// A value no numeric setting accepts: u64::MAX.
const HUGE: &str = "18446744073709551615";

/// How the binary is run.
#[derive(Clone, Copy)]
enum How {
    /// To its end, stdout and stderr read.
    Plain,
    /// With stdout a pipe whose reader is gone before the binary starts.
    StdoutClosed,
    /// With stderr a pipe whose reader is gone before the binary starts.
    StderrClosed,
    /// Against an API that never answers; the signal comes once the sync has recorded its start.
    Signal(i32),
    /// To its end, after a sync of the same database was killed with SIGKILL once under way.
    AfterKill,
}

/// What must hold for the scratch folder afterwards.
#[derive(Clone, Copy)]
enum After {
    /// Every file, link and folder as it was: content, mode, nothing added or removed.
    Untouched,
    /// A sync ran: the database passes `integrity_check` and holds as many rows per table.
    Intact,
}

/// One hostile input. In `args`, `env` and the expected texts, `{dir}` is the scratch folder
/// (also `$HOME`) and `{db}` is `{dir}/cache.db`, which holds a synced database unless `fresh`.
struct Case {
    what: &'static str,
    args: &'static [&'static str],
    env: Vec<(&'static str, &'static str)>,
    setup: fn(&Path),
    fresh: bool,
    how: How,
    code: i32,
    /// stderr contains this: the thing that is wrong.
    names: &'static str,
    /// stdout contains this.
    stdout: &'static str,
    /// At most this many lines on stderr (`None` where a sync logs as it runs).
    lines: Option<usize>,
    /// The status of the last sync log row.
    log: Option<&'static str>,
    after: After,
}

fn case(what: &'static str, args: &'static [&'static str]) -> Case {
    Case {
        what,
        args,
        env: Vec::new(),
        setup: |_| {},
        fresh: false,
        how: How::Plain,
        code: 1,
        names: "",
        stdout: "",
        lines: Some(1),
        log: None,
        after: After::Untouched,
    }
}

impl Case {
    fn code(self, code: i32) -> Self {
        Self { code, ..self }
    }
    fn names(self, names: &'static str) -> Self {
        Self { names, ..self }
    }
    fn stdout(self, stdout: &'static str) -> Self {
        Self { stdout, ..self }
    }
    fn env(mut self, var: &'static str, value: &'static str) -> Self {
        self.env.push((var, value));
        self
    }
    fn setup(self, setup: fn(&Path)) -> Self {
        Self { setup, ..self }
    }
    fn fresh(self) -> Self {
        Self { fresh: true, ..self }
    }
    fn how(self, how: How) -> Self {
        Self { how, ..self }
    }
    fn lines(self, lines: Option<usize>) -> Self {
        Self { lines, ..self }
    }
    /// A sync ran (it logs, and it may write its own rows).
    fn synced(self) -> Self {
        Self { lines: None, after: After::Intact, ..self }
    }
    /// A sync ran before the entry's command (which logs nothing).
    fn after_sync(self) -> Self {
        Self { after: After::Intact, ..self }
    }
    fn log(self, status: &'static str) -> Self {
        Self { log: Some(status), ..self }
    }
}

const LOCK_TIMEOUT: &str = "'--lock-timeout <SECS>': use a whole number from 0 to 86400";
const MAX_REQUESTS: &str = "'--max-requests <N>': use a whole number from 1 to 50";
const REQUEST_TIMEOUT: &str = "'--request-timeout <SECS>': use a whole number from 1 to 3600";
const CUSTOMER_ID: &str = "'--customer-id <ID>': use a whole number from 1 to 9223372036854775807";
const PRODUCT_ID: &str = "is not a product id: use a whole number from 1 to 9223372036854775807";
const INTERVAL: &str = "'--interval <SECS>': use a whole number from 0 to 2592000";

fn cli_values() -> Vec<Case> {
    vec![
        case("--lock-timeout not a number", &["sync", "--db", "{db}", "--lock-timeout", "abc"]).names(LOCK_TIMEOUT),
        case("--lock-timeout negative", &["sync", "--db", "{db}", "--lock-timeout=-1"]).names(LOCK_TIMEOUT),
        case("--lock-timeout of u64::MAX (panicked)", &["sync", "--db", "{db}", "--lock-timeout", HUGE])
            .names(LOCK_TIMEOUT),
        case("--lock-timeout over a day", &["sync", "--db", "{db}", "--lock-timeout", "86401"]).names(LOCK_TIMEOUT),
        case("--max-requests zero", &["sync", "--db", "{db}", "--max-requests", "0"]).names(MAX_REQUESTS),
        case("--max-requests not a number", &["sync", "--db", "{db}", "--max-requests", "lots"]).names(MAX_REQUESTS),
        case("--max-requests huge", &["sync", "--db", "{db}", "--max-requests", HUGE]).names(MAX_REQUESTS),
        case("--request-timeout zero", &["sync", "--db", "{db}", "--request-timeout", "0"]).names(REQUEST_TIMEOUT),
        case("--request-timeout not a number", &["sync", "--db", "{db}", "--request-timeout", "1m"])
            .names(REQUEST_TIMEOUT),
        case("--request-timeout huge", &["sync", "--db", "{db}", "--request-timeout", HUGE]).names(REQUEST_TIMEOUT),
        case("--customer-id zero", &["status", "--db", "{db}", "--customer-id", "0"]).names(CUSTOMER_ID),
        case("--customer-id not a number", &["history", "--db", "{db}", "--customer-id", "me"]).names(CUSTOMER_ID),
        case("--customer-id above i64::MAX", &["sync", "--db", "{db}", "--customer-id", "9223372036854775808"])
            .names(CUSTOMER_ID),
        case("--product-ids zero", &["sync", "--db", "{db}", "--product-ids", "0"]).names(PRODUCT_ID),
        case("--product-ids not a number", &["sync", "--db", "{db}", "--product-ids", "12,abc"]).names(PRODUCT_ID),
        case("--product-ids of u64::MAX (accepted)", &["sync", "--db", "{db}", "--product-ids", HUGE])
            .names(PRODUCT_ID),
        case("--product-ids just above i64::MAX", &["sync", "--db", "{db}", "--product-ids", "9223372036854775808"])
            .names(PRODUCT_ID),
        case("--since in the future", &["sync", "--db", "{db}", "--since", "2999-01-01"]).names("is in the future"),
        case("--since unreadable", &["sync", "--db", "{db}", "--since", "last tuesday-ish"])
            .names("cannot read \"last tuesday-ish\" as a date"),
        case("--since before 1970", &["sync", "--db", "{db}", "--since", "1900-01-01"]).names("is before 1970"),
        case("--entity-types unknown", &["sync", "--db", "{db}", "--entity-types", "tests,bugz"])
            .names("bugz")
            .lines(Some(2)),
        case("--limit zero", &["history", "--db", "{db}", "--limit", "0"]).names("--limit"),
        case("--limit not a number", &["history", "--db", "{db}", "--limit", "all"]).names("--limit"),
        case("--limit huge", &["history", "--db", "{db}", "--limit", HUGE]).names("--limit"),
        case("--interval not a number", &["daemon", "--db", "{db}", "--interval", "hourly"]).names(INTERVAL),
        case("--interval of u64::MAX (panicked after a sync)", &["daemon", "--db", "{db}", "--interval", HUGE])
            .names(INTERVAL),
        case("--interval zero turns the daemon's scheduler off", &["daemon", "--db", "{db}", "--interval", "0"])
            .names("the scheduler is off"),
        case(
            "--base-url with a password (sent as Basic auth)",
            &["sync", "--db", "{db}", "--base-url", "https://user:pw-7c1e55@127.0.0.1:9/customer/v2"],
        )
        .names("user name or password"),
        case(
            "--base-url with a password, not a URL",
            &["sync", "--db", "{db}", "--base-url", "https://user:pw-7c1e55@exa mple.com/"],
        )
        .names("is not a valid URL"),
        case("--base-url not http", &["sync", "--db", "{db}", "--base-url", "ftp://example.com/"])
            .names("must start with https://"),
        case(
            "sync --json with a refused value prints a JSON failure",
            &["sync", "--db", "{db}", "--json", "--max-requests", "0"],
        )
        .names(MAX_REQUESTS)
        .stdout("\"status\":\"failure\""),
    ]
}

fn environment_values() -> Vec<Case> {
    let sync: &'static [&'static str] = &["sync", "--db", "{db}"];
    vec![
        case("TESTIO_SYNC_LOCK_TIMEOUT_SECONDS not a number", sync)
            .env("TESTIO_SYNC_LOCK_TIMEOUT_SECONDS", "abc")
            .names("TESTIO_SYNC_LOCK_TIMEOUT_SECONDS=\"abc\" is not valid; use a whole number from 0 to 86400"),
        case("TESTIO_SYNC_LOCK_TIMEOUT_SECONDS of u64::MAX (panicked)", sync)
            .env("TESTIO_SYNC_LOCK_TIMEOUT_SECONDS", HUGE)
            .names("TESTIO_SYNC_LOCK_TIMEOUT_SECONDS=\"18446744073709551615\" is not valid"),
        case("TESTIO_SYNC_LOCK_TIMEOUT_SECONDS huge for mcp (a call never answered)", &["mcp", "--db", "{db}"])
            .env("TESTIO_SYNC_LOCK_TIMEOUT_SECONDS", HUGE)
            .names("TESTIO_SYNC_LOCK_TIMEOUT_SECONDS=\"18446744073709551615\" is not valid"),
        case("MAX_CONCURRENT_API_REQUESTS zero", sync)
            .env("MAX_CONCURRENT_API_REQUESTS", "0")
            .names("MAX_CONCURRENT_API_REQUESTS=\"0\" is not valid; use a whole number from 1 to 50"),
        case("MAX_CONCURRENT_API_REQUESTS not a number", sync)
            .env("MAX_CONCURRENT_API_REQUESTS", "lots")
            .names("MAX_CONCURRENT_API_REQUESTS=\"lots\" is not valid"),
        case("MAX_CONCURRENT_API_REQUESTS huge", sync)
            .env("MAX_CONCURRENT_API_REQUESTS", HUGE)
            .names("MAX_CONCURRENT_API_REQUESTS=\"18446744073709551615\" is not valid"),
        case("HTTP_TIMEOUT_SECONDS zero", sync)
            .env("HTTP_TIMEOUT_SECONDS", "0")
            .names("HTTP_TIMEOUT_SECONDS=\"0\" is not valid; use a whole number from 1 to 3600"),
        case("HTTP_TIMEOUT_SECONDS not a number", sync)
            .env("HTTP_TIMEOUT_SECONDS", "90s")
            .names("HTTP_TIMEOUT_SECONDS=\"90s\" is not valid"),
        case("HTTP_TIMEOUT_SECONDS huge", sync)
            .env("HTTP_TIMEOUT_SECONDS", HUGE)
            .names("HTTP_TIMEOUT_SECONDS=\"18446744073709551615\" is not valid"),
        case("TESTIO_CUSTOMER_ID zero", &["status", "--db", "{db}"])
            .env("TESTIO_CUSTOMER_ID", "0")
            .names("TESTIO_CUSTOMER_ID=\"0\" is not valid; use a whole number from 1 to 9223372036854775807"),
        case("TESTIO_CUSTOMER_ID not a number", sync)
            .env("TESTIO_CUSTOMER_ID", "acme")
            .names("TESTIO_CUSTOMER_ID=\"acme\" is not valid"),
        case("TESTIO_CUSTOMER_ID huge", sync)
            .env("TESTIO_CUSTOMER_ID", HUGE)
            .names("TESTIO_CUSTOMER_ID=\"18446744073709551615\" is not valid"),
        case("TESTIO_PRODUCT_IDS not a number", sync)
            .env("TESTIO_PRODUCT_IDS", "1,abc")
            .names("TESTIO_PRODUCT_IDS=\"1,abc\" is not valid; \"abc\" is not a product id"),
        case("TESTIO_PRODUCT_IDS zero", sync)
            .env("TESTIO_PRODUCT_IDS", "0")
            .names("TESTIO_PRODUCT_IDS=\"0\" is not valid"),
        case("TESTIO_PRODUCT_IDS of u64::MAX (accepted)", sync)
            .env("TESTIO_PRODUCT_IDS", HUGE)
            .names("TESTIO_PRODUCT_IDS=\"18446744073709551615\" is not valid"),
        case("TESTIO_PRODUCT_IDS of u64::MAX for the daemon", &["daemon", "--db", "{db}"])
            .env("TESTIO_PRODUCT_IDS", HUGE)
            .names("TESTIO_PRODUCT_IDS=\"18446744073709551615\" is not valid"),
        case("TESTIO_SYNC_SINCE in the future", sync)
            .env("TESTIO_SYNC_SINCE", "2999-01-01")
            .names("TESTIO_SYNC_SINCE=\"2999-01-01\" is not valid"),
        case("TESTIO_SYNC_SINCE unreadable", sync)
            .env("TESTIO_SYNC_SINCE", "whenever")
            .names("TESTIO_SYNC_SINCE=\"whenever\" is not valid"),
        case("TESTIO_REFRESH_INTERVAL_SECONDS not a number", &["daemon", "--db", "{db}"])
            .env("TESTIO_REFRESH_INTERVAL_SECONDS", "hourly")
            .names("TESTIO_REFRESH_INTERVAL_SECONDS=\"hourly\" is not valid"),
        case("TESTIO_REFRESH_INTERVAL_SECONDS of u64::MAX (panicked after a sync)", &["daemon", "--db", "{db}"])
            .env("TESTIO_REFRESH_INTERVAL_SECONDS", HUGE)
            .names("TESTIO_REFRESH_INTERVAL_SECONDS=\"18446744073709551615\" is not valid"),
        case("TESTIO_REFRESH_INTERVAL_SECONDS zero for the daemon", &["daemon", "--db", "{db}"])
            .env("TESTIO_REFRESH_INTERVAL_SECONDS", "0")
            .names("the scheduler is off (TESTIO_REFRESH_INTERVAL_SECONDS=0)"),
        case("TESTIO_DB_PATH a folder (named --db)", &["sync"])
            .env("TESTIO_DB_PATH", "{dir}")
            .names("the database path {dir} is a folder; give a file path in TESTIO_DB_PATH"),
        case("TESTIO_DB_PATH in a missing folder (named --db)", &["sync"])
            .env("TESTIO_DB_PATH", "{dir}/missing/cache.db")
            .names("the database folder {dir}/missing does not exist; create it or choose another TESTIO_DB_PATH"),
        case("TESTIO_DB_PATH not SQLite (named --db)", &["sync"])
            .env("TESTIO_DB_PATH", "{dir}/notes.txt")
            .setup(notes)
            .names("{dir}/notes.txt is not a SQLite database; choose another TESTIO_DB_PATH"),
        case("TESTIO_DB_PATH a folder, for status", &["status"])
            .env("TESTIO_DB_PATH", "{dir}")
            .names("the database path {dir} is a folder; give a file path in TESTIO_DB_PATH"),
        case("TESTIO_DB_PATH with ~ (not expanded)", &["status"])
            .env("TESTIO_DB_PATH", "~/cache.db")
            .code(0)
            .stdout("Database: {dir}/cache.db"),
        case("TESTIO_CUSTOMER_API_BASE_URL with a password", sync)
            .env("TESTIO_CUSTOMER_API_BASE_URL", "https://user:pw-7c1e55@127.0.0.1:9/customer/v2")
            .names("user name or password"),
        case("TESTIO_CUSTOMER_API_TOKEN empty", sync)
            .env("TESTIO_CUSTOMER_API_TOKEN", " ")
            .names("TESTIO_CUSTOMER_API_TOKEN is not set"),
        case("TESTIO_CUSTOMER_API_TOKEN empty, sync --json (nothing on stdout)", &["sync", "--db", "{db}", "--json"])
            .env("TESTIO_CUSTOMER_API_TOKEN", "")
            .names("TESTIO_CUSTOMER_API_TOKEN is not set")
            .stdout("\"status\":\"failure\""),
        case("TESTIO_CUSTOMER_API_TOKEN wrong", sync)
            .env("TESTIO_CUSTOMER_API_TOKEN", "wrong-token-9d2b")
            .names("rejected the token")
            .synced()
            .log("failure"),
    ]
}

fn database_files() -> Vec<Case> {
    vec![
        case("sync --db a folder", &["sync", "--db", "{dir}"]).names("the database path {dir} is a folder"),
        case("status --db a folder (said: no database)", &["status", "--db", "{dir}"])
            .names("the database path {dir} is a folder"),
        case("history --db a folder", &["history", "--db", "{dir}"]).names("the database path {dir} is a folder"),
        case("problems --db a folder", &["problems", "--db", "{dir}"]).names("the database path {dir} is a folder"),
        case("sync --db not SQLite", &["sync", "--db", "{dir}/notes.txt"])
            .setup(notes)
            .names("{dir}/notes.txt is not a SQLite database; choose another --db"),
        case("status --db not SQLite", &["status", "--db", "{dir}/notes.txt"])
            .setup(notes)
            .names("{dir}/notes.txt is not a SQLite database"),
        case("sync --db in a missing folder", &["sync", "--db", "{dir}/missing/cache.db"])
            .names("the database folder {dir}/missing does not exist; create it or choose another --db"),
        case("status --db in a missing folder", &["status", "--db", "{dir}/missing/cache.db"])
            .names("there is no database at {dir}/missing/cache.db"),
        case("sync, database in a read-only folder (said: readonly database)", &["sync", "--db", "{db}"])
            .setup(read_only_folder)
            .names("cannot write in the database folder {dir}"),
        case("status, database in a read-only folder", &["status", "--db", "{db}"])
            .setup(read_only_folder)
            .names("cannot write in the database folder {dir}"),
        case("sync, new database in a read-only folder", &["sync", "--db", "{dir}/new.db"])
            .setup(read_only_folder)
            .names("cannot create the database in {dir}"),
        case("sync, read-only database file", &["sync", "--db", "{db}"])
            .setup(read_only_database)
            .names("cannot write to the database {db}"),
        case("status with no database (created ~/.testio-mcp)", &["status"])
            .fresh()
            .names("there is no database at {dir}/.testio-mcp/cache.db"),
        case("history with no database (created ~/.testio-mcp)", &["history"])
            .fresh()
            .names("there is no database at {dir}/.testio-mcp/cache.db"),
        case("problems with no database (created ~/.testio-mcp)", &["problems"])
            .fresh()
            .names("there is no database at {dir}/.testio-mcp/cache.db"),
        case("--db with ~ (not expanded)", &["status", "--db=~/cache.db"]).code(0).stdout("Database: {dir}/cache.db"),
        case("sync, a migration that fails (50 lines of SQL, three times)", &["sync", "--db", "{db}"])
            .setup(failing_migration)
            .names("migration 2 failed: table tests_coverage already exists"),
        case("status, a migration that fails", &["status", "--db", "{db}"])
            .setup(failing_migration)
            .names("migration 2 failed: table tests_coverage already exists"),
        case("sync, a database from a newer testio-sync", &["sync", "--db", "{db}"])
            .setup(newer_schema)
            .names("the database was written by a newer testio-sync"),
        case("history, a database from a newer testio-sync", &["history", "--db", "{db}"])
            .setup(newer_schema)
            .names("the database was written by a newer testio-sync"),
    ]
}

fn lock_files() -> Vec<Case> {
    vec![
        case("sync, sync.lock a symlink (its target overwritten)", &["sync", "--db", "{db}"])
            .setup(symlinked_lock)
            .names("{dir}/sync.lock is a symbolic link"),
        case("status, sync.lock a symlink", &["status", "--db", "{db}"])
            .setup(symlinked_lock)
            .names("{dir}/sync.lock is a symbolic link"),
        case("sync, sync.lock a dangling symlink (its target created)", &["sync", "--db", "{db}"])
            .setup(|dir| std::os::unix::fs::symlink(dir.join("planted"), dir.join("sync.lock")).unwrap())
            .names("{dir}/sync.lock is a symbolic link"),
        case("sync, sync.lock a folder", &["sync", "--db", "{db}"])
            .setup(|dir| std::fs::create_dir(dir.join("sync.lock")).unwrap())
            .names("{dir}/sync.lock is a folder"),
        case("status, sync.lock a folder", &["status", "--db", "{db}"])
            .setup(|dir| std::fs::create_dir(dir.join("sync.lock")).unwrap())
            .names("{dir}/sync.lock is a folder"),
        case("sync, sync.lock a FIFO (Illegal seek)", &["sync", "--db", "{db}"])
            .setup(fifo_lock)
            .names("{dir}/sync.lock is a FIFO, not a regular file"),
        case("sync, sync.lock unreadable", &["sync", "--db", "{db}"])
            .setup(unreadable_lock)
            .names("{dir}/sync.lock: Permission denied"),
        case("status, sync.lock unreadable", &["status", "--db", "{db}"])
            .setup(unreadable_lock)
            .names("{dir}/sync.lock: Permission denied"),
    ]
}

fn signals() -> Vec<Case> {
    vec![
        case("SIGINT during a sync", &["sync", "--db", "{db}"])
            .how(How::Signal(libc::SIGINT))
            .code(130)
            .names("Sync failed after")
            .synced()
            .log("interrupted"),
        case("SIGTERM during a sync", &["sync", "--db", "{db}"])
            .how(How::Signal(libc::SIGTERM))
            .code(143)
            .names("interrupted by SIGTERM")
            .synced()
            .log("interrupted"),
        case("SIGTERM during sync --json", &["sync", "--db", "{db}", "--json"])
            .how(How::Signal(libc::SIGTERM))
            .code(143)
            .names("interrupted by SIGTERM")
            .stdout("\"status\":\"interrupted\"")
            .synced()
            .log("interrupted"),
        case("history after kill -9 of a sync (said running)", &["history", "--db", "{db}"])
            .how(How::AfterKill)
            .code(0)
            .stdout("is gone; the next sync closes it")
            .after_sync()
            .log("running"),
        case("status --json after kill -9 of a sync (said running)", &["status", "--db", "{db}", "--json"])
            .how(How::AfterKill)
            .code(0)
            .stdout("\"status\":\"interrupted\"")
            .after_sync()
            .log("running"),
        case("SIGTERM during the daemon's sync", &["daemon", "--db", "{db}"])
            .setup(last_synced_long_ago)
            .how(How::Signal(libc::SIGTERM))
            .code(0)
            .names("Scheduler stopped by SIGTERM")
            .synced()
            .log("interrupted"),
    ]
}

fn closed_pipes() -> Vec<Case> {
    vec![
        case("history | head -1 (panicked)", &["history", "--db", "{db}", "--limit", "3000"])
            .how(How::StdoutClosed)
            .code(0),
        case("history --json, stdout closed", &["history", "--db", "{db}", "--json"]).how(How::StdoutClosed).code(0),
        case("status, stdout closed", &["status", "--db", "{db}"]).how(How::StdoutClosed).code(0),
        case("status --json, stdout closed", &["status", "--db", "{db}", "--json"]).how(How::StdoutClosed).code(0),
        case("problems --json, stdout closed", &["problems", "--db", "{db}", "--json"]).how(How::StdoutClosed).code(0),
        case("sync --json | head -c0 keeps the sync's exit code", &["sync", "--db", "{db}", "--json"])
            .how(How::StdoutClosed)
            .code(0)
            .synced()
            .log("success"),
        case("sync --json refused, stdout closed", &["sync", "--db", "{dir}", "--json"])
            .how(How::StdoutClosed)
            .names("is a folder"),
        case("sync, stderr closed", &["sync", "--db", "{db}"]).how(How::StderrClosed).code(0).synced().log("success"),
        case("status refused, stderr closed", &["status", "--db", "{dir}/missing/cache.db"]).how(How::StderrClosed),
    ]
}

fn customers() -> Vec<Case> {
    let gamma = "TESTIO_CUSTOMER_API_TOKEN_GAMMA";
    vec![
        case("customer remove, an unknown name", &["customer", "remove", "nobody", "--yes", "--db", "{db}"])
            .setup(two_customers)
            .names("there is no customer \"nobody\"; customers: acme-eu (default), beta"),
        case("customer default, an unknown name", &["customer", "default", "nobody", "--db", "{db}"])
            .setup(two_customers)
            .names("there is no customer \"nobody\"; customers: acme-eu (default), beta"),
        case("customer default, no database yet", &["customer", "default", "acme"])
            .fresh()
            .names("there is no customer \"acme\": no customers are registered in {dir}/.testio-mcp/cache.db"),
        case("customer add, a duplicate name", &["customer", "add", "beta", "--no-check", "--db", "{db}"])
            .setup(two_customers)
            .env("TESTIO_CUSTOMER_API_TOKEN_BETA", "x")
            .names("customer beta already exists; customers: acme-eu (default), beta"),
        case("customer add, a name that shares a token variable", &["customer", "add", "acme_eu", "--db", "{db}"])
            .setup(two_customers)
            .env("TESTIO_CUSTOMER_API_TOKEN_ACME_EU", "x")
            .names("acme_eu would use the same token variable as acme-eu (TESTIO_CUSTOMER_API_TOKEN_ACME_EU)"),
        case("customer add, a name against the rule", &["customer", "add", "Acme EU", "--db", "{db}"])
            .names("customer name \"Acme EU\" is not valid; use 1 to 64 lower-case letters"),
        case("customer add, a local id taken", &["customer", "add", "gamma", "--customer-id", "2", "--db", "{db}"])
            .setup(two_customers)
            .env(gamma, "x")
            .names("local id 2 already belongs to customer acme-eu"),
        case("customer add, an empty token variable", &["customer", "add", "gamma", "--db", "{db}"])
            .env(gamma, " ")
            .names("TESTIO_CUSTOMER_API_TOKEN_GAMMA is set but empty"),
        case("customer add, no keyring for a typed token", &["customer", "add", "gamma", "--token-stdin", "--db", "{db}"])
            .names("TESTIO_KEYRING=off turns the OS keyring off; set TESTIO_CUSTOMER_API_TOKEN_GAMMA"),
        case("customer add, no token and no terminal, on a fresh machine", &["customer", "add", "gamma"])
            .fresh()
            .names("set TESTIO_CUSTOMER_API_TOKEN_GAMMA and run `testio-sync customer add gamma` again"),
        case("customer add --token-stdin with the variable set", &["customer", "add", "gamma", "--token-stdin"])
            .env(gamma, "x")
            .names("TESTIO_CUSTOMER_API_TOKEN_GAMMA is set, and it would hide a token read from stdin"),
        case("customer add, a token the API rejects", &["customer", "add", "gamma", "--db", "{db}"])
            .env(gamma, "wrong-token-9d2b")
            .names("rejected the token in TESTIO_CUSTOMER_API_TOKEN_GAMMA (HTTP 401); nothing was recorded"),
        case("customer add --base-url not http", &["customer", "add", "gamma", "--base-url", "ftp://example.com/"])
            .names("must start with https://"),
        case("customer add --since in the future", &["customer", "add", "gamma", "--since", "2999-01-01"])
            .names("is in the future"),
        case("customer add --product-ids zero", &["customer", "add", "gamma", "--product-ids", "1", "0"])
            .names(PRODUCT_ID),
        case("customer remove, the default while others exist", &["customer", "remove", "acme-eu", "--yes", "--db", "{db}"])
            .setup(two_customers)
            .names("acme-eu is the default customer; make another the default first (`testio-sync customer default NAME`; customers: beta)"),
        case("customer remove, no --yes and no terminal", &["customer", "remove", "beta", "--purge", "--db", "{db}"])
            .setup(two_customers)
            .names("pass --yes to go ahead. Nothing was removed")
            .lines(Some(2)),
        case("sync --customer with --all-customers", &["sync", "--customer", "beta", "--all-customers", "--db", "{db}"])
            .setup(two_customers)
            .names("the argument '--customer <NAME>' cannot be used with '--all-customers'"),
        case("sync --customer, an unknown name", &["sync", "--customer", "nobody", "--db", "{db}"])
            .setup(two_customers)
            .names("there is no customer \"nobody\"; customers: acme-eu (default), beta"),
        case("customer list --db a folder", &["customer", "list", "--db", "{dir}"]).names("the database path {dir} is a folder"),
        case("--env-file missing", &["status", "--env-file", "{dir}/missing.env", "--db", "{db}"])
            .names("--env-file {dir}/missing.env: there is no such file"),
    ]
}

/// Customers acme-eu (the default) and beta, local ids 2 and 3 (the synced rows are under 1),
/// their tokens in their variables.
fn two_customers(dir: &Path) {
    for name in ["acme-eu", "beta"] {
        let var = format!("TESTIO_CUSTOMER_API_TOKEN_{}", name.to_uppercase().replace('-', "_"));
        let added = std::process::Command::new(BIN)
            .args(["customer", "add", name, "--no-check", "--db"])
            .arg(dir.join("cache.db"))
            .env(var, "x")
            .env("TESTIO_KEYRING", "off")
            .env("HOME", dir)
            .output()
            .unwrap();
        assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    }
}

fn notes(dir: &Path) {
    std::fs::write(dir.join("notes.txt"), "my notes, not a database\n").unwrap();
}

fn read_only_folder(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
}

fn read_only_database(dir: &Path) {
    std::fs::set_permissions(dir.join("cache.db"), std::fs::Permissions::from_mode(0o444)).unwrap();
}

/// Schema version 1 with migration 2's table already there: migration 2 fails.
fn failing_migration(dir: &Path) {
    Connection::open(dir.join("cache.db")).unwrap().pragma_update(None, "user_version", 1).unwrap();
}

fn newer_schema(dir: &Path) {
    Connection::open(dir.join("cache.db")).unwrap().pragma_update(None, "user_version", 99).unwrap();
}

/// So that the scheduler syncs at once rather than skip a fresh database.
fn last_synced_long_ago(dir: &Path) {
    let sql = "UPDATE sync_metadata SET value = '2000-01-01 00:00:00.000000' WHERE key = 'last_sync_completed'";
    assert_eq!(Connection::open(dir.join("cache.db")).unwrap().execute(sql, []).unwrap(), 1);
}

fn symlinked_lock(dir: &Path) {
    std::fs::write(dir.join("precious.txt"), "not yours to overwrite\n").unwrap();
    std::os::unix::fs::symlink(dir.join("precious.txt"), dir.join("sync.lock")).unwrap();
}

fn fifo_lock(dir: &Path) {
    let path = std::ffi::CString::new(dir.join("sync.lock").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid C string; mkfifo(3) only creates the node.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
}

fn unreadable_lock(dir: &Path) {
    let path = dir.join("sync.lock");
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
}

/// The simulators, and a synced database each entry starts from.
struct World {
    api: Account,
    stalled: Account,
    synced: Vec<u8>,
    cache: PathBuf,
}

impl World {
    async fn start() -> Self {
        let config = SimConfig { products: 1, features: 1, tests: 5, token: TOKEN.into(), ..SimConfig::default() };
        let api = Account::with(config).await;
        api.sync(&[]).await.expect(0);
        let synced = std::fs::read(api.db()).unwrap();
        let cache = dirs::cache_dir().expect("a cache folder");
        Self { api, stalled: Account::stalled().await, synced, cache }
    }

    /// Runs one entry; the error lists what went wrong.
    async fn check(&self, case: &Case) -> Result<(), String> {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        if !case.fresh {
            std::fs::write(dir.join("cache.db"), &self.synced).unwrap();
        }
        (case.setup)(dir);
        // Reading the rows leaves -wal and -shm files: only where a sync may change the folder.
        let counts = matches!(case.after, After::Intact).then(|| row_counts(&dir.join("cache.db"))).flatten();
        let before = tree(dir);
        let fill = |text: &str| {
            text.replace("{db}", dir.join("cache.db").to_str().unwrap()).replace("{dir}", dir.to_str().unwrap())
        };
        let run = self.run(case, dir, &fill).await;
        let mut wrong = Vec::new();
        if run.code != case.code {
            wrong.push(format!("exit {} instead of {}", run.code, case.code));
        }
        if !run.stderr.contains(&fill(case.names)) {
            wrong.push(format!("stderr does not name {:?}", fill(case.names)));
        }
        if !run.stdout.contains(&fill(case.stdout)) {
            wrong.push(format!("stdout lacks {:?}: {:?}", fill(case.stdout), run.stdout));
        }
        if let Some(lines) = case.lines.filter(|&n| run.stderr.lines().count() > n) {
            wrong.push(format!("more than {lines} line(s) on stderr"));
        }
        for secret in [TOKEN, "wrong-token-9d2b", PASSWORD] {
            if run.stdout.contains(secret) || run.stderr.contains(secret) {
                wrong.push(format!("{secret} was shown"));
            }
        }
        if run.stderr.contains("panicked") {
            wrong.push("it panicked".into());
        }
        wrong.extend(check_after(case, dir, &before, counts));
        restore_permissions(dir);
        match wrong.is_empty() {
            true => Ok(()),
            false => {
                Err(format!("{}\n    stderr: {}", wrong.join("; "), run.stderr.trim().replace('\n', "\n            ")))
            }
        }
    }

    async fn run(&self, case: &Case, dir: &Path, fill: &dyn Fn(&str) -> String) -> Run {
        let db = dir.join("cache.db");
        if let How::AfterKill = case.how {
            let mut victim = self.command(&["sync", "--db", db.to_str().unwrap()], dir, &self.stalled);
            let killed = signal_once_started(victim.spawn().expect("the binary runs"), &db, libc::SIGKILL).await;
            killed.expect("a killed sync ends").expect("the killed sync is reaped");
        }
        let api = if matches!(case.how, How::Signal(_)) { &self.stalled } else { &self.api };
        let args: Vec<String> = case.args.iter().map(|a| fill(a)).collect();
        let mut cmd = self.command(&args.iter().map(String::as_str).collect::<Vec<_>>(), dir, api);
        cmd.envs(case.env.iter().map(|(var, value)| (*var, fill(value))));
        match case.how {
            How::StdoutClosed => cmd.stdout(closed_pipe()),
            How::StderrClosed => cmd.stderr(closed_pipe()),
            How::Plain | How::Signal(_) | How::AfterKill => &mut cmd,
        };
        let child = cmd.spawn().expect("the binary runs");
        let output = match case.how {
            How::Signal(signal) => signal_once_started(child, &db, signal).await,
            _ => tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await,
        };
        match output {
            Ok(output) => output.unwrap().into(),
            Err(_) => Run { code: -1, stdout: String::new(), stderr: "still running after 60 s".into() },
        }
    }

    /// The binary with `args`, against `api`, at home in `dir`, as an ordinary user.
    fn command(&self, args: &[&str], dir: &Path, api: &Account) -> tokio::process::Command {
        let mut cmd = command(args);
        cmd.env("TESTIO_CUSTOMER_API_BASE_URL", api.sim.base_url())
            .env("TESTIO_CUSTOMER_API_TOKEN", api.sim.token())
            .env("HOME", dir)
            // The compiled engine stays cached where it is, outside the scratch folder.
            .env("XDG_CACHE_HOME", &self.cache)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        as_an_ordinary_user(&mut cmd);
        cmd
    }
}

/// What is wrong with the scratch folder after an entry ran.
fn check_after(case: &Case, dir: &Path, before: &Tree, counts: Option<Vec<i64>>) -> Vec<String> {
    let db = dir.join("cache.db");
    let mut wrong = Vec::new();
    match case.after {
        After::Untouched => {
            let after = tree(dir);
            let changed: BTreeSet<_> =
                before.keys().chain(after.keys()).filter(|p| before.get(*p) != after.get(*p)).collect();
            if !changed.is_empty() {
                wrong.push(format!("changed: {changed:?}"));
            }
        }
        After::Intact => {
            let integrity: Option<String> =
                Connection::open(&db).and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0))).ok();
            if integrity.as_deref() != Some("ok") {
                wrong.push(format!("integrity_check: {integrity:?}"));
            }
            if row_counts(&db) != counts {
                wrong.push(format!("rows per table {:?}, before {counts:?}", row_counts(&db)));
            }
        }
    }
    if let Some(expected) = case.log {
        let last: Option<String> = Connection::open(&db)
            .and_then(|c| c.query_row("SELECT status FROM sync_events ORDER BY id DESC LIMIT 1", [], |r| r.get(0)))
            .ok();
        if last.as_deref() != Some(expected) {
            wrong.push(format!("last sync log row {last:?}, not {expected}"));
        }
    }
    wrong
}

/// Sends `signal` once the sync has recorded its start in `db` (unless the binary ended
/// without starting one), and waits for the end.
async fn signal_once_started(mut child: Child, db: &Path, signal: i32) -> Result<std::io::Result<Output>, Elapsed> {
    let mut started = || is_sync_running(db) || child.try_wait().unwrap().is_some();
    eventually("a sync has started, or the binary has ended", || started().then_some(())).await;
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on our own child's PID, which it still is: it was not reaped.
        assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
    }
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await
}

/// Runs the binary without root's CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, which would
/// ignore the read-only folders and unreadable files the matrix plants. Dropped from the
/// bounding set before exec, they are not in the new program's; for a user other than root
/// the call fails and nothing needs dropping.
fn as_an_ordinary_user(cmd: &mut tokio::process::Command) {
    const CAP_DAC_OVERRIDE: libc::c_ulong = 1;
    const CAP_DAC_READ_SEARCH: libc::c_ulong = 2;
    // SAFETY: prctl(2) is async-signal-safe, and touches only the child's own capabilities.
    unsafe {
        cmd.pre_exec(|| {
            for cap in [CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH] {
                libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
            }
            Ok(())
        });
    }
}

/// The write end of a pipe whose read end is already closed: every write fails with EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

/// Each entry under a folder (links not followed): kind, mode and content.
type Tree = BTreeMap<PathBuf, (u32, Vec<u8>)>;

fn tree(dir: &Path) -> Tree {
    let mut entries = Tree::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let content = if meta.is_symlink() {
            std::fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes()
        } else if meta.is_file() {
            // An unreadable file reads as empty, before and after alike.
            std::fs::read(&path).unwrap_or_default()
        } else {
            Vec::new()
        };
        if meta.is_dir() {
            entries.extend(tree(&path));
        }
        entries.insert(path, (meta.mode(), content));
    }
    entries
}

/// Rows per table, to compare a database a sync legitimately opened; `None` without one.
fn row_counts(db: &Path) -> Option<Vec<i64>> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    ["products", "features", "tests", "test_features", "test_platforms", "bugs"]
        .iter()
        .map(|table| conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).ok())
        .collect()
}

/// Lets the scratch folder be deleted, whatever an entry made read-only.
fn restore_permissions(dir: &Path) {
    for path in tree(dir).keys().chain([&dir.to_path_buf()]) {
        let meta = std::fs::symlink_metadata(path).unwrap();
        if !meta.is_symlink() {
            let mode = if meta.is_dir() { 0o700 } else { 0o600 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_is_refused_clearly_and_harms_nothing() {
    let world = World::start().await;
    let families = [
        ("CLI values", cli_values()),
        ("environment values", environment_values()),
        ("database files", database_files()),
        ("lock files", lock_files()),
        ("signals", signals()),
        ("closed pipes", closed_pipes()),
        ("customers", customers()),
    ];
    let (mut entries, mut failures) = (0, Vec::new());
    for (family, cases) in &families {
        for case in cases {
            entries += 1;
            if let Err(why) = world.check(case).await {
                failures.push(format!("{family}: {}: {why}", case.what));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {entries} entries failed:\n{}", failures.len(), failures.join("\n"));
}
