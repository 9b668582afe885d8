//! Property tests where parsers meet the outside: whatever comes in, nothing panics, and
//! what parses means what it says. Each runs 64 cases (seconds in all, in `.ci/run`);
//! `PROPTEST_CASES=10000 cargo test --release -p testio-sync --lib prop` runs longer.
//! Keep `prop` in every name here, so that filter finds them all.

mod lock_record;
mod mcp_lines;
mod payload;
mod product_ids;
mod since;

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

/// 64 cases unless `PROPTEST_CASES` says otherwise (`Config::with_cases` would ignore it).
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64);
    Config { cases, ..Config::default() }
}

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e15..1e15f64).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
