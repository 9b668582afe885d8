//! When to try a request again and how long to wait first: the mechanism behind the
//! retry rules documented in `wit/customer-api.wit`.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Retries after a transient failure (so up to 5 attempts in all).
pub const MAX_RETRIES: u32 = 4;
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(8);
/// 429s per request that do not use up a retry; a server that keeps answering 429 does.
pub const FREE_RATE_LIMITS: u32 = 3;
/// The longest a `Retry-After` is honoured; longer asks are cut to this, with a warning.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The wait after a 429 without a readable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Statuses that say "try again shortly": the request may well succeed next time.
pub fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 502 | 503 | 504 | 524)
}

/// The wait before retry `retry` (from 1): exponential from 0.5 s, capped at 8 s, with
/// "equal jitter" (half fixed, half random) so that clients that failed together do not
/// come back together.
pub fn backoff(retry: u32) -> Duration {
    let exponential = BACKOFF_BASE.saturating_mul(1 << retry.saturating_sub(1).min(16)).min(BACKOFF_CAP);
    exponential.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// How long a 429 asks to wait: `Retry-After` as seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Duration {
    let Some(value) = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::trim) else {
        return DEFAULT_RETRY_AFTER;
    };
    if let Ok(seconds) = value.parse::<u64>() {
        return Duration::from_secs(seconds);
    }
    match httpdate::parse_http_date(value) {
        // A date in the past means "now".
        Ok(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
        Err(_) => DEFAULT_RETRY_AFTER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        assert_eq!(retry_after(&headers("7"), now), Duration::from_secs(7));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2026 07:28:30 GMT"), now), Duration::from_secs(30));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2026 07:00:00 GMT"), now), Duration::ZERO, "a past date");
        assert_eq!(retry_after(&headers("soon"), now), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after(&HeaderMap::new(), now), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn backoff_grows_from_half_a_second_to_a_cap_with_jitter() {
        for _ in 0..100 {
            let first = backoff(1);
            assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500), "{first:?}");
            let late = backoff(30);
            assert!(late >= BACKOFF_CAP / 2 && late <= BACKOFF_CAP, "{late:?}");
        }
        assert!(backoff(3) >= Duration::from_secs(1));
    }

    #[test]
    fn only_the_try_again_statuses_are_transient() {
        for code in [408, 502, 503, 504, 524] {
            assert!(is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [400, 401, 403, 404, 429, 500, 501] {
            assert!(!is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }
}
