//! The customers one process serves (`daemon`, `mcp`, `sync --all-customers`): a sync
//! service and a scheduler each, sharing one engine runtime and one limit on requests in
//! flight, so that customers sync side by side without asking the API for more than the
//! process's limit, and one customer's failures never delay another.

use std::sync::Arc;
use std::time::Duration;

use crate::customers::Customer;
use crate::scheduler::{Plan, Scheduler, Selection};
use crate::service::SyncService;

/// One customer's share of the process.
pub struct Member {
    pub customer: Customer,
    pub service: Arc<SyncService>,
    /// What its syncs cover when the caller does not say.
    pub selection: Selection,
    /// Its background syncs; `None` when its interval is 0.
    pub scheduler: Option<Arc<Scheduler>>,
}

impl Member {
    pub fn new(customer: Customer, service: SyncService, selection: Selection, interval: Duration) -> Self {
        let service = Arc::new(service);
        let scheduler = (!interval.is_zero()).then(|| {
            let plan = Plan { interval, selection: selection.clone() };
            Arc::new(Scheduler::new(service.clone(), plan))
        });
        Self { customer, service, selection, scheduler }
    }

    /// The customer's name, or `default` for the unnamed one.
    pub fn name(&self) -> &str {
        self.customer.name.as_deref().unwrap_or("default")
    }
}

pub struct Fleet {
    members: Vec<Member>,
}

impl Fleet {
    pub fn new(members: Vec<Member>) -> Self {
        Self { members }
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member named `name`, or, without a name, the default customer's.
    pub fn member(&self, name: Option<&str>) -> Result<&Member, String> {
        let found = match name {
            Some(name) => self.members.iter().find(|m| m.customer.name.as_deref() == Some(name)),
            None => self.members.iter().find(|m| m.customer.default).or_else(|| self.members.first()),
        };
        found.ok_or_else(|| match name {
            Some(name) => format!("there is no active customer {name:?}; active customers: {}", self.names()),
            None => format!("no customer is the default; name one of: {}", self.names()),
        })
    }

    fn names(&self) -> String {
        self.members.iter().map(Member::name).collect::<Vec<_>>().join(", ")
    }

    /// Marks every member's syncs dropped from now on as stopped for `reason`.
    pub fn stop(&self, reason: &str) {
        for member in &self.members {
            member.service.stop(reason.to_string());
        }
    }

    /// Runs every member's scheduler until the future is dropped.
    pub async fn run_schedulers(&self) -> std::convert::Infallible {
        let running = self.members.iter().filter_map(|m| m.scheduler.clone());
        futures::future::join_all(running.map(|s| async move { s.run().await })).await;
        std::future::pending().await
    }
}
