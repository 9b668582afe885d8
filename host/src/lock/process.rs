//! What this machine knows about processes: this process's identity for its holder
//! record, and whether the process a record names still runs.

use std::path::Path;
use std::sync::LazyLock;

use chrono::Utc;
use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};

use super::record::Holder;

/// What this machine can tell about the process a holder record names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessState {
    /// It runs and started when the record says.
    Running,
    /// A process with that PID runs, but started at another time.
    PidReused,
    NotRunning,
    /// Not known here: no record, or the record names another machine.
    Unknown,
}

pub static HOST_NAME: LazyLock<String> = LazyLock::new(|| System::host_name().unwrap_or_else(|_| "unknown".into()));

/// This process's start time (ms) as the kernel reports it, so a later reader can compare.
pub static PROCESS_STARTED_AT: LazyLock<i64> = LazyLock::new(|| {
    let pid = Pid::from_u32(std::process::id());
    start_seconds(pid).map_or_else(|| Utc::now().timestamp_millis(), |s| s * 1000)
});

/// `testio-sync sync`: the program's file name and its subcommand.
pub fn short_command_line() -> String {
    std::env::args()
        .take(2)
        .map(|a| Path::new(&a).file_name().map_or(a.clone(), |n| n.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The process a holder names, as seen from this machine.
pub fn state_of(holder: &Holder) -> ProcessState {
    if holder.host_name != *HOST_NAME {
        return ProcessState::Unknown;
    }
    match start_seconds(Pid::from_u32(holder.pid)) {
        None => ProcessState::NotRunning,
        // The kernel reports start times in whole seconds.
        Some(started) if (started - holder.process_started_at.div_euclid(1000)).abs() <= 1 => ProcessState::Running,
        Some(_) => ProcessState::PidReused,
    }
}

fn start_seconds(pid: Pid) -> Option<i64> {
    let mut system = System::new().ok()?;
    system.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, ProcessRefreshKind::nothing());
    let process = system.process(pid)?;
    (process.status() != ProcessStatus::Zombie).then(|| process.start_time() as i64)
}
