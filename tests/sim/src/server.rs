//! HTTP side of the simulator: one fallback handler that logs, injects faults,
//! authenticates and routes every request by hand, so the whole request path is in one place.
//! Besides the API it serves the controls under `/_sim/` (advance the clock, finish reviews)
//! for tools outside the process.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::faults::{Faults, Injected};
use crate::generation::{Catalog, ProductData, TEST_ID_STRIDE};
use crate::lifecycle::{Status, Timeline};
use crate::{RequestRecord, SimConfig};

const BASE_PATH: &str = "/customer/v2/";
pub const CONTROL_PATH: &str = "/_sim/";
/// Without `page`, the API answers with the newest 150 tests.
const UNPAGED_LIMIT: u64 = 150;
const DEFAULT_PER_PAGE: u64 = 25;

/// Requests in arrival order. Each is entered on arrival and given its status when answered,
/// found again by a sequence number that stays valid across `clear`.
#[derive(Default)]
struct RequestLog {
    records: Vec<RequestRecord>,
    /// Sequence number of `records[0]`.
    first: u64,
}

impl RequestLog {
    /// Adds a record; returns its sequence number, from 0 over the simulator's life.
    fn push(&mut self, record: RequestRecord) -> u64 {
        self.records.push(record);
        self.first + self.records.len() as u64 - 1
    }

    fn set_status(&mut self, sequence: u64, status: u16) {
        // A request that arrived before the last clear is no longer listed.
        let index = sequence.checked_sub(self.first).map(|i| i as usize);
        if let Some(record) = index.and_then(|i| self.records.get_mut(i)) {
            record.status = status;
        }
    }

    fn clear(&mut self) {
        self.first += self.records.len() as u64;
        self.records.clear();
    }
}

/// State shared by the handler and the `Simulator` handles.
pub struct SimState {
    token: String,
    latency: Duration,
    seed: u64,
    injected: Mutex<Faults>,
    catalog: Catalog,
    /// The clock, and per product the number of tests and what the controls did.
    timeline: RwLock<Timeline>,
    log: Mutex<RequestLog>,
    /// Requests being answered now, and the most there have been at once.
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    /// Path prefixes (relative to the base path) that answer with a fixed status.
    faults: Mutex<Vec<(String, u16)>>,
    stop: Notify,
}

impl SimState {
    pub fn new(config: SimConfig) -> Self {
        let catalog = Catalog::new(config.seed, config.products, config.features);
        let timeline = RwLock::new(Timeline::new(config.products, config.tests));
        SimState {
            token: config.token,
            latency: config.latency,
            seed: config.seed,
            injected: Mutex::new(config.faults),
            catalog,
            timeline,
            log: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            faults: Mutex::default(),
            stop: Notify::new(),
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    fn timeline(&self) -> RwLockReadGuard<'_, Timeline> {
        self.timeline.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn timeline_mut(&self) -> RwLockWriteGuard<'_, Timeline> {
        self.timeline.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn test_count(&self, product_id: u64) -> u32 {
        self.timeline().count(product_id)
    }

    /// Appends tests to a product; returns false for an unknown product.
    pub fn add_tests(&self, product_id: u64, count: u32) -> bool {
        self.timeline_mut().add_tests(product_id, count)
    }

    pub fn now(&self) -> DateTime<Utc> {
        instant(self.timeline().now())
    }

    /// Moves the clock forward; returns the new now.
    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        let mut timeline = self.timeline_mut();
        timeline.advance(i64::try_from(by.as_secs()).unwrap_or(i64::MAX));
        instant(timeline.now())
    }

    /// Finishes the reviews of up to `count` locked tests, oldest first; None for an unknown product.
    pub fn finish_reviews(&self, product_id: u64, count: usize) -> Option<Vec<u64>> {
        let product = self.catalog.product(product_id)?;
        let finished = self.timeline_mut().finish_reviews(product, count);
        Some(finished.into_iter().map(|n| product.test_id(n)).collect())
    }

    /// Every test's id and status, newest first; None for an unknown product.
    pub fn statuses(&self, product_id: u64) -> Option<Vec<(u64, Status)>> {
        let product = self.catalog.product(product_id)?;
        let timeline = self.timeline();
        let newest_first = (0..timeline.count(product_id)).rev();
        Some(newest_first.map(|n| (product.test_id(n), timeline.status(product, n))).collect())
    }

    pub fn status_of(&self, test_id: u64) -> Option<Status> {
        let timeline = self.timeline();
        let (product, n) = locate(self, &timeline, test_id)?;
        Some(timeline.status(product, n))
    }

    fn log(&self) -> MutexGuard<'_, RequestLog> {
        // A panic elsewhere must not take the request log down with it.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.log().records.clone()
    }

