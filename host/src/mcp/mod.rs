//! The MCP server's tools. They run syncs through the process's [`SyncService`], the
//! one its scheduler uses: there is no second sync path, and a call during a scheduled
//! sync waits for its turn or shares that sync's result.
//!
//! - `stdio`: stdin and stdout on plain threads, each line screened (`screen`) first;
//! - `product_ids`: the forms `sync_data` takes its products in;
//! - `schema`: only standard JSON Schema formats in the tools' schemas.

pub mod product_ids;
pub mod schema;
pub mod screen;
pub mod stdio;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ProgressNotificationParam, ProgressToken, ServerCapabilities,
    ServerConfig,
};
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::RequestContext;
use rmcp::{Json, Peer, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::db::status::{SyncRecord, current_history};
use crate::fleet::{Fleet, Member};
use crate::model::{Level, Phase, Progress, SyncRequest, Trigger};
use crate::observe::{Milestones, Observer, trace_line};
use crate::scheduler::{SchedulerStatus, Selection};
use crate::service::Finished;

const INSTRUCTIONS: &str = "Keeps a local SQLite mirror of a Test IO account (products, features, exploratory \
tests) up to date. Call sync_data to refresh it (it can take minutes on a large account; progress is reported when \
you pass a progress token), sync_status to see how fresh it is and whether a sync is running, and sync_history for \
the latest syncs.";

const MAX_HISTORY: u32 = 100;

#[derive(Clone)]
pub struct SyncServer {
    /// The customers served, each with its service, what its syncs cover when the caller
    /// does not say, and its scheduler.
    fleet: Arc<Fleet>,
    tool_router: ToolRouter<Self>,
    /// How many `sync_data` calls are running, so that a stopping server can wait for
    /// their syncs to record why they stopped.
    syncing: Arc<watch::Sender<usize>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncDataRequest {
    /// The customer, by its name in the registry; omit for the default customer.
    #[serde(default)]
    customer: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "product_ids::schema")]
    product_ids: Option<Value>,
    /// Only tests that ended on or after this: an ISO date ("2025-01-31") or date-time
    /// ("2025-01-31T12:00:00Z"), "today", "yesterday", "30 days ago", "last 7 days"
    /// (also weeks, months, years); or "all" to refresh every test of every page (slow).
    /// Omit for the usual incremental sync, which fetches the tests that are new since
    /// the last sync.
    #[serde(default)]
    since: Option<String>,
    /// Walk every page again and update every test, not only the new ones (slower).
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncHistoryRequest {
    /// The customer, by its name in the registry; omit for the default customer.
    #[serde(default)]
    customer: Option<String>,
    /// How many syncs to list, newest first (1 to 100; default 10).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Everything in scope was synced.
    Completed,
    /// The sync ran, but some things need attention: see `warnings`, and `errors` for
    /// the parts (products, phases) whose data could not be fetched.
    CompletedWithWarnings,
    /// The sync could not run or stopped: see `errors`.
    Failed,
}

/// The outcome of a `sync_data` call.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SyncReport {
    status: Verdict,
    /// The phases that ran to completion: products, features, new_tests.
    phases_completed: Vec<String>,
    products_synced: u32,
    features_refreshed: u32,
    /// Tests that were not in the mirror before this sync.
    tests_discovered: u32,
    /// Tests that were in the mirror and were written again.
    tests_updated: u32,
    /// Bugs written (the bugs of live tests are kept as fresh as their tests).
    bugs_refreshed: u32,
    /// Tests whose status could still change that were fetched again because their copy
    /// was older than the freshness limit.
    tests_rechecked: u32,
    /// Of those, the ones whose status had changed.
    tests_changed: u32,
    /// Rows removed because the API no longer returns them.
    rows_removed: u32,
    duration_seconds: f64,
    warnings: Vec<String>,
    errors: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncStatusRequest {
    /// Only this customer, by its name in the registry; omit for every customer.
    #[serde(default)]
    customer: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct StatusReport {
    db_path: String,
    /// The default customer's status (or the one asked for), as in `customers`.
    #[serde(flatten)]
    default: CustomerStatus,
    /// Every customer served, the default first.
    customers: Vec<CustomerStatus>,
}

/// One customer's mirror: its last sync, its lock and its scheduler.
#[derive(Serialize, JsonSchema)]
pub struct CustomerStatus {
    /// Its name in the registry; `default` for the one of TESTIO_CUSTOMER_API_TOKEN.
    customer: String,
    /// The local id its rows are stored under.
    customer_id: i64,
    /// The latest sync in the sync log, whoever started it; null before the first.
    last_sync: Option<SyncRecord>,
    /// When the last sync without errors completed (UTC); the scheduler skips its run
    /// while this is younger than its interval.
    last_sync_completed: Option<String>,
    /// Who holds the sync lock (PID, command, trigger, since when); null when free.
    lock_holder: Option<String>,
    /// The background scheduler; null when it is off (TESTIO_REFRESH_INTERVAL_SECONDS=0).
    scheduler: Option<SchedulerStatus>,
}

#[derive(Serialize, JsonSchema)]
pub struct HistoryReport {
    /// Newest first.
    syncs: Vec<SyncRecord>,
}

#[tool_router]
impl SyncServer {
    pub fn new(fleet: Arc<Fleet>) -> Self {
        Self { fleet, tool_router: Self::tools(), syncing: Arc::default() }
    }

    /// The customer a call names (the default without a name), or a tool error listing them.
    fn member(&self, name: Option<&str>) -> Result<&Member, CallToolResult> {
        self.fleet.member(name).map_err(input_error)
    }

    /// The tools, their schemas holding only standard formats.
    fn tools() -> ToolRouter<Self> {
        let mut router = Self::tool_router();
        for route in router.map.values_mut() {
            schema::standardise(&mut route.attr);
        }
        router
    }

    /// Resolves once no `sync_data` call is running. Calls stop when the session that
    /// carries them ends (rmcp cancels their requests).
    pub async fn idle(&self) {
        let _ = self.syncing.subscribe().wait_for(|running| *running == 0).await;
    }

    #[tool(description = "Sync the Test IO account into the local database: products, then features, then new \
        exploratory tests. Returns the counts and a status (completed, completed_with_warnings, failed) with every \
        warning and error. If a sync is already running, the call waits for it or shares its result. Sends progress \
        notifications per phase and per product when the request carries a progress token.")]
    async fn sync_data(
        &self,
        Parameters(request): Parameters<SyncDataRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<SyncReport>, CallToolResult> {
        let member = self.member(request.customer.as_deref())?;
        let call = call_for(member, &request).map_err(input_error)?;
        let _running = Running::start(&self.syncing);
        let (observer, forwarding) = ProgressForwarder::start(context.meta.get_progress_token(), context.peer);
        let finished = tokio::select! {
            finished = member.service.sync(call, Box::new(observer)) => finished,
            // The client cancelled the call or the server is stopping: dropping the sync
            // stops it, and its sync log row says `interrupted`.
            () = context.ct.cancelled() => return Err(failed("the call was cancelled".to_string())),
        };
        if let Some(forwarding) = forwarding {
            // Progress is sent before the result, never after it.
            let _ = forwarding.await;
        }
        report(&finished)
    }

    #[tool(description = "How fresh the local mirror is: the last sync (status, trigger, counts, duration), when the \
        last successful sync completed, who holds the sync lock right now, and the background scheduler's state \
        (idle, syncing, backoff), next run, consecutive failures and last error.")]
    async fn sync_status(
        &self,
        Parameters(request): Parameters<SyncStatusRequest>,
    ) -> Result<Json<StatusReport>, CallToolResult> {
        let chosen = self.member(request.customer.as_deref())?;
        let others = self.fleet.members().iter().filter(|m| request.customer.is_none() && !std::ptr::eq(*m, chosen));
        let mut customers = Vec::new();
        for member in std::iter::once(chosen).chain(others) {
            customers.push(customer_status(member).await?);
        }
        let default = customer_status(chosen).await?;
        Ok(Json(StatusReport { db_path: chosen.service.location().to_string(), default, customers }))
    }

    #[tool(description = "The latest syncs from the sync log, newest first: when each started, its trigger (cli, \
        scheduler, mcp), status (running, success, partial_failure, failure, interrupted), counts, duration and \
        error message.")]
    async fn sync_history(
        &self,
        Parameters(request): Parameters<SyncHistoryRequest>,
    ) -> Result<Json<HistoryReport>, CallToolResult> {
        let limit = request.limit.unwrap_or(10);
        if !(1..=MAX_HISTORY).contains(&limit) {
            return Err(input_error(format!("limit {limit} is out of range; give 1 to {MAX_HISTORY}")));
        }
        let member = self.member(request.customer.as_deref())?;
        let read = member.service.read(move |store, at| current_history(store, limit, at));
        let syncs = read.await.map_err(|e| tool_failure("the sync history", e))?;
        Ok(Json(HistoryReport { syncs: syncs.unwrap_or_default() }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SyncServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("testio-sync", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// One customer's status: the last sync, when the last good one completed, the lock.
async fn customer_status(member: &Member) -> Result<CustomerStatus, CallToolResult> {
    let service = &member.service;
    let read = service
        .read(move |store, at| Ok((current_history(store, 1, at)?.pop(), store.metadata("last_sync_completed")?)));
    let (last_sync, last_sync_completed) =
        read.await.map_err(|e| tool_failure("the sync status", e))?.unwrap_or_default();
    let lock = service
        .runtime()
        .lock_status(service.location(), member.customer.customer_id)
        .await
        .map_err(|e| tool_failure("the sync lock", e))?;
    Ok(CustomerStatus {
        customer: member.name().to_string(),
        customer_id: member.customer.customer_id,
        last_sync,
        last_sync_completed,
        lock_holder: lock.held.then_some(lock.line),
        scheduler: member.scheduler.as_ref().map(|s| s.status()),
    })
}

/// The sync a `sync_data` call asks of `member`.
fn call_for(member: &Member, request: &SyncDataRequest) -> Result<SyncRequest, String> {
    let defaults = &member.selection;
    let product_ids = match &request.product_ids {
        None | Some(Value::Null) => defaults.product_ids.clone(),
        Some(value) => Some(product_ids::product_ids(value)?),
    };
    let now = chrono::Utc::now();
    let (since, everything) = match request.since.as_deref().map(str::trim) {
        None => (defaults.since_at(now).map_err(|e| format!("the customer's since: {e}"))?, false),
        Some(all) if all.eq_ignore_ascii_case("all") => (None, true),
        Some(text) => {
            let at = crate::since::parse(text, now).map_err(|e| format!("since: {e}; or \"all\""))?;
            (Some(at.timestamp_millis()), false)
        }
    };
    // A `since` window refreshes every test in it, as the reference does.
    let force = request.force || everything || request.since.is_some();
    let selection = Selection { product_ids, ..defaults.clone() };
    Ok(selection.request(since, force, Trigger::Mcp))
}

fn report(finished: &Finished) -> Result<Json<SyncReport>, CallToolResult> {
    let result = match finished.as_ref() {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => return Err(failed(e.to_string())),
        Err(e) => return Err(failed(format!("{e:#}"))),
    };
    let clean = result.warnings.is_empty() && result.errors.is_empty();
    Ok(Json(SyncReport {
        status: if clean { Verdict::Completed } else { Verdict::CompletedWithWarnings },
        phases_completed: result.phases_completed.iter().map(|p| p.name().to_string()).collect(),
        products_synced: result.products_synced,
        features_refreshed: result.features_refreshed,
        tests_discovered: result.tests_discovered,
        tests_updated: result.tests_updated,
        bugs_refreshed: result.bugs_refreshed,
        tests_rechecked: result.tests_rechecked,
        tests_changed: result.tests_changed,
        rows_removed: result.rows_removed,
        duration_seconds: result.duration_seconds,
        warnings: result.warnings.clone(),
        errors: result.errors.clone(),
    }))
}

/// A sync that did not run or stopped: a tool error that still carries a `SyncReport`.
fn failed(message: String) -> CallToolResult {
    let report = SyncReport {
        status: Verdict::Failed,
        phases_completed: Vec::new(),
        products_synced: 0,
        features_refreshed: 0,
        tests_discovered: 0,
        tests_updated: 0,
        bugs_refreshed: 0,
        tests_rechecked: 0,
        tests_changed: 0,
        rows_removed: 0,
        duration_seconds: 0.0,
        warnings: Vec::new(),
        errors: vec![message.clone()],
    };
    let mut result = CallToolResult::structured_error(serde_json::to_value(report).unwrap_or_default());
    result.content = vec![ContentBlock::text(format!("Sync failed: {message}"))];
    result
}

fn input_error(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!("Invalid arguments: {message}"))])
}

/// `what`: the thing that could not be read ("the sync history").
fn tool_failure(what: &str, error: impl std::fmt::Display) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!("Could not read {what}: {error:#}"))])
}

