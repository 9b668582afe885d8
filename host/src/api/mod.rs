//! The Customer API client: one reqwest client, one global limit on requests in
//! flight, transient failures retried (see `retry`), responses parsed once into
//! [`Payload`]s.

mod payload;
mod retry;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{StatusCode, Url};
use tokio::sync::Semaphore;

pub use payload::{
    ApiTime, BugRecord, FeatureRecord, Payload, ProductRecord, TestRecord, parse_bugs, parse_features, parse_products,
    parse_test, parse_tests,
};
pub use retry::{MAX_RETRIES, MAX_RETRY_AFTER};

/// How one request failed; the engine judges a failure by this, never by the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A non-success status (after retries, for a transient one).
    HttpStatus(u16),
    /// No complete answer: refused, reset, DNS, timeout.
    Network,
    /// Not the JSON the API documents.
    BadPayload,
    /// Over [`MAX_BODY_BYTES`].
    TooLarge,
}

/// A failed request.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub failure: Failure,
    /// Relative to the base URL, without the token.
    pub endpoint: String,
    /// Requests made, retries included.
    pub attempts: u32,
    /// One line for people; never the token.
    pub message: String,
}

/// Bodies larger than this are refused: no real page comes near it.
pub const MAX_BODY_BYTES: usize = 64 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default for a whole request, answer included (`HTTP_TIMEOUT_SECONDS`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(90);

/// The environment variable that holds the token, named in 401 messages.
pub const TOKEN_VAR: &str = "TESTIO_CUSTOMER_API_TOKEN";

/// The limit on requests in flight, shared by every sync of a process that holds it.
pub type RequestLimit = Arc<Semaphore>;

/// A limit of `n` requests in flight (at least one).
pub fn request_limit(n: usize) -> RequestLimit {
    Arc::new(Semaphore::new(n.max(1)))
}

#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    in_flight: Arc<Semaphore>,
    /// Where the token came from, named when the API rejects it: a variable, or the keyring.
    token_from: Arc<str>,
}

/// How one attempt at a request failed.
enum Attempt {
    /// Worth trying again after a backoff.
    Transient(ApiError),
    /// HTTP 429: worth trying again after this wait.
    RateLimited(Duration),
    /// Trying again would not help.
    Final(ApiError),
}

