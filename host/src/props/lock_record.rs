//! The holder record in the lock file (`lock::read_facts`, which reads it with
//! `lock::record::read`): whatever the file holds, it reads as empty, unreadable or a
//! record, and a record that testio-sync would write reads back as written.

use std::io::Write;

use chrono::{DateTime, SecondsFormat};
use proptest::prelude::*;

use super::config;
use crate::lock::{HolderRecord, read_facts};
use crate::model::Trigger;

/// The record in a scratch file, read back.
fn read_back(content: &[u8]) -> HolderRecord {
    let mut file = tempfile::tempfile().expect("a scratch file");
    file.write_all(content).expect("the scratch file is written");
    read_facts(&file).holder
}

fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(SecondsFormat::Millis, true)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_any_content_reads_as_empty_unreadable_or_a_record(
        content in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..5000),
            any::<String>().prop_map(String::into_bytes),
            "[ \n\t\0]{0,8}(\\{\"pid\": ?[0-9]{1,12}\\})?[ \n\0]{0,8}".prop_map(String::into_bytes),
        ],
    ) {
        let visible = content.iter().any(u8::is_ascii_graphic);
        match read_back(&content) {
            HolderRecord::Empty => prop_assert!(!visible),
            // A short excerpt: 40 characters at most, each escaped, in quotes.
            HolderRecord::Unreadable(excerpt) => prop_assert!(excerpt.starts_with('"') && excerpt.len() <= 40 * 10 + 5),
            HolderRecord::Written(_) => prop_assert!(visible),
        }
    }

    #[test]
    fn prop_a_record_reads_back_as_written(
        pid in any::<u32>(),
        host_name in ".{0,60}",
        command in ".{0,200}",
        trigger in prop_oneof![Just(Trigger::Cli), Just(Trigger::Scheduler), Just(Trigger::Mcp)],
        started in 0..4_102_444_800_000i64,
        acquired in 0..4_102_444_800_000i64,
        padding in prop::collection::vec(prop_oneof![Just(b' '), Just(b'\n'), Just(0u8)], 0..1024),
    ) {
        let record = serde_json::json!({
            "pid": pid, "process_started_at": iso(started), "host_name": host_name,
            "acquired_at": iso(acquired), "trigger": trigger.name(), "command": command,
        });
        let content = [record.to_string().into_bytes(), padding].concat();
        let HolderRecord::Written(holder) = read_back(&content) else {
            return Err(TestCaseError::fail(format!("{record} did not read back")));
        };
        prop_assert_eq!(
            (holder.pid, holder.process_started_at, holder.acquired_at, holder.trigger),
            (pid, started, acquired, trigger)
        );
        prop_assert_eq!((holder.host_name, holder.command), (host_name, command));
    }
}
