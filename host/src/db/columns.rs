//! How values are written to columns: times as UTC text that sorts as it reads, and
//! text fields trimmed, with blank as NULL.

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::model::Timestamp;

pub(crate) const TIME_COLUMN: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// Now, in the column format used for times.
pub fn now_column() -> String {
    Utc::now().format(TIME_COLUMN).to_string()
}

/// An instant in the column format; `None` for one chrono cannot represent.
pub fn time_column(at: Timestamp) -> Option<String> {
    DateTime::from_timestamp_millis(at).map(|t| t.format(TIME_COLUMN).to_string())
}

/// Reads a time column back.
pub fn parse_column_time(text: &str) -> anyhow::Result<DateTime<Utc>> {
    let at = NaiveDateTime::parse_from_str(text, TIME_COLUMN)
        .with_context(|| format!("{text:?} is not a time this database writes"))?;
    Ok(at.and_utc())
}

/// A time column back in milliseconds since the epoch; `None` if it is not one.
pub fn column_millis(text: &str) -> Option<Timestamp> {
    parse_column_time(text).ok().map(|t| t.timestamp_millis())
}

/// An id as SQLite stores it (an i64). An id above i64::MAX would wrap to a negative number:
/// it is an error here (the engine skips such records), and the rows that merely refer to
/// one use [`stored_id`].
pub fn id_column(id: u64) -> rusqlite::Result<i64> {
    i64::try_from(id).map_err(|_| {
        let message = format!("id {id} is above {}, the largest id SQLite stores", i64::MAX);
        rusqlite::Error::ToSqlConversionFailure(message.into())
    })
}

/// An optional id as SQLite stores it; `None` when there is none or it is above i64::MAX.
pub fn stored_id(id: Option<u64>) -> Option<i64> {
    id.and_then(|id| i64::try_from(id).ok())
}

/// Trimmed text, or `None` when there is none.
pub fn non_blank(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|t| !t.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_their_column_and_sort_as_text() {
        let at = DateTime::parse_from_rfc3339("2024-01-01T23:30:00-05:00").unwrap().timestamp_millis();
        let column = time_column(at).unwrap();
        assert_eq!(column, "2024-01-02 04:30:00.000000");
        assert_eq!(column_millis(&column), Some(at));
        assert!(time_column(at - 1).unwrap() < column);
        assert_eq!(column_millis("yesterday"), None);
        assert!(parse_column_time("2024-13-01").unwrap_err().to_string().contains("not a time"));
    }

    #[test]
    fn blank_text_is_no_text() {
        assert_eq!(non_blank(Some("  Renamed ")).as_deref(), Some("Renamed"));
        assert_eq!(non_blank(Some(" \n ")), None);
        assert_eq!(non_blank(None), None);
    }
}
