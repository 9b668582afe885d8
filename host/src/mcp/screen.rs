//! The screen every line from the MCP client passes before rmcp reads it. rmcp drops a
//! line that is not JSON without a word, answers a malformed request without its `id`,
//! and a `tools/call` whose params do not fit with -32601. JSON-RPC 2.0 (§5, §5.1) wants
//! -32700 for the first, the request's `id` (null when it cannot be read) in every
//! error, and -32602 for params that do not fit the method; notifications are never
//! answered. Whatever passes, rmcp reads unchanged.

use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage, RequestId};
use serde_json::{Map, Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What becomes of one line from the client.
#[derive(Debug, PartialEq)]
pub enum Screen {
    /// rmcp reads the line as it came.
    Pass,
    /// The answer, one line ending in a newline; rmcp never sees the line.
    Reply(Vec<u8>),
    /// Nothing: a blank line, or a notification or response that rmcp cannot read
    /// (notifications and responses are never answered).
    Ignore,
}

/// The screen's verdict on `line` (without its newline).
pub fn screen(line: &[u8]) -> Screen {
    let text = line.strip_prefix(BOM).unwrap_or(line).trim_ascii();
    if text.is_empty() {
        return Screen::Ignore;
    }
    let message = match serde_json::from_slice::<Value>(text) {
        Ok(Value::Object(message)) => message,
        Ok(other) => return reply(Value::Null, INVALID_REQUEST, not_an_object(&other)),
        Err(e) => return reply(Value::Null, PARSE_ERROR, format!("Parse error: {e}")),
    };
    let is_response = !message.contains_key("method") && ["result", "error"].iter().any(|k| message.contains_key(*k));
    let Some(id) = message.get("id") else {
        return match shape_fault(&message) {
            Some(fault) if !is_response => reply(Value::Null, INVALID_REQUEST, fault),
            _ => pass_if_readable(text),
        };
    };
    if is_response {
        return pass_if_readable(text);
    }
    let echo = if id.is_string() || id.is_number() { id.clone() } else { Value::Null };
    match request_fault(&message, id) {
        Some((code, why)) => reply(echo, code, why),
        None => rmcp_verdict(text, echo),
    }
}

/// A message that has no `id` is a notification, or a response to the server's own
/// request: rmcp's business if it can read it, never answered if it cannot.
fn pass_if_readable(text: &[u8]) -> Screen {
    match serde_json::from_slice::<ClientJsonRpcMessage>(text) {
        Ok(_) => Screen::Pass,
        Err(_) => Screen::Ignore,
    }
}

fn not_an_object(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "Invalid Request: batches are not supported (MCP 2025-06-18); send one message per line",
        _ => "Invalid Request: a JSON-RPC message is an object",
    }
}

/// What makes `message` no JSON-RPC request object at all, whatever its id.
fn shape_fault(message: &Map<String, Value>) -> Option<String> {
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Some("Invalid Request: \"jsonrpc\" must be \"2.0\"".into());
    }
    if !message.get("method").is_some_and(Value::is_string) {
        return Some("Invalid Request: \"method\" must be a string".into());
    }
    match message.get("params") {
        None | Some(Value::Object(_) | Value::Array(_)) => None,
        Some(_) => Some("Invalid Request: \"params\" must be an object".into()),
    }
}

/// The code and message for a request (it has an id) that is malformed or whose params
/// do not fit its method; none if rmcp may have it.
fn request_fault(message: &Map<String, Value>, id: &Value) -> Option<(i64, String)> {
    if serde_json::from_value::<RequestId>(id.clone()).is_err() {
        return Some((INVALID_REQUEST, "Invalid Request: \"id\" must be a string or an integer".into()));
    }
    if let Some(fault) = shape_fault(message) {
        return Some((INVALID_REQUEST, fault));
    }
    let method = message.get("method").and_then(Value::as_str).unwrap_or_default();
    params_fault(method, message.get("params")).map(|why| (INVALID_PARAMS, format!("Invalid params: {why}")))
}

