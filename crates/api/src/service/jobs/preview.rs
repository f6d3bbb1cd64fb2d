//! The schedule preview: the next run times of a cron expression in a time zone,
//! computed by [`Schedule::upcoming`], the very function the engine advances jobs with.

use chrono::{DateTime, SecondsFormat, Utc};
use punctual_domain::{CronSchedule, Schedule, Timezone};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::input::{parse_instant, Problems};
use crate::service::ServiceError;

/// The most runs one preview answers.
pub const MAX_PREVIEW_COUNT: u64 = 100;
/// Runs a preview answers when `count` is omitted.
pub const DEFAULT_PREVIEW_COUNT: u64 = 5;

/// `POST /schedules/preview`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"cron": "30 2 * * *", "timezone": "Europe/Oslo", "count": 3,
                          "after": "2026-03-28T21:00:00Z"}))]
pub struct PreviewInput {
    /// A cron expression, as in a job's schedule.
    #[schema(required = true, nullable = false, example = "30 2 * * *")]
    pub cron: Option<String>,
    /// An IANA time zone; default `UTC`.
    #[schema(example = "Europe/Oslo")]
    pub timezone: Option<String>,
    /// How many runs, 1 to 100; default 5.
    #[schema(example = 5)]
    pub count: Option<u64>,
    /// Runs strictly after this RFC 3339 instant; default now.
    #[schema(example = "2026-03-28T21:00:00Z")]
    pub after: Option<String>,
}

/// The next runs, earliest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"runs": [
    {"utc": "2026-03-30T00:30:00Z", "local": "2026-03-30T02:30:00+02:00"},
    {"utc": "2026-03-31T00:30:00Z", "local": "2026-03-31T02:30:00+02:00"}
]}))]
pub struct Preview {
    /// The runs (fewer than `count` only when the schedule ends).
    pub runs: Vec<PreviewRun>,
}

/// One run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PreviewRun {
    /// The instant, RFC 3339 in UTC.
    #[schema(example = "2026-03-30T00:30:00Z")]
    pub utc: String,
    /// The same instant on the time zone's wall clock, with its offset.
    #[schema(example = "2026-03-30T02:30:00+02:00")]
    pub local: String,
}

/// The next `count` runs of `cron` in `timezone` after `after` (default `now`).
/// Errors name `cron`, `timezone`, `count` and `after`, all at once.
pub fn preview(input: &PreviewInput, now: DateTime<Utc>) -> Result<Preview, ServiceError> {
    let mut problems = Problems::default();
    let cron = match &input.cron {
        Some(cron) => problems.take(CronSchedule::parse(cron).map_err(|e| e.unprefixed())),
        None => {
            problems.required("cron");
            None
        }
    };
    let timezone = match &input.timezone {
        Some(zone) => problems.take(Timezone::parse(zone).map_err(|e| e.unprefixed())),
        None => Some(Timezone::UTC),
    };
    let count = input.count.unwrap_or(DEFAULT_PREVIEW_COUNT);
    if !(1..=MAX_PREVIEW_COUNT).contains(&count) {
        problems.push(
            "count",
            format!("must be between 1 and {MAX_PREVIEW_COUNT} (got {count})"),
        );
    }
    let after = match &input.after {
        Some(after) => parse_instant("after", after, &mut problems),
        None => Some(now),
    };
    let (Some(cron), Some(timezone), Some(after), true) =
        (cron, timezone, after, problems.is_empty())
    else {
        return Err(problems.into_error());
    };
    let schedule = Schedule::Cron { cron, timezone };
    let runs = schedule
        .upcoming(after, usize::try_from(count).unwrap_or(0))
        .into_iter()
        .map(|run| PreviewRun {
            utc: run.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            local: run
                .with_timezone(&timezone.tz())
                .to_rfc3339_opts(SecondsFormat::AutoSi, false),
        })
        .collect();
    Ok(Preview { runs })
}

/// Domain errors name job fields (`schedule.cron`); the preview's are top-level.
trait Unprefixed {
    fn unprefixed(self) -> Self;
}

impl Unprefixed for punctual_domain::DomainError {
    fn unprefixed(self) -> Self {
        let field = self.field().trim_start_matches("schedule.").to_owned();
        let message = self.message().to_owned();
        Self::invalid(field, message)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn input(cron: &str, timezone: &str, count: u64, after: &str) -> PreviewInput {
        PreviewInput {
            cron: Some(cron.to_owned()),
            timezone: Some(timezone.to_owned()),
            count: Some(count),
            after: Some(after.to_owned()),
        }
    }

    #[test]
    fn spring_forward_in_oslo() {
        let preview = preview(
            &input("30 2 * * *", "Europe/Oslo", 2, "2026-03-28T21:00:00Z"),
            Utc::now(),
        )
        .unwrap();
        let runs: Vec<(&str, &str)> = preview
            .runs
            .iter()
            .map(|r| (r.utc.as_str(), r.local.as_str()))
            .collect();
        assert_eq!(
            runs,
            [
                ("2026-03-30T00:30:00Z", "2026-03-30T02:30:00+02:00"),
                ("2026-03-31T00:30:00Z", "2026-03-31T02:30:00+02:00")
            ]
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let error = preview(&input("61 * * * *", "Mars/Base", 0, "soon"), Utc::now()).unwrap_err();
        let ServiceError::Invalid(problems) = error else {
            panic!("not a validation error")
        };
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["cron", "timezone", "count", "after"]);
    }
}
