//! Settings several commands take, each checked by clap as it parses the flag or the
//! environment variable.

use std::time::Duration;

use crate::api::{RequestLimit, request_limit};
pub use crate::config::whole_number;
use crate::customers::{self, Customer};
use crate::db::Location;

/// Whose rows to read and write.
#[derive(clap::Args)]
pub struct CustomerArgs {
    /// The customer, by its name in the registry (`testio-sync customer list`); default:
    /// the registry's default, or the one of TESTIO_CUSTOMER_API_TOKEN
    #[arg(long, value_name = "NAME")]
    pub customer: Option<String>,
    /// The local customer id the rows of TESTIO_CUSTOMER_API_TOKEN's customer are stored
    /// under (a registry customer has its own)
    #[arg(long, env = "TESTIO_CUSTOMER_ID", default_value_t = 1, value_name = "ID",
          value_parser = whole_number(1, i64::MAX))]
    pub customer_id: i64,
}

impl CustomerArgs {
    /// The customer these arguments name in the database at `db`.
    pub fn resolve(&self, db: &Location) -> anyhow::Result<Customer> {
        let customer = customers::resolve(db, self.customer.as_deref())?;
        Ok(self.with_overrides(customer))
    }

    /// The unnamed customer takes its id from `--customer-id`.
    pub fn with_overrides(&self, mut customer: Customer) -> Customer {
        if customer.name.is_none() {
            customer.customer_id = self.customer_id;
        }
        customer
    }
}

/// How fresh the mirror is kept.
#[derive(clap::Args)]
pub struct Freshness {
    /// How old, in seconds, the stored data of a test whose status can still change (not
    /// archived or cancelled) may get before a sync fetches it again; 0 re-checks every such
    /// test now. Bugs of those tests follow the same limit
    #[arg(long, env = "CACHE_TTL_SECONDS", default_value_t = 3600, value_name = "SECS",
          value_parser = whole_number::<u32>(0, MAX_AGE_LIMIT))]
    pub max_age: u32,
}

/// Thirty days: a mirror kept fresher than that by nothing is a mistake worth an error.
const MAX_AGE_LIMIT: u32 = 30 * 86_400;

/// How hard the Customer API is asked.
#[derive(clap::Args)]
pub struct ApiLimits {
    /// Requests in flight at once, over every product
    #[arg(long, env = "MAX_CONCURRENT_API_REQUESTS", default_value_t = 10, value_name = "N",
          value_parser = whole_number::<u16>(1, 50))]
    pub max_requests: u16,
    /// How long one request may take, answer included, in seconds
    #[arg(long, env = "HTTP_TIMEOUT_SECONDS", default_value_t = 90, value_name = "SECS",
          value_parser = whole_number::<u64>(1, 3600))]
    pub request_timeout: u64,
}

impl ApiLimits {
    /// A fresh limit of this many requests in flight, for the syncs that share it.
    pub fn request_limit(&self) -> RequestLimit {
        request_limit(usize::from(self.max_requests))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout)
    }
}
