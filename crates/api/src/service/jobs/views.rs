//! Jobs and executions as the API shows them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use punctual_domain::{JobSpec, Schedule};
use punctual_persistence::entities::{execution, job};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A job: what the client wrote (with defaults filled in) and where it stands.
/// Sending it back as a job document (`PUT .../jobs/by-key/{key}`) changes nothing.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "01937a4c-7d2e-7b3a-9f00-5a1b2c3d4e5f",
    "name": "nightly report",
    "key": "report-nightly",
    "request": {"url": "https://example.com/hook", "method": "POST",
                "headers": {"content-type": "application/json"}, "body": "{}",
                "timeout_ms": 30000},
    "schedule": {"type": "cron", "cron": "0 3 * * *", "timezone": "Europe/Oslo"},
    "retry": {"max_attempts": 3, "min_backoff_ms": 5000, "max_backoff_ms": 3600000},
    "concurrency": "allow",
    "missed_runs": "skip",
    "catch_up_grace_seconds": 3600,
    "enabled": true,
    "next_run_at": "2026-12-02T02:00:00Z",
    "last_execution": null,
    "consecutive_failures": 0,
    "disabled_reason": null,
    "completed_at": null,
    "created_at": "2026-12-01T10:00:00Z",
    "updated_at": "2026-12-01T10:00:00Z"
}))]
pub struct JobView {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// The client's key, if any.
    pub key: Option<String>,
    /// The request it makes.
    pub request: RequestView,
    /// When.
    pub schedule: ScheduleView,
    /// Retries of a failed run.
    pub retry: RetryView,
    /// `allow`, `forbid` or `replace`.
    pub concurrency: String,
    /// `skip` or `run_once`.
    pub missed_runs: String,
    /// How late a missed run may be made up for, with `missed_runs: run_once`.
    pub catch_up_grace_seconds: u64,
    /// Whether it runs on its schedule.
    pub enabled: bool,
    /// The next scheduled run; null when disabled or finished.
    pub next_run_at: Option<DateTime<Utc>>,
    /// The newest execution, if any.
    pub last_execution: Option<ExecutionSummary>,
    /// Failed runs in a row.
    pub consecutive_failures: i32,
    /// Why Punctual disabled it (e.g. too many failures in a row), if it did.
    pub disabled_reason: Option<String>,
    /// When a one-off job finished.
    pub completed_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed by a client.
    pub updated_at: DateTime<Utc>,
}

/// The request of a job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestView {
    /// Normalised URL.
    pub url: String,
    /// Method.
    pub method: String,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Body, if any.
    pub body: Option<String>,
    /// Per-attempt timeout.
    pub timeout_ms: u64,
}

/// When a job runs.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScheduleView {
    /// A cron expression in a time zone.
    Cron {
        /// The expression.
        cron: String,
        /// IANA time zone.
        timezone: String,
    },
    /// One instant.
    Once {
        /// The instant.
        at: DateTime<Utc>,
    },
}

/// Retry policy.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RetryView {
    /// Attempts in all.
    pub max_attempts: u32,
    /// Shortest wait before a retry.
    pub min_backoff_ms: u64,
    /// Longest wait before a retry.
    pub max_backoff_ms: u64,
}

impl JobView {
    /// The view of a stored job with its spec and newest execution.
    pub fn new(row: &job::Model, spec: &JobSpec, last: Option<&execution::Model>) -> Self {
        let schedule = match &spec.schedule {
            Schedule::Cron { cron, timezone } => ScheduleView::Cron {
                cron: cron.as_str().to_owned(),
                timezone: timezone.name().to_owned(),
            },
            Schedule::Once { at } => ScheduleView::Once { at: *at },
        };
        Self {
            id: row.id,
            name: spec.name.as_str().to_owned(),
            key: spec.key.as_ref().map(|key| key.as_str().to_owned()),
            request: RequestView {
                url: spec.request.url.as_str().to_owned(),
                method: spec.request.method.as_str().to_owned(),
                headers: spec
                    .request
                    .headers
                    .iter()
                    .map(|(name, value)| (name.to_owned(), value.to_owned()))
                    .collect(),
                body: spec.request.body.as_ref().map(|b| b.as_str().to_owned()),
                timeout_ms: spec.request.timeout.get(),
            },
            schedule,
            retry: RetryView {
                max_attempts: spec.retry.max_attempts(),
                min_backoff_ms: spec.retry.min_backoff_ms(),
                max_backoff_ms: spec.retry.max_backoff_ms(),
            },
            concurrency: spec.concurrency.as_str().to_owned(),
            missed_runs: spec.missed_runs.as_str().to_owned(),
            catch_up_grace_seconds: spec.catch_up_grace.seconds(),
            enabled: spec.enabled,
            next_run_at: row.next_run_at,
            last_execution: last.map(ExecutionSummary::from),
            consecutive_failures: row.consecutive_failures,
            disabled_reason: row.disabled_reason.clone(),
            completed_at: row.completed_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// One attempt to run a job, without the response body.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "01937a4c-9a10-7c44-8e21-0b1c2d3e4f50",
    "job_id": "01937a4c-7d2e-7b3a-9f00-5a1b2c3d4e5f",
    "status": "success",
    "trigger": "schedule",
    "scheduled_for": "2026-12-02T02:00:00Z",
    "attempt": 1,
    "started_at": "2026-12-02T02:00:00.012Z",
    "finished_at": "2026-12-02T02:00:00.254Z",
    "duration_ms": 242,
    "lag_ms": 12,
    "status_code": 200,
    "error": null,
    "created_at": "2026-12-02T02:00:00.004Z"
}))]
pub struct ExecutionSummary {
    /// Id.
    pub id: Uuid,
    /// The job.
    pub job_id: Uuid,
    /// `pending`, `running`, `success`, `failed`, `timeout`, `skipped` or `canceled`.
    pub status: String,
    /// `schedule`, `manual`, `retry` or `catch_up`.
    pub trigger: String,
    /// The occurrence this attempt belongs to.
    pub scheduled_for: DateTime<Utc>,
    /// 1 for the first attempt, then one more per retry.
    pub attempt: i32,
    /// When the request started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// How long the request took.
    pub duration_ms: Option<i64>,
    /// How late it started after it was due.
    pub lag_ms: Option<i64>,
    /// The response's HTTP status.
    pub status_code: Option<i32>,
    /// What went wrong, if anything did.
    pub error: Option<String>,
    /// When the execution was created.
    pub created_at: DateTime<Utc>,
}

impl From<&execution::Model> for ExecutionSummary {
    fn from(row: &execution::Model) -> Self {
        Self {
            id: row.id,
            job_id: row.job_id,
            status: punctual_persistence::jobs::shown_status(row).to_owned(),
            trigger: row.trigger.clone(),
            scheduled_for: row.scheduled_for,
            attempt: row.attempt,
            started_at: row.started_at,
            finished_at: row.finished_at,
            duration_ms: row.duration_ms,
            lag_ms: row.lag_ms,
            status_code: row.status_code,
            error: row.error.clone(),
            created_at: row.created_at,
        }
    }
}

/// One attempt with the response it got.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExecutionView {
    /// The attempt.
    #[serde(flatten)]
    pub summary: ExecutionSummary,
    /// The start of the response body (truncated by the engine).
    pub response_body: Option<String>,
}

impl From<&execution::Model> for ExecutionView {
    fn from(row: &execution::Model) -> Self {
        Self {
            summary: ExecutionSummary::from(row),
            response_body: row.response_body.clone(),
        }
    }
}
