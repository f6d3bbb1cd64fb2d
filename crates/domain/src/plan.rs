//! Plans: what an organization may use. Plans are configuration (`[plans.<name>]`),
//! not code; these are the limits each one sets.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// The limits of one plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    /// Jobs an organization may have.
    pub max_jobs: u64,
    /// Smallest gap between two runs of a job, in seconds (under 60 allows a
    /// seconds field in cron expressions).
    pub min_interval_seconds: u64,
    /// Largest per-request timeout, in milliseconds.
    pub max_timeout_ms: u64,
    /// Most attempts per occurrence.
    pub max_retry_attempts: u32,
    /// Executions (attempts that start) per calendar month (UTC).
    pub executions_per_month: u64,
    /// Days executions are kept.
    pub retention_days: u32,
    /// API requests per second per API key or user.
    pub api_requests_per_second: u32,
    /// Largest body a job may send, in bytes; at most
    /// [`RequestBody::MAX_BYTES`](crate::RequestBody::MAX_BYTES). Optional in
    /// configuration: 64 KiB when left out.
    #[serde(default = "default_max_request_body_bytes")]
    pub max_request_body_bytes: u64,
}

fn default_max_request_body_bytes() -> u64 {
    64 * 1024
}

/// The plan whose limits apply to an organization whose own plan is no longer
/// configured (renamed or removed): never no limits at all.
pub const FALLBACK_PLAN: &str = "free";

/// The limits that apply to an organization on `plan`: that plan's, or the
/// [`FALLBACK_PLAN`]'s when `plan` is not among `plans`.
pub fn limits_for<'a>(
    plans: &'a BTreeMap<String, PlanLimits>,
    plan: &str,
) -> Option<&'a PlanLimits> {
    plans.get(plan).or_else(|| plans.get(FALLBACK_PLAN))
}

/// A usage period: one calendar month in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsagePeriod {
    /// First instant of the month.
    pub start: DateTime<Utc>,
    /// First instant of the next month.
    pub end: DateTime<Utc>,
}

impl UsagePeriod {
    /// The period containing `at`.
    pub fn containing(at: DateTime<Utc>) -> Self {
        let start = month_start(at.year(), at.month()).unwrap_or(at);
        let (year, month) = if at.month() == 12 {
            (at.year() + 1, 1)
        } else {
            (at.year(), at.month() + 1)
        };
        let end = month_start(year, month).unwrap_or(at);
        Self { start, end }
    }

    /// `YYYY-MM`, the key usage is counted under.
    pub fn key(&self) -> String {
        format!("{:04}-{:02}", self.start.year(), self.start.month())
    }
}

fn month_start(year: i32, month: u32) -> Option<DateTime<Utc>> {
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unconfigured_plan_gets_the_free_plans_limits() {
        let limits = |executions_per_month| PlanLimits {
            max_jobs: 1,
            min_interval_seconds: 60,
            max_timeout_ms: 1_000,
            max_retry_attempts: 1,
            executions_per_month,
            retention_days: 1,
            api_requests_per_second: 1,
            max_request_body_bytes: 1_024,
        };
        let mut plans = BTreeMap::from([
            ("free".to_owned(), limits(10)),
            ("pro".to_owned(), limits(1_000)),
        ]);
        assert_eq!(limits_for(&plans, "pro"), Some(&limits(1_000)));
        assert_eq!(limits_for(&plans, "retired"), Some(&limits(10)));
        plans.remove("free");
        assert_eq!(limits_for(&plans, "retired"), None);
    }

    #[test]
    fn periods_are_calendar_months_in_utc() {
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        let period = UsagePeriod::containing(at);
        assert_eq!(period.key(), "2026-12");
        assert_eq!(
            period.start,
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            period.end,
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
    }
}
