//! The PostgreSQL store against a real server: round trips, the outputs SQLite gives for
//! the same writes, the sync log, migrations and connection trouble.

use chrono::Utc;
use serde_json::{Value, json};

use super::testing::{TestDb, assert_names, closed_port};
use super::*;
use crate::api::{BugRecord, FeatureRecord, parse_bugs, parse_features, parse_products, parse_tests};
use crate::db::Store;
use crate::db::problems::Neighbour;

const JUNE: Timestamp = 1_780_272_000_000;
const FINALS: [&str; 2] = ["archived", "cancelled"];

fn products() -> Vec<ProductRecord> {
    let body = r#"{"products":[{"id":1,"name":"Old"},{"id":2,"name":"Shop","type":"website"},{"id":1,"name":"Web"}]}"#;
    parse_products(body.as_bytes()).unwrap()
}

fn features() -> Vec<FeatureRecord> {
    let body = r#"{"features":[{"id":50,"title":"Login","user_stories":["As a user"]},{"id":51,"title":"Cart"}]}"#;
    parse_features(body.as_bytes()).unwrap()
}

/// What product 1's page held at an earlier sync: rows that the next write must replace.
fn earlier_copy() -> Vec<TestRecord> {
    let body = json!({"exploratory_tests": [
        {"id": 7, "status": "locked", "features": [{"id": 70, "feature_id": 50}, {"id": 72, "feature_id": 52}],
         "requirements": [{"operating_system": {"id": 1, "name": "Windows"}}, {"operating_system": {"name": "Linux"}}]},
        {"id": 8, "status": "running", "requirements": [{"operating_system": {"id": 2, "name": "macOS old"}},
                                                        {"operating_system": {"name": "Linux"}}]}
    ]});
    parse_tests(body.to_string().as_bytes()).unwrap()
}

/// Tests 7 (listed twice: the second copy wins), 8 and 9 of product 1; 20 of product 2.
fn tests_of(product: u64) -> Vec<TestRecord> {
    let body = match product {
        1 => json!({"exploratory_tests": [
            {"id": 7, "status": "running", "end_at": "2026-01-02T03:04:05+02:00", "title": "First",
             "features": [{"id": 70, "feature_id": 50, "title": "a"}, {"id": 71, "feature_id": 51, "title": "b"}],
             "requirements": [{"category": {"key": "computer"}, "operating_system": {"id": 1, "name": "Windows"}}]},
            {"id": 8, "status": "archived", "end_at": "2026-03-01T00:00:00Z", "test_title": "Second",
             "test_environment": {"id": 3, "title": "Prod", "password": "env-secret"},
             "requirements": [{"operating_system": {"id": 2, "name": "macOS"}},
                              {"operating_system": {"id": 2, "name": "macOS again"}},
                              {"operating_system": {"name": "Linux"}}, {"operating_system": {"name": "BSD"}}]},
            {"id": 9, "status": "locked", "enable_low": true},
            {"id": 7, "status": "running", "end_at": "2026-01-02T03:04:05+02:00", "title": "First, again",
             "features": [{"id": 71, "feature_id": 51, "title": "b2", "user_stories": ["x"], "enable_visual": true},
                          {"feature_id": 52}]}
        ]}),
        _ => json!({"exploratory_tests": [{"id": 20, "status": "running"}]}),
    };
    parse_tests(body.to_string().as_bytes()).unwrap()
}

fn bugs() -> Vec<BugRecord> {
    let body = r#"{"bugs":[
        {"id":700,"title":"Crash","severity":"high","status":"accepted","auto_accepted":true,"test":{"id":7},
         "author":{"name":"Ann"},"steps":["open","tap"],"actual_result":"  ","reported_at":"2026-01-01T10:00:00Z"},
        {"id":701,"test":{"id":7},"known":true},
        {"id":800,"test":{"id":8},"test_feature":{"id":70}},
        {"id":999}]}"#;
    parse_bugs(body.as_bytes()).unwrap()
}