    pub fn clear_requests(&self) {
        self.log().clear();
    }

    /// Records a request on arrival (status 0 until answered) so the log keeps arrival order.
    fn log_arrival(&self, parts: &Parts) -> u64 {
        self.log().push(RequestRecord {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            status: 0,
            received_at: std::time::SystemTime::now(),
        })
    }

    /// The most requests that were being answered at the same time.
    pub fn peak_in_flight(&self) -> usize {
        self.peak_in_flight.load(Ordering::Acquire)
    }

    /// From now on, requests whose path starts with `prefix` answer `status`.
    pub fn fail_requests(&self, prefix: &str, status: u16) {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner).push((prefix.to_owned(), status));
    }

    pub fn stop_failing_requests(&self) {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    fn injected_fault(&self, parts: &Parts) -> Option<Failure> {
        let path = relative_path(parts)?;
        let faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, status) = faults.iter().find(|(prefix, _)| path.starts_with(prefix.as_str()))?;
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Some(Failure::new(status, "injected fault"))
    }

    fn injected(&self) -> MutexGuard<'_, Faults> {
        self.injected.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the faults injected from now on.
    pub fn set_faults(&self, faults: Faults) {
        *self.injected() = faults;
    }

    pub fn shutdown(&self) {
        // notify_one keeps a permit, so a shutdown before the server awaits it is not lost.
        self.stop.notify_one();
    }
}

pub async fn serve(listener: TcpListener, state: Arc<SimState>) {
    let app = Router::new().fallback(handle).with_state(state.clone());
    let stopped = async move { state.stop.notified().await };
    if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
        tracing::error!(%error, "simulator stopped serving");
    }
}

async fn handle(State(state): State<Arc<SimState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let sequence = state.log_arrival(&parts);
    if parts.uri.path().starts_with(CONTROL_PATH) {
        // Controls steer a run, so neither latency nor faults reach them.
        let response = control(&state, &parts).unwrap_or_else(Failure::into_response);
        state.log().set_status(sequence, response.status().as_u16());
        return response;
    }
    let now = state.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
    state.peak_in_flight.fetch_max(now, Ordering::AcqRel);
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let fault = state.injected().for_request(state.seed, sequence + 1);
    // A dropped connection never gets a status; its record keeps 0.
    let dropped = fault == Some(Injected::Reset);
    let response = match fault {
        Some(fault) => inject(&state, &parts, fault).await,
        None => answer(&state, &parts),
    };
    if !dropped {
        state.log().set_status(sequence, response.status().as_u16());
    }
    state.in_flight.fetch_sub(1, Ordering::AcqRel);
    response
}

