//! `testio-sync mcp` driven by a real MCP client: the official Python SDK, run from the
//! virtualenv that `.ci/run` creates (tests/e2e/mcp_client.py does the talking).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use testio_sim::SimConfig;

use crate::support::{Account, BIN, count};

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

    // "since": "all" with a single id as a string: a full refresh of product 3 only.
    let everything = &report["everything"]["structured"];
    assert_eq!(everything["status"], "completed", "{everything}");
    assert_eq!(everything["tests_discovered"], 40);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests"), 120);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sync_events WHERE status = 'success' AND trigger_source = 'mcp'"), 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sync_events"), 2, "bad input never starts a sync");
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

/// Raw JSON-RPC, no SDK: whatever the server logs (here at debug, during a scheduled
/// sync), stdout carries nothing but protocol messages.
#[tokio::test(flavor = "multi_thread")]
async fn stdout_carries_only_the_protocol_and_the_server_exits_0_when_the_client_leaves() {
    use tokio::io::AsyncWriteExt;

    let account = Account::start(2, 2, 20).await;
    let db = account.db();
    let mut server = crate::support::command(&["mcp", "--db", db.to_str().unwrap()])
        .env("RUST_LOG", "debug")
        .env("TESTIO_REFRESH_INTERVAL_SECONDS", "3600")
        .env("TESTIO_CUSTOMER_API_BASE_URL", account.sim.base_url())
        .env("TESTIO_CUSTOMER_API_TOKEN", account.sim.token())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Drained all along: a full pipe would block the server's logging.
    let mut stderr_pipe = server.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr_pipe, &mut text).await.map(|_| text)
    });
    let synced = || {
        // Opening must not create the file; the table appears with the first migration.
        let successes = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM sync_events WHERE status = 'success'", [], |r| r.get(0)));
        successes.is_ok_and(|n: i64| n == 1)
    };
    crate::support::eventually("the scheduled sync is done", || synced().then_some(())).await;

    let requests = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    ];
    let mut stdin = server.stdin.take().unwrap();
    for request in requests {
        stdin.write_all(format!("{request}\n").as_bytes()).await.unwrap();
    }
    // Give the server the time to answer before the client leaves (no assertion on it).
    let answered = async {
        let mut out = Vec::new();
        let mut stdout = server.stdout.take().unwrap();
        let mut buffer = [0u8; 4096];
        while out.iter().filter(|b| **b == b'\n').count() < 2 {
            let n = tokio::io::AsyncReadExt::read(&mut stdout, &mut buffer).await.unwrap();
            assert!(n > 0, "stdout closed early: {}", String::from_utf8_lossy(&out));
            out.extend_from_slice(&buffer[..n]);
        }
        out
    };
    let stdout = tokio::time::timeout(Duration::from_secs(60), answered).await.expect("two answers");
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(60), server.wait()).await.unwrap().unwrap();
    let stderr = stderr.await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Scheduled sync started") && stderr.contains("MCP client disconnected"), "{stderr}");

    let stdout = String::from_utf8(stdout).unwrap();
    let messages: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON-RPC on stdout ({e}): {line}")))
        .collect();
    assert!(messages.iter().all(|m| m["jsonrpc"] == "2.0"), "{stdout}");
    assert_eq!(messages[0]["result"]["serverInfo"]["name"], "testio-sync");
    assert_eq!(messages[1]["result"]["tools"].as_array().unwrap().len(), 3);
}