/// One running `sync_data` call, counted while it lives.
struct Running(Arc<watch::Sender<usize>>);

impl Running {
    fn start(count: &Arc<watch::Sender<usize>>) -> Self {
        count.send_modify(|running| *running += 1);
        Self(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|running| *running -= 1);
    }
}

/// Logs to stderr like any sync, and sends the milestones to the MCP client as progress
/// notifications when it asked for them.
struct ProgressForwarder {
    milestones: Milestones,
    sender: Option<mpsc::UnboundedSender<String>>,
}

impl ProgressForwarder {
    /// The observer, and the task that sends its notifications (none without a token).
    fn start(token: Option<ProgressToken>, peer: Peer<RoleServer>) -> (Self, Option<tokio::task::JoinHandle<()>>) {
        let Some(token) = token else {
            return (Self { milestones: Milestones::default(), sender: None }, None);
        };
        let (sender, mut received) = mpsc::unbounded_channel::<String>();
        let task = tokio::spawn(async move {
            // The progress value must grow with every notification: count them.
            let mut step = 0.0;
            while let Some(message) = received.recv().await {
                step += 1.0;
                let notification = ProgressNotificationParam::new(token.clone(), step).with_message(message);
                if let Err(e) = peer.notify_progress(notification).await {
                    tracing::debug!("could not send a progress notification: {e}");
                }
            }
        });
        (Self { milestones: Milestones::default(), sender: Some(sender) }, Some(task))
    }
}