impl ApiClient {
    pub fn new(
        base_url: &str,
        token: &str,
        in_flight: RequestLimit,
        request_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let base = base_url_with_slash(base_url)?;
        let mut auth = HeaderValue::from_str(&format!("Token {token}"))
            .map_err(|_| anyhow::anyhow!("the API token contains characters that cannot go in an HTTP header"))?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(USER_AGENT, HeaderValue::from_static(concat!("testio-sync/", env!("CARGO_PKG_VERSION"))));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT.min(request_timeout))
            .timeout(request_timeout)
            .pool_max_idle_per_host(in_flight.available_permits().max(1))
            .build()
            .context("could not set up the HTTP client")?;
        Ok(Self { http, base, in_flight, token_from: TOKEN_VAR.into() })
    }

    /// Names where the token came from (default: [`TOKEN_VAR`]) in the message of a 401.
    pub fn token_from(mut self, from: &str) -> Self {
        self.token_from = from.into();
        self
    }

    /// GETs `endpoint` (relative to the base URL), retrying transient failures, and
    /// parses the body with `parse`.
    pub async fn get<T>(&self, endpoint: &str, parse: fn(&[u8]) -> serde_json::Result<T>) -> Result<T, ApiError> {
        self.get_with(endpoint, parse, &[]).await
    }

    /// Like [`Self::get`], but the statuses in `at_once` come back at the first answer,
    /// however transient: the caller has a better answer to them than asking again.
    pub async fn get_with<T>(
        &self,
        endpoint: &str,
        parse: fn(&[u8]) -> serde_json::Result<T>,
        at_once: &[u16],
    ) -> Result<T, ApiError> {
        let (body, attempts) = self.get_with_retries(endpoint, at_once).await?;
        parse(&body).map_err(|e| {
            let message = format!("the response is not the JSON the API documents: {e}");
            failure(Failure::BadPayload, endpoint, attempts, message)
        })
    }

    async fn get_with_retries(&self, endpoint: &str, at_once: &[u16]) -> Result<(Vec<u8>, u32), ApiError> {
        let (mut attempts, mut retries, mut free_rate_limits) = (0, 0, retry::FREE_RATE_LIMITS);
        loop {
            attempts += 1;
            let wait = match self.attempt(endpoint, at_once).await {
                Ok(body) => return Ok((body, attempts)),
                Err(Attempt::Final(error)) => return Err(error.after(attempts)),
                Err(Attempt::Transient(error)) => {
                    retries += 1;
                    if retries > MAX_RETRIES {
                        return Err(error.after(attempts));
                    }
                    let wait = retry::backoff(retries);
                    tracing::warn!(
                        "{endpoint}: {}; retry {retries} of {MAX_RETRIES} in {:.1}s",
                        error.message,
                        wait.as_secs_f64()
                    );
                    wait
                }
                Err(Attempt::RateLimited(asked)) => {
                    if free_rate_limits > 0 {
                        free_rate_limits -= 1;
                    } else {
                        retries += 1;
                    }
                    if retries > MAX_RETRIES {
                        let message = format!("still rate limited (HTTP 429) after {attempts} attempts; gave up");
                        return Err(failure(Failure::HttpStatus(429), endpoint, attempts, message));
                    }
                    rate_limit_wait(endpoint, asked)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One request, holding a slot of the in-flight limit until its body is read.
    async fn attempt(&self, endpoint: &str, at_once: &[u16]) -> Result<Vec<u8>, Attempt> {
        let url = self.base.join(endpoint).map_err(|e| {
            Attempt::Final(failure(Failure::BadPayload, endpoint, 1, format!("not a valid endpoint: {e}")))
        })?;
        let _permit = self.in_flight.acquire().await.expect("the semaphore is never closed");
        let response = self.http.get(url).send().await.map_err(|e| network_failure(endpoint, &e))?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Attempt::RateLimited(retry::retry_after(response.headers(), SystemTime::now())));
        }
        if !status.is_success() {
            let error = status_failure(status, endpoint, &self.token_from);
            let retried = retry::is_transient(status) && !at_once.contains(&status.as_u16());
            return Err(if retried { Attempt::Transient(error) } else { Attempt::Final(error) });
        }
        read_limited(response, endpoint).await
    }
}

/// The wait a 429 asked for, cut to the cap (and saying so).
fn rate_limit_wait(endpoint: &str, asked: Duration) -> Duration {
    if asked > MAX_RETRY_AFTER {
        tracing::warn!(
            "{endpoint}: rate limited (HTTP 429); the API asks to wait {}s, more than the cap of {}s, so waiting {}s",
            asked.as_secs(),
            MAX_RETRY_AFTER.as_secs(),
            MAX_RETRY_AFTER.as_secs()
        );
        return MAX_RETRY_AFTER;
    }
    tracing::info!("{endpoint}: rate limited (HTTP 429); waiting {:.1}s as the API asks", asked.as_secs_f64());
    asked
}

/// The base URL the endpoints are joined to, checked: http(s), and no user name or password
/// (reqwest would send them as Basic auth, and the 401 would blame the token). Messages never
/// show what precedes an `@`.
pub fn base_url_with_slash(base_url: &str) -> anyhow::Result<Url> {
    let shown = without_user_info(base_url);
    let mut url =
        Url::parse(base_url.trim()).with_context(|| format!("the API base URL {shown:?} is not a valid URL"))?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "the API base URL {shown:?} must start with https:// (or http:// for a local simulator)"
    );
    anyhow::ensure!(
        url.username().is_empty() && url.password().is_none(),
        "the API base URL {shown:?} holds a user name or password; remove it: the token in {TOKEN_VAR} is the \
         only credential"
    );
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() == "http" && !loopback {
        tracing::warn!("the API base URL {base_url} uses plain http: the token crosses the network unencrypted");
    }
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

/// `https://***@host/…` for `https://user:password@host/…`; anything else as it is.
fn without_user_info(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let host_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    match url[start..host_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_string(),
    }
}

async fn read_limited(mut response: reqwest::Response, endpoint: &str) -> Result<Vec<u8>, Attempt> {
    let too_large = || {
        let message = format!("the response is larger than {} MiB; refused it", MAX_BODY_BYTES >> 20);
        Attempt::Final(failure(Failure::TooLarge, endpoint, 1, message))
    };
    if response.content_length().is_some_and(|n| n as usize > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await.map_err(|e| network_failure(endpoint, &e))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn status_failure(status: StatusCode, endpoint: &str, token_from: &str) -> ApiError {
    let code = status.as_u16();
    let message = match code {
        401 => format!("the Customer API rejected the token (HTTP 401); check {token_from}"),
        403 => format!("the token may not read {endpoint} (HTTP 403)"),
        404 => format!("{endpoint} does not exist (HTTP 404)"),
        524 => "the API timed out computing the answer (HTTP 524)".to_string(),
        _ => format!("HTTP {status}"),
    };
    failure(Failure::HttpStatus(code), endpoint, 1, message)
}

/// reqwest's messages name the URL, never the headers, so the token cannot leak here.
/// Every failure to get a whole answer is worth another try, but a malformed request.
fn network_failure(endpoint: &str, error: &reqwest::Error) -> Attempt {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "broke off while reading the answer"
    } else {
        "failed"
    };
    let mut message = format!("the request {what}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    let failed = failure(Failure::Network, endpoint, 1, message);
    if error.is_builder() { Attempt::Final(failed) } else { Attempt::Transient(failed) }
}

fn failure(failure: Failure, endpoint: &str, attempts: u32, message: String) -> ApiError {
    ApiError { failure, endpoint: endpoint.to_string(), attempts, message }
}

impl ApiError {
    /// The error as the engine gets it: with the number of attempts, named when there were retries.
    fn after(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        if attempts > 1 {
            self.message = format!("{} (after {attempts} attempts)", self.message);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testio_sim::{Faults, SimConfig, Simulator};

    async fn client_for(sim: &Simulator, token: &str) -> ApiClient {
        ApiClient::new(&sim.base_url(), token, request_limit(4), Duration::from_secs(5)).unwrap()
    }

    fn status_of(error: &ApiError) -> Option<u16> {
        match error.failure {
            Failure::HttpStatus(code) => Some(code),
            _ => None,
        }
    }

    #[tokio::test]
    async fn failures_carry_their_status_and_name_the_endpoint() {
        let sim = Simulator::start(SimConfig::default(), 0).await.unwrap();
        sim.fail_requests("products/1/", 403);
        sim.fail_requests("products/2/", 404);
        sim.fail_requests("products/3/", 500);
        let client = client_for(&sim, sim.token()).await;
        for (endpoint, status) in
            [("products/1/features", 403), ("products/2/features", 404), ("products/3/features", 500)]
        {
            let error = client.get(endpoint, parse_features).await.err().expect("an error");
            assert_eq!(status_of(&error), Some(status), "{endpoint}");
            assert_eq!(error.endpoint, endpoint);
            assert_eq!(error.attempts, 1, "{status} is not retried");
        }
        let wrong = client_for(&sim, "not-the-token").await;
        let error = wrong.get("products", parse_products).await.err().expect("an error");
        assert_eq!(status_of(&error), Some(401));
        assert!(error.message.contains(TOKEN_VAR) && !error.message.contains("not-the-token"));
    }

    #[tokio::test]
    async fn a_transient_status_is_retried_until_it_gives_up_naming_the_attempts() {
        let sim = Simulator::start(SimConfig::default(), 0).await.unwrap();
        sim.fail_requests("products/1/", 503);
        let client = client_for(&sim, sim.token()).await;
        let error = client.get("products/1/features", parse_features).await.err().expect("an error");
        assert_eq!(status_of(&error), Some(503));
        assert_eq!(error.attempts, MAX_RETRIES + 1);
        assert!(error.message.contains("after 5 attempts"), "{}", error.message);
        assert_eq!(sim.requests().len(), 5);
    }

    #[tokio::test]
    async fn a_status_asked_for_at_once_is_not_retried() {
        let sim = Simulator::start(SimConfig::default(), 0).await.unwrap();
        sim.fail_requests("bugs", 524);
        let client = client_for(&sim, sim.token()).await;
        let endpoint = "bugs?filter_test_cycle_ids=1000001";
        let error = client.get_with(endpoint, parse_bugs, &[524]).await.err().expect("an error");
        assert_eq!((status_of(&error), error.attempts), (Some(524), 1));
        assert!(error.message.contains("timed out"), "{}", error.message);
        assert_eq!(sim.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_429_is_waited_out_as_the_api_asks() {
        let faults =
            Faults { rate_limit_every: Some(1), retry_after_secs: 1, flaky_until: Some(2), ..Faults::default() };
        let sim = Simulator::start(SimConfig { faults, ..SimConfig::default() }, 0).await.unwrap();
        let client = client_for(&sim, sim.token()).await;
        let started = std::time::Instant::now();
        client.get("products", parse_products).await.expect("the third attempt succeeds");
        assert!(started.elapsed() >= Duration::from_secs(2), "two waits of 1 s each");
        let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [429, 429, 200]);
    }

    /// A simulator whose first request meets `faults`, and a client with a 1 s timeout.
    async fn first_request_faulty(faults: Faults) -> (Simulator, ApiClient) {
        let faults = Faults { flaky_until: Some(1), ..faults };
        let sim = Simulator::start(SimConfig { faults, ..SimConfig::default() }, 0).await.unwrap();
        let client = ApiClient::new(&sim.base_url(), sim.token(), request_limit(4), Duration::from_secs(1)).unwrap();
        (sim, client)
    }

    #[tokio::test]
    async fn a_connection_dropped_mid_answer_is_retried() {
        let (sim, client) = first_request_faulty(Faults { reset_percent: 100, ..Faults::default() }).await;
        client.get("products/1/features", parse_features).await.expect("the retry succeeds");
        let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [0, 200]);
    }

    #[tokio::test]
    async fn an_answer_slower_than_the_timeout_is_retried() {
        let slow = Faults { slow_percent: 100, slow: Duration::from_secs(3), ..Faults::default() };
        let (sim, client) = first_request_faulty(slow).await;
        client.get("products/1/features", parse_features).await.expect("the retry succeeds");
        assert_eq!(sim.requests().len(), 2);
    }

    #[tokio::test]
    async fn a_body_of_the_wrong_shape_is_a_bad_payload_naming_the_endpoint() {
        let sim = Simulator::start(SimConfig::default(), 0).await.unwrap();
        let client = client_for(&sim, sim.token()).await;
        // The product list is valid JSON, but not a page of tests.
        let error = client.get("products", parse_tests).await.err().expect("an error");
        assert!(matches!(error.failure, Failure::BadPayload));
        assert_eq!(error.endpoint, "products");
    }

    #[test]
    fn a_base_url_must_be_http_or_https() {
        let timeout = DEFAULT_REQUEST_TIMEOUT;
        assert!(ApiClient::new("ftp://example.com/v2", "t", request_limit(1), timeout).is_err());
        assert!(ApiClient::new("not a url", "t", request_limit(1), timeout).is_err());
        assert!(ApiClient::new("https://api.test.io/customer/v2", "t", request_limit(1), timeout).is_ok());
    }

    #[test]
    fn a_base_url_with_user_info_is_refused_without_showing_the_password() {
        for url in [
            "https://user:s3cret@api.test.io/customer/v2",
            "https://user:s3cret@exa mple.com/",
            "ftp://user:s3cret@example.com/",
            "user:s3cret@example.com",
        ] {
            let message = format!("{:#}", base_url_with_slash(url).unwrap_err());
            assert!(!message.contains("s3cret") && message.contains("***@"), "{message}");
        }
        assert_eq!(without_user_info("https://api.test.io/a@b"), "https://api.test.io/a@b", "a path keeps its @");
    }
}
