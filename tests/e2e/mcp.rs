//! `testio-sync mcp` driven by a real MCP client: the official Python SDK, run from the
//! virtualenv that `.ci/run` creates (tests/e2e/mcp_client.py does the talking).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use testio_sim::SimConfig;
use testio_sync::mcp::schema::STANDARD_FORMATS;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;

use crate::support::{Account, BIN, Registry, count, snapshot, sync_log};

/// The virtualenv's python: `TESTIO_MCP_PYTHON`, or `target/mcp-venv` as `.ci/run` makes it.
/// Without a working client these tests fail (they never pass unrun), saying how to install it.
async fn mcp_python() -> PathBuf {
    let python = match std::env::var_os("TESTIO_MCP_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/mcp-venv/bin/python"),
    };
    let imports = tokio::process::Command::new(&python).args(["-c", "import mcp"]).output().await;
    match imports {
        Ok(out) if out.status.success() => python,
        Ok(out) => panic!(
            "{} cannot import the MCP SDK ({}); {INSTALL_CLIENT}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("no MCP client at {} ({e}); {INSTALL_CLIENT}", python.display()),
    }
}

const INSTALL_CLIENT: &str = "these tests need the Python MCP client: `python3 -m venv target/mcp-venv && \
target/mcp-venv/bin/pip install -r tests/e2e/mcp-client-requirements.txt`, then run them again (or set \
TESTIO_MCP_PYTHON=<that venv>/bin/python); .ci/run does both";

/// Runs one scenario of mcp_client.py against `testio-sync mcp` on the account.
async fn run_client(python: &PathBuf, scenario: &str, account: &Account, env: &[(&str, &str)]) -> Value {
    let mut server_env = json!({
        "TESTIO_CUSTOMER_API_BASE_URL": account.sim.base_url(),
        "TESTIO_CUSTOMER_API_TOKEN": account.sim.token(),
        "RUST_LOG": "info",
    });
    for (name, value) in env {
        server_env[*name] = json!(value);
    }
    let server = json!({ "command": BIN, "args": ["mcp", "--db", account.db()], "env": server_env });
    run_scenario(python, scenario, &server).await
}

