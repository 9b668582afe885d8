//! The sync-lock policy. The host reports facts (the kernel lock's state, the holder's
//! record, the file's heartbeat, whether the recorded process still runs); this module
//! decides what they mean: reclaim a dead holder's record, wait for a live one, or give up
//! on one that looks hung. The kernel lock itself is never broken, whatever the facts say.

use crate::bindings::events::Level;
use crate::bindings::sync_lock::{AcquireError, Holder, HolderRecord, LockFacts, ProcessState};
use crate::bindings::types::{SyncError, Timestamp, Trigger};
use crate::host::Host;

/// How often a holder refreshes its heartbeat; the engine asks the host for this period.
pub const HEARTBEAT_SECONDS: u32 = 30;
/// A holder that has not refreshed its heartbeat for this long (120 periods) is hung or dead.
pub const HEARTBEAT_LIMIT_MS: i64 = 120 * HEARTBEAT_SECONDS as i64 * 1000;

/// Why a holder's record no longer describes a live sync.
#[derive(Debug, PartialEq)]
pub enum Staleness {
    /// The record describes a process that runs and keeps its heartbeat fresh.
    Live,
    /// There is no record to judge.
    NoRecord,
    Unreadable(String),
    NotRunning,
    PidReused,
    /// The heartbeat is older than the limit, by this many milliseconds.
    Silent(i64),
}

pub fn staleness(facts: &LockFacts, now: Timestamp) -> Staleness {
    let silent_for = now.saturating_sub(facts.heartbeat);
    match (&facts.holder, facts.process) {
        (HolderRecord::Empty, _) => Staleness::NoRecord,
        (HolderRecord::Unreadable(text), _) => Staleness::Unreadable(text.clone()),
        (HolderRecord::Written(_), ProcessState::NotRunning) => Staleness::NotRunning,
        (HolderRecord::Written(_), ProcessState::PidReused) => Staleness::PidReused,
        _ if silent_for > HEARTBEAT_LIMIT_MS => Staleness::Silent(silent_for),
        _ => Staleness::Live,
    }
}

/// Takes the lock, waiting while another process holds it and the host allows. Returns
/// a warning when the lock was reclaimed from a holder that left its record behind.
pub fn take<H: Host>(host: &mut H, trigger: Trigger) -> Result<Option<String>, SyncError> {
    let mut announced = false;
    loop {
        let facts = match host.acquire_lock(trigger, HEARTBEAT_SECONDS) {
            Ok(previous) => {
                let warning = reclaim_warning(&previous, host.now());
                if let Some(warning) = &warning {
                    host.log(Level::Warn, warning);
                }
                return Ok(warning);
            }
            Err(AcquireError::Unavailable(message)) => return Err(SyncError::LockFailed(message)),
            Err(AcquireError::Held(facts)) => facts,
        };
        let now = host.now();
        if let Some(hung) = hung_error(&facts, now) {
            return Err(SyncError::LockBusy(hung));
        }
        // Asked first: a host that will not wait (`--no-wait`) must not say it is waiting.
        if !host.wait_for_release() {
            return Err(SyncError::LockBusy(format!(
                "another sync holds the lock: {}; try again when it has finished",
                describe(&facts, now)
            )));
        }
        if !announced {
            host.log(Level::Warn, &format!("Waiting for the sync lock held by {}…", describe(&facts, now)));
            announced = true;
        }
    }
}

/// The error for a held lock whose heartbeat stopped: it is never broken, so the user
/// has to stop the holder.
fn hung_error(facts: &LockFacts, now: Timestamp) -> Option<String> {
    let silent_for = now.saturating_sub(facts.heartbeat);
    if silent_for <= HEARTBEAT_LIMIT_MS {
        return None;
    }
    let how_to_clear = match &facts.holder {
        HolderRecord::Written(h) => format!("stop that process (kill {} on {})", h.pid, h.host_name),
        _ => "find the process that has the lock file open (e.g. with `fuser`) and stop it".to_string(),
    };
    Some(format!(
        "the sync lock is held by {}, which has not refreshed it for {}: it looks hung. \
         A held lock is never broken; {how_to_clear}, and the lock frees itself when it exits",
        describe(facts, now),
        duration(silent_for)
    ))
}

/// What to tell the user when the lock was free but its file still named a holder.
fn reclaim_warning(previous: &LockFacts, now: Timestamp) -> Option<String> {
    match &previous.holder {
        HolderRecord::Empty => None,
        HolderRecord::Unreadable(text) => {
            Some(format!("reclaimed the sync lock: no process held it, and its file held no readable record ({text})"))
        }
        HolderRecord::Written(_) => Some(format!("reclaimed the sync lock {}", left_behind(previous, now))),
    }
}

