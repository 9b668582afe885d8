//! `--since`: an ISO date or date-time, or a relative form (`today`, `yesterday`,
//! `30 days ago`, `last 7 days`, `last week`). Dates mean the start of that day, UTC.

use chrono::{DateTime, Days, Months, NaiveDate, NaiveDateTime, Utc};

pub const ACCEPTED: &str = "an ISO date (2025-01-31), an ISO date-time (2025-01-31T12:00:00Z), today, yesterday, '30 days ago', 'last 7 days' (also weeks, months, years) or 'last week'";

/// Parses `text` relative to `now`; the error says what was wrong and what is accepted.
pub fn parse(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let cleaned = text.trim().to_lowercase();
    let parsed = absolute(&cleaned).or_else(|| relative(&cleaned, now));
    let Some(instant) = parsed else {
        return Err(format!("cannot read {text:?} as a date; use {ACCEPTED}"));
    };
    if instant > now {
        return Err(format!("{text:?} is in the future; nothing would be synced"));
    }
    if instant.date_naive() < NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date") {
        return Err(format!("{text:?} is before 1970; use a later date"));
    }
    Ok(instant)
}

fn absolute(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(start_of(date));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(&text.to_uppercase()) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
}

fn relative(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let today = now.date_naive();
    let words: Vec<&str> = text.split_whitespace().collect();
    let date = match words.as_slice() {
        ["today"] => Some(today),
        ["yesterday"] => today.checked_sub_days(Days::new(1)),
        [n, unit, "ago"] | ["last", n, unit] => back(today, n.parse().ok()?, unit),
        ["last", unit] => back(today, 1, unit),
        _ => None,
    }?;
    Some(start_of(date))
}

fn back(today: NaiveDate, n: u32, unit: &str) -> Option<NaiveDate> {
    match unit.trim_end_matches('s') {
        "day" => today.checked_sub_days(Days::new(n.into())),
        "week" => today.checked_sub_days(Days::new(u64::from(n) * 7)),
        "month" => today.checked_sub_months(Months::new(n)),
        "year" => today.checked_sub_months(Months::new(n.checked_mul(12)?)),
        _ => None,
    }
}

fn start_of(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-26T15:30:00Z").unwrap().with_timezone(&Utc)
    }

    fn day(text: &str) -> String {
        parse(text, now()).unwrap().format("%Y-%m-%d %H:%M").to_string()
    }

    #[test]
    fn iso_dates_and_datetimes() {
        assert_eq!(day("2024-01-01"), "2024-01-01 00:00");
        assert_eq!(day("2024-01-01T23:30:00-05:00"), "2024-01-02 04:30");
        assert_eq!(day("2024-01-01t10:00:00z"), "2024-01-01 10:00");
        assert_eq!(day("2024-01-01 10:00:00"), "2024-01-01 10:00");
    }

    #[test]
    fn relative_forms_start_at_midnight_utc() {
        assert_eq!(day("today"), "2026-11-26 00:00");
        assert_eq!(day(" Yesterday "), "2026-11-25 00:00");
        assert_eq!(day("30 days ago"), "2026-10-27 00:00");
        assert_eq!(day("last 7 days"), "2026-11-19 00:00");
        assert_eq!(day("last week"), "2026-11-19 00:00");
        assert_eq!(day("2 months ago"), "2026-09-26 00:00");
        assert_eq!(day("1 year ago"), "2025-11-26 00:00");
    }

    #[test]
    fn nonsense_future_and_ancient_dates_are_refused_with_the_accepted_forms() {
        let error = parse("soonish", now()).unwrap_err();
        assert!(error.contains("soonish") && error.contains("30 days ago"), "{error}");
        assert!(parse("2030-01-01", now()).unwrap_err().contains("future"));
        assert!(parse("1850-01-01", now()).unwrap_err().contains("1970"));
        assert!(parse("2024-13-01", now()).is_err());
        assert!(parse("99999999999 days ago", now()).is_err());
    }
}
