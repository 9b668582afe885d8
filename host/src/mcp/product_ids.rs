//! `sync_data`'s `product_ids`, in every form clients send it: a list (`[598, 599]`), one
//! id (`598`), a string (`"598,599"`, `"598 599"`), and the list as a string
//! (`"[598, 599]"`), which is how the MCP Inspector CLI sends a list argument. Each id is
//! read like one typed on the command line ([`parse_product_id`]).

use rmcp::schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use crate::config::{parse_product_id, parse_product_ids};

/// More ids than this are refused before a sync starts: the engine holds them all.
pub const MAX_PRODUCT_IDS: usize = 10_000;

const ACCEPTED: &str =
    "give positive whole numbers as a list ([598, 599]), one number (598) or a string (\"598,599\" or \"598 599\")";

/// The ids `value` names, or what is wrong with it and what is accepted.
pub fn product_ids(value: &Value) -> Result<Vec<u64>, String> {
    let ids = ids_in(value).map_err(|e| format!("product_ids: {e}; {ACCEPTED}"))?;
    if ids.is_empty() {
        return Err(format!("product_ids is empty; omit it to sync every product, or {ACCEPTED}"));
    }
    if ids.len() > MAX_PRODUCT_IDS {
        return Err(format!(
            "product_ids names {} products, more than the {MAX_PRODUCT_IDS} a sync takes; omit it to sync every \
             product",
            ids.len()
        ));
    }
    Ok(ids)
}

fn ids_in(value: &Value) -> Result<Vec<u64>, String> {
    match value {
        Value::Array(items) => items.iter().map(one_id).collect(),
        Value::Number(_) => one_id(value).map(|id| vec![id]),
        Value::String(text) if text.trim_start().starts_with('[') => match serde_json::from_str(text) {
            Ok(Value::Array(items)) => items.iter().map(one_id).collect(),
            Ok(_) | Err(_) => Err(format!("{text:?} is not a list of numbers")),
        },
        Value::String(text) => parse_product_ids(text),
        other => Err(format!("{other} is neither a list, a number nor a string")),
    }
}

/// One id of a list: a JSON number, read as the digits it was written with.
fn one_id(item: &Value) -> Result<u64, String> {
    match item {
        Value::Number(number) => parse_product_id(&number.to_string()),
        other => Err(format!("{other} is not a product id")),
    }
}

/// The input schema of `product_ids`: every form [`product_ids`] reads.
pub fn schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "The products to sync: a list of ids ([598, 599]), one id (598) or a string (\"598,599\" or \
            \"598 599\"). Omit to sync the products the server is configured for (all, unless TESTIO_PRODUCT_IDS says \
            otherwise).",
        "anyOf": [
            { "type": "array", "items": { "type": "integer", "minimum": 1 }, "minItems": 1, "maxItems": MAX_PRODUCT_IDS },
            { "type": "integer", "minimum": 1 },
            { "type": "string" }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn product_ids_come_as_a_list_a_number_or_a_string_of_either() {
        for form in [json!([598, 599]), json!("598,599"), json!("598 599"), json!(" 598 , 599 "), json!("[598, 599]")] {
            assert_eq!(product_ids(&form).unwrap(), [598, 599], "{form}");
        }
        assert_eq!(product_ids(&json!(598)).unwrap(), [598]);
        assert_eq!(product_ids(&json!("7")).unwrap(), [7]);
        assert_eq!(product_ids(&json!(i64::MAX)).unwrap(), [i64::MAX as u64]);
    }

    #[test]
    fn bad_product_ids_say_what_is_wrong_and_what_is_accepted() {
        let error = product_ids(&json!("598,abc")).unwrap_err();
        assert!(error.contains("\"abc\" is not a product id") && error.contains("\"598,599\""), "{error}");
        let error = product_ids(&json!([1, "2"])).unwrap_err();
        assert!(error.contains("\"2\" is not a product id"), "{error}");
        for (bad, why) in [
            (json!([0]), "\"0\" is not a product id"),
            (json!([1.5]), "\"1.5\" is not a product id"),
            (json!(-3), "\"-3\" is not a product id"),
            (json!("1,,2"), "empty entry"),
            (json!("[1, 2"), "is not a list of numbers"),
            (json!("[[1]]"), "[1] is not a product id"),
            (json!(true), "neither a list, a number nor a string"),
        ] {
            let error = product_ids(&bad).unwrap_err();
            assert!(error.contains(why) && error.contains(ACCEPTED), "{bad}: {error}");
        }
        for empty in [json!([]), json!(""), json!("[]")] {
            assert!(product_ids(&empty).unwrap_err().contains("product_ids is empty"), "{empty}");
        }
    }

    #[test]
    fn ids_beyond_what_the_database_stores_are_refused() {
        let beyond = (i64::MAX as u64 + 1).to_string();
        assert!(product_ids(&json!(u64::MAX)).is_err());
        assert!(product_ids(&json!(beyond)).unwrap_err().contains(&format!("\"{beyond}\"")));
    }

    #[test]
    fn more_ids_than_a_sync_takes_are_refused_with_the_limit() {
        let many: Vec<u64> = (1..=MAX_PRODUCT_IDS as u64 + 1).collect();
        let error = product_ids(&json!(many)).unwrap_err();
        assert!(error.contains(&format!("more than the {MAX_PRODUCT_IDS}")), "{error}");
    }
}
