//! Product ids: `--product-ids` (`config::parse_product_id`) and `sync_data`'s
//! `product_ids` in every form it takes (`mcp::product_ids`).

use proptest::prelude::*;
use serde_json::Value;

use super::{config, json};
use crate::config::parse_product_id;
use crate::mcp::product_ids::{MAX_PRODUCT_IDS, product_ids};

/// The id range the database stores.
fn id() -> impl Strategy<Value = u64> {
    1..=i64::MAX as u64
}

/// Every form a client may send `ids` in.
fn forms(ids: &[u64]) -> Vec<Value> {
    let words: Vec<String> = ids.iter().map(u64::to_string).collect();
    let mut forms = vec![
        Value::from(ids.to_vec()),
        Value::from(words.join(",")),
        Value::from(words.join(" ")),
        Value::from(format!(" {} ", words.join(" , "))),
        Value::from(format!("[{}]", words.join(", "))),
    ];
    if let [id] = ids {
        forms.push(Value::from(*id));
    }
    forms
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_any_text_is_a_positive_id_or_says_what_is_wrong(text in any::<String>()) {
        match parse_product_id(&text) {
            Ok(id) => prop_assert!(id > 0 && id <= crate::config::MAX_ID),
            Err(why) => prop_assert!(why.contains("is not a product id"), "{why}"),
        }
    }

    #[test]
    fn prop_an_id_round_trips_through_its_digits(id in id()) {
        prop_assert_eq!(parse_product_id(&id.to_string()), Ok(id));
    }

    #[test]
    fn prop_any_json_gives_ids_in_range_or_a_message_that_says_what_is_accepted(value in json()) {
        match product_ids(&value) {
            Ok(ids) => prop_assert!(!ids.is_empty() && ids.len() <= MAX_PRODUCT_IDS && ids.iter().all(|id| *id > 0)),
            Err(why) => prop_assert!(why.starts_with("product_ids"), "{why}"),
        }
    }

    #[test]
    fn prop_any_string_gives_ids_or_a_message(text in any::<String>()) {
        let _ = product_ids(&Value::from(text));
    }

    #[test]
    fn prop_a_list_of_ids_round_trips_in_every_form(ids in prop::collection::vec(id(), 1..20)) {
        for form in forms(&ids) {
            prop_assert_eq!(product_ids(&form), Ok(ids.clone()), "{}", form);
        }
    }
}
