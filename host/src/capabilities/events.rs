//! `testio:sync/events`: log lines and progress go to an [`Observer`]; the sync log
//! goes to the `sync_events` table.

use super::HostState;
use crate::bindings::events::{Host, Level, Progress};
use crate::bindings::types::{Phase, SyncError, SyncResult, Trigger};
use crate::lock::trigger_name;

/// Where a sync's log lines and progress go: a progress bar, log lines, an MCP client.
pub trait Observer: Send {
    fn log(&mut self, level: Level, message: &str);
    fn progress(&mut self, update: &Progress);
}

/// Sends everything to `tracing` (stderr, honouring `RUST_LOG`).
#[derive(Default)]
pub struct TracingObserver {
    milestones: Milestones,
}

/// Picks from the progress updates the ones a person follows: a phase starts, a
/// product is done, a phase is finished.
#[derive(Default)]
pub struct Milestones {
    phase: Option<Phase>,
    phase_finished: bool,
}

impl Milestones {
    pub fn of(&mut self, update: &Progress) -> Vec<String> {
        let phase = phase_name(update.phase);
        let mut milestones = Vec::new();
        if self.phase != Some(update.phase) {
            self.phase = Some(update.phase);
            self.phase_finished = false;
            milestones.push(format!("{phase} phase started"));
        }
        if let Some(product) = update.product_id {
            milestones.push(format!("{phase}: product {product} done ({}/{})", update.done, update.total));
        }
        if !self.phase_finished && update.done == update.total {
            self.phase_finished = true;
            milestones.push(format!("{phase} phase finished: {} rows written", update.items));
        }
        milestones
    }
}

/// Writes one of the engine's log lines to `tracing`.
pub fn trace_line(level: Level, message: &str) {
    match level {
        Level::Debug => tracing::debug!(target: "engine", "{message}"),
        Level::Info => tracing::info!(target: "engine", "{message}"),
        Level::Warn => tracing::warn!(target: "engine", "{message}"),
        Level::Error => tracing::error!(target: "engine", "{message}"),
    }
}

impl Observer for TracingObserver {
    fn log(&mut self, level: Level, message: &str) {
        trace_line(level, message);
    }

    fn progress(&mut self, update: &Progress) {
        for milestone in self.milestones.of(update) {
            tracing::info!(target: "progress", "{milestone}");
        }
    }
}

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.touch();
        self.observer.log(level, &message);
        Ok(())
    }

    fn report_progress(&mut self, update: Progress) -> wasmtime::Result<()> {
        self.touch();
        self.observer.progress(&update);
        if let (Some(run_id), Some(_)) = (self.open_run, update.product_id) {
            // Dates the end of a sync that gets interrupted; a failed write shows at the next flush.
            let _ = self.db.write(move |db| db.touch_run(run_id).map_err(|e| e.to_string()));
        }
        Ok(())
    }

    async fn sync_started(&mut self, trigger: Trigger, phases: Vec<Phase>) -> wasmtime::Result<u64> {
        let names: Vec<&str> = phases.iter().map(|p| phase_name(*p)).collect();
        let phases = names.join(",");
        let started =
            self.db.read(move |db| db.start_run(trigger_name(trigger), &phases).map_err(|e| e.to_string())).await;
        self.touch();
        match started {
            Ok(run_id) => {
                self.open_run = Some(run_id);
                Ok(run_id as u64)
            }
            Err(e) => {
                tracing::error!("could not record the start of the sync in the sync log: {e}");
                Ok(0)
            }
        }
    }

    async fn sync_finished(&mut self, run_id: u64, outcome: Result<SyncResult, SyncError>) -> wasmtime::Result<()> {
        self.open_run = None;
        let finished = self.db.read(move |db| db.finish_run(run_id as i64, &outcome).map_err(|e| e.to_string())).await;
        self.touch();
        if let Err(e) = finished {
            tracing::error!("could not record the end of the sync in the sync log: {e}");
        }
        Ok(())
    }
}

pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Products => "products",
        Phase::Features => "features",
        Phase::NewTests => "new_tests",
        Phase::Bugs => "bugs",
    }
}
