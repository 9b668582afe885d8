//! `testio-sync history`: the sync log, newest first.

use serde_json::json;

use super::status::Database;
use super::{Exit, output};
use crate::db::status::{SyncRecord, current_history};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    database: Database,
    /// How many syncs to show
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
    /// Print the syncs as JSON on stdout
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let (location, mut store) = args.database.open()?;
    let syncs = current_history(store.as_mut(), args.limit, &location)?;
    if args.json {
        output::line(json!(syncs))?;
        return Ok(Exit::Success);
    }
    if syncs.is_empty() {
        output::line("No syncs yet.")?;
    }
    for sync in &syncs {
        output::line(line(sync))?;
    }
    Ok(Exit::Success)
}

/// `#12 2026-11-26T12:00:00Z success (cli, PID 81, 0.7s): 20 products, …`
fn line(sync: &SyncRecord) -> String {
    let pid = sync.pid.map_or(String::new(), |p| format!(", PID {p}"));
    let mut text =
        format!("#{} {} {} ({}{pid}{})", sync.id, sync.started_at, sync.status, sync.trigger_source, duration(sync));
    if let Some(products) = sync.products_synced {
        text += &format!(
            ": {products} products, {} features, {} tests discovered, {} tests updated",
            sync.features_refreshed.unwrap_or(0),
            sync.tests_discovered.unwrap_or(0),
            sync.tests_updated.unwrap_or(0)
        );
        if let Some(rechecked) = sync.tests_rechecked.filter(|n| *n > 0) {
            text += &format!(", {rechecked} live tests re-checked ({} changed)", sync.tests_changed.unwrap_or(0));
        }
    }
    if let Some(message) = &sync.error_message {
        text += &format!(" — {message}");
    }
    text
}

/// `, 0.7s`, `, running`, or nothing for a sync that ended without a duration; shared with
/// `status`.
pub fn duration(sync: &SyncRecord) -> String {
    match sync.duration_seconds {
        Some(seconds) => format!(", {seconds:.1}s"),
        None if sync.status == "running" => ", running".to_string(),
        None => String::new(),
    }
}
