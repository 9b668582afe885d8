//! A throwaway PostgreSQL server for tests and benches: `initdb` into a temporary folder,
//! `pg_ctl start` on a free port of 127.0.0.1, stopped (`-m immediate`) when dropped, which
//! also happens when a test panics. It never skips: a server that cannot start panics with
//! the reason and the server log.
//!
//! PostgreSQL refuses to run as root, and tests run as root here, so the tools run as the
//! `postgres` user (`runuser`) in a folder that user owns; as any other user they run
//! directly. `pg_config --bindir` says where the tools are (Debian's `postgresql-15`).
//!
//! Clients connect over TCP with [`PASSWORD`] (scram-sha-256), so every test that uses the
//! server also checks that a password never shows; the fixture itself uses the Unix socket
//! in the folder (trust).

use std::ffi::CString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// The columns that define the mirrored data, per table, sync times left out: what a test
/// that kills syncs compares with a reference mirror, in SQLite or PostgreSQL alike.
pub const CONTENT: [(&str, &str); 5] = [
    ("products", "customer_id, id, title, product_type, data"),
    ("features", "customer_id, id, product_id, title, description, howtofind, user_stories, section_ids, raw_data"),
    ("tests", "customer_id, id, product_id, data, status, start_at, end_at"),
    ("test_features", "customer_id, id, test_id, feature_id, title, user_stories"),
    ("test_platforms", "customer_id, test_id, operating_system_id, operating_system_name, category"),
];

/// The password of the `postgres` role on every test server: assert it never shows.
pub const PASSWORD: &str = "pg-test-secret-6f1c";
pub const USER: &str = "postgres";
const PREFIX: &str = "testio-pg-";
/// A port taken between our probe and the server's bind is tried again, with another port.
const START_ATTEMPTS: usize = 3;

pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// The `postgres` user's uid and gid when we run as root.
    owner: Option<(u32, u32)>,
}

static SHARED: Mutex<Weak<PgServer>> = Mutex::new(Weak::new());
static DATABASES: AtomicU32 = AtomicU32::new(0);

impl PgServer {
    /// A server for functional tests: `fsync=off`, as nothing needs to survive a crash.
    pub fn start() -> Self {
        Self::start_with(&["-c", "fsync=off"])
    }

    /// A server that syncs its WAL as a production server does, for benchmarks.
    pub fn start_durable() -> Self {
        Self::start_with(&[])
    }

    /// One server for the tests of a binary that run at the same time; it stops when the
    /// last of them drops it (a static is never dropped, so it holds only a `Weak`).
    pub fn shared() -> Arc<Self> {
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = shared.upgrade() {
            return server;
        }
        let server = Arc::new(Self::start());
        *shared = Arc::downgrade(&server);
        server
    }

    fn start_with(settings: &[&str]) -> Self {
        let bin = PathBuf::from(output(Command::new("pg_config").arg("--bindir"), "pg_config --bindir").trim());
        let owner = (unsafe { libc::geteuid() } == 0).then(postgres_ids);
        sweep_abandoned(&bin, owner.is_some());
        let dir = tempfile::Builder::new().prefix(PREFIX).tempdir().expect("a temporary folder for PostgreSQL");
        let mut server = Self { dir, bin, port: 0, owner };
        server.init();
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            server.port = free_port();
            match server.try_start(settings) {
                Ok(()) => return server,
                Err(e) => failures.push(e),
            }
        }
        panic!("PostgreSQL did not start on 127.0.0.1 in {START_ATTEMPTS} attempts:\n{}", failures.join("\n"));
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a database of its own for one test; returns its name.
    pub fn create_db(&self) -> String {
        let name = format!("t_{}", DATABASES.fetch_add(1, Ordering::Relaxed));
        let (socket, port) = (self.path("."), self.port.to_string());
        self.tool("createdb", &["-h", &socket, "-p", &port, "-U", USER, &name]);
        name
    }

    /// `postgres://postgres:<PASSWORD>@127.0.0.1:<port>/<db>`
    pub fn url(&self, db: &str) -> String {
        self.url_with_password(db, PASSWORD)
    }

