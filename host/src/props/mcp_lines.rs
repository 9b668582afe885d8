//! The MCP line screen (`mcp::screen`): whatever line comes in, it is passed only if rmcp
//! can read it, and every answer is one JSON-RPC error line with an `id`.

use proptest::prelude::*;
use rmcp::model::ClientJsonRpcMessage;
use serde_json::{Map, Value, json};

use super::{config, json};
use crate::mcp::screen::{INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, Screen, screen};

/// Checks the screen's verdict on `line`; the answer, if any, as JSON.
fn verdict(line: &[u8]) -> Result<Option<Value>, TestCaseError> {
    match screen(line) {
        Screen::Pass => {
            let text = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line).trim_ascii();
            let read = serde_json::from_slice::<ClientJsonRpcMessage>(text);
            prop_assert!(read.is_ok(), "passed, yet rmcp cannot read it: {}", String::from_utf8_lossy(line));
            Ok(None)
        }
        Screen::Ignore => Ok(None),
        Screen::Reply(reply) => {
            prop_assert!(reply.ends_with(b"\n") && !reply[..reply.len() - 1].contains(&b'\n'), "one line");
            let reply: Value = serde_json::from_slice(&reply).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&reply["jsonrpc"], "2.0");
            prop_assert!(reply.get("id").is_some(), "an answer always has an id: {}", reply);
            let code = reply["error"]["code"].as_i64().unwrap_or_default();
            prop_assert!([PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS].contains(&code), "{}", reply);
            Ok(Some(reply))
        }
    }
}

/// Messages shaped like JSON-RPC, each member right, wrong or missing.
fn message() -> impl Strategy<Value = Value> {
    let jsonrpc = prop::option::of(prop_oneof![Just(json!("2.0")), Just(json!("1.0")), json()]);
    let id = prop::option::of(prop_oneof![
        any::<i64>().prop_map(Value::from),
        "[a-z0-9-]{0,8}".prop_map(Value::from),
        json()
    ]);
    let method = prop::option::of(prop_oneof![
        prop::sample::select(vec![
            "ping",
            "initialize",
            "tools/list",
            "tools/call",
            "notifications/initialized",
            "x/y"
        ])
        .prop_map(Value::from),
        json(),
    ]);
    let params = prop::option::of(prop_oneof![
        (json(), prop::option::of(json())).prop_map(|(name, arguments)| json!({"name": name, "arguments": arguments})),
        json(),
    ]);
    (jsonrpc, id, method, params).prop_map(|(jsonrpc, id, method, params)| {
        let members = [("jsonrpc", jsonrpc), ("id", id), ("method", method), ("params", params)];
        Value::Object(members.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))).collect::<Map<_, _>>())
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_any_bytes_pass_to_rmcp_only_if_it_reads_them_and_answers_are_whole_error_lines(
        line in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        verdict(&line)?;
    }

    #[test]
    fn prop_any_json_is_screened_like_any_line(value in json()) {
        verdict(value.to_string().as_bytes())?;
    }

    #[test]
    fn prop_a_request_is_answered_with_its_own_id(message in message()) {
        let Some(reply) = verdict(message.to_string().as_bytes())? else { return Ok(()) };
        match message.get("id") {
            // The ids MCP allows come back as sent; a fraction as the nearest number serde_json reads.
            Some(id) if id.is_string() || id.is_i64() || id.is_u64() => prop_assert_eq!(&reply["id"], id, "{}", message),
            Some(id) if id.is_f64() => prop_assert!(reply["id"].is_f64(), "{}", message),
            _ => prop_assert_eq!(&reply["id"], &Value::Null, "{}", message),
        }
    }

    #[test]
    fn prop_a_well_formed_tool_call_passes(
        id in prop_oneof![any::<i64>().prop_map(Value::from), ".{0,12}".prop_map(Value::from)],
        name in ".{0,20}",
        arguments in prop::collection::btree_map(".{0,8}", json(), 0..4),
    ) {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": name, "arguments": Map::from_iter(arguments)}});
        prop_assert_eq!(screen(call.to_string().as_bytes()), Screen::Pass);
    }
}
