//! Cron expressions and how their wall-clock times become instants.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::cron_syntax;
use crate::error::DomainError;

const FIELD: &str = "schedule.cron";

/// How many matching wall-clock times one [`CronSchedule::next_after`] call may examine
/// and reject before giving up. Rejections only happen around daylight-saving changes
/// (and are mostly skipped in bulk), so this is a guard against bugs, not a limit anyone
/// should meet.
const MAX_CANDIDATES: usize = 10_000;

/// How far, in wall-clock minutes, we probe for the end of a daylight-saving gap or
/// repeated hour. Real transitions last an hour or less; Samoa skipped a whole day.
const MAX_PROBE_MINUTES: i64 = 3 * 24 * 60;

/// A parsed cron expression: when, on a wall clock, a job runs.
///
/// Accepted syntax: 5 fields (`minute hour day-of-month month day-of-week`) or 6 with a
/// leading seconds field; numbers, names (`MON`, `JAN`, case-insensitive), ranges
/// (`1-5`), steps (`*/15`, `8-18/2`, `5/20`), lists (`1,15`), `?` as `*` in the day
/// fields, `L` (last day of the month) in the day-of-month field, `a#n` (n-th weekday)
/// and `aL` (last such weekday of the month) in the day-of-week field, and the aliases
/// `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`.
/// A year field (7 fields) and the nearest-weekday `W` are refused. When both day fields
/// are restricted, a day matches if either does (Vixie cron's rule). Expressions that can
/// never run (`0 0 30 2 *`) are refused.
///
/// Matching is done by [`croner`] on the naive wall clock; turning wall-clock times into
/// instants is ours, see [`CronSchedule::next_after`].
#[derive(Clone)]
pub struct CronSchedule {
    source: String,
    has_seconds: bool,
    /// Boxed: croner's pattern is a few hundred bytes, and `Schedule` moves around a lot.
    cron: Box<Cron>,
}

impl CronSchedule {
    /// Longest accepted expression, in bytes.
    pub const MAX_LEN: usize = 512;

    /// Parses a cron expression (surrounding whitespace is ignored); errors name the
    /// field `schedule.cron` and say which cron field is wrong.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let source = input.trim();
        if source.len() > Self::MAX_LEN {
            return Err(DomainError::invalid(
                FIELD,
                format!("must be at most {} characters long", Self::MAX_LEN),
            ));
        }
        let normalized = cron_syntax::normalize(source)
            .map_err(|message| DomainError::invalid(FIELD, message))?;
        let cron = Cron::new(&normalized.expression)
            .with_seconds_optional()
            .parse()
            .map_err(|error| DomainError::invalid(FIELD, error.to_string()))?;
        Ok(Self {
            source: source.to_owned(),
            has_seconds: normalized.has_seconds,
            cron: Box::new(cron),
        })
    }

    /// The expression as the user wrote it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the expression has a seconds field (6 fields), i.e. may run more than once
    /// a minute.
    pub fn has_seconds(&self) -> bool {
        self.has_seconds
    }

    /// The first run strictly after `after`, with the expression read on the wall clock of
    /// `tz`; `None` if there is none (in practice: beyond the year 5000).
    ///
    /// # Daylight saving time
    ///
    /// The expression describes local wall-clock times. When the clocks change:
    ///
    /// - a wall-clock time that does not exist (the hour skipped when clocks spring
    ///   forward) is **skipped**: `30 2 * * *` in Europe/Oslo does not run on the day
    ///   02:00 jumps to 03:00, and `*/30 * * * *` runs at 01:30 then 03:00;
    /// - a wall-clock time that happens twice (the hour repeated when clocks fall back)
    ///   runs **once**, at its first (earlier, still summer time) instant: `30 2 * * *`
    ///   runs at 02:30 CEST and not again at 02:30 CET, and `*/30 * * * *` runs at 02:00
    ///   and 02:30 CEST, then 03:00 CET.
    ///
    /// So a run never happens twice for one wall-clock time, and if `after` lies in the
    /// second pass of a repeated hour, the wall-clock times of that hour have already had
    /// their turn and the next run is after the repeated hour.
    ///
    /// How: candidates are the matches of the expression on the naive local clock, in
    /// order, starting just after `after`'s local time; each is mapped to an instant
    /// (none: skipped; two: the earlier) and the first instant later than `after` wins.
    /// The search is bounded, so it always terminates.
    pub fn next_after(&self, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // `after` on the local wall clock, whole seconds (checked: chrono's own
        // `naive_local` panics at the very ends of its range).
        let offset = tz.offset_from_utc_datetime(&after.naive_utc()).fix();
        let mut cursor = after
            .naive_utc()
            .checked_add_signed(Duration::seconds(offset.local_minus_utc().into()))?
            .with_nanosecond(0)?;
        if let LocalResult::Ambiguous(_, later) = tz.from_local_datetime(&cursor) {
            if after >= later {
                // `after` is in the second pass of a repeated hour: every wall-clock time
                // from here to the end of that hour already ran in the first pass.
                cursor = last_probe_where(cursor, |naive| {
                    matches!(tz.from_local_datetime(&naive), LocalResult::Ambiguous(..))
                });
            }
        }
        for _ in 0..MAX_CANDIDATES {
            let candidate = self.next_wall_clock_match(cursor)?;
            match tz.from_local_datetime(&candidate) {
                LocalResult::Single(instant) | LocalResult::Ambiguous(instant, _) => {
                    let instant = instant.with_timezone(&Utc);
                    if instant > after {
                        return Some(instant);
                    }
                    cursor = candidate;
                }
                LocalResult::None => {
                    // Skipped by a spring-forward gap: jump over the gap in one go.
                    cursor = last_probe_where(candidate, |naive| {
                        matches!(tz.from_local_datetime(&naive), LocalResult::None)
                    });
                }
            }
        }
        None
    }

    /// The first naive wall-clock time strictly after `after` that the expression matches
    /// (croner run on a clock without time zone, i.e. UTC).
    fn next_wall_clock_match(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        self.cron
            .find_next_occurrence(&after.and_utc(), false)
            .ok()
            .map(|found| found.naive_utc())
    }
}

