//! The holder record in the lock file: JSON that people can read too, written as one
//! fixed-size block so a reader never sees a new record mixed with the tail of an old one.

use std::fs::File;
use std::os::unix::fs::FileExt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::process::{HOST_NAME, PROCESS_STARTED_AT, short_command_line};
use crate::model::{Timestamp, Trigger};

/// Every record is written as one block of this size.
const RECORD_BLOCK: usize = 1024;

/// Who holds, or held, the lock.
#[derive(Clone, Debug, PartialEq)]
pub struct Holder {
    pub pid: u32,
    /// When the holder's process started, so that a reused PID can be told apart.
    pub process_started_at: Timestamp,
    pub host_name: String,
    pub acquired_at: Timestamp,
    pub trigger: Trigger,
    /// The holder's command line, shortened (e.g. `testio-sync sync`).
    pub command: String,
}

/// What the lock file says.
#[derive(Clone, Debug, PartialEq)]
pub enum HolderRecord {
    /// Nothing: a new file, or one its last holder released cleanly.
    Empty,
    /// Content that is not a holder record; the text shows what was found.
    Unreadable(String),
    Written(Holder),
}

/// The record as it sits in the file.
#[derive(Serialize, Deserialize)]
struct Record {
    pid: u32,
    process_started_at: String,
    host_name: String,
    acquired_at: String,
    trigger: String,
    command: String,
}

impl Record {
    fn of_this_process(trigger: Trigger) -> Self {
        Self {
            pid: std::process::id(),
            process_started_at: iso(*PROCESS_STARTED_AT),
            host_name: HOST_NAME.clone(),
            acquired_at: iso(Utc::now().timestamp_millis()),
            trigger: trigger.name().to_string(),
            command: short_command_line(),
        }
    }

    fn to_holder(&self) -> Option<Holder> {
        Some(Holder {
            pid: self.pid,
            process_started_at: parse_iso(&self.process_started_at)?,
            host_name: self.host_name.clone(),
            acquired_at: parse_iso(&self.acquired_at)?,
            trigger: Trigger::named(&self.trigger)?,
            command: self.command.clone(),
        })
    }
}

/// Writes this process's record for a sync started by `trigger`.
pub fn write(file: &File, trigger: Trigger) -> std::io::Result<()> {
    let record = Record::of_this_process(trigger);
    file.write_at(&block(&serde_json::to_vec(&record)?), 0)?;
    file.set_len(RECORD_BLOCK as u64)
}

/// Leaves an empty record: what a clean release looks like.
pub fn clear(file: &File) -> std::io::Result<()> {
    file.write_at(&block(b""), 0).map(drop)
}

/// `content` padded with spaces to the record block, ending in a newline.
fn block(content: &[u8]) -> Vec<u8> {
    let mut block = content.to_vec();
    block.resize(RECORD_BLOCK - 1, b' ');
    block.push(b'\n');
    block
}

/// Reads the record; anything that is not one of ours is `Unreadable`, never trusted.
pub fn read(file: &File) -> HolderRecord {
    let mut bytes = vec![0; 4 * RECORD_BLOCK];
    let read = match file.read_at(&mut bytes, 0) {
        Ok(n) => n,
        Err(e) => return HolderRecord::Unreadable(format!("could not read it: {e}")),
    };
    let text = String::from_utf8_lossy(&bytes[..read]);
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if text.is_empty() {
        return HolderRecord::Empty;
    }
    match serde_json::from_str::<Record>(text).ok().and_then(|r| r.to_holder()) {
        Some(holder) => HolderRecord::Written(holder),
        None => HolderRecord::Unreadable(excerpt(text)),
    }
}

/// A short, printable excerpt of unexpected content.
fn excerpt(text: &str) -> String {
    let shown: String = text.chars().take(40).flat_map(char::escape_default).collect();
    let more = if text.chars().count() > 40 { "…" } else { "" };
    format!("\"{shown}{more}\"")
}

fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_iso(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_that_are_not_ours_are_unreadable_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.lock");
        for (content, expected) in [
            ("", None),
            ("   \n", None),
            ("PID: 1234\nSTARTED: 2026-01-01\n", Some("\"PID: 1234\\nSTARTED: 2026-01-01\"")),
            ("{\"pid\": 1}", Some("\"{\\\"pid\\\": 1}\"")),
        ] {
            std::fs::write(&path, content).unwrap();
            match (read(&File::open(&path).unwrap()), expected) {
                (HolderRecord::Empty, None) => {}
                (HolderRecord::Unreadable(text), Some(expected)) => assert_eq!(text, expected),
                (other, _) => panic!("{content:?} read as {other:?}"),
            }
        }
    }

    #[test]
    fn a_written_record_reads_back_as_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.lock");
        let file = super::super::file::open(&path).unwrap();
        write(&file, Trigger::Mcp).unwrap();
        let HolderRecord::Written(holder) = read(&file) else { panic!("no record") };
        assert_eq!(
            (holder.pid, holder.trigger, holder.host_name),
            (std::process::id(), Trigger::Mcp, HOST_NAME.clone())
        );
        clear(&file).unwrap();
        assert_eq!(read(&file), HolderRecord::Empty);
    }
}
