//! When a job runs: a cron expression in a time zone, or one moment.
//!
//! [`Schedule::next_after`] is the one function that turns a schedule into run times;
//! the engine (to advance `next_run_at`) and the preview endpoint both call it, so what
//! a preview shows is what will happen.

mod cron;
mod cron_syntax;
mod timezone;

pub use self::cron::CronSchedule;
pub use self::timezone::Timezone;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// How many upcoming runs [`Schedule::min_interval`] looks at.
pub const MIN_INTERVAL_SAMPLE: usize = 200;

/// When a job runs.
///
/// Serialized as the REST API shows it: `{"type": "cron", "cron": "0 3 * * *",
/// "timezone": "Europe/Oslo"}` or `{"type": "once", "at": "2026-12-01T09:00:00Z"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Schedule {
    /// Repeatedly, at the wall-clock times of a cron expression in a time zone
    /// (daylight-saving rule: see [`CronSchedule::next_after`]).
    Cron {
        /// The expression.
        cron: CronSchedule,
        /// The zone whose wall clock the expression is read on.
        timezone: Timezone,
    },
    /// Once, at one instant.
    Once {
        /// The instant.
        at: DateTime<Utc>,
    },
}

impl Schedule {
    /// Parses a cron schedule from its two user-supplied strings; errors name
    /// `schedule.cron` or `schedule.timezone`.
    pub fn parse_cron(cron: &str, timezone: &str) -> Result<Self, DomainError> {
        Ok(Self::Cron {
            cron: CronSchedule::parse(cron)?,
            timezone: Timezone::parse(timezone)?,
        })
    }

