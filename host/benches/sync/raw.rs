//! The raw baseline: the pages a sync fetched, fetched again and their rows written by
//! plain code (reqwest, serde_json, rusqlite) with no engine, at the same concurrency and
//! into the same schema. Each product's pages are fetched in order, products side by side;
//! each page is turned into statement parameters on the task that fetched it, and one thread
//! writes one transaction per page, as a hand-written sync would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, params_from_iter};
use serde_json::Value;
use serde_json::value::RawValue;
use testio_sim::RequestRecord;
use tokio::sync::Semaphore;

/// The sync's own default for requests in flight.
const IN_FLIGHT: usize = 10;
const BASE_PATH: &str = "/customer/v2/";

/// The requests of one sync, as endpoints relative to the base URL.
pub struct Replay {
    products: Vec<String>,
    /// Per product, its requests in the order the sync made them.
    chains: Vec<Vec<String>>,
}

impl Replay {
    pub fn of(requests: &[RequestRecord]) -> Self {
        let mut products = Vec::new();
        let mut chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for request in requests {
            let path = request.path.strip_prefix(BASE_PATH).unwrap_or(&request.path);
            let endpoint = match &request.query {
                Some(query) => format!("{path}?{query}"),
                None => path.to_string(),
            };
            match path.split('/').nth(1) {
                Some(product) => chains.entry(product.to_string()).or_default().push(endpoint),
                None => products.push(endpoint),
            }
        }
        Self { products, chains: chains.into_values().collect() }
    }
}

/// Replays `replay` against `base_url` into `db`; returns the wall time.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    base_url: &str,
    token: &str,
    db: &Path,
    replay: &Replay,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    // The syncs it is compared with store customer 1 (TESTIO_CUSTOMER_ID is left unset).
    let customer_id = 1;
    // The sync's own migrations create the schema, so both write into the same tables.
    drop(testio_sync::db::Store::open(db, customer_id)?);
    let (pages, queue) = mpsc::channel();
    let writer = spawn_writer(db.to_path_buf(), queue);
    let fetcher = Fetcher::new(base_url, token, customer_id)?;
    runtime.block_on(fetcher.fetch_all(replay, pages))?;
    writer.join().expect("the writer does not panic")?;
    Ok(started.elapsed())
}

/// Rows per table, to check that the baseline wrote what the sync wrote.
pub fn row_counts(db: &Path) -> anyhow::Result<Vec<i64>> {
    let conn = Connection::open(db)?;
    ["products", "features", "tests", "test_features", "test_platforms"]
        .iter()
        .map(|table| Ok(conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?))
        .collect()
}

#[derive(Clone)]
struct Fetcher {
    http: reqwest::Client,
    base: String,
    in_flight: Arc<Semaphore>,
    customer: i64,
}

