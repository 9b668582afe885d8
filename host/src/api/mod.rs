//! The Customer API client: one reqwest client, one global limit on requests in
//! flight, responses parsed once into [`Payload`]s.

mod payload;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{StatusCode, Url};
use tokio::sync::Semaphore;

pub use payload::{
    FeatureRecord, Payload, ProductRecord, TestRecord, column_time, parse_features, parse_products, parse_tests,
};

use crate::bindings::customer_api::{ApiError, ApiErrorKind};

/// Bodies larger than this are refused: no real page comes near it.
pub const MAX_BODY_BYTES: usize = 64 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);

/// The environment variable that holds the token, named in 401 messages.
pub const TOKEN_VAR: &str = "TESTIO_CUSTOMER_API_TOKEN";

#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    in_flight: Arc<Semaphore>,
}

impl ApiClient {
    pub fn new(base_url: &str, token: &str, max_in_flight: usize) -> anyhow::Result<Self> {
        let base = base_url_with_slash(base_url)?;
        let mut auth = HeaderValue::from_str(&format!("Token {token}"))
            .map_err(|_| anyhow::anyhow!("the API token contains characters that cannot go in an HTTP header"))?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(USER_AGENT, HeaderValue::from_static(concat!("testio-sync/", env!("CARGO_PKG_VERSION"))));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(max_in_flight.max(1))
            .build()
            .context("could not set up the HTTP client")?;
        Ok(Self { http, base, in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))) })
    }

    /// GETs `endpoint` (relative to the base URL) and parses the body with `parse`.
    pub async fn get<T>(&self, endpoint: &str, parse: fn(&[u8]) -> serde_json::Result<T>) -> Result<T, ApiError> {
        let body = self.get_bytes(endpoint).await?;
        parse(&body).map_err(|e| {
            failure(
                ApiErrorKind::BadPayload,
                None,
                endpoint,
                format!("the response is not the JSON the API documents: {e}"),
            )
        })
    }

    async fn get_bytes(&self, endpoint: &str) -> Result<Vec<u8>, ApiError> {
        let url = self
            .base
            .join(endpoint)
            .map_err(|e| failure(ApiErrorKind::BadPayload, None, endpoint, format!("not a valid endpoint: {e}")))?;
        let _permit = self.in_flight.acquire().await.expect("the semaphore is never closed");
        let response = self.http.get(url).send().await.map_err(|e| network_failure(endpoint, &e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_failure(status, endpoint));
        }
        read_limited(response, endpoint).await
    }
}

fn base_url_with_slash(base_url: &str) -> anyhow::Result<Url> {
    let mut url =
        Url::parse(base_url.trim()).with_context(|| format!("the API base URL {base_url:?} is not a valid URL"))?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "the API base URL {base_url:?} must start with https:// (or http:// for a local simulator)"
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

async fn read_limited(mut response: reqwest::Response, endpoint: &str) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        failure(
            ApiErrorKind::BadPayload,
            None,
            endpoint,
            format!("the response is larger than {} MiB; refused it", MAX_BODY_BYTES >> 20),
        )
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

fn status_failure(status: StatusCode, endpoint: &str) -> ApiError {
    let code = status.as_u16();
    let (kind, message) = match code {
        401 => {
            (ApiErrorKind::Unauthorized, format!("the Customer API rejected the token (HTTP 401); check {TOKEN_VAR}"))
        }
        403 => (ApiErrorKind::Forbidden, format!("the token may not read {endpoint} (HTTP 403)")),
        404 => (ApiErrorKind::NotFound, format!("{endpoint} does not exist (HTTP 404)")),
        _ => (ApiErrorKind::Server, format!("HTTP {status}")),
    };
    failure(kind, Some(code), endpoint, message)
}

/// reqwest's messages name the URL, never the headers, so the token cannot leak here.
fn network_failure(endpoint: &str, error: &reqwest::Error) -> ApiError {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut message = format!("the request {what}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    failure(ApiErrorKind::Network, None, endpoint, message)
}

fn failure(kind: ApiErrorKind, status: Option<u16>, endpoint: &str, message: String) -> ApiError {
    ApiError { kind, status, endpoint: endpoint.to_string(), message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{SimConfig, Simulator};

    async fn client_for(sim: &Simulator, token: &str) -> ApiClient {
        ApiClient::new(&sim.base_url(), token, 4).unwrap()
    }

    #[tokio::test]
    async fn failures_are_classified_by_status_and_name_the_endpoint() {
        let sim = Simulator::start(SimConfig::default(), 0).await.unwrap();
        sim.fail_requests("products/1/", 403);
        sim.fail_requests("products/2/", 404);
        sim.fail_requests("products/3/", 503);
        let client = client_for(&sim, sim.token()).await;
        let cases = [
            ("products/1/features", ApiErrorKind::Forbidden),
            ("products/2/features", ApiErrorKind::NotFound),
            ("products/3/features", ApiErrorKind::Server),
        ];
        for (endpoint, kind) in cases {
            let error = client.get(endpoint, parse_features).await.err().expect("an error");
            assert_eq!(error.kind, kind, "{endpoint}");
            assert_eq!(error.endpoint, endpoint);
        }
        let wrong = client_for(&sim, "not-the-token").await;
        let error = wrong.get("products", parse_products).await.err().expect("an error");
        assert_eq!(error.kind, ApiErrorKind::Unauthorized);
        assert!(error.message.contains(TOKEN_VAR) && !error.message.contains("not-the-token"));
    }

    #[tokio::test]
    async fn a_body_of_the_wrong_shape_is_a_bad_payload_naming_the_endpoint() {
        let sim = Simulator::start(SimConfig::default(), 0).await.unwrap();
        let client = client_for(&sim, sim.token()).await;
        // The product list is valid JSON, but not a page of tests.
        let error = client.get("products", parse_tests).await.err().expect("an error");
        assert_eq!(error.kind, ApiErrorKind::BadPayload);
        assert_eq!(error.endpoint, "products");
    }

    #[test]
    fn a_base_url_must_be_http_or_https() {
        assert!(ApiClient::new("ftp://example.com/v2", "t", 1).is_err());
        assert!(ApiClient::new("not a url", "t", 1).is_err());
        assert!(ApiClient::new("https://api.test.io/customer/v2", "t", 1).is_ok());
    }
}