fn answer(state: &SimState, parts: &Parts) -> Response {
    match state.injected_fault(parts).map_or_else(|| respond(state, parts), Err) {
        Ok(_) if relative_path(parts).is_some_and(|p| state.injected().malforms(p)) => {
            json(StatusCode::OK, br#"{"malformed": [{"id": 1,"#.to_vec())
        }
        Ok(body) => json(StatusCode::OK, body),
        Err(failure) => failure.into_response(),
    }
}

async fn inject(state: &SimState, parts: &Parts, fault: Injected) -> Response {
    match fault {
        Injected::Unauthorized => Failure::new(StatusCode::UNAUTHORIZED, "the token was revoked").into_response(),
        Injected::RateLimited { retry_after_secs } => {
            let mut response = Failure::new(StatusCode::TOO_MANY_REQUESTS, "rate limit reached").into_response();
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Injected::Unavailable => Failure::new(StatusCode::SERVICE_UNAVAILABLE, "injected outage").into_response(),
        Injected::Reset => {
            // The status line and headers go out, then the connection breaks off mid-body.
            let broken = futures::stream::once(async {
                Err::<Bytes, _>(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset"))
            });
            Response::new(Body::from_stream(broken))
        }
        Injected::Slow(delay) => {
            tokio::time::sleep(delay).await;
            answer(state, parts)
        }
    }
}

fn relative_path(parts: &Parts) -> Option<&str> {
    parts.uri.path().strip_prefix(BASE_PATH)
}

/// An error answer: status plus a message for the `{"error": ...}` body.
struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failure { status, message: message.into() }
    }

    fn not_found(what: &str) -> Self {
        Failure::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Failure::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        json(self.status, envelope("error", &self.message))
    }
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let content_type = HeaderValue::from_static("application/json");
    (status, [(CONTENT_TYPE, content_type)], body).into_response()
}

/// Every answer is a JSON object with a single top-level key.
fn envelope<T: Serialize + ?Sized>(key: &str, value: &T) -> Vec<u8> {
    serde_json::to_vec(&BTreeMap::from([(key, value)])).expect("simulated data serialises")
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Token "))
        .is_some_and(|given| given == token)
}

type Params = Vec<(String, String)>;

/// Checks the token and the method, and parses the query.
fn admit(state: &SimState, parts: &Parts, method: Method) -> Result<Params, Failure> {
    if !authorized(&parts.headers, &state.token) {
        return Err(Failure::new(StatusCode::UNAUTHORIZED, "missing or invalid API token"));
    }
    if parts.method != method {
        return Err(Failure::new(StatusCode::METHOD_NOT_ALLOWED, format!("only {method} is supported here")));
    }
    Query::<Params>::try_from_uri(&parts.uri)
        .map(|query| query.0)
        .map_err(|error| Failure::bad_request(format!("invalid query string: {error}")))
}

fn respond(state: &SimState, parts: &Parts) -> Result<Vec<u8>, Failure> {
    let params = admit(state, parts, Method::GET)?;
    let Some(rest) = parts.uri.path().strip_prefix(BASE_PATH) else {
        return Err(Failure::not_found("endpoint"));
    };
    // Tolerate a trailing slash, as clients joining base URLs often produce one.
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    route(state, &segments, &params)
}

fn route(state: &SimState, segments: &[&str], params: &Params) -> Result<Vec<u8>, Failure> {
    match segments {
        ["products"] => products(state, params),
        ["products", id] => Ok(envelope("product", product(state, id)?.product())),
        ["products", id, "features"] => Ok(envelope("features", product(state, id)?.product_features())),
        ["products", id, "sections", section_id, "features"] => section_features(product(state, id)?, section_id),
        ["products", id, "exploratory_tests"] => tests_page(state, product(state, id)?, params),
        ["exploratory_tests", id] => single_test(state, id),
        ["bugs"] => bugs(state, params),
        _ => Err(Failure::not_found("endpoint")),
    }
}

fn param<'p>(params: &'p Params, key: &str) -> Option<&'p str> {
    params.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str())
}

fn parse_ids(list: &str) -> Result<Vec<u64>, Failure> {
    list.split(',')
        .filter(|id| !id.is_empty())
        .map(|id| id.trim().parse().map_err(|_| Failure::bad_request(format!("invalid id {id:?}"))))
        .collect()
}

fn product<'s>(state: &'s SimState, id: &str) -> Result<&'s ProductData, Failure> {
    id.parse().ok().and_then(|id| state.catalog.product(id)).ok_or_else(|| Failure::not_found("product"))
}

/// `products`, optionally narrowed by the documented `filter[product_ids]`.
fn products(state: &SimState, params: &Params) -> Result<Vec<u8>, Failure> {
    let wanted = param(params, "filter[product_ids]").map(parse_ids).transpose()?;
    let list: Vec<_> = state
        .catalog
        .products()
        .filter(|p| wanted.as_ref().is_none_or(|ids| ids.contains(&p.id())))
        .map(ProductData::product)
        .collect();
    Ok(envelope("products", &list))
}

fn section_features(product: &ProductData, section_id: &str) -> Result<Vec<u8>, Failure> {
    section_id
        .parse()
        .ok()
        .and_then(|id| product.section_features(id))
        .map(|features| envelope("features", features))
        .ok_or_else(|| Failure::not_found("section"))
}

/// A positive integer parameter; absent is fine, anything else but a positive number is a 400.
fn positive(params: &Params, key: &str) -> Result<Option<u64>, Failure> {
    param(params, key)
        .map(|value| match value.parse::<u64>() {
            Ok(number) if number > 0 => Ok(number),
            _ => Err(Failure::bad_request(format!("{key} must be a positive integer"))),
        })
        .transpose()
}

/// Newest first: position k of the listing is test `count - 1 - k`.
fn tests_page(state: &SimState, product: &ProductData, params: &Params) -> Result<Vec<u8>, Failure> {
    let page = positive(params, "page")?;
    let per_page = positive(params, "per_page")?.unwrap_or(DEFAULT_PER_PAGE);
    let (skip, take) = match page {
        Some(page) => ((page - 1).saturating_mul(per_page), per_page),
        None => (0, UNPAGED_LIMIT),
    };
    let timeline = state.timeline();
    let count = u64::from(timeline.count(product.id()));
    let first = skip.min(count);
    let last = skip.saturating_add(take).min(count);
    if state.injected().breaks_page(product.id(), first..last) {
        return Err(Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "a test on this page could not be rendered"));
    }
    let tests: Vec<_> = (first..last).map(|k| timeline.test(product, (count - 1 - k) as u32)).collect();
    Ok(envelope("exploratory_tests", &tests))
}