impl Observer for ProgressForwarder {
    fn log(&mut self, level: Level, message: &str) {
        trace_line(level, message);
    }

    fn progress(&mut self, update: &Progress) {
        for milestone in self.milestones.of(update) {
            self.forward(milestone);
        }
    }

    fn phase_finished(&mut self, phase: Phase, items: u32) {
        self.forward(Milestones::finished(phase, items));
    }
}

impl ProgressForwarder {
    /// Logs a milestone and sends it to the client, when it asked for progress.
    fn forward(&self, milestone: String) {
        tracing::info!(target: "progress", "{milestone}");
        if let Some(sender) = &self.sender {
            let _ = sender.send(milestone);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks a schema, `$defs` included, and names every `format` JSON Schema does not define.
    fn odd_formats(schema: &Value, at: &str, found: &mut Vec<String>) {
        match schema {
            Value::Object(object) => {
                if let Some(Value::String(format)) = object.get("format")
                    && !schema::STANDARD_FORMATS.contains(&format.as_str())
                {
                    found.push(format!("{at}: {format}"));
                }
                for (key, value) in object {
                    odd_formats(value, &format!("{at}/{key}"), found);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    odd_formats(item, &format!("{at}/{i}"), found);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_tool_schema_uses_only_standard_formats() {
        let mut found = Vec::new();
        let tools = SyncServer::tools().list_all();
        assert_eq!(tools.len(), 3);
        for tool in tools {
            let input = Value::Object(tool.input_schema.as_ref().clone());
            odd_formats(&input, &format!("{} input", tool.name), &mut found);
            let output = tool.output_schema.expect("every tool has an output schema");
            odd_formats(&Value::Object(output.as_ref().clone()), &format!("{} output", tool.name), &mut found);
        }
        assert!(found.is_empty(), "non-standard formats: {found:#?}");
    }

    #[test]
    fn numbers_keep_their_bounds_once_their_formats_are_gone() {
        let tools = SyncServer::tools();
        let history = tools.get("sync_history").unwrap();
        let limit = &history.input_schema["properties"]["limit"];
        assert_eq!((&limit["minimum"], &limit["maximum"]), (&serde_json::json!(1), &serde_json::json!(100)), "{limit}");
        let report = Value::Object(tools.get("sync_data").unwrap().output_schema.as_ref().unwrap().as_ref().clone());
        assert_eq!(report["properties"]["products_synced"]["minimum"], 0, "{report}");
    }
}