/// The last of `start`, `start + 1 min`, `start + 2 min`, ... for which `holds` is true
/// of it and of every probe before it (so `start` itself when the next minute fails),
/// probing at most [`MAX_PROBE_MINUTES`]. Used to jump across a gap or repeated hour,
/// which are contiguous stretches of wall-clock time.
fn last_probe_where(start: NaiveDateTime, holds: impl Fn(NaiveDateTime) -> bool) -> NaiveDateTime {
    let mut last = start;
    for _ in 0..MAX_PROBE_MINUTES {
        match last.checked_add_signed(Duration::minutes(1)) {
            Some(next) if holds(next) => last = next,
            _ => break,
        }
    }
    last
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronSchedule").field(&self.source).finish()
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for CronSchedule {}

impl Hash for CronSchedule {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.source.hash(state);
    }
}

impl FromStr for CronSchedule {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for CronSchedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn next(cron: &str, tz: Tz, after: &str) -> Option<String> {
        CronSchedule::parse(cron)
            .unwrap()
            .next_after(tz, utc(after))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }

    #[test]
    fn parse_keeps_the_source_and_seconds_flag() {
        let cron = CronSchedule::parse("  0 3 * * *  ").unwrap();
        assert_eq!(cron.as_str(), "0 3 * * *");
        assert_eq!(cron.to_string(), "0 3 * * *");
        assert!(!cron.has_seconds());
        assert!(CronSchedule::parse("*/10 * * * * *").unwrap().has_seconds());
        assert!(!CronSchedule::parse("@hourly").unwrap().has_seconds());
    }

    #[test]
    fn every_rejection_names_schedule_cron() {
        let long = format!("0 0 1 1 {}", "1,".repeat(300));
        for bad in [
            "",
            "   ",
            "* * * *",
            "* * * * * * *",
            "0 0 1 1 * 2026",
            "61 * * * *",
            "0 0 31 2 *",
            "@fortnightly",
            "0 0 15W * *",
            long.as_str(),
            // What croner alone would misread or accept.
            "+5 * * * *",
            "0 0 * MON *",
            "0 0 * * L",
            "0 0 15W * *",
            "0 0 L-2 * *",
            "0 0 * * 5#6",
            "0 0 * * 5#0",
            "0 0 * * FRI-MON",
            "*,5 * * * *",
            "1,,2 * * * *",
            "? * * * *",
            "0 0 31 2 *",
            "0 0 30,31 2 *",
            "0 0 31 4,6,9,11 *",
            "*/0 * * * *",
            "*/60 * * * *",
            "60 * * * *",
            "0 24 * * *",
            "0 0 0 * *",
            "0 0 32 * *",
            "0 0 * 13 *",
            "0 0 * * 8",
            "0 0 1 1 * 2026",
            "@reboot",
            "* * * *",
            "a b c d e",
            "99999999999999999999999 * * * *",
            "0 0 * * 5#",
            "0 0 * * #2",
            "0 0 ?/2 * *",
            "0 0 1-5-7 * *",
            "5-1 * * * *",
            "*/5/2 * * * *",
            "0 0 * JAN-FOO *",
            "0 0 1 JANUARY *",
            "0 0 * * MONDAY",
            "0 0 * * ?,1",
            "0 0 LW * *",
            "0 L * * *",
            "0 0 * * 5L,L",
            "\u{663} * * * *",
            "0 0 1 1 * * *",
        ] {
            let error = CronSchedule::parse(bad).unwrap_err();
            assert_eq!(error.field(), "schedule.cron", "{bad:?}");
        }
    }