/// Finds the product and index a test id stands for, if that test exists.
fn locate<'s>(state: &'s SimState, timeline: &Timeline, test_id: u64) -> Option<(&'s ProductData, u32)> {
    let product = state.catalog.product(test_id / TEST_ID_STRIDE)?;
    let n = u32::try_from(test_id % TEST_ID_STRIDE).ok()?;
    (n < timeline.count(product.id())).then_some((product, n))
}

fn single_test(state: &SimState, id: &str) -> Result<Vec<u8>, Failure> {
    let timeline = state.timeline();
    id.parse()
        .ok()
        .and_then(|id| locate(state, &timeline, id))
        .map(|(product, n)| envelope("exploratory_test", &timeline.test(product, n)))
        .ok_or_else(|| Failure::not_found("exploratory test"))
}

/// Bugs of the listed tests, in the order the ids were given; unknown ids have no bugs.
fn bugs(state: &SimState, params: &Params) -> Result<Vec<u8>, Failure> {
    let ids = param(params, "filter_test_cycle_ids")
        .ok_or_else(|| Failure::bad_request("filter_test_cycle_ids is required"))
        .and_then(parse_ids)?;
    if state.injected().times_out_bugs(&ids) {
        let timeout = StatusCode::from_u16(524).expect("a valid status code");
        return Err(Failure::new(timeout, "the bugs of these tests could not be listed in time"));
    }
    let timeline = state.timeline();
    let list: Vec<_> = ids
        .into_iter()
        .filter_map(|id| locate(state, &timeline, id))
        .flat_map(|(product, n)| timeline.bugs(product, n))
        .collect();
    Ok(envelope("bugs", &list))
}

// ---- Controls ----------------------------------------------------------------------------

/// `POST /_sim/advance?hours=N` and `POST /_sim/finish-reviews?product=P&count=N`.
fn control(state: &SimState, parts: &Parts) -> Result<Response, Failure> {
    let params = admit(state, parts, Method::POST)?;
    let body = match parts.uri.path().strip_prefix(CONTROL_PATH) {
        Some("advance") => advance(state, &params)?,
        Some("finish-reviews") => finish_reviews(state, &params)?,
        _ => return Err(Failure::not_found("control")),
    };
    Ok(json(StatusCode::OK, body))
}

/// Moves the clock by `hours` (a non-negative number, fractions allowed); answers the new now.
fn advance(state: &SimState, params: &Params) -> Result<Vec<u8>, Failure> {
    let invalid = || Failure::bad_request("hours must be a non-negative number");
    let hours: f64 = param(params, "hours").ok_or_else(invalid)?.parse().map_err(|_| invalid())?;
    let by = Duration::try_from_secs_f64(hours * 3600.0).map_err(|_| invalid())?;
    Ok(envelope("now", &state.advance(by).to_rfc3339_opts(SecondsFormat::Secs, true)))
}

fn finish_reviews(state: &SimState, params: &Params) -> Result<Vec<u8>, Failure> {
    let product = positive(params, "product")?.ok_or_else(|| Failure::bad_request("product is required"))?;
    let count = positive(params, "count")?.ok_or_else(|| Failure::bad_request("count is required"))?;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let finished = state.finish_reviews(product, count).ok_or_else(|| Failure::bad_request("no such product"))?;
    Ok(envelope("finished", &finished))
}

fn instant(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).expect("the clock stays in chrono's range")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str) -> RequestRecord {
        RequestRecord {
            method: "GET".into(),
            path: path.into(),
            query: None,
            status: 0,
            received_at: std::time::SystemTime::now(),
        }
    }

    #[test]
    fn late_answers_after_clear_do_not_touch_new_records() {
        let mut log = RequestLog::default();
        log.push(record("/a"));
        let in_flight = log.push(record("/b"));
        log.clear();
        log.push(record("/c"));
        let current = log.push(record("/d"));
        log.set_status(in_flight, 500);
        log.set_status(current, 200);
        let statuses: Vec<_> = log.records.iter().map(|r| (r.path.as_str(), r.status)).collect();
        assert_eq!(statuses, [("/c", 0), ("/d", 200)]);
    }
}