impl Fetcher {
    fn new(base_url: &str, token: &str, customer: i64) -> anyhow::Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, format!("Token {token}").parse()?);
        let http = reqwest::Client::builder().default_headers(headers).pool_max_idle_per_host(IN_FLIGHT).build()?;
        Ok(Self { http, base: format!("{base_url}/"), in_flight: Arc::new(Semaphore::new(IN_FLIGHT)), customer })
    }

    /// The product list first, then every product's chain on its own task.
    async fn fetch_all(&self, replay: &Replay, pages: mpsc::Sender<Page>) -> anyhow::Result<()> {
        for endpoint in &replay.products {
            pages.send(self.fetch(endpoint.clone()).await?)?;
        }
        let tasks: Vec<_> = replay
            .chains
            .iter()
            .map(|chain| {
                let (fetcher, chain, pages) = (self.clone(), chain.clone(), pages.clone());
                tokio::spawn(async move {
                    for endpoint in chain {
                        pages.send(fetcher.fetch(endpoint).await?)?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        Ok(())
    }

    async fn fetch(&self, endpoint: String) -> anyhow::Result<Page> {
        let body = {
            let _permit = self.in_flight.acquire().await?;
            let response = self.http.get(format!("{}{endpoint}", self.base)).send().await?.error_for_status()?;
            response.bytes().await?
        };
        // Parsing runs on the fetching task, so it spreads over the cores.
        rows(self.customer, &endpoint, &body)
    }
}

/// One page's statements, each with its parameters, in order.
type Page = Vec<(&'static str, Vec<Sql>)>;

const PRODUCT: &str = "INSERT OR REPLACE INTO products (customer_id, id, title, product_type, data, last_synced)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const FEATURE: &str = "INSERT OR REPLACE INTO features (customer_id, id, product_id, title, description, howtofind,
                                      user_stories, section_ids, raw_data, last_synced)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
const TEST: &str =
    "INSERT OR REPLACE INTO tests (customer_id, id, product_id, data, status, start_at, end_at, synced_at,
                                   created_by, submitted_by, title, testing_type, goal, instructions,
                                   out_of_scope, enable_low, enable_high, enable_critical, test_environment)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";
const CLEAR_TEST_FEATURES: &str = "DELETE FROM test_features WHERE customer_id = ?1 AND test_id = ?2";
const CLEAR_TEST_PLATFORMS: &str = "DELETE FROM test_platforms WHERE customer_id = ?1 AND test_id = ?2";
const TEST_FEATURE: &str =
    "INSERT OR REPLACE INTO test_features (customer_id, id, test_id, feature_id, title, description,
                                           howtofind, user_stories, enable_default, enable_content, enable_visual)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const TEST_PLATFORM: &str =
    "INSERT OR IGNORE INTO test_platforms (customer_id, test_id, operating_system_id, operating_system_name, category)
     VALUES (?1, ?2, ?3, ?4, ?5)";

/// Reads the envelope (`{"products": [...]}` and so on) and turns each record into rows.
fn rows(customer: i64, endpoint: &str, body: &[u8]) -> anyhow::Result<Page> {
    let envelope: BTreeMap<String, Vec<Box<RawValue>>> = serde_json::from_slice(body)?;
    let path = endpoint.split('?').next().unwrap_or(endpoint);
    let parts: Vec<&str> = path.split('/').collect();
    let id = |i: usize| parts.get(i).and_then(|p| p.parse::<i64>().ok());
    let now = Sql::Text(chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string());
    let mut page = Page::new();
    for raw in envelope.into_values().flatten() {
        let v: Value = serde_json::from_str(raw.get())?;
        let data = Sql::Text(raw.get().to_string());
        let (customer, record) = (Sql::Integer(customer), int(&v["id"]));
        match parts.last() {
            Some(&"exploratory_tests") => {
                test_rows(&mut page, &v, [customer, record, id(1).into(), data, now.clone()]);
            }
            Some(&"features") => {
                let sections = Value::from(id(3).into_iter().collect::<Vec<_>>()).to_string();
                #[rustfmt::skip]
                page.push((FEATURE, vec![
                    customer, record, id(1).into(), text(&v, "title"), text(&v, "description"), text(&v, "howtofind"),
                    list(&v["user_stories"]), sections.into(), data, now.clone(),
                ]));
            }
            _ => page.push((PRODUCT, vec![customer, record, text(&v, "name"), text(&v, "type"), data, now.clone()])),
        }
    }
    Ok(page)
}

/// A test's row, then its features and platforms, each replaced as a whole.
fn test_rows(page: &mut Page, v: &Value, [customer, test_id, product_id, data, now]: [Sql; 5]) {
    let environment = v["test_environment"]
        .as_object()
        .map_or(Sql::Null, |e| serde_json::json!({ "id": e.get("id"), "title": e.get("title") }).to_string().into());
    let title = if v["title"].is_string() { text(v, "title") } else { text(v, "test_title") };
    #[rustfmt::skip]
    page.push((TEST, vec![
        customer.clone(), test_id.clone(), product_id, data, text(v, "status").or("unknown"), utc(&v["start_at"]),
        utc(&v["end_at"]), now, text(v, "created_by"), text(v, "submitted_by"), title,
        text(v, "testing_type").or("test_case"), text(v, "goal_text"), text(v, "instructions_text"),
        text(v, "out_of_scope_text"), flag(&v["enable_low"]), flag(&v["enable_high"]),
        flag(&v["enable_critical"]), environment,
    ]));
    page.push((CLEAR_TEST_FEATURES, vec![customer.clone(), test_id.clone()]));
    page.push((CLEAR_TEST_PLATFORMS, vec![customer.clone(), test_id.clone()]));
    for f in v["features"].as_array().into_iter().flatten() {
        let set = |name: &str| Sql::Integer(f[name].as_bool().unwrap_or(false).into());
        #[rustfmt::skip]
        page.push((TEST_FEATURE, vec![
            customer.clone(), int(&f["id"]), test_id.clone(), int(&f["feature_id"]), text(f, "title").or(""),
            text(f, "description"), text(f, "howtofind"), list(&f["user_stories"]), set("enable_default"),
            set("enable_content"), set("enable_visual"),
        ]));
    }
    for r in v["requirements"].as_array().into_iter().flatten() {
        let os = &r["operating_system"];
        if os["name"].is_string() {
            let row =
                vec![customer.clone(), test_id.clone(), int(&os["id"]), text(os, "name"), text(&r["category"], "key")];
            page.push((TEST_PLATFORM, row));
        }
    }
}

fn spawn_writer(db: PathBuf, queue: mpsc::Receiver<Page>) -> std::thread::JoinHandle<anyhow::Result<()>> {
    std::thread::spawn(move || {
        let mut conn = Connection::open(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "wal_autocheckpoint", 16384)?;
        for page in queue {
            let tx = conn.transaction()?;
            for (sql, params) in page {
                tx.prepare_cached(sql)?.execute(params_from_iter(params))?;
            }
            tx.commit()?;
        }
        Ok(())
    })
}

trait OrDefault {
    fn or(self, default: &str) -> Sql;
}

impl OrDefault for Sql {
    /// NULL becomes `default`.
    fn or(self, default: &str) -> Sql {
        if self == Sql::Null { Sql::Text(default.into()) } else { self }
    }
}

fn text(v: &Value, field: &str) -> Sql {
    v[field].as_str().map_or(Sql::Null, |s| Sql::Text(s.into()))
}

fn int(v: &Value) -> Sql {
    v.as_i64().map_or(Sql::Null, Sql::Integer)
}

fn flag(v: &Value) -> Sql {
    v.as_bool().map_or(Sql::Null, |b| Sql::Integer(b.into()))
}

fn list(v: &Value) -> Sql {
    Sql::Text(if v.is_array() { v.to_string() } else { "[]".into() })
}

/// A time in the column format: UTC, sortable as text.
fn utc(v: &Value) -> Sql {
    let Some(time) = v.as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) else { return Sql::Null };
    Sql::Text(time.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S%.6f").to_string())
}
