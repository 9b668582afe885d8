//! Where a sync's log lines and progress go: a progress bar, log lines, an MCP client.

use crate::model::{Level, Phase, Progress};

/// Receives the engine's log lines and progress updates during a sync.
pub trait Observer: Send {
    fn log(&mut self, level: Level, message: &str);
    fn progress(&mut self, update: &Progress);
    /// A phase ran to its end and its writes have all committed.
    fn phase_finished(&mut self, phase: Phase, items: u32) {
        tracing::info!(target: "progress", "{}", Milestones::finished(phase, items));
    }
}

/// Sends everything to `tracing` (stderr, honouring `RUST_LOG`).
#[derive(Default)]
pub struct TracingObserver {
    milestones: Milestones,
    /// Leads every line, when several customers' syncs log side by side (`acme: …`).
    lead: String,
}

impl TracingObserver {
    /// Lines led by a customer's name.
    pub fn labelled(name: String) -> Self {
        Self { milestones: Milestones::default(), lead: format!("{name}: ") }
    }
}

/// Picks from the progress updates the ones a person follows: a phase starts, a
/// product is done. That a phase finished comes apart, once its writes committed.
#[derive(Default)]
pub struct Milestones {
    phase: Option<Phase>,
}

impl Milestones {
    pub fn of(&mut self, update: &Progress) -> Vec<String> {
        let phase = update.phase.name();
        let mut milestones = Vec::new();
        if self.phase != Some(update.phase) {
            self.phase = Some(update.phase);
            milestones.push(format!("{phase} phase started"));
        }
        if let Some(product) = update.product_id {
            milestones.push(format!("{phase}: product {product} done ({}/{})", update.done, update.total));
        }
        milestones
    }

    /// `new_tests phase finished: 180 rows written`.
    pub fn finished(phase: Phase, items: u32) -> String {
        format!("{} phase finished: {items} rows written", phase.name())
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
        trace_line(level, &format!("{}{message}", self.lead));
    }

    fn progress(&mut self, update: &Progress) {
        for milestone in self.milestones.of(update) {
            tracing::info!(target: "progress", "{}{milestone}", self.lead);
        }
    }

    fn phase_finished(&mut self, phase: Phase, items: u32) {
        tracing::info!(target: "progress", "{}{}", self.lead, Milestones::finished(phase, items));
    }
}
