//! Response bodies, parsed once on the host. Each record keeps its raw JSON for the
//! `data`/`raw_data` columns and the typed fields the store and the engine need.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::model::Timestamp;

/// A parsed response held for the engine (the WIT `payload` resource).
/// Shared, so that a queued write can hold it while the engine drops its handle.
pub enum Payload {
    Products(Arc<Vec<ProductRecord>>),
    Features(Arc<Vec<FeatureRecord>>),
    Tests(Arc<Vec<TestRecord>>),
    Bugs(Arc<Vec<BugRecord>>),
}

#[derive(Deserialize)]
struct Section {
    id: u64,
}

#[derive(Deserialize)]
pub struct ProductFields {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub product_type: Option<String>,
    #[serde(default)]
    sections: Option<Vec<Section>>,
    #[serde(default)]
    sections_with_default: Option<Vec<Section>>,
}

pub struct ProductRecord {
    pub fields: ProductFields,
    pub raw: Box<RawValue>,
}

impl ProductRecord {
    /// Ids from the product's `sections`, in API order.
    pub fn section_ids(&self) -> Vec<u64> {
        section_ids(&self.fields.sections)
    }

    /// Ids from the product's `sections_with_default`, in API order.
    pub fn sections_with_default_ids(&self) -> Vec<u64> {
        section_ids(&self.fields.sections_with_default)
    }

    pub fn title(&self) -> &str {
        self.fields.name.as_deref().unwrap_or("Untitled Product")
    }
}

fn section_ids(sections: &Option<Vec<Section>>) -> Vec<u64> {
    sections.iter().flatten().map(|s| s.id).collect()
}

#[derive(Deserialize)]
pub struct FeatureFields {
    pub id: u64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub howtofind: Option<String>,
    #[serde(default)]
    pub user_stories: Option<Vec<String>>,
}

pub struct FeatureRecord {
    pub fields: FeatureFields,
    pub raw: Box<RawValue>,
}

#[derive(Deserialize)]
pub struct Environment {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Deserialize)]
pub struct TestFeature {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub feature_id: Option<u64>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub howtofind: Option<String>,
    #[serde(default)]
    pub user_stories: Option<Vec<String>>,
    #[serde(default)]
    pub enable_default: Option<bool>,
    #[serde(default)]
    pub enable_content: Option<bool>,
    #[serde(default)]
    pub enable_visual: Option<bool>,
}

#[derive(Deserialize)]
pub struct Named {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Deserialize)]
pub struct Requirement {
    #[serde(default)]
    pub category: Option<Named>,
    #[serde(default)]
    pub operating_system: Option<Named>,
}

#[derive(Deserialize)]
pub struct TestFields {
    pub id: u64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub test_title: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub testing_type: Option<String>,
    #[serde(default)]
    pub goal_text: Option<String>,
    #[serde(default)]
    pub instructions_text: Option<String>,
    #[serde(default)]
    pub out_of_scope_text: Option<String>,
    #[serde(default)]
    pub enable_low: Option<bool>,
    #[serde(default)]
    pub enable_high: Option<bool>,
    #[serde(default)]
    pub enable_critical: Option<bool>,
    #[serde(default)]
    pub test_environment: Option<Environment>,
    #[serde(default)]
    pub features: Option<Vec<TestFeature>>,
    #[serde(default)]
    pub requirements: Option<Vec<Requirement>>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub submitted_by: Option<String>,
    #[serde(default)]
    pub start_at: Option<String>,
    #[serde(default)]
    pub end_at: Option<String>,
}

pub struct TestRecord {
    pub fields: TestFields,
    pub start_at: ApiTime,
    pub end_at: ApiTime,
    pub raw: Box<RawValue>,
}

/// A date-time field of a record, as the host read it.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiTime {
    /// The field is absent, null or blank.
    Missing,
    /// The field holds this text, which is not an ISO 8601 date-time.
    Unparsable(String),
    At(Timestamp),
}