/// Runs one scenario of mcp_client.py against `server` ({"command", "args", "env"}).
async fn run_scenario(python: &PathBuf, scenario: &str, server: &Value) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/mcp_client.py");
    let client = tokio::process::Command::new(python)
        .arg(script)
        .arg(scenario)
        .arg(server.to_string())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), client).await.expect("the MCP client finishes").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the MCP client failed:\n{stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the client's report is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_mcp_client_syncs_follows_progress_reads_status_and_history_and_gets_clear_errors() {
    let python = mcp_python().await;
    let account = Account::start(3, 3, 40).await;
    let report = run_client(&python, "tour", &account, &[("TESTIO_REFRESH_INTERVAL_SECONDS", "0")]).await;
    let db = account.db();

    let tools = report["tools"].as_array().unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["sync_data", "sync_history", "sync_status"]);
    for tool in tools {
        assert!(tool["description"].as_str().unwrap().len() > 80, "an agent needs a real description: {tool}");
        assert_eq!(tool["input"]["type"], "object", "{tool}");
        assert_eq!(tool["output"]["type"], "object", "{tool}");
    }
    // Validating clients warn about every format JSON Schema does not define.
    let schemas = serde_json::to_string(tools).unwrap();
    for (at, _) in schemas.match_indices(r#""format":""#) {
        let format = schemas[at + 10..].split('"').next().unwrap();
        assert!(STANDARD_FORMATS.contains(&format), "a non-standard format in tools/list: {format}");
    }
    let sync_data = tools.iter().find(|t| t["name"] == "sync_data").unwrap();
    for field in ["product_ids", "since", "force"] {
        let description = sync_data["input"]["properties"][field]["description"].as_str();
        assert!(description.is_some_and(|d| d.len() > 30), "{field} is described: {sync_data}");
    }

    // The first sync: products 1 and 2, as the rows in SQLite show.
    let sync = &report["sync"];
    assert_eq!(sync["is_error"], false, "{sync}");
    let result = &sync["structured"];
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["phases_completed"], json!(["products", "features", "new_tests", "bugs"]), "bugs are kept fresh");
    assert_eq!(result["tests_discovered"], 80);
    assert_eq!(result["errors"], json!([]));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE product_id IN (1, 2)"), 80);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM features WHERE product_id IN (1, 2)"), 6);

    // Progress: per phase and per product, always growing.
    let progress = report["progress"].as_array().unwrap();
    let messages: Vec<&str> = progress.iter().map(|p| p["message"].as_str().unwrap()).collect();
    for expected in ["products phase started", "features phase started", "new_tests phase started"] {
        assert!(messages.contains(&expected), "{messages:?}");
    }
    for product in [1, 2] {
        let done = format!("new_tests: product {product} done");
        assert!(messages.iter().any(|m| m.starts_with(&done)), "{messages:?}");
    }
    let values: Vec<f64> = progress.iter().map(|p| p["progress"].as_f64().unwrap()).collect();
    assert!(values.windows(2).all(|pair| pair[0] < pair[1]), "progress must grow: {values:?}");

    let status = &report["status"]["structured"];
    assert_eq!(status["last_sync"]["status"], "success", "{status}");
    assert_eq!(status["last_sync"]["trigger_source"], "mcp");
    assert_eq!(status["last_sync"]["tests_discovered"], 80);
    assert!(status["last_sync"]["duration_seconds"].as_f64().unwrap() > 0.0);
    assert!(status["last_sync_completed"].is_string(), "{status}");
    assert_eq!(status["lock_holder"], Value::Null, "nobody holds the lock between syncs");
    assert_eq!(status["scheduler"], Value::Null, "the scheduler is off");

    let history = report["history"]["structured"]["syncs"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["tests_discovered"], 80);

    let bad_since = &report["bad_since"];
    assert_eq!(bad_since["is_error"], true);
    let text = bad_since["text"].as_str().unwrap();
    assert!(text.contains("\"soonish\"") && text.contains("30 days ago") && text.contains("\"all\""), "{text}");
    let bad_ids = &report["bad_ids"];
    assert_eq!(bad_ids["is_error"], true);
    let text = bad_ids["text"].as_str().unwrap();
    assert!(text.contains("\"abc\" is not a product id") && text.contains("\"598,599\""), "{text}");
    assert!(report["bad_limit"]["text"].as_str().unwrap().contains("give 1 to 100"), "{report}");

    // The same products as "[1, 2]" (the MCP Inspector's form) and "1 2": nothing new.
    for form in ["inspector", "spaced"] {
        let again = &report[form]["structured"];
        assert_eq!((&again["status"], &again["tests_discovered"]), (&json!("completed"), &json!(0)), "{form}: {again}");
    }
    // "since": "all" with a single id as a number: a full refresh of product 3 only.
    let everything = &report["everything"]["structured"];
    assert_eq!(everything["status"], "completed", "{everything}");
    assert_eq!(everything["tests_discovered"], 40);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests"), 120);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sync_events WHERE status = 'success' AND trigger_source = 'mcp'"), 4);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sync_events"), 4, "bad input never starts a sync");
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_data_during_a_scheduled_sync_waits_its_turn_while_other_calls_are_answered() {
    let python = mcp_python().await;
    let account = Account::with(SimConfig {
        products: 3,
        features: 3,
        tests: 300,
        latency: Duration::from_millis(40),
        ..SimConfig::default()
    })
    .await;
    // A long interval: the scheduler syncs once, at start (the database is empty).
    let report = run_client(&python, "concurrent", &account, &[("TESTIO_REFRESH_INTERVAL_SECONDS", "600")]).await;
    let db = account.db();

    let answered = report["answered_while_syncing"].as_array().unwrap();
    assert!(!answered.is_empty(), "sync_status was answered while sync_data waited: {report}");
    let holder = answered[0]["lock_holder"].as_str().unwrap_or_default();
    assert!(holder.contains("testio-sync mcp"), "the lock holder is named: {}", answered[0]);

    // The plain call shared the scheduler's sync and its result; the forced one could
    // not, and ran after it.
    let plain = &report["plain"];
    assert_eq!(plain["is_error"], false, "{plain}");
    assert_eq!(plain["structured"]["tests_discovered"], 900, "{plain}");
    let forced = &report["forced"];
    assert_eq!(forced["is_error"], false, "{forced}");
    assert_eq!(forced["structured"]["tests_updated"], 900, "{forced}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut rows =
        conn.prepare("SELECT trigger_source, status, tests_discovered FROM sync_events ORDER BY id").unwrap();
    let rows: Vec<(String, String, i64)> =
        rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    assert_eq!(
        rows,
        [("scheduler".to_string(), "success".to_string(), 900), ("mcp".to_string(), "success".to_string(), 0)]
    );
    let overlapping = count(
        &db,
        "SELECT COUNT(*) FROM sync_events a JOIN sync_events b ON a.id < b.id WHERE b.started_at < a.completed_at",
    );
    assert_eq!(overlapping, 0, "one sync at a time");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_held_by_another_process_is_a_tool_error_that_names_the_holder() {
    let python = mcp_python().await;
    let account = Account::start(1, 1, 5).await;
    let path = account.dir.path().join("sync.lock");
    let holder = crate::lock::hold_with_flock(&path).await;
    let pid = holder.pid();
    crate::lock::write_record(&path, pid, std::time::SystemTime::now());
    let env = [("TESTIO_REFRESH_INTERVAL_SECONDS", "0"), ("TESTIO_SYNC_LOCK_TIMEOUT_SECONDS", "0")];
    let report = run_client(&python, "busy", &account, &env).await;

    let sync = &report["sync"];
    assert_eq!(sync["is_error"], true, "{sync}");
    assert_eq!(sync["structured"]["status"], "failed");
    let text = sync["text"].as_str().unwrap();
    assert!(text.contains("sync lock busy") && text.contains(&format!("PID {pid} on ")), "{text}");
    let status = &report["status"]["structured"];
    assert!(status["lock_holder"].as_str().unwrap().starts_with(&format!("held by PID {pid} on")), "{status}");
    assert!(!account.db().exists(), "a refused sync writes nothing");
}

/// How long a test waits for a reply, a log line or an exit before it calls it a hang.
const HANG: Duration = Duration::from_secs(60);

/// `testio-sync mcp` spoken to in raw JSON-RPC lines, no SDK: stdin stays open until the
/// test closes it, replies are read from stdout line by line, stderr is kept line by line.
struct RawSession {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: mpsc::UnboundedReceiver<String>,
    log: String,
}

impl RawSession {
    fn start(account: &Account, env: &[(&str, &str)]) -> Self {
        let db = account.db_arg();
        let mut child = crate::support::command(&["mcp", "--db", &db])
            .envs(env.iter().copied())
            .env("TESTIO_CUSTOMER_API_BASE_URL", account.sim.base_url())
            .env("TESTIO_CUSTOMER_API_TOKEN", account.sim.token())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary runs");
        // Drained all along: a full pipe would block the server's logging.
        let (lines, stderr) = mpsc::unbounded_channel();
        let mut pipe = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = pipe.next_line().await {
                let _ = lines.send(line);
            }
        });
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, stdin, stdout, stderr, log: String::new() }
    }

    async fn send(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(line).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// The next line on stdout, which must be one JSON-RPC message.
    async fn reply(&mut self) -> Value {
        let line = tokio::time::timeout(HANG, self.stdout.next_line()).await;
        let line = line.unwrap_or_else(|_| panic!("no reply within {HANG:?}; stderr:\n{}", self.log));
        let line = line.unwrap().unwrap_or_else(|| panic!("stdout closed; stderr:\n{}", self.log));
        let message: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON-RPC on stdout ({e}): {line}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        message
    }

    async fn request(&mut self, request: Value) -> Value {
        self.send(request.to_string().as_bytes()).await;
        self.reply().await
    }

    /// The MCP handshake; the server answers requests from then on.
    async fn initialize(&mut self) -> Value {
        let reply = self
            .request(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}}))
            .await;
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string().as_bytes()).await;
        reply
    }

    /// Reads stderr until a line contains `text`.
    async fn wait_for_log(&mut self, text: &str) {
        let seen = tokio::time::timeout(HANG, async {
            while let Some(line) = self.stderr.recv().await {
                self.log.push_str(&line);
                self.log.push('\n');
                if line.contains(text) {
                    return true;
                }
            }
            false
        });
        let seen = seen.await.unwrap_or(false);
        assert!(seen, "the log never said {text:?}:\n{}", self.log);
    }

    /// Sends `signal` (stdin still open) and waits at most `within` for the exit; the
    /// exit code and the whole stderr.
    async fn signal(mut self, signal: i32, within: Duration) -> (i32, String) {
        // SAFETY: kill(2) on our own child's PID.
        assert_eq!(unsafe { libc::kill(self.child.id().unwrap() as i32, signal) }, 0);
        let status = tokio::time::timeout(within, self.child.wait()).await;
        let status = status.unwrap_or_else(|_| panic!("still running {within:?} after the signal:\n{}", self.log));
        (status.unwrap().code().unwrap_or(-1), self.rest_of_the_log().await)
    }

    /// Closes stdin, as a client that leaves does, and waits for the exit.
    async fn close(mut self) -> (i32, String) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(HANG, self.child.wait()).await.expect("the server exits").unwrap();
        (status.code().unwrap_or(-1), self.rest_of_the_log().await)
    }

    /// Every stderr line, once the process is gone (the pipe's end closes the channel).
    async fn rest_of_the_log(mut self) -> String {
        while let Ok(Some(line)) = tokio::time::timeout(HANG, self.stderr.recv()).await {
            self.log.push_str(&line);
            self.log.push('\n');
        }
        // Nothing but protocol messages was left on stdout either.
        while let Ok(Some(line)) = self.stdout.next_line().await {
            assert!(serde_json::from_str::<Value>(&line).is_ok(), "not JSON-RPC on stdout: {line}");
        }
        self.log
    }
}

