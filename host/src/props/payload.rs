//! The API's response bodies (`api::payload`): any bytes, any JSON.

use chrono::{DateTime, SecondsFormat};
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{config, json};
use crate::api::{ApiTime, parse_bugs, parse_features, parse_products, parse_tests};

const ENVELOPES: [&str; 4] = ["products", "features", "exploratory_tests", "bugs"];

/// `{"<envelope>": records}` as the API would send it.
fn body(envelope: &str, records: Vec<Value>) -> String {
    Value::Object(Map::from_iter([(envelope.to_string(), Value::Array(records))])).to_string()
}

/// The raw JSON each parser kept for its records; `None` where the body did not parse.
fn raws(body: &[u8]) -> [Option<Vec<String>>; 4] {
    fn kept<R>(parsed: serde_json::Result<Vec<R>>, raw: impl Fn(&R) -> &str) -> Option<Vec<String>> {
        parsed.ok().map(|records| records.iter().map(|r| raw(r).to_string()).collect())
    }
    [
        kept(parse_products(body), |r| r.raw.get()),
        kept(parse_features(body), |r| r.raw.get()),
        kept(parse_tests(body), |r| r.raw.get()),
        kept(parse_bugs(body), |r| r.raw.get()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_any_bytes_parse_or_fail_without_a_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = raws(&body);
    }

    #[test]
    fn prop_any_json_records_parse_or_fail_and_parsed_ones_keep_their_raw_json(
        records in prop::collection::vec(json(), 0..4),
        which in 0..4usize,
    ) {
        let sent: Vec<String> = records.iter().map(Value::to_string).collect();
        if let Some(kept) = &raws(body(ENVELOPES[which], records).as_bytes())[which] {
            prop_assert_eq!(kept, &sent);
        }
    }

    #[test]
    fn prop_a_record_with_an_id_parses_whatever_else_it_holds_and_keeps_it_all(
        id in any::<u64>(),
        extra in prop::collection::btree_map("x_[a-z]{1,6}", json(), 0..5),
        which in 0..4usize,
    ) {
        let mut record = Map::from_iter(extra);
        record.insert("id".into(), id.into());
        let record = Value::Object(record);
        let kept = &raws(body(ENVELOPES[which], vec![record.clone()]).as_bytes())[which];
        prop_assert_eq!(kept, &Some(vec![record.to_string()]));
    }

    #[test]
    fn prop_a_bugs_loose_fields_read_without_a_panic(
        status in json(), auto_accepted in json(), known in json(), steps in json(), test in json(),
    ) {
        let bug = serde_json::json!({
            "id": 1, "auto_accepted": auto_accepted, "known": known, "steps": steps, "test": test,
        });
        let mut bug = bug.as_object().cloned().unwrap_or_default();
        bug.insert("status".into(), status);
        if let Ok(bugs) = parse_bugs(body("bugs", vec![Value::Object(bug)]).as_bytes()) {
            let bug = &bugs[0];
            let _ = (bug.status(), bug.known(), bug.steps(), bug.test_id());
        }
    }

    #[test]
    fn prop_test_times_are_read_as_instants_or_kept_as_text(text in ".{0,40}", ms in 0..4_102_444_800_000i64) {
        let instant = DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(SecondsFormat::Millis, true);
        let test = serde_json::json!({"id": 1, "start_at": text, "end_at": instant});
        let tests = parse_tests(body("exploratory_tests", vec![test]).as_bytes()).unwrap();
        prop_assert_eq!(&tests[0].end_at, &ApiTime::At(ms));
        match &tests[0].start_at {
            ApiTime::Missing => prop_assert!(text.trim().is_empty()),
            ApiTime::Unparsable(kept) => prop_assert_eq!(kept.as_str(), text.trim()),
            ApiTime::At(_) => {}
        }
    }
}
