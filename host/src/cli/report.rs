//! What a person sees: logs and progress on stderr, the summary, and `--json` on stdout.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tracing_subscriber::EnvFilter;

use super::{Exit, output};
use crate::model::{Level, Phase, Progress, SyncError};
use crate::observe::{Observer, TracingObserver, trace_line};
use crate::service::{Outcome, final_line};
use crate::shutdown::Signal;

/// Logs go to stderr; `RUST_LOG` overrides the default of info for this tool. A stderr that
/// cannot be written loses the lines: the subscriber's own complaint would be an `eprintln!`,
/// which panics there.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,testio_sync=info,engine=info,progress=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Log lines led by a customer's name, for syncs that run side by side.
pub fn labelled(name: String) -> Box<dyn Observer> {
    Box::new(TracingObserver::labelled(name))
}

/// A progress bar on a terminal, plain log lines elsewhere.
pub fn observer() -> Box<dyn Observer> {
    if std::io::stderr().is_terminal() { Box::new(BarObserver::new()) } else { Box::new(TracingObserver::default()) }
}

struct BarObserver {
    bar: ProgressBar,
}

impl BarObserver {
    fn new() -> Self {
        let bar = ProgressBar::new(1);
        let style = ProgressStyle::with_template("{spinner} {msg:<40} [{bar:30}] {pos}/{len} products")
            .expect("the template is valid")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Self { bar }
    }
}

impl Observer for BarObserver {
    fn log(&mut self, level: Level, message: &str) {
        if matches!(level, Level::Warn | Level::Error) {
            self.bar.suspend(|| trace_line(level, message));
        }
    }

    /// The bar shows the phase; a line would only break it.
    fn phase_finished(&mut self, _phase: Phase, _items: u32) {}

    fn progress(&mut self, update: &Progress) {
        self.bar.set_length(update.total.max(1).into());
        self.bar.set_position(update.done.into());
        let phase = update.phase.name();
        let written = match update.phase {
            Phase::Products => "products",
            Phase::Features => "features",
            Phase::NewTests => "tests",
            Phase::Bugs => "bugs",
        };
        self.bar.set_message(format!("{phase}: {} {written} written", update.items));
    }
}

impl Drop for BarObserver {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Prints the outcome, ending with the final line, and picks the exit code.
pub fn finish(finished: &anyhow::Result<Outcome>, as_json: bool, elapsed: Duration) -> Exit {
    if as_json {
        print_json(&to_json(finished));
    }
    summarise(finished, elapsed, "")
}

/// The outcomes of several customers' syncs (one sync: as [`finish`]): one summary per
/// customer, its lines led by its name, `--json` an array, and the worst exit code.
pub fn finish_all(finished: &[(String, crate::service::Finished, Duration)], as_json: bool) -> Exit {
    if let [(_, one, elapsed)] = finished {
        return finish(one, as_json, *elapsed);
    }
    if as_json {
        let each = finished.iter().map(|(name, outcome, _)| {
            let mut json = to_json(outcome);
            json["customer"] = json!(name);
            json
        });
        print_json(&json!(each.collect::<Vec<_>>()));
    }
    finished.iter().fold(Exit::Success, |worst, (name, outcome, elapsed)| {
        worst.worst(summarise(outcome, *elapsed, &format!("{name}: ")))
    })
}

/// Warnings, errors and the final line on stderr, each led by `lead`; the exit code.
fn summarise(finished: &anyhow::Result<Outcome>, elapsed: Duration, lead: &str) -> Exit {
    let exit = match finished {
        Ok(Ok(result)) => {
            for warning in &result.warnings {
                output::note(format_args!("{lead}warning: {warning}"));
            }
            for error in &result.errors {
                output::note(format_args!("{lead}error: {error}"));
            }
            if result.errors.is_empty() { Exit::Success } else { Exit::Partial }
        }
        Ok(Err(SyncError::LockBusy(_))) => Exit::LockBusy,
        Ok(Err(_)) | Err(_) => Exit::Failure,
    };
    output::note(format_args!("{lead}{}", final_line(finished, elapsed)));
    exit
}

/// Reports a sync stopped by a signal.
pub fn interrupted(signal: Signal, as_json: bool, elapsed: Duration) -> Exit {
    let reason = format!("interrupted by {}", signal.name());
    if as_json {
        print_json(&json!({ "status": "interrupted", "error": reason }));
    }
    output::note(format_args!("Sync failed after {:.1}s: {reason}", elapsed.as_secs_f64()));
    match signal {
        Signal::Interrupt => Exit::Interrupted,
        Signal::Terminate => Exit::Terminated,
    }
}

/// For `sync --json`, says on stdout why the sync did not start (stderr gets the error too,
/// from the caller), so that a script always finds a JSON object there.
pub fn not_started(error: anyhow::Error, as_json: bool) -> anyhow::Error {
    if as_json {
        print_failure(&format!("{error:#}"));
    }
    error
}

/// `{"status":"failure","error":…}` on stdout.
pub fn print_failure(error: &str) {
    print_json(&failure(error));
}

fn failure(error: &str) -> serde_json::Value {
    json!({ "status": "failure", "error": error })
}

/// The result on stdout. The sync's outcome stays its exit code: a reader that went away is
/// no failure, and any other failure to write is said on stderr.
fn print_json(result: &serde_json::Value) {
    if let Err(e) = output::line(result) {
        output::note(format_args!("error: {e:#}"));
    }
}

/// The reference's snake_case field names, plus a status.
pub fn to_json(finished: &anyhow::Result<Outcome>) -> serde_json::Value {
    match finished {
        Ok(Ok(r)) => json!({
            "status": if r.errors.is_empty() { "success" } else { "partial_failure" },
            "phases_completed": r.phases_completed.iter().map(|p| p.name()).collect::<Vec<_>>(),
            "products_synced": r.products_synced,
            "features_refreshed": r.features_refreshed,
            "tests_discovered": r.tests_discovered,
            "tests_updated": r.tests_updated,
            "bugs_refreshed": r.bugs_refreshed,
            "tests_rechecked": r.tests_rechecked,
            "tests_changed": r.tests_changed,
            "rows_removed": r.rows_removed,
            "duration_seconds": r.duration_seconds,
            "warnings": r.warnings,
            "errors": r.errors,
        }),
        Ok(Err(e)) => failure(&e.to_string()),
        Err(e) => failure(&format!("{e:#}")),
    }
}