impl ApiTime {
    pub fn at(&self) -> Option<Timestamp> {
        match self {
            ApiTime::At(ms) => Some(*ms),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
pub struct IdOnly {
    #[serde(default)]
    pub id: Option<u64>,
}

#[derive(Deserialize)]
pub struct Author {
    #[serde(default)]
    pub name: Option<String>,
}

/// A bug's fields as the API sends them. `auto_accepted` and `known` count only when
/// they are real booleans, and `steps` may be a string (as documented) or a list of
/// strings (as sent in practice), so those three are read loosely.
#[derive(Deserialize)]
pub struct BugFields {
    pub id: u64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub auto_accepted: Option<serde_json::Value>,
    #[serde(default)]
    pub known: Option<serde_json::Value>,
    #[serde(default)]
    pub author: Option<Author>,
    #[serde(default)]
    pub expected_result: Option<String>,
    #[serde(default)]
    pub actual_result: Option<String>,
    #[serde(default)]
    pub steps: Option<serde_json::Value>,
    #[serde(default)]
    pub test: Option<IdOnly>,
    #[serde(default)]
    pub test_feature: Option<IdOnly>,
    #[serde(default)]
    pub reported_at: Option<String>,
}

pub struct BugRecord {
    pub fields: BugFields,
    pub reported_at: ApiTime,
    pub raw: Box<RawValue>,
}

impl BugRecord {
    pub fn test_id(&self) -> Option<u64> {
        self.fields.test.as_ref().and_then(|t| t.id)
    }

    /// `accepted` bugs that were accepted automatically are told apart, as the reference does.
    pub fn status(&self) -> Option<&str> {
        let status = self.fields.status.as_deref();
        let auto = self.fields.auto_accepted.as_ref().and_then(serde_json::Value::as_bool) == Some(true);
        if status == Some("accepted") && auto { Some("auto_accepted") } else { status }
    }

    pub fn known(&self) -> bool {
        self.fields.known.as_ref().and_then(serde_json::Value::as_bool).unwrap_or(false)
    }

    /// The steps as one text, a line per step; `None` for anything but text or a list.
    pub fn steps(&self) -> Option<String> {
        let text = match self.fields.steps.as_ref()? {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Array(steps) => steps
                .iter()
                .map(|step| step.as_str().map_or_else(|| step.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => return None,
        };
        Some(text)
    }
}

#[derive(Deserialize)]
struct ProductsEnvelope {
    products: Vec<Box<RawValue>>,
}

#[derive(Deserialize)]
struct FeaturesEnvelope {
    features: Vec<Box<RawValue>>,
}

#[derive(Deserialize)]
struct TestsEnvelope {
    exploratory_tests: Vec<Box<RawValue>>,
}

#[derive(Deserialize)]
struct TestEnvelope {
    exploratory_test: Box<RawValue>,
}

#[derive(Deserialize)]
struct BugsEnvelope {
    bugs: Vec<Box<RawValue>>,
}

/// Parses `{"products": [...]}`.
pub fn parse_products(body: &[u8]) -> serde_json::Result<Vec<ProductRecord>> {
    let envelope: ProductsEnvelope = serde_json::from_slice(body)?;
    envelope
        .products
        .into_iter()
        .map(|raw| Ok(ProductRecord { fields: serde_json::from_str(raw.get())?, raw }))
        .collect()
}

/// Parses `{"features": [...]}`.
pub fn parse_features(body: &[u8]) -> serde_json::Result<Vec<FeatureRecord>> {
    let envelope: FeaturesEnvelope = serde_json::from_slice(body)?;
    envelope
        .features
        .into_iter()
        .map(|raw| Ok(FeatureRecord { fields: serde_json::from_str(raw.get())?, raw }))
        .collect()
}

/// Parses `{"exploratory_tests": [...]}`.
pub fn parse_tests(body: &[u8]) -> serde_json::Result<Vec<TestRecord>> {
    let envelope: TestsEnvelope = serde_json::from_slice(body)?;
    envelope.exploratory_tests.into_iter().map(test_record).collect()
}

/// Parses `{"exploratory_test": {...}}`, one test by id, as a list of one.
pub fn parse_test(body: &[u8]) -> serde_json::Result<Vec<TestRecord>> {
    let envelope: TestEnvelope = serde_json::from_slice(body)?;
    Ok(vec![test_record(envelope.exploratory_test)?])
}

fn test_record(raw: Box<RawValue>) -> serde_json::Result<TestRecord> {
    let fields: TestFields = serde_json::from_str(raw.get())?;
    let start_at = parse_instant(fields.start_at.as_deref());
    let end_at = parse_instant(fields.end_at.as_deref());
    Ok(TestRecord { fields, start_at, end_at, raw })
}

/// Parses `{"bugs": [...]}`.
pub fn parse_bugs(body: &[u8]) -> serde_json::Result<Vec<BugRecord>> {
    let envelope: BugsEnvelope = serde_json::from_slice(body)?;
    envelope
        .bugs
        .into_iter()
        .map(|raw| {
            let fields: BugFields = serde_json::from_str(raw.get())?;
            let reported_at = parse_instant(fields.reported_at.as_deref());
            Ok(BugRecord { fields, reported_at, raw })
        })
        .collect()
}

/// Reads an ISO 8601 date-time. One without an offset is taken as UTC, since the API
/// documents UTC-based times and dropping such a test would lose data.
pub fn parse_instant(text: Option<&str>) -> ApiTime {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return ApiTime::Missing;
    };
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()));
    match parsed {
        Ok(t) => ApiTime::At(t.timestamp_millis()),
        Err(_) => ApiTime::Unparsable(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_normalised_to_utc_and_naive_times_read_as_utc() {
        let utc = |text| DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis();
        assert_eq!(parse_instant(Some("2024-01-01T23:30:00-05:00")).at(), Some(utc("2024-01-02T04:30:00Z")));
        assert_eq!(parse_instant(Some("2024-01-01T10:00:00")).at(), Some(utc("2024-01-01T10:00:00Z")));
        assert!(matches!(parse_instant(Some("soon")), ApiTime::Unparsable(t) if t == "soon"));
        assert!(matches!(parse_instant(None), ApiTime::Missing));
        assert!(matches!(parse_instant(Some("  ")), ApiTime::Missing));
    }

    #[test]
    fn a_test_keeps_its_raw_json_and_reads_the_fields_sync_needs() {
        let body = br#"{"exploratory_tests":[{"id":5,"title":"T","status":"running","end_at":"2025-03-01T00:00:00Z","features":[{"id":9,"feature_id":3,"title":"F","user_stories":["a"]}],"extra":{"kept":true}}]}"#;
        let tests = parse_tests(body).unwrap();
        assert_eq!(tests[0].fields.id, 5);
        assert!(tests[0].raw.get().contains(r#""extra":{"kept":true}"#));
        assert!(matches!(tests[0].end_at, ApiTime::At(_)));
    }

    #[test]
    fn bug_steps_are_read_as_a_list_or_a_string_and_flags_only_as_booleans() {
        let body = br#"{"bugs":[
            {"id":1,"status":"accepted","auto_accepted":true,"known":"yes","steps":["Open it.","Click."],"test":{"id":7}},
            {"id":2,"status":"accepted","auto_accepted":"true","known":true,"steps":"Open it.\nClick."},
            {"id":3,"steps":42,"actual_result":"  "}
        ]}"#;
        let bugs = parse_bugs(body).unwrap();
        assert_eq!(bugs[0].steps(), bugs[1].steps());
        assert_eq!(bugs[0].steps().as_deref(), Some("Open it.\nClick."));
        assert_eq!(bugs[2].steps(), None);
        assert_eq!((bugs[0].status(), bugs[1].status()), (Some("auto_accepted"), Some("accepted")));
        assert_eq!((bugs[0].known(), bugs[1].known()), (false, true));
        assert_eq!((bugs[0].test_id(), bugs[1].test_id()), (Some(7), None));
    }

    #[test]
    fn a_single_test_parses_as_a_list_of_one() {
        let tests = parse_test(br#"{"exploratory_test":{"id":5,"status":"locked"}}"#).unwrap();
        assert_eq!((tests.len(), tests[0].fields.id, tests[0].fields.status.as_deref()), (1, 5, Some("locked")));
        assert!(parse_test(br#"{"exploratory_tests":[]}"#).is_err());
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_an_error() {
        assert!(parse_tests(br#"{"tests":[]}"#).is_err());
        assert!(parse_products(br#"{"products":[{"name":"no id"}]}"#).is_err());
        assert!(parse_features(b"<html>").is_err());
    }
}