fn report(first: u32, before: Option<u64>) -> ProblemReport {
    ProblemReport {
        product_id: 1,
        first_offset: first,
        last_offset: first + 1,
        before: before.map(|id| Neighbour { id, end_at: Some(JUNE) }),
        after: Some(Neighbour { id: 9, end_at: None }),
    }
}

fn result(errors: &[&str]) -> SyncResult {
    SyncResult {
        products_synced: 2,
        features_refreshed: 2,
        tests_discovered: 4,
        tests_updated: 1,
        bugs_refreshed: 3,
        tests_rechecked: 5,
        tests_changed: 1,
        rows_removed: 6,
        duration_seconds: 1.25,
        warnings: vec!["w".into()],
        errors: errors.iter().map(|e| e.to_string()).collect(),
        ..SyncResult::default()
    }
}

/// The writes a sync makes, in order.
fn write_everything(store: &mut dyn SyncStore) {
    let products = products();
    store.write_products(&products.iter().collect::<Vec<_>>()).unwrap();
    let features = features();
    let placements: Vec<Placement> =
        features.iter().map(|feature| Placement { feature, section_ids: &[4, 5] }).collect();
    store.write_features(1, &placements).unwrap();
    let earlier = earlier_copy();
    store.write_tests(1, &earlier.iter().collect::<Vec<_>>()).unwrap();
    for product in [1, 2] {
        let tests = tests_of(product);
        store.write_tests(product, &tests.iter().collect::<Vec<_>>()).unwrap();
    }
    let earlier = parse_bugs(br#"{"bugs":[{"id":702,"test":{"id":7}},{"id":800,"title":"old","test":{"id":8}}]}"#);
    store.write_bugs(&earlier.unwrap().iter().collect::<Vec<_>>(), &[7, 8]).unwrap();
    let bugs = bugs();
    store.write_bugs(&bugs.iter().collect::<Vec<_>>(), &[7, 8]).unwrap();
    store.set_tests_coverage(1, TestsCoverage::All).unwrap();
    store.set_tests_coverage(2, TestsCoverage::Since(1_000)).unwrap();
    store.set_tests_coverage(3, TestsCoverage::All).unwrap();
    store.set_tests_coverage(3, TestsCoverage::None).unwrap();
    store.add_problem_range(&report(37, Some(5)), JUNE).unwrap();
    store.add_problem_range(&report(0, None), JUNE).unwrap();
    let first = store.problem_ranges(&[]).unwrap()[0].id as u64;
    store.update_problem_range(first, &report(40, Some(5)), 2, JUNE + 1_000).unwrap();
    store.add_problem_range(&report(90, None), JUNE + 2_000).unwrap();
    let last = store.problem_ranges(&[1]).unwrap()[2].id as u64;
    store.clear_problem_range(last).unwrap();
    let run = store.start_run("cli", "products,features").unwrap();
    store.touch_run(run).unwrap();
    store.finish_run(run, &Ok(result(&[]))).unwrap();
    let failed = store.start_run("scheduler", "bugs").unwrap();
    store.finish_run(failed, &Ok(result(&["product 2: HTTP 500"]))).unwrap();
}

/// What every read gives; times written from the clock are checked for their format and
/// left out, since two stores never write at the same microsecond.
fn everything_read(store: &mut dyn SyncStore) -> Value {
    let later = Utc::now().timestamp_millis() + 60_000;
    let finals: Vec<String> = FINALS.map(String::from).to_vec();
    let mut history = serde_json::to_value(store.history(10).unwrap()).unwrap();
    for sync in history.as_array_mut().unwrap() {
        for time in ["started_at", "completed_at"] {
            let text = sync[time].take();
            assert!(is_time_column(text.as_str().unwrap()), "{time} {text}");
        }
    }
    let candidates: Vec<Value> = (store.bug_candidates(&[1, 2], None).unwrap().into_iter())
        .map(|c| json!([c.id, c.product_id, c.status, c.bugs_synced_at.is_some()]))
        .collect();
    let due: Vec<Value> = (store.tests_to_recheck(&[1, 2], &finals, None, later).unwrap().into_iter())
        .map(|t| json!([t.id, t.product_id, t.status, t.position]))
        .collect();
    let completed = store.metadata("last_sync_completed").unwrap().unwrap();
    assert!(is_time_column(&completed), "{completed}");
    json!({
        "customer": store.customer_id(),
        "rows": store.row_counts().unwrap(),
        "scope 1": store.scope_counts(Some(&[1])).unwrap(),
        "scope": store.scope_counts(None).unwrap(),
        "known": store.known_tests(&[9, 7, 100, 7, 20]).unwrap(),
        "coverage": format!("{:?}", store.tests_coverage(&[1, 2, 3, 4]).unwrap()),
        "problems": serde_json::to_value(store.problem_ranges(&[]).unwrap()).unwrap(),
        "problems of 2": serde_json::to_value(store.problem_ranges(&[2]).unwrap()).unwrap(),
        "candidates": candidates,
        "since March": format!("{:?}", store.bug_candidates(&[1], Some(1_772_323_200_000)).unwrap().len()),
        "due": due,
        "history": history,
        "no such key": store.metadata("nothing").unwrap(),
    })
}

/// `YYYY-MM-DD HH:MM:SS.ffffff`, SQLite's time column.
fn is_time_column(text: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.6f").is_ok() && text.len() == 26
}

/// What removals give, after the reads.
fn removals(store: &mut dyn SyncStore) -> Value {
    let later = Utc::now().timestamp_millis() + 60_000;
    json!({
        "removed": store.remove_tests(&[8, 99]).unwrap(),
        "recent tests kept": store.sweep(EntityKind::Tests, Some(&[1]), None, later - 3_600_000).unwrap(),
        "bugs": store.sweep(EntityKind::Bugs, None, None, later).unwrap(),
        "features": store.sweep(EntityKind::Features, Some(&[1]), None, later).unwrap(),
        "product 2": store.sweep(EntityKind::Products, Some(&[2]), None, later).unwrap(),
        "tests since": store.sweep(EntityKind::Tests, None, Some(JUNE), later).unwrap(),
        "rows": store.row_counts().unwrap(),
        "scope": store.scope_counts(None).unwrap(),
    })
}

#[test]
fn the_same_writes_read_back_as_sqlite_reads_them() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = Store::open(&dir.path().join("cache.db"), 1).unwrap();
    let mut pg = db.store(1);
    write_everything(&mut sqlite);
    write_everything(&mut pg);
    assert_eq!(everything_read(&mut pg), everything_read(&mut sqlite));
    assert_eq!(removals(&mut pg), removals(&mut sqlite));
}

