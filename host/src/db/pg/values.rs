//! Values between the host's types and PostgreSQL's.

use std::collections::HashSet;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::db::columns::TIME_COLUMN;
use crate::model::Timestamp;

/// An id as the `bigint` it is stored as. The engine never sends one above 2^63-1; a
/// value that is would be refused, not wrapped.
pub fn id(id: u64) -> Result<i64> {
    i64::try_from(id).map_err(|_| anyhow::anyhow!("id {id} is larger than the database can store"))
}

pub fn ids(ids: &[u64]) -> Result<Vec<i64>> {
    ids.iter().map(|&i| id(i)).collect()
}

/// An instant as a `timestamptz`; `None` for one chrono cannot represent (SQLite stores
/// NULL for those too).
pub fn instant(at: Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(at)
}

/// A `timestamptz` as SQLite's time column shows it, so that outputs are the same.
pub fn time_text(at: DateTime<Utc>) -> String {
    at.format(TIME_COLUMN).to_string()
}

/// A stored `bigint` that the host holds as a `u32` (offsets, attempts).
pub fn small(value: i64, what: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| anyhow::anyhow!("the stored {what} {value} is out of range"))
}

/// A stored `bigint` id as the host's `u64` (ids never go below zero).
pub fn stored_id(value: i64, what: &str) -> Result<u64> {
    u64::try_from(value).map_err(|_| anyhow::anyhow!("the stored {what} {value} is negative"))
}

/// Keeps the last of the records that share an id, in the order of those last ones:
/// what writing them one by one would leave. (One multi-row upsert may not meet a key
/// twice.)
pub fn last_per_id<T: Copy>(records: impl DoubleEndedIterator<Item = T>, id_of: impl Fn(T) -> u64) -> Vec<T> {
    let mut seen = HashSet::new();
    let mut kept: Vec<T> = records.rev().filter(|&r| seen.insert(id_of(r))).collect();
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_record_of_an_id_wins_in_the_order_of_the_last_ones() {
        let records = [(1, 'a'), (2, 'b'), (1, 'c'), (3, 'd')];
        assert_eq!(last_per_id(records.iter(), |r| r.0), [&(2, 'b'), &(1, 'c'), &(3, 'd')]);
    }

    #[test]
    fn ids_beyond_bigint_are_refused_not_wrapped() {
        assert_eq!(id(7).unwrap(), 7);
        assert!(id(u64::MAX).unwrap_err().to_string().contains("larger than the database can store"));
        assert!(small(-1, "offset").is_err() && small(5, "offset").unwrap() == 5);
    }
}