    /// The first run strictly after `after`, or `None` when there is none (a one-off
    /// schedule whose moment is not after `after`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Cron { cron, timezone } => cron.next_after(timezone.tz(), after),
            Self::Once { at } => (*at > after).then_some(*at),
        }
    }

    /// Up to `count` consecutive runs strictly after `after`, earliest first (fewer when
    /// the schedule ends). The caller bounds `count`.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut runs = Vec::with_capacity(count.min(1024));
        let mut cursor = after;
        while runs.len() < count {
            match self.next_after(cursor) {
                Some(next) => {
                    runs.push(next);
                    cursor = next;
                }
                None => break,
            }
        }
        runs
    }

    /// The smallest gap between two consecutive runs among the next
    /// [`MIN_INTERVAL_SAMPLE`] runs after `from`, for plan limits such as "at least 60 s
    /// between runs"; `None` when fewer than two runs remain (a one-off schedule).
    pub fn min_interval(&self, from: DateTime<Utc>) -> Option<Duration> {
        self.upcoming(from, MIN_INTERVAL_SAMPLE)
            .windows(2)
            .filter_map(|pair| match pair {
                [earlier, later] => Some(*later - *earlier),
                _ => None,
            })
            .min()
    }

    /// The smallest gap between consecutive runs (as [`Schedule::min_interval`])
    /// when it is shorter than `limit`, the check a plan's minimum interval makes;
    /// `None` otherwise. A cron without a seconds field runs whole minutes apart,
    /// so against a limit of a minute or less it is not sampled at all.
    ///
    /// ```
    /// use chrono::{Duration, Utc};
    /// use punctual_domain::Schedule;
    ///
    /// let every_ten_seconds = Schedule::parse_cron("*/10 * * * * *", "UTC").unwrap();
    /// let gap = every_ten_seconds.interval_shorter_than(Utc::now(), Duration::seconds(60));
    /// assert_eq!(gap, Some(Duration::seconds(10)));
    /// let hourly = Schedule::parse_cron("0 * * * *", "UTC").unwrap();
    /// assert_eq!(hourly.interval_shorter_than(Utc::now(), Duration::seconds(60)), None);
    /// ```
    pub fn interval_shorter_than(&self, from: DateTime<Utc>, limit: Duration) -> Option<Duration> {
        if let Self::Cron { cron, .. } = self {
            if !cron.has_seconds() && limit <= Duration::seconds(60) {
                return None;
            }
        }
        self.min_interval(from).filter(|gap| *gap < limit)
    }

    /// The time zone of a cron schedule; `None` for a one-off.
    pub fn timezone(&self) -> Option<Timezone> {
        match self {
            Self::Cron { timezone, .. } => Some(*timezone),
            Self::Once { .. } => None,
        }
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

    #[test]
    fn parse_cron_names_the_wrong_field() {
        assert_eq!(
            Schedule::parse_cron("0 3 * *", "Europe/Oslo")
                .unwrap_err()
                .field(),
            "schedule.cron"
        );
        assert_eq!(
            Schedule::parse_cron("0 3 * * *", "Europe/Olso")
                .unwrap_err()
                .field(),
            "schedule.timezone"
        );
    }

    #[test]
    fn once_runs_only_if_after() {
        let at = utc("2026-12-01T09:00:00Z");
        let once = Schedule::Once { at };
        assert_eq!(once.next_after(utc("2026-12-01T08:59:59Z")), Some(at));
        assert_eq!(once.next_after(at), None);
        assert_eq!(once.next_after(utc("2027-01-01T00:00:00Z")), None);
        assert_eq!(once.upcoming(utc("2026-01-01T00:00:00Z"), 5), vec![at]);
        assert_eq!(once.min_interval(utc("2026-01-01T00:00:00Z")), None);
        assert_eq!(once.timezone(), None);
    }

    #[test]
    fn upcoming_chains_next_after() {
        let schedule = Schedule::parse_cron("0 3 * * *", "Europe/Oslo").unwrap();
        let runs = schedule.upcoming(utc("2026-03-27T12:00:00Z"), 3);
        assert_eq!(
            runs,
            vec![
                utc("2026-03-28T02:00:00Z"),
                utc("2026-03-29T01:00:00Z"),
                utc("2026-03-30T01:00:00Z"),
            ]
        );
        assert!(schedule.upcoming(utc("2026-03-27T12:00:00Z"), 0).is_empty());
        assert_eq!(schedule.timezone().map(|tz| tz.name()), Some("Europe/Oslo"));
    }

    #[test]
    fn min_interval_finds_the_tightest_gap() {
        let from = utc("2026-01-01T00:00:00Z");
        let every_minute = Schedule::parse_cron("* * * * *", "UTC").unwrap();
        assert_eq!(every_minute.min_interval(from), Some(Duration::seconds(60)));
        let seconds = Schedule::parse_cron("*/10 * * * * *", "UTC").unwrap();
        assert_eq!(seconds.min_interval(from), Some(Duration::seconds(10)));
        let uneven = Schedule::parse_cron("0,5 9 * * *", "UTC").unwrap();
        assert_eq!(uneven.min_interval(from), Some(Duration::minutes(5)));
        let daily = Schedule::parse_cron("0 3 * * *", "Europe/Oslo").unwrap();
        // Across the 2026 spring-forward the gap is 23 hours.
        assert_eq!(
            daily.min_interval(utc("2026-03-01T00:00:00Z")),
            Some(Duration::hours(23))
        );
    }

    #[test]
    fn serde_matches_the_api_shape() {
        let cron: Schedule =
            serde_json::from_str(r#"{"type":"cron","cron":"0 3 * * *","timezone":"Europe/Oslo"}"#)
                .unwrap();
        assert_eq!(
            cron,
            Schedule::parse_cron("0 3 * * *", "Europe/Oslo").unwrap()
        );
        assert_eq!(
            serde_json::to_value(&cron).unwrap(),
            serde_json::json!({"type": "cron", "cron": "0 3 * * *", "timezone": "Europe/Oslo"})
        );
        let once: Schedule =
            serde_json::from_str(r#"{"type":"once","at":"2026-12-01T09:00:00Z"}"#).unwrap();
        assert_eq!(
            once,
            Schedule::Once {
                at: utc("2026-12-01T09:00:00Z")
            }
        );
        assert!(serde_json::from_str::<Schedule>(
            r#"{"type":"cron","cron":"0 3 * *","timezone":"Europe/Oslo"}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Schedule>(r#"{"type":"weekly"}"#).is_err());
    }
}