#[test]
fn a_test_keeps_its_last_copy_with_only_its_current_features_and_platforms() {
    let db = TestDb::new();
    let mut store = db.store(1);
    write_everything(&mut store);
    let mut admin = db.admin();
    let mut text = |sql: &str| -> Vec<String> { admin.query(sql, &[]).unwrap().iter().map(|r| r.get(0)).collect() };
    assert_eq!(text("SELECT id || ':' || title FROM test_features ORDER BY id"), ["71:b2"]);
    assert_eq!(text("SELECT user_stories::text FROM test_features"), [r#"["x"]"#]);
    assert_eq!(
        text("SELECT test_id || ':' || operating_system_name FROM test_platforms ORDER BY id"),
        ["8:macOS", "8:Linux", "8:BSD"],
        "the earlier rows are gone; 7's last copy has none; the first of an operating system is kept; unnamed ones stay distinct"
    );
    assert_eq!(text("SELECT title FROM tests WHERE id = 7"), ["First, again"]);
    assert_eq!(text("SELECT title FROM tests WHERE id = 8"), ["Second"]);
    assert_eq!(text("SELECT test_environment::text FROM tests WHERE id = 8"), [r#"{"id": 3, "title": "Prod"}"#]);
    assert_eq!(text("SELECT data->>'status' FROM tests WHERE id = 9"), ["locked"], "raw JSON is jsonb");
    assert_eq!(
        text("SELECT to_char(end_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM tests WHERE id = 7"),
        ["2026-01-02 01:04:05"]
    );
    assert_eq!(text("SELECT title FROM products WHERE id = 1"), ["Web"], "the last copy of a product wins");
    assert_eq!(text("SELECT section_ids::text FROM features WHERE id = 50"), ["[4, 5]"]);
    assert_eq!(
        text("SELECT id || ':' || coalesce(status, '-') || ':' || coalesce(steps, '-') FROM bugs ORDER BY id"),
        ["700:auto_accepted:open\ntap", "701:-:-", "800:-:-"],
        "a bug without a test is not written; 702 is gone upstream"
    );
}

#[test]
fn rows_of_another_customer_are_neither_seen_nor_touched() {
    let db = TestDb::new();
    let mut ours = db.store(1);
    let mut theirs = db.store(2);
    write_everything(&mut theirs);
    let before = everything_read(&mut theirs);
    assert!(ours.known_tests(&[7]).unwrap().is_empty());
    assert!(ours.problem_ranges(&[]).unwrap().is_empty());
    assert!(ours.history(5).unwrap().is_empty());
    assert!(ours.row_counts().unwrap().iter().all(|(_, n)| *n == 0));
    let later = Utc::now().timestamp_millis() + 60_000;
    assert_eq!(ours.sweep(EntityKind::Products, None, None, later).unwrap(), 0);
    assert_eq!(ours.remove_tests(&[7, 8]).unwrap(), 0);
    let range = theirs.problem_ranges(&[]).unwrap()[0].id as u64;
    ours.update_problem_range(range, &report(1, None), 9, JUNE).unwrap();
    ours.clear_problem_range(range).unwrap();
    assert_eq!(everything_read(&mut theirs), before);
}

#[test]
fn a_new_sync_closes_only_its_own_customers_unfinished_rows() {
    let db = TestDb::new();
    let (mut ours, mut theirs) = (db.store(1), db.store(2));
    let dead = ours.start_run("cli", "products").unwrap();
    ours.touch_run(dead).unwrap();
    let running = theirs.start_run("mcp", "products").unwrap();
    let next = ours.start_run("scheduler", "products").unwrap();
    let history = ours.history(5).unwrap();
    assert_eq!(
        history.iter().map(|s| (s.id, s.status.as_str())).collect::<Vec<_>>(),
        [(next, "running"), (dead, "interrupted")]
    );
    let closed = &history[1];
    let pid = std::process::id();
    assert_eq!(
        closed.error_message.as_deref(),
        Some(format!("the sync stopped before it finished: its process (PID {pid}) ended without closing it").as_str())
    );
    assert!(closed.duration_seconds.is_some_and(|d| d >= 0.0) && closed.completed_at.is_some());
    assert_eq!(theirs.history(1).unwrap()[0].status, "running", "another customer's sync runs on");
    ours.close_run(next, "interrupted", "stopped by SIGTERM").unwrap();
    theirs.finish_run(running, &Err(SyncError::LockBusy("held by PID 7".into()))).unwrap();
    let (ours, theirs) = (ours.history(1).unwrap().remove(0), theirs.history(1).unwrap().remove(0));
    assert_eq!((ours.status.as_str(), ours.error_message.as_deref()), ("interrupted", Some("stopped by SIGTERM")));
    assert_eq!(theirs.status, "failure");
    assert_eq!(theirs.error_message.as_deref(), Some("sync lock busy: held by PID 7"));
}

#[test]
fn stores_opening_a_new_database_at_once_migrate_it_once() {
    let db = TestDb::new();
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let target = db.target.clone();
            std::thread::spawn(move || PgStore::open(target, 1).map(drop).map_err(|e| format!("{e:#}")))
        })
        .collect();
    for opener in openers {
        opener.join().unwrap().unwrap();
    }
    let mut admin = db.admin();
    let versions: Vec<i32> =
        admin.query("SELECT version FROM testio_schema_version", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, [1, 2]);
    admin.execute("INSERT INTO testio_schema_version (version) VALUES (7)", &[]).unwrap();
    let refused = PgStore::open(db.target.clone(), 1).err().expect("a newer schema is refused").to_string();
    assert!(refused.contains("written by a newer testio-sync (schema version 7, this one knows 2)"), "{refused}");
}

#[test]
fn connection_trouble_names_the_server_and_database_never_the_password() {
    let db = TestDb::new();
    let port = db.server.port();
    let fail = |target: PgTarget| PgStore::open(Arc::new(target), 1).err().expect("refused").to_string();

    let wrong = fail(db.target_with(&db.name, "not-the-password"));
    assert_names(&wrong, port, &db.name);
    assert!(wrong.contains("rejected the password") && !wrong.contains("not-the-password"), "{wrong}");

    let missing = fail(db.target_with("no_such_db", testio_pgtest::PASSWORD));
    assert_names(&missing, port, "no_such_db");
    assert!(missing.contains("the database does not exist"), "{missing}");

    let down_port = closed_port();
    let down = fail(
        PgTarget::parse(&format!("postgres://postgres:{}@127.0.0.1:{down_port}/mirror", testio_pgtest::PASSWORD))
            .unwrap(),
    );
    assert_names(&down, down_port, "mirror");
    assert!(down.contains("connection refused"), "{down}");
}

#[test]
fn a_connection_dropped_mid_sync_fails_the_next_write_naming_the_server() {
    let db = TestDb::new();
    let mut store = db.store(1);
    store.start_run("cli", "products").unwrap();
    let mut admin = db.admin();
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db.name],
        )
        .unwrap();
    assert_eq!(killed.len(), 1, "the store's session");
    let products = products();
    let error = store.write_products(&products.iter().collect::<Vec<_>>()).expect_err("the write fails").to_string();
    assert_names(&error, db.server.port(), &db.name);
    assert!(error.starts_with("lost the connection to PostgreSQL at"), "{error}");
    assert_eq!(db.store(1).history(1).unwrap()[0].status, "running", "what was committed before stays");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_opens_and_works_inside_spawn_blocking() {
    let db = TestDb::new();
    let target = db.target.clone();
    let counts = tokio::task::spawn_blocking(move || PgStore::open(target, 1)?.row_counts()).await.unwrap().unwrap();
    assert_eq!(counts.len(), 7);
}

#[test]
fn the_tables_have_sqlites_columns_in_sqlites_order() {
    let db = TestDb::new();
    drop(db.store(1));
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("cache.db"), 1).unwrap();
    let mut tables = sqlite.conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").unwrap();
    let tables: Vec<String> = tables.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert!(tables.contains(&"bugs".to_string()) && tables.len() >= 10, "{tables:?}");
    let mut admin = db.admin();
    for table in tables.iter().filter(|t| !t.starts_with("sqlite_")) {
        // (name, whether it may be NULL): a primary key never may.
        let mut columns = sqlite.conn.prepare("SELECT name, \"notnull\" OR pk > 0 FROM pragma_table_info(?1)").unwrap();
        let theirs: Vec<(String, bool)> =
            columns.query_map([table], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        let ours: Vec<(String, bool)> = admin
            .query(
                "SELECT column_name::text, is_nullable = 'NO' FROM information_schema.columns
                 WHERE table_name = $1 ORDER BY ordinal_position",
                &[table],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(ours, theirs, "table {table}");
    }
}

#[test]
fn a_new_mirror_gets_statistics_once_a_session_has_written_twenty_pages() {
    let db = TestDb::new();
    let mut store = db.store(1);
    let mut admin = db.admin();
    let mut estimate = || -> f32 {
        admin.query_one("SELECT reltuples FROM pg_class WHERE oid = 'tests'::regclass", &[]).unwrap().get(0)
    };
    for id in 1..=20 {
        assert!(estimate() < 0.0, "no statistics before page {id}");
        let page = parse_tests(format!(r#"{{"exploratory_tests":[{{"id":{id}}}]}}"#).as_bytes()).unwrap();
        store.write_tests(1, &page.iter().collect::<Vec<_>>()).unwrap();
    }
    assert_eq!(estimate(), 20.0, "analysed after the twentieth page");
}
