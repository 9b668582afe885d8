//! `--since` and `sync_data`'s `since` (`since::parse`).

use chrono::{DateTime, Days, NaiveDate, SecondsFormat, Utc};
use proptest::prelude::*;

use super::config;
use crate::since::parse;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T15:30:00Z").unwrap().with_timezone(&Utc)
}

fn epoch() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

/// Days from 1970-01-01 to `now()`.
const DAYS: u64 = 20_783;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_any_text_parses_to_a_past_instant_or_says_why_not(text in any::<String>()) {
        match parse(&text, now()) {
            Ok(at) => prop_assert!(at <= now() && at >= epoch(), "{text:?} → {at}"),
            Err(why) => prop_assert!(!why.is_empty()),
        }
    }

    #[test]
    fn prop_relative_looking_text_parses_to_a_past_instant_or_says_why_not(
        text in "(last )?[0-9]{1,12} ?(day|week|month|year|fortnight)s?( ago)?",
    ) {
        if let Ok(at) = parse(&text, now()) {
            prop_assert!(at <= now() && at >= epoch(), "{text:?} → {at}");
        }
    }

    #[test]
    fn prop_an_iso_date_round_trips_to_its_midnight(day in 0..=DAYS) {
        let date = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap().checked_add_days(Days::new(day)).unwrap();
        let at = parse(&date.format("%Y-%m-%d").to_string(), now()).unwrap();
        prop_assert_eq!(at, date.and_hms_opt(0, 0, 0).unwrap().and_utc());
    }

    #[test]
    fn prop_an_iso_date_time_round_trips(seconds in 0..now().timestamp()) {
        let at = DateTime::from_timestamp(seconds, 0).unwrap();
        prop_assert_eq!(parse(&at.to_rfc3339_opts(SecondsFormat::Secs, true), now()).unwrap(), at);
        prop_assert_eq!(parse(&at.format("%Y-%m-%d %H:%M:%S").to_string(), now()).unwrap(), at);
    }

    #[test]
    fn prop_n_days_ago_is_that_many_midnights_back(n in 0..=DAYS) {
        let expected = now().date_naive().checked_sub_days(Days::new(n)).unwrap().and_hms_opt(0, 0, 0).unwrap();
        prop_assert_eq!(parse(&format!("{n} days ago"), now()).unwrap(), expected.and_utc());
    }
}
