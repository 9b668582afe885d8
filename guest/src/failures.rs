//! What a failed request means for the sync. Judged by the HTTP status the host reports
//! (never by the message text), after the host's own retries of transient failures.
//!
//! | failure                      | verdict                                                  |
//! |------------------------------|----------------------------------------------------------|
//! | 401                          | stop the whole sync: no later request can succeed        |
//! | 403                          | stop the whole sync, naming the forbidden resource       |
//! | 404 on a product's request   | a warning: the product went away; the others go on      |
//! | 500 on a page of tests       | shrink the page and salvage it (see `salvage`)          |
//! | a body that is not the JSON the API documents | that product's data is lost: an error, and a warning at once |
//! | anything else                | that product's data is lost: an error naming the endpoint |
//! | 524 on a batch of bugs       | split the batch (see `bugs`); for a single test, that test's bugs are lost |

use crate::bindings::customer_api::{ApiError, Failure};
use crate::bindings::types::SyncError;

pub const UNAUTHORIZED: u16 = 401;
pub const FORBIDDEN: u16 = 403;
pub const NOT_FOUND: u16 = 404;
/// A real account answers 500 for pages that hold a test it cannot render.
pub const PAGE_BROKEN: u16 = 500;
/// The API gave up computing an answer in time: asked for fewer tests, it may not.
pub const TIMED_OUT: u16 = 524;

/// What to do about one failed request for one product.
#[derive(Debug)]
pub enum Verdict {
    /// Stop the sync: nothing else can succeed, or the account forbids what it needs.
    Abort(SyncError),
    /// Nothing was lost (the product is gone): a warning.
    Gone(String),
    /// Part of the product's data could not be fetched: an error.
    Lost(String),
    /// Like `Lost`, and worth a warning in the log as it happens: the API answered
    /// with something that is not what it documents.
    Malformed(String),
}

/// Whether a failed page of tests should be fetched again in smaller pages.
pub fn page_is_broken(error: &ApiError) -> bool {
    matches!(error.failure, Failure::HttpStatus(PAGE_BROKEN))
}

/// Whether a failed batch of bugs should be asked for again in two halves.
pub fn batch_timed_out(error: &ApiError) -> bool {
    matches!(error.failure, Failure::HttpStatus(TIMED_OUT))
}

/// `test 7` or `tests 7, 8, 9`, for messages about a batch.
pub fn test_list(test_ids: &[u64]) -> String {
    let ids: Vec<String> = test_ids.iter().map(u64::to_string).collect();
    format!("{} {}", if ids.len() == 1 { "test" } else { "tests" }, ids.join(", "))
}

/// Judges a failed request for the bugs of a batch of tests (once no more splitting helps).
pub fn judge_bugs(error: &ApiError, test_ids: &[u64]) -> Verdict {
    let reason = match error.failure {
        Failure::HttpStatus(TIMED_OUT) => "the API timed out (HTTP 524) even when asked for this test alone".into(),
        _ => error.message.clone(),
    };
    let lost = format!("{}: bugs could not be fetched from {}: {reason}", test_list(test_ids), error.endpoint);
    match error.failure {
        Failure::HttpStatus(UNAUTHORIZED | FORBIDDEN) => Verdict::Abort(whole_sync_error(error)),
        Failure::BadPayload => Verdict::Malformed(lost),
        Failure::HttpStatus(_) | Failure::Network | Failure::TooLarge => Verdict::Lost(lost),
    }
}

/// Judges a failed request made for one product; `what` names the data ("features", "tests").
pub fn judge(error: &ApiError, product_id: u64, what: &str) -> Verdict {
    let lost = format!("product {product_id}: {what} could not be fetched from {}: {}", error.endpoint, error.message);
    match error.failure {
        Failure::HttpStatus(UNAUTHORIZED | FORBIDDEN) => Verdict::Abort(whole_sync_error(error)),
        Failure::HttpStatus(NOT_FOUND) => Verdict::Gone(format!(
            "product {product_id}: {} was not found (HTTP 404); the product may have been deleted, so its {what} were skipped",
            error.endpoint
        )),
        Failure::BadPayload => Verdict::Malformed(lost),
        Failure::HttpStatus(_) | Failure::Network | Failure::TooLarge => Verdict::Lost(lost),
    }
}

/// The error for a request the whole sync depends on (or that no sync can get past).
pub fn whole_sync_error(error: &ApiError) -> SyncError {
    let message = format!("{} ({})", error.message, error.endpoint);
    match error.failure {
        Failure::HttpStatus(UNAUTHORIZED) => SyncError::Unauthorized(message),
        Failure::HttpStatus(FORBIDDEN) => SyncError::Forbidden(message),
        _ => SyncError::ApiFailed(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(failure: Failure) -> ApiError {
        ApiError { failure, endpoint: "products/7/features".into(), attempts: 1, message: "it failed".into() }
    }

    #[test]
    fn a_rejected_token_or_a_forbidden_resource_stops_the_sync() {
        assert!(matches!(
            judge(&error(Failure::HttpStatus(401)), 7, "features"),
            Verdict::Abort(SyncError::Unauthorized(_))
        ));
        let Verdict::Abort(SyncError::Forbidden(message)) = judge(&error(Failure::HttpStatus(403)), 7, "features")
        else {
            panic!("403 must abort");
        };
        assert!(message.contains("products/7/features"), "{message}");
    }

    #[test]
    fn a_missing_product_is_a_warning_not_a_loss() {
        let Verdict::Gone(warning) = judge(&error(Failure::HttpStatus(404)), 7, "features") else {
            panic!("404 is a warning");
        };
        assert!(warning.starts_with("product 7:") && warning.contains("HTTP 404"), "{warning}");
    }

    #[test]
    fn the_status_decides_not_the_text() {
        // The reference treated any message containing "500" as a broken page.
        let mut not_found = error(Failure::HttpStatus(404));
        not_found.endpoint = "products/1500/exploratory_tests?page=500&per_page=1".into();
        assert!(!page_is_broken(&not_found));
        assert!(page_is_broken(&error(Failure::HttpStatus(500))));
        assert!(!page_is_broken(&error(Failure::HttpStatus(503))));
        assert!(matches!(judge(&error(Failure::HttpStatus(503)), 7, "tests"), Verdict::Lost(_)));
    }

    #[test]
    fn a_malformed_body_and_a_lost_connection_name_the_product_and_the_endpoint() {
        for failure in [Failure::BadPayload, Failure::Network, Failure::TooLarge] {
            let (Verdict::Lost(m) | Verdict::Malformed(m)) = judge(&error(failure), 7, "features") else {
                panic!("a loss expected");
            };
            assert!(m.starts_with("product 7: features could not be fetched from products/7/features"), "{m}");
        }
        assert!(matches!(judge(&error(Failure::BadPayload), 7, "tests"), Verdict::Malformed(_)));
    }
}