fn params_fault(method: &str, params: Option<&Value>) -> Option<String> {
    if params.is_some_and(Value::is_array) {
        return Some(format!("{method} takes its params as an object, not an array"));
    }
    if params.and_then(|p| p.get("_meta")).is_some_and(|meta| !meta.is_object()) {
        return Some("\"_meta\" must be an object".into());
    }
    if method != "tools/call" {
        return None;
    }
    let params = params.and_then(Value::as_object);
    if !params.and_then(|p| p.get("name")).is_some_and(Value::is_string) {
        return Some("tools/call needs \"name\", the tool's name as a string".into());
    }
    match params.and_then(|p| p.get("arguments")) {
        None | Some(Value::Null | Value::Object(_)) => None,
        Some(_) => Some("tools/call takes \"arguments\" as an object of named arguments".into()),
    }
}

/// The last word on a well-formed request: rmcp must read it as what its method says,
/// or it would answer without an id (or with -32601 for a method it knows).
fn rmcp_verdict(text: &[u8], id: Value) -> Screen {
    match serde_json::from_slice::<ClientJsonRpcMessage>(text) {
        Ok(JsonRpcMessage::Request(request)) => match &request.request {
            ClientRequest::CustomRequest(custom) if is_mcp_request(&custom.method) => {
                let why = format!("Invalid params: not the params {} takes", custom.method);
                reply(id, INVALID_PARAMS, why)
            }
            _ => Screen::Pass,
        },
        Ok(_) => Screen::Pass,
        Err(e) => reply(id, INVALID_REQUEST, format!("Invalid Request: {e}")),
    }
}

/// The requests a client sends that rmcp knows (its `is_standard_method`, client side):
/// one of these that rmcp reads as a custom request has params that do not fit.
fn is_mcp_request(method: &str) -> bool {
    matches!(
        method,
        "initialize"
            | "ping"
            | "server/discover"
            | "completion/complete"
            | "logging/setLevel"
            | "prompts/get"
            | "prompts/list"
            | "resources/list"
            | "resources/read"
            | "resources/subscribe"
            | "resources/unsubscribe"
            | "resources/templates/list"
            | "subscriptions/listen"
            | "tools/call"
            | "tools/list"
    )
}

fn reply(id: Value, code: i64, message: impl Into<String>) -> Screen {
    Screen::Reply(error_line(id, code, &message.into()))
}