/// `left behind by PID 1234 on … , which is no longer running`: a free lock's record and why it is stale.
fn left_behind(previous: &LockFacts, now: Timestamp) -> String {
    let why = match (staleness(previous, now), previous.process) {
        (Staleness::NotRunning, _) => "which is no longer running".to_string(),
        (Staleness::PidReused, _) => "whose PID now belongs to another process".to_string(),
        (Staleness::Silent(ms), _) => format!("which stopped refreshing it {} ago", duration(ms)),
        (_, ProcessState::Unknown) => "which could not be checked from this machine".to_string(),
        _ => "which is still running but no longer holds it".to_string(),
    };
    format!("left behind by {}, {why}", describe(previous, now))
}

/// The lock as a status display shows it: `held by …` (and whether it looks hung), `free`,
/// or `free; left behind by …` with why that holder is stale.
pub fn describe_lock(held: bool, facts: &LockFacts, now: Timestamp) -> String {
    if held {
        let silent_for = now.saturating_sub(facts.heartbeat);
        let hung = if silent_for > HEARTBEAT_LIMIT_MS {
            format!("; it looks hung: no heartbeat for {}", duration(silent_for))
        } else {
            String::new()
        };
        return format!("held by {}{hung}", describe(facts, now));
    }
    match &facts.holder {
        HolderRecord::Empty => "free".to_string(),
        HolderRecord::Unreadable(text) => format!("free; its file holds no readable record ({text})"),
        HolderRecord::Written(_) => format!("free; {}", left_behind(facts, now)),
    }
}

/// `PID 1234 on build-1 (testio-sync sync, from the command line, started 12:01:02Z, 3m ago)`,
/// or what is known instead.
pub fn describe(facts: &LockFacts, now: Timestamp) -> String {
    match &facts.holder {
        HolderRecord::Written(holder) => describe_holder(holder, now),
        HolderRecord::Empty => "a process that has not written its record yet".to_string(),
        HolderRecord::Unreadable(text) => format!("a process whose record is unreadable ({text})"),
    }
}

fn describe_holder(holder: &Holder, now: Timestamp) -> String {
    format!(
        "PID {} on {} ({}, {}, started {}, {} ago)",
        holder.pid,
        holder.host_name,
        holder.command,
        trigger_name(holder.trigger),
        time_of_day(holder.acquired_at),
        duration(now.saturating_sub(holder.acquired_at))
    )
}

/// What started the holder's sync, as a person reads it.
fn trigger_name(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Cli => "from the command line",
        Trigger::Scheduler => "for the scheduler",
        Trigger::Mcp => "for an MCP client",
    }
}

/// `12:01:02Z`: the age printed beside it tells the day.
fn time_of_day(at: Timestamp) -> String {
    let seconds = at.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}Z", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