    #[test]
    fn seven_fields_explain_that_years_are_unsupported() {
        let error = CronSchedule::parse("0 0 0 1 1 * 2030").unwrap_err();
        assert!(error.message().contains("year"), "{error}");
    }

    #[test]
    fn errors_say_which_cron_field_is_wrong() {
        let error = CronSchedule::parse("0 24 * * *").unwrap_err();
        assert!(error.message().starts_with("hour field"), "{error}");
        let error = CronSchedule::parse("0 0 * * Moonday").unwrap_err();
        assert!(error.message().starts_with("day-of-week field"), "{error}");
    }

    #[test]
    fn next_is_strictly_after() {
        let oslo = Tz::Europe__Oslo;
        // 03:00 Oslo in winter is 02:00 UTC.
        assert_eq!(
            next("0 3 * * *", oslo, "2026-01-10T02:00:00Z").as_deref(),
            Some("2026-01-11T02:00:00Z")
        );
        assert_eq!(
            next("0 3 * * *", oslo, "2026-01-10T01:59:59.999Z").as_deref(),
            Some("2026-01-10T02:00:00Z")
        );
    }

    #[test]
    fn spring_forward_skips_the_missing_time() {
        let oslo = Tz::Europe__Oslo;
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC). 02:30 does not exist.
        assert_eq!(
            next("30 2 * * *", oslo, "2026-03-28T12:00:00Z").as_deref(),
            Some("2026-03-30T00:30:00Z")
        );
        assert_eq!(
            next("*/30 * * * *", oslo, "2026-03-29T00:30:00Z").as_deref(),
            Some("2026-03-29T01:00:00Z")
        );
    }

    #[test]
    fn fall_back_runs_the_repeated_time_once() {
        let oslo = Tz::Europe__Oslo;
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00 UTC); 02:30 happens at
        // 00:30 UTC (CEST) and 01:30 UTC (CET). Only the first counts.
        assert_eq!(
            next("30 2 * * *", oslo, "2026-10-24T12:00:00Z").as_deref(),
            Some("2026-10-25T00:30:00Z")
        );
        assert_eq!(
            next("30 2 * * *", oslo, "2026-10-25T00:30:00Z").as_deref(),
            Some("2026-10-26T01:30:00Z")
        );
        // `after` in the second pass (02:10 CET): 02:30 already ran in the first pass.
        assert_eq!(
            next("*/30 * * * *", oslo, "2026-10-25T01:10:00Z").as_deref(),
            Some("2026-10-25T02:00:00Z")
        );
        assert_eq!(
            next("* * * * * *", oslo, "2026-10-25T01:10:00Z").as_deref(),
            Some("2026-10-25T02:00:00Z")
        );
        // `after` in the first pass: the rest of the first pass.
        assert_eq!(
            next("*/30 * * * *", oslo, "2026-10-25T00:10:00Z").as_deref(),
            Some("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn a_skipped_day_is_jumped_in_one_go() {
        // Samoa skipped 2011-12-30 entirely (UTC-10 to UTC+14).
        let apia = Tz::Pacific__Apia;
        assert_eq!(
            next("* * * * * *", apia, "2011-12-30T09:59:59Z").as_deref(),
            Some("2011-12-30T10:00:00Z")
        );
        assert_eq!(
            next("0 12 * * *", apia, "2011-12-29T22:00:00Z").as_deref(),
            Some("2011-12-30T22:00:00Z")
        );
    }

    #[test]
    fn leap_day_across_a_century() {
        // 2100 is not a leap year: from 2097 the next 29 February is in 2104.
        assert_eq!(
            next("0 0 29 2 *", Tz::UTC, "2097-01-01T00:00:00Z").as_deref(),
            Some("2104-02-29T00:00:00Z")
        );
    }

    #[test]
    fn far_future_gives_none_not_a_hang() {
        assert_eq!(next("0 0 1 1 *", Tz::UTC, "5000-06-01T00:00:00Z"), None);
    }

    #[test]
    fn the_ends_of_time_do_not_panic() {
        let cron = CronSchedule::parse("* * * * * *").unwrap();
        for tz in [Tz::UTC, Tz::Pacific__Kiritimati, Tz::Pacific__Niue] {
            assert_eq!(cron.next_after(tz, DateTime::<Utc>::MAX_UTC), None);
            // Far in the past is fine too (whatever the answer, it must not panic).
            let _ = cron.next_after(tz, DateTime::<Utc>::MIN_UTC);
        }
    }

    #[test]
    fn serde_is_the_source_string() {
        let cron = CronSchedule::parse("0 9 * * MON-FRI").unwrap();
        let json = serde_json::to_string(&cron).unwrap();
        assert_eq!(json, "\"0 9 * * MON-FRI\"");
        assert_eq!(serde_json::from_str::<CronSchedule>(&json).unwrap(), cron);
        assert!(serde_json::from_str::<CronSchedule>("\"0 0 31 2 *\"").is_err());
    }
}
