//! `testio:sync/events`: log lines and progress go to the sync's [`Observer`]; the sync
//! log goes to the `sync_events` table.

use super::HostState;
use crate::capabilities::bindings::events::{self as wit, Host};
use crate::capabilities::bindings::types::{self as wit_types, Trigger};
use crate::model::{Level, Phase, Progress, SyncError, SyncResult};

impl Host for HostState {
    fn log(&mut self, level: wit::Level, message: String) -> wasmtime::Result<()> {
        self.observer.log(level.into(), &message);
        if matches!(level, wit::Level::Error) {
            self.last_engine_error = Some(message);
        }
        Ok(())
    }

    fn report_progress(&mut self, update: wit::Progress) -> wasmtime::Result<()> {
        let update = Progress::from(update);
        self.observer.progress(&update);
        if let (Some(run_id), Some(_)) = (self.open_run, update.product_id) {
            // Dates the end of a sync that gets interrupted; a failed write shows at the next flush.
            let _ = self.write(move |db| db.touch_run(run_id).map_err(|e| format!("{e:#}")));
        }
        Ok(())
    }

    fn phase_finished(&mut self, phase: wit_types::Phase, items: u32) -> wasmtime::Result<()> {
        self.observer.phase_finished(phase.into(), items);
        Ok(())
    }

    async fn sync_started(&mut self, trigger: Trigger, phases: Vec<wit_types::Phase>) -> wasmtime::Result<u64> {
        let trigger = crate::model::Trigger::from(trigger);
        let phases: Vec<&str> = phases.into_iter().map(|p| Phase::from(p).name()).collect();
        let phases = phases.join(",");
        // The sync log is kept whatever became of earlier writes: only this job's outcome counts.
        let started =
            self.db.read_own(move |db| db.start_run(trigger.name(), &phases).map_err(|e| format!("{e:#}"))).await;
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

    async fn sync_finished(
        &mut self,
        run_id: u64,
        outcome: Result<wit_types::SyncResult, wit_types::SyncError>,
    ) -> wasmtime::Result<()> {
        self.open_run = None;
        let outcome = outcome.map(SyncResult::from).map_err(SyncError::from);
        let finished =
            self.db.read_own(move |db| db.finish_run(run_id as i64, &outcome).map_err(|e| format!("{e:#}"))).await;
        if let Err(e) = finished {
            tracing::error!("could not record the end of the sync in the sync log: {e}");
        }
        Ok(())
    }
}

impl From<wit::Level> for Level {
    fn from(level: wit::Level) -> Self {
        match level {
            wit::Level::Debug => Level::Debug,
            wit::Level::Info => Level::Info,
            wit::Level::Warn => Level::Warn,
            wit::Level::Error => Level::Error,
        }
    }
}

impl From<wit::Progress> for Progress {
    fn from(p: wit::Progress) -> Self {
        Progress { phase: p.phase.into(), product_id: p.product_id, done: p.done, total: p.total, items: p.items }
    }
}