/// `45s`, `3m`, `2h 5m`, `3d 4h`: two units at most, which is all a reader needs.
fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86_400, s / 3600 % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FakeHost, NOW};

    fn holder() -> Holder {
        Holder {
            pid: 1234,
            process_started_at: NOW - 7_200_000,
            host_name: "build-1".into(),
            acquired_at: NOW - 180_000,
            trigger: Trigger::Cli,
            command: "testio-sync sync".into(),
        }
    }

    fn facts(record: HolderRecord, process: ProcessState, heartbeat_age_ms: i64) -> LockFacts {
        LockFacts { holder: record, process, heartbeat: NOW - heartbeat_age_ms }
    }

    fn written(process: ProcessState, heartbeat_age_ms: i64) -> LockFacts {
        facts(HolderRecord::Written(holder()), process, heartbeat_age_ms)
    }

    #[test]
    fn a_running_holder_with_a_fresh_heartbeat_is_live() {
        assert_eq!(staleness(&written(ProcessState::Running, 30_000), NOW), Staleness::Live);
        assert_eq!(staleness(&written(ProcessState::Unknown, 30_000), NOW), Staleness::Live);
    }

    #[test]
    fn dead_reused_and_silent_holders_are_stale() {
        assert_eq!(staleness(&written(ProcessState::NotRunning, 0), NOW), Staleness::NotRunning);
        assert_eq!(staleness(&written(ProcessState::PidReused, 0), NOW), Staleness::PidReused);
        let two_hours = 7_200_000;
        assert_eq!(staleness(&written(ProcessState::Running, two_hours), NOW), Staleness::Silent(two_hours));
        // Exactly at the limit is still alive: the holder refreshes every minute.
        assert_eq!(staleness(&written(ProcessState::Running, HEARTBEAT_LIMIT_MS), NOW), Staleness::Live);
    }

    #[test]
    fn empty_and_unreadable_records_are_judged_by_content_alone() {
        let empty = facts(HolderRecord::Empty, ProcessState::Unknown, 0);
        assert_eq!(staleness(&empty, NOW), Staleness::NoRecord);
        let garbage = facts(HolderRecord::Unreadable("12 bytes of binary data".into()), ProcessState::Unknown, 0);
        assert_eq!(staleness(&garbage, NOW), Staleness::Unreadable("12 bytes of binary data".into()));
    }

    #[test]
    fn holders_are_described_like_cargo_does() {
        let text = describe(&written(ProcessState::Running, 0), NOW);
        assert_eq!(
            text,
            format!(
                "PID 1234 on build-1 (testio-sync sync, from the command line, started {}, 3m ago)",
                time_of_day(NOW - 180_000)
            )
        );
        assert_eq!(time_of_day(43_322_000), "12:02:02Z");
        assert_eq!(duration(45_000), "45s");
        assert_eq!(duration(7_500_000), "2h 5m");
        assert_eq!(duration(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
        assert_eq!(duration(-5), "0s");
    }

    #[test]
    fn a_free_lock_is_taken_and_a_clean_file_needs_no_warning() {
        let mut host = FakeHost::default();
        assert!(matches!(take(&mut host, Trigger::Cli), Ok(None)));
        assert!(host.lock_held);
        assert_eq!(host.heartbeat_seconds, HEARTBEAT_SECONDS, "the engine sets the period it judges by");
        assert!(HEARTBEAT_LIMIT_MS >= 60 * i64::from(HEARTBEAT_SECONDS) * 1000, "many missed beats before stale");
    }

    #[test]
    fn a_status_line_says_who_holds_the_lock_or_who_left_it_behind() {
        let live = written(ProcessState::Running, 10_000);
        let held = describe_lock(true, &live, NOW);
        assert!(held.starts_with("held by PID 1234 on build-1 (testio-sync sync"), "{held}");
        assert!(!held.contains("hung"), "{held}");
        let hung = describe_lock(true, &written(ProcessState::Running, 7_200_000), NOW);
        assert!(hung.ends_with("; it looks hung: no heartbeat for 2h 0m"), "{hung}");
        assert_eq!(describe_lock(false, &facts(HolderRecord::Empty, ProcessState::Unknown, 0), NOW), "free");
        let dead = describe_lock(false, &written(ProcessState::NotRunning, 0), NOW);
        assert!(dead.starts_with("free; left behind by PID 1234 on build-1"), "{dead}");
        assert!(dead.ends_with("which is no longer running"), "{dead}");
        let garbage = facts(HolderRecord::Unreadable("\"zzz\"".into()), ProcessState::Unknown, 0);
        assert_eq!(describe_lock(false, &garbage, NOW), "free; its file holds no readable record (\"zzz\")");
    }

    #[test]
    fn a_dead_holders_record_is_reclaimed_with_a_warning_naming_it() {
        let cases = [
            (ProcessState::NotRunning, 0, "which is no longer running"),
            (ProcessState::PidReused, 0, "whose PID now belongs to another process"),
            (ProcessState::Running, 7_200_000, "which stopped refreshing it 2h 0m ago"),
            (ProcessState::Running, 0, "which is still running but no longer holds it"),
            (ProcessState::Unknown, 0, "which could not be checked from this machine"),
        ];
        for (process, age, why) in cases {
            let mut host = FakeHost { lock_left_behind: Some(written(process, age)), ..FakeHost::default() };
            let warning = take(&mut host, Trigger::Cli).unwrap().unwrap();
            assert!(warning.contains("PID 1234 on build-1 (testio-sync sync"), "{warning}");
            assert!(warning.ends_with(why), "{warning}");
            assert!(host.lock_held);
        }
    }

    #[test]
    fn an_unreadable_record_on_a_free_lock_is_reclaimed() {
        let garbage = facts(HolderRecord::Unreadable("\"zzz\"".into()), ProcessState::Unknown, 0);
        let mut host = FakeHost { lock_left_behind: Some(garbage), ..FakeHost::default() };
        let warning = take(&mut host, Trigger::Cli).unwrap().unwrap();
        assert!(warning.contains("no readable record (\"zzz\")"), "{warning}");
    }

    #[test]
    fn a_held_lock_is_waited_for_with_one_message_naming_the_holder() {
        let mut host = FakeHost {
            lock_holder: Some(written(ProcessState::Running, 10_000)),
            waits_until_free: 3,
            wait_budget: 10,
            ..Default::default()
        };
        assert!(matches!(take(&mut host, Trigger::Mcp), Ok(None)));
        assert!(host.lock_held);
        assert_eq!(host.waits, 3);
        let waiting: Vec<_> = host.log.iter().filter(|l| l.starts_with("Waiting for the sync lock")).collect();
        assert_eq!(waiting.len(), 1, "{:?}", host.log);
        assert!(
            waiting[0].contains("held by PID 1234 on build-1 (testio-sync sync, from the command line, started"),
            "{}",
            waiting[0]
        );
    }

    #[test]
    fn a_held_lock_that_outlasts_the_wait_is_busy_and_names_the_holder() {
        let mut host = FakeHost {
            lock_holder: Some(written(ProcessState::Running, 10_000)),
            waits_until_free: u32::MAX,
            wait_budget: 2,
            ..Default::default()
        };
        let Err(SyncError::LockBusy(message)) = take(&mut host, Trigger::Cli) else { panic!("expected busy") };
        assert!(message.contains("PID 1234 on build-1 (testio-sync sync"), "{message}");
        assert!(!host.lock_held);
        assert_eq!(host.waits, 2);
    }

    #[test]
    fn a_held_lock_is_never_broken_even_when_its_holder_looks_dead() {
        for process in [ProcessState::NotRunning, ProcessState::PidReused] {
            let mut host =
                FakeHost { lock_holder: Some(written(process, 0)), waits_until_free: u32::MAX, ..Default::default() };
            assert!(matches!(take(&mut host, Trigger::Cli), Err(SyncError::LockBusy(_))));
            assert!(!host.lock_held);
        }
    }

    #[test]
    fn a_held_lock_with_a_stopped_heartbeat_is_reported_hung_with_how_to_clear_it() {
        let mut host = FakeHost {
            lock_holder: Some(written(ProcessState::Running, 7_200_000)),
            waits_until_free: u32::MAX,
            ..Default::default()
        };
        let Err(SyncError::LockBusy(message)) = take(&mut host, Trigger::Cli) else { panic!("expected busy") };
        assert!(message.contains("looks hung"), "{message}");
        assert!(message.contains("kill 1234 on build-1"), "{message}");
        assert!(message.contains("has not refreshed it for 2h 0m"), "{message}");
        assert_eq!(host.waits, 0, "a hung holder is not waited for");

        let garbage = facts(HolderRecord::Unreadable("empty".into()), ProcessState::Unknown, 7_200_000);
        let mut host = FakeHost { lock_holder: Some(garbage), waits_until_free: u32::MAX, ..Default::default() };
        let Err(SyncError::LockBusy(message)) = take(&mut host, Trigger::Cli) else { panic!("expected busy") };
        assert!(message.contains("fuser"), "{message}");
    }

    #[test]
    fn garbage_on_a_held_lock_is_waited_for_not_reclaimed() {
        let garbage = facts(HolderRecord::Unreadable("7 bytes: \"garbage\"".into()), ProcessState::Unknown, 0);
        let mut host = FakeHost { lock_holder: Some(garbage), waits_until_free: u32::MAX, ..Default::default() };
        let Err(SyncError::LockBusy(message)) = take(&mut host, Trigger::Cli) else { panic!("expected busy") };
        assert!(message.contains("record is unreadable"), "{message}");
        let empty = facts(HolderRecord::Empty, ProcessState::Unknown, 0);
        assert!(describe(&empty, NOW).contains("not written its record"));
    }

    #[test]
    fn an_unavailable_lock_file_fails_the_sync() {
        let mut host = FakeHost { lock_unavailable: true, ..Default::default() };
        assert!(matches!(take(&mut host, Trigger::Cli), Err(SyncError::LockFailed(m)) if m.contains("sync.lock")));
    }

    #[test]
    fn a_host_that_will_not_wait_never_says_it_is_waiting() {
        let mut host = FakeHost {
            lock_holder: Some(written(ProcessState::Running, 10_000)),
            waits_until_free: u32::MAX,
            wait_budget: 0,
            ..Default::default()
        };
        assert!(matches!(take(&mut host, Trigger::Cli), Err(SyncError::LockBusy(_))));
        assert!(host.log.iter().all(|l| !l.contains("Waiting")), "{:?}", host.log);
    }
}