    pub fn url_with_password(&self, db: &str, password: &str) -> String {
        format!("postgres://{USER}:{password}@127.0.0.1:{}/{db}", self.port)
    }

    /// The postmaster's process id, from its pid file (benches measure the server's CPU).
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.path().join("data").join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// The server's log so far, for a failure message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn init(&self) {
        let pw = self.dir.path().join("pw");
        std::fs::write(&pw, PASSWORD).expect("the password file");
        std::fs::write(self.dir.path().join("owner.pid"), std::process::id().to_string()).expect("owner.pid");
        if let Some((uid, gid)) = self.owner {
            for path in [self.dir.path(), pw.as_path()] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .unwrap_or_else(|e| panic!("could not give {} to the postgres user: {e}", path.display()));
            }
        }
        let (data, pw) = (self.path("data"), self.path("pw"));
        self.tool(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                USER,
                "-E",
                "UTF8",
                "--no-locale",
                "-N",
                "--no-instructions",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                &pw,
            ],
        );
    }

    fn try_start(&self, settings: &[&str]) -> Result<(), String> {
        let options = format!("-k {} -h 127.0.0.1 -p {} {}", self.path("."), self.port, settings.join(" "));
        let (data, log) = (self.path("data"), self.path("log"));
        self.try_tool("pg_ctl", &["-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options, "start"])
            .map(drop)
            .map_err(|e| format!("pg_ctl start on port {}: {e}\nserver log:\n{}", self.port, self.log()))
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Runs a tool; panics with its output and the server log.
    fn tool(&self, name: &str, args: &[&str]) -> String {
        self.try_tool(name, args).unwrap_or_else(|e| panic!("{name} failed: {e}\nserver log:\n{}", self.log()))
    }

    fn try_tool(&self, name: &str, args: &[&str]) -> Result<String, String> {
        run_tool(&self.bin, self.owner.is_some(), self.dir.path(), name, args)
    }
}

impl Drop for PgServer {
    /// Runs when a test panics too; must not panic itself (a panic while unwinding aborts).
    /// TempDir's own drop then removes the folder.
    fn drop(&mut self) {
        if let Err(e) = self.try_tool("pg_ctl", &["-D", &self.path("data"), "-m", "immediate", "-w", "stop"]) {
            eprintln!("could not stop the test PostgreSQL on port {}: {e}", self.port);
        }
    }
}

/// Runs a PostgreSQL tool in `dir` (the postgres user may not read the caller's folder).
fn run_tool(bin: &Path, as_postgres: bool, dir: &Path, name: &str, args: &[&str]) -> Result<String, String> {
    let exe = bin.join(name);
    let mut command = if as_postgres {
        let mut runuser = Command::new("runuser");
        runuser.args(["-u", USER, "--"]).arg(&exe);
        runuser
    } else {
        Command::new(&exe)
    };
    let out = command.args(args).current_dir(dir).output().map_err(|e| format!("{}: {e}", exe.display()))?;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    if out.status.success() { Ok(text(&out.stdout)) } else { Err(text(&out.stdout) + &text(&out.stderr)) }
}

fn output(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e} (install postgresql-15)"));
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
    listener.local_addr().expect("the port bound").port()
}

fn postgres_ids() -> (u32, u32) {
    let name = CString::new(USER).expect("no NUL in a user name");
    // SAFETY: getpwnam returns a pointer into static storage or NULL; read at once.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!entry.is_null(), "there is no `postgres` user to run PostgreSQL as (install postgresql-15)");
    // SAFETY: checked non-null above.
    unsafe { ((*entry).pw_uid, (*entry).pw_gid) }
}

/// Servers of test runs that were killed outright (their Drop never ran) are stopped and
/// their folders removed: those whose `owner.pid` names a process that no longer runs.
fn sweep_abandoned(bin: &Path, as_postgres: bool) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let dir = entry.path();
        let ours = dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(PREFIX));
        let owner = std::fs::read_to_string(dir.join("owner.pid")).ok().and_then(|p| p.trim().parse::<i32>().ok());
        if ours && owner.is_some_and(|pid| !runs(pid)) {
            let data = dir.join("data").display().to_string();
            let _ = run_tool(bin, as_postgres, &dir, "pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn runs(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}