/// A JSON-RPC error response, one line: `id` is always there, null when unknown.
pub fn error_line(id: Value, code: i64, message: &str) -> Vec<u8> {
    let error = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    let mut line = error.to_string().into_bytes();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error a line gets: (code, id, message).
    fn answer(line: &[u8]) -> (i64, Value, String) {
        let Screen::Reply(reply) = screen(line) else { panic!("{} is not answered", String::from_utf8_lossy(line)) };
        assert_eq!(reply.last(), Some(&b'\n'), "one whole line");
        let reply: Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(reply["jsonrpc"], "2.0");
        let code = reply["error"]["code"].as_i64().unwrap();
        (code, reply["id"].clone(), reply["error"]["message"].as_str().unwrap().to_string())
    }

    fn call(params: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{params}}}"#)
    }

    #[test]
    fn every_line_of_the_measured_table_gets_its_json_rpc_answer() {
        let table: &[(&str, i64, Value, &str)] = &[
            ("this is not json", PARSE_ERROR, Value::Null, "Parse error"),
            (&call(r#"{"name":"sync_history","arguments":[1,2]}"#), INVALID_PARAMS, json!(2), "\"arguments\""),
            (&call(r#"{"name":5}"#), INVALID_PARAMS, json!(2), "\"name\""),
            (r#"{"jsonrpc":"2.0","id":3,"method":7}"#, INVALID_REQUEST, json!(3), "\"method\""),
            (r#"{"jsonrpc":"1.0","id":4,"method":"ping"}"#, INVALID_REQUEST, json!(4), "\"jsonrpc\""),
            (r#"[{"jsonrpc":"2.0","id":5,"method":"ping"}]"#, INVALID_REQUEST, Value::Null, "batches"),
            (&call(r#"["sync_history"]"#), INVALID_PARAMS, json!(2), "not an array"),
            (r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, INVALID_REQUEST, Value::Null, "\"id\""),
            (r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, INVALID_REQUEST, json!(1.5), "\"id\""),
        ];
        for (line, code, id, fragment) in table {
            let (got_code, got_id, message) = answer(line.as_bytes());
            assert_eq!((got_code, &got_id), (*code, id), "{line}: {message}");
            assert!(message.contains(fragment), "{line}: {message}");
        }
    }

    #[test]
    fn malformed_requests_keep_their_id_when_it_can_be_read() {
        assert_eq!(answer(br#"{"id":"s","method":"ping"}"#).1, json!("s"));
        assert_eq!(answer(br#"{"jsonrpc":"2.0","id":7,"method":"ping","params":5}"#).0, INVALID_REQUEST);
        assert_eq!(answer(br#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#).1, Value::Null);
        assert_eq!(answer(br#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"ping"}"#).0, INVALID_REQUEST);
        for line in [&b"42"[..], b"\"ping\"", b"[]", b"null"] {
            assert_eq!(answer(line).0, INVALID_REQUEST, "{}", String::from_utf8_lossy(line));
        }
        assert_eq!(answer(b"\xff\xfe{}").0, PARSE_ERROR);
        assert_eq!(answer(b"{\"jsonrpc\":\"2.0\",").0, PARSE_ERROR);
    }

    #[test]
    fn known_methods_with_params_that_do_not_fit_are_invalid_params_not_unknown_methods() {
        let (code, id, message) = answer(br#"{"jsonrpc":"2.0","id":9,"method":"initialize","params":{}}"#);
        assert_eq!((code, id), (INVALID_PARAMS, json!(9)));
        assert!(message.contains("initialize"), "{message}");
        assert_eq!(answer(call(r#"{"name":"sync_data","arguments":"598"}"#).as_bytes()).0, INVALID_PARAMS);
        let (code, id, message) = answer(call(r#"{"name":"x","arguments":{},"_meta":7}"#).as_bytes());
        assert_eq!((code, id), (INVALID_PARAMS, json!(2)), "{message}");
    }

    #[test]
    fn good_requests_unknown_methods_and_readable_notifications_pass_unchanged() {
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r",
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"sync_history","arguments":{"limit":"x"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope","arguments":null}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"no/such/method"}"#,
            r#"{"jsonrpc":"2.0","id":1.0,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","method":"no/such/notification"}"#,
            r#"{"jsonrpc":"2.0","id":4,"result":{}}"#,
        ] {
            assert_eq!(screen(line.as_bytes()), Screen::Pass, "{line}");
        }
    }

    #[test]
    fn blank_lines_and_responses_rmcp_cannot_read_get_no_answer() {
        for line in ["", "  \r", r#"{"jsonrpc":"2.0","result":{},"id":{"x":1}}"#] {
            assert_eq!(screen(line.as_bytes()), Screen::Ignore, "{line}");
        }
    }

    #[test]
    fn notifications_are_never_answered_unless_they_are_no_request_object_at_all() {
        // rmcp reads a notification whose params object does not fit as a custom one.
        let progress = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":"x"}}"#;
        assert_eq!(screen(progress), Screen::Pass);
        let cancelled = br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":[1]}"#;
        assert_eq!(screen(cancelled), Screen::Ignore);
        let (code, id, _) = answer(br#"{"jsonrpc":"2.0","method":5}"#);
        assert_eq!((code, id), (INVALID_REQUEST, Value::Null));
    }
}