/// Whatever the server logs (here at debug, during a scheduled sync), stdout carries
/// nothing but protocol messages.
#[tokio::test(flavor = "multi_thread")]
async fn stdout_carries_only_the_protocol_and_the_server_exits_0_when_the_client_leaves() {
    let account = Account::start(2, 2, 20).await;
    let mut server = RawSession::start(&account, &[("RUST_LOG", "debug"), ("TESTIO_REFRESH_INTERVAL_SECONDS", "3600")]);
    server.wait_for_log("Sync completed").await;
    let hello = server.initialize().await;
    assert_eq!(hello["result"]["serverInfo"]["name"], "testio-sync");
    let tools = server.request(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await;
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 3);
    let (code, stderr) = server.close().await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("MCP client disconnected"), "{stderr}");
}

/// JSON-RPC 2.0 §5: every request gets an answer with its id (null when it cannot be
/// read), a line that is not JSON a -32700, a notification none; nothing reaches the database.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_mcp_lines_get_json_rpc_errors_with_their_ids_and_change_nothing() {
    let account = Account::start(1, 1, 5).await;
    account.sync(&[]).await.expect(0);
    let (rows, log) = (snapshot(&account.db()), sync_log(&account.db()));
    let mut server = RawSession::start(&account, &[("TESTIO_REFRESH_INTERVAL_SECONDS", "0")]);
    server.initialize().await;

    let call = |id: Value, params: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string().into_bytes()
    };
    // (line, expected error code, expected id, a fragment of the message)
    let table: Vec<(Vec<u8>, i64, Value, &str)> = vec![
        (b"this is not json".to_vec(), -32700, Value::Null, "Parse error"),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,".to_vec(), -32700, Value::Null, "Parse error"),
        (b"\xff\xfe{}".to_vec(), -32700, Value::Null, "Parse error"),
        (b"42".to_vec(), -32600, Value::Null, "Invalid Request"),
        (b"[]".to_vec(), -32600, Value::Null, "Invalid Request"),
        (br#"[{"jsonrpc":"2.0","id":6,"method":"ping"}]"#.to_vec(), -32600, Value::Null, "batch"),
        (br#"{"jsonrpc":"2.0","id":3,"method":7}"#.to_vec(), -32600, json!(3), "method"),
        (br#"{"jsonrpc":"1.0","id":4,"method":"ping"}"#.to_vec(), -32600, json!(4), "jsonrpc"),
        (br#"{"id":"four","method":"ping"}"#.to_vec(), -32600, json!("four"), "jsonrpc"),
        (br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#.to_vec(), -32600, Value::Null, "id"),
        (br#"{"jsonrpc":"2.0","id":{"n":1},"method":"ping"}"#.to_vec(), -32600, Value::Null, "id"),
        (br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#.to_vec(), -32600, json!(1.5), "id"),
        (br#"{"jsonrpc":"2.0","id":"p","method":"ping","params":5}"#.to_vec(), -32600, json!("p"), "params"),
        (call(json!(2), json!({"name": "sync_history", "arguments": [1, 2]})), -32602, json!(2), "arguments"),
        (call(json!(5), json!({"name": 5})), -32602, json!(5), "name"),
        (call(json!(7), json!(["sync_history"])), -32602, json!(7), "object"),
        (call(json!(8), json!({"name": "sync_data", "arguments": "598"})), -32602, json!(8), "arguments"),
        (call(json!(9), json!({"name": "nope"})), -32602, json!(9), "tool not found"),
        (br#"{"jsonrpc":"2.0","id":10,"method":"initialize","params":{}}"#.to_vec(), -32602, json!(10), "initialize"),
        (br#"{"jsonrpc":"2.0","id":11,"method":"no/such/method"}"#.to_vec(), -32601, json!(11), ""),
    ];
    for (line, code, id, fragment) in &table {
        server.send(line).await;
        let reply = server.reply().await;
        let shown = String::from_utf8_lossy(line);
        assert_eq!(reply["error"]["code"], *code, "{shown} → {reply}");
        assert_eq!(reply.get("id"), Some(id), "the id member is always there: {shown} → {reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(fragment), "{shown} → {reply}");
    }

    // Notifications, good or bad, and blank lines are never answered: the next reply is the ping's.
    for line in [
        &br#"{"jsonrpc":"2.0","method":"notifications/initialized","params":[1]}"#[..],
        br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"gone"}}"#,
        br#"{"jsonrpc":"2.0","method":"no/such/notification"}"#,
        b"   ",
    ] {
        server.send(line).await;
    }
    let bom_ping = [&b"\xEF\xBB\xBF"[..], br#"{"jsonrpc":"2.0","id":"after","method":"ping"}"#].concat();
    server.send(&bom_ping).await;
    let pong = server.reply().await;
    assert_eq!((&pong["id"], &pong["result"]), (&json!("after"), &json!({})), "{pong}");

    let (code, stderr) = server.close().await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!((snapshot(&account.db()), sync_log(&account.db())), (rows, log), "the database is unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_stdin_open_and_no_sync_exits_at_once_with_0() {
    let account = Account::start(1, 1, 5).await;
    let mut server = RawSession::start(&account, &[("TESTIO_REFRESH_INTERVAL_SECONDS", "0")]);
    server.initialize().await;
    // Answered: the server has read every line and waits on stdin for the next.
    server.request(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).await;
    let (code, stderr) = server.signal(libc::SIGTERM, Duration::from_secs(3)).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("MCP server stopped by SIGTERM"), "{stderr}");
}

/// A server in the middle of a `sync_data` call that walks a slow account's tests.
async fn syncing_session() -> (Account, RawSession) {
    let account = Account::with(SimConfig {
        products: 3,
        features: 3,
        tests: 600,
        latency: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await;
    let mut server = RawSession::start(&account, &[("TESTIO_REFRESH_INTERVAL_SECONDS", "0")]);
    server.initialize().await;
    let sync = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "sync_data"}});
    server.send(sync.to_string().as_bytes()).await;
    server.wait_for_log("new_tests phase started").await;
    (account, server)
}

/// The sync's row says `interrupted` and why, and the lock is free.
fn assert_interrupted(account: &Account, reason: &str) {
    assert_eq!(sync_log(&account.db()), [("interrupted".to_string(), Some(reason.to_string()))]);
    let lock = testio_sync::lock::inspect(&account.dir.path().join("sync.lock")).unwrap().unwrap();
    assert!(!lock.held, "the lock is free");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_sync_data_with_stdin_open_interrupts_the_sync_and_frees_the_lock() {
    let (account, server) = syncing_session().await;
    let (code, stderr) = server.signal(libc::SIGTERM, Duration::from_secs(3)).await;
    assert_eq!(code, 0, "{stderr}");
    assert_interrupted(&account, "interrupted by SIGTERM");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_during_sync_data_interrupts_the_sync_and_frees_the_lock() {
    let (account, server) = syncing_session().await;
    let (code, stderr) = server.close().await;
    assert_eq!(code, 0, "{stderr}");
    assert_interrupted(&account, "the MCP client disconnected");
}

/// A database that cannot be read is a tool error naming what could not be read.
#[tokio::test(flavor = "multi_thread")]
async fn tools_that_cannot_read_the_database_say_what_they_could_not_read() {
    let account = Account::start(1, 1, 5).await;
    let mut server = RawSession::start(&account, &[("TESTIO_REFRESH_INTERVAL_SECONDS", "0")]);
    server.initialize().await;
    std::fs::write(account.db(), "not a database, written after the server started").unwrap();
    for (id, tool, expected) in [
        (1, "sync_history", "Could not read the sync history: "),
        (2, "sync_status", "Could not read the sync status: "),
    ] {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool}});
        let reply = server.request(call).await;
        assert_eq!(reply["result"]["isError"], true, "{reply}");
        let text = reply["result"]["content"][0]["text"].as_str().unwrap_or_default();
        assert!(text.starts_with(expected), "{tool}: {text}");
    }
    let (code, stderr) = server.close().await;
    assert_eq!(code, 0, "{stderr}");
}

/// The MCP tools against a PostgreSQL mirror: a sync, then its status (the lock free, read
/// from the server) and its history.
#[tokio::test(flavor = "multi_thread")]
async fn the_tools_work_the_same_on_a_postgresql_mirror() {
    let config = SimConfig { products: 2, features: 2, tests: 30, ..SimConfig::default() };
    let account = Account::on(crate::support::Backend::Postgres, config).await;
    let mut server = RawSession::start(&account, &[("TESTIO_REFRESH_INTERVAL_SECONDS", "0")]);
    server.initialize().await;
    let call =
        |id: u64, name: &str| json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name}});
    let synced = server.request(call(1, "sync_data")).await;
    assert_eq!(synced["result"]["structuredContent"]["status"], "completed", "{synced}");
    let status = server.request(call(2, "sync_status")).await;
    let status = &status["result"]["structuredContent"];
    assert_eq!(status["last_sync"]["status"], "success", "{status}");
    assert!(status["lock_holder"].is_null(), "{status}");
    assert!(status["db_path"].as_str().unwrap().starts_with("PostgreSQL at 127.0.0.1:"), "{status}");
    let history = server.request(call(3, "sync_history")).await;
    assert_eq!(history["result"]["structuredContent"]["syncs"][0]["tests_discovered"], 60, "{history}");
    assert_eq!(account.count("SELECT COUNT(*) FROM tests"), 60);
    let (code, stderr) = server.close().await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains(testio_pgtest::PASSWORD), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_mcp_client_picks_a_customer_by_name_and_gets_the_default_without_one() {
    let python = mcp_python().await;
    let mut registry = Registry::empty();
    // a (the default, local id 4): 2 × 10 tests; b (local id 6): 3 × 7.
    registry.add("a", 4, SimConfig { products: 2, features: 1, tests: 10, ..SimConfig::default() }, &[]).await;
    registry.add("b", 6, SimConfig { products: 3, features: 1, tests: 7, seed: 2, ..SimConfig::default() }, &[]).await;
    let mut env = json!({ "TESTIO_KEYRING": "off", "TESTIO_REFRESH_INTERVAL_SECONDS": "0", "RUST_LOG": "info" });
    for (var, token) in registry.token_variables() {
        env[var] = json!(token);
    }
    let server = json!({ "command": BIN, "args": ["mcp", "--db", registry.db()], "env": env });
    let report = run_scenario(&python, "customers", &server).await;
    registry.assert_hidden(&report.to_string());
    let db = registry.db();

    let (for_b, for_default) = (&report["sync_b"], &report["sync_default"]);
    assert_eq!(for_b["is_error"], false, "{for_b}");
    assert_eq!(for_b["structured"]["tests_discovered"], 21, "b's tests: {for_b}");
    assert_eq!(for_default["structured"]["tests_discovered"], 20, "a's tests: {for_default}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE customer_id = 6"), 21);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE customer_id = 4"), 20);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE customer_id NOT IN (4, 6)"), 0);
    let status_b = &report["status_b"]["structured"];
    assert_eq!((&status_b["customer"], &status_b["customer_id"]), (&json!("b"), &json!(6)), "{status_b}");
    assert_eq!(status_b["last_sync"]["tests_discovered"], 21);
    let listed: Vec<&str> =
        status_b["customers"].as_array().unwrap().iter().map(|c| c["customer"].as_str().unwrap()).collect();
    assert_eq!(listed, ["b"], "only the customer asked for");
    let status_all = &report["status_all"]["structured"];
    assert_eq!(status_all["customer"], "a", "the default: {status_all}");
    let listed: Vec<(&str, i64)> = status_all["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["customer"].as_str().unwrap(), c["last_sync"]["tests_discovered"].as_i64().unwrap()))
        .collect();
    assert_eq!(listed, [("a", 20), ("b", 21)], "every customer, the default first");

    let discovered = |key: &str| -> Vec<i64> {
        report[key]["structured"]["syncs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["tests_discovered"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(discovered("history_b"), [21]);
    assert_eq!(discovered("history_default"), [20]);

    for key in ["unknown_sync", "unknown_status", "unknown_history"] {
        let unknown = &report[key];
        assert_eq!(unknown["is_error"], true, "{key}: {unknown}");
        let text = unknown["text"].as_str().unwrap();
        assert!(text.contains("there is no active customer \"nobody\"; active customers: a, b"), "{key}: {text}");
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sync_events"), 2, "an unknown customer never starts a sync");
}
