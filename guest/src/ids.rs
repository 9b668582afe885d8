//! The ids a store can hold. Stores keep ids in signed 64-bit integer columns (SQLite's
//! INTEGER, PostgreSQL's bigint), so an id the API sends above 2^63 - 1 would wrap or fail
//! there: the engine skips such a record and says so.

/// The largest id a store holds.
pub const MAX_ID: u64 = i64::MAX as u64;

/// Keeps `id` if a store can hold it; otherwise adds a warning naming `what` (e.g.
/// "product 3: test") and where it came from.
pub fn storable(id: u64, what: &str, source: &str, warnings: &mut Vec<String>) -> bool {
    if id <= MAX_ID {
        return true;
    }
    warnings
        .push(format!("{what} {id} from {source} has an id above {MAX_ID}, the largest a store can hold; skipped it"));
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_up_to_the_signed_limit_are_kept_and_larger_ones_named() {
        let mut warnings = Vec::new();
        assert!(storable(MAX_ID, "test", "products/1/exploratory_tests", &mut warnings));
        assert!(!storable(u64::MAX, "test", "products/1/exploratory_tests", &mut warnings));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("test 18446744073709551615 from products/1/exploratory_tests"), "{warnings:?}");
    }
}
