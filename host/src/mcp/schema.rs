//! The tools' JSON Schemas use only the formats JSON Schema defines. schemars writes
//! `uint32`, `int64`, `double` and the like for Rust numbers, and clients that validate
//! (the MCP Inspector) warn about each on every call. rmcp builds the schemas itself, so
//! the fix is applied to every tool's schemas once the router is built.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool};
use rmcp::schemars::Schema;
use rmcp::schemars::transform::transform_subschemas;
use serde_json::Value;

/// JSON Schema 2020-12's format vocabulary (Validation, §7.3).
pub const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Leaves only standard formats in the tool's input and output schemas.
pub fn standardise(tool: &mut Tool) {
    clean(Arc::make_mut(&mut tool.input_schema));
    if let Some(output) = &mut tool.output_schema {
        clean(Arc::make_mut(output));
    }
}

fn clean(object: &mut JsonObject) {
    let mut schema = Schema::from(std::mem::take(object));
    standard_formats(&mut schema);
    if let Value::Object(cleaned) = schema.to_value() {
        *object = cleaned;
    }
}

/// Drops every `format` JSON Schema does not define, in this schema and its subschemas
/// (`$defs` too). The `minimum: 0` schemars writes beside `uint32` stays, and says the
/// same in standard terms.
fn standard_formats(schema: &mut Schema) {
    if let Some(object) = schema.as_object_mut()
        && object.get("format").and_then(Value::as_str).is_some_and(|f| !STANDARD_FORMATS.contains(&f))
    {
        object.remove("format");
    }
    transform_subschemas(&mut standard_formats, schema);
}
