//! Which customers a command serves. PROVISIONAL: only the implicit unnamed customer of
//! `TESTIO_CUSTOMER_API_TOKEN`; the registry (`customer add`) replaces this module.

use std::path::Path;

use anyhow::bail;

/// A customer: a registry row, or the implicit unnamed one (`name: None`).
#[derive(Clone, Debug, PartialEq)]
pub struct Customer {
    pub name: Option<String>,
    pub customer_id: i64,
    pub base_url: Option<String>,
    pub product_ids: Option<Vec<u64>>,
    pub since: Option<String>,
    pub interval_seconds: Option<u64>,
    pub active: bool,
    pub default: bool,
}

impl Customer {
    fn implicit() -> Self {
        Self {
            name: None,
            customer_id: 1,
            base_url: None,
            product_ids: None,
            since: None,
            interval_seconds: None,
            active: true,
            default: true,
        }
    }
}

pub fn resolve(_db: &Path, name: Option<&str>) -> anyhow::Result<Customer> {
    match name {
        None => Ok(Customer::implicit()),
        Some(name) => bail!("there is no customer {name:?}"),
    }
}

pub fn active(_db: &Path) -> anyhow::Result<Vec<Customer>> {
    Ok(vec![Customer::implicit()])
}

pub fn token_for(_customer: &Customer) -> anyhow::Result<String> {
    crate::config::token_from_env()
}
