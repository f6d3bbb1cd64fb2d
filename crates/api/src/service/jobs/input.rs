//! The job document as clients send it, and its parsing into a [`JobSpec`] with one
//! 422 that lists every bad field.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use punctual_domain::{
    CatchUpGrace, ConcurrencyPolicy, DomainError, Headers, HttpMethod, HttpTarget, JobKey, JobName,
    JobSpec, MissedRunPolicy, RequestBody, RetryPolicy, Schedule, TargetUrl, TimeoutMs,
};
use punctual_scheduler::outbound::{resolve_checked, OutboundError};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::error::FieldProblem;
use crate::service::ServiceError;

/// How long a save waits for DNS when checking where a host name points.
const SAVE_TIME_DNS_TIMEOUT: Duration = Duration::from_secs(3);

/// A job as clients write it (`POST .../jobs`, `PUT .../jobs/by-key/{key}`, and the
/// document a `PATCH` is merged into). Omitted fields take their defaults; unknown
/// fields are ignored.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "nightly report",
    "key": "report-nightly",
    "request": {"url": "https://example.com/hook", "method": "POST",
                "headers": {"content-type": "application/json"}, "body": "{}",
                "timeout_ms": 30000},
    "schedule": {"type": "cron", "cron": "0 3 * * *", "timezone": "Europe/Oslo"},
    "retry": {"max_attempts": 3, "min_backoff_ms": 5000, "max_backoff_ms": 3600000},
    "concurrency": "allow",
    "missed_runs": "skip",
    "enabled": true
}))]
pub struct JobInput {
    /// 1 to 200 printable characters (surrounding whitespace is dropped).
    #[schema(required = true, nullable = false, example = "nightly report")]
    pub name: Option<String>,
    /// Optional client key, unique in the organization: 1 to 128 of `A-Z a-z 0-9 . _ -`.
    #[schema(example = "report-nightly", pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub key: Option<String>,
    /// The HTTP request to make.
    #[schema(required = true, nullable = false)]
    pub request: Option<RequestInput>,
    /// When to make it.
    #[schema(required = true, nullable = false)]
    pub schedule: Option<ScheduleInput>,
    /// Retries of a failed run; default 3 attempts, backoff 5 s to 1 h.
    pub retry: Option<RetryInput>,
    /// `allow` (default), `forbid` (skip while one runs) or `replace` (cancel the
    /// running one).
    #[schema(schema_with = concurrency_schema)]
    pub concurrency: Option<String>,
    /// Runs missed while Punctual was down: `skip` (default) or `run_once`.
    #[schema(schema_with = missed_runs_schema)]
    pub missed_runs: Option<String>,
    /// With `missed_runs: run_once`, how late (seconds) a missed run may still be made
    /// up for: 1 to 604800, default 3600.
    #[schema(example = 3600, minimum = 1, maximum = 604800)]
    pub catch_up_grace_seconds: Option<u64>,
    /// Whether it runs on its schedule; default true.
    pub enabled: Option<bool>,
}

/// The request part of a job.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct RequestInput {
    /// Absolute `http` or `https` URL without credentials; private, loopback and
    /// link-local addresses (literal, or what the host name resolves to) are refused
    /// unless the deployment allows private networks.
    #[schema(
        required = true,
        nullable = false,
        example = "https://example.com/hook"
    )]
    pub url: Option<String>,
    /// GET (default), POST, PUT, PATCH, DELETE or HEAD.
    #[schema(schema_with = method_schema)]
    pub method: Option<String>,
    /// Extra headers; not `Host`, `Content-Length` or hop-by-hop headers.
    pub headers: Option<BTreeMap<String, String>>,
    /// Body text, at most the plan's cap (64 KiB on the free plan).
    pub body: Option<String>,
    /// Per-attempt timeout, 1 to 300000 ms; default 30000.
    #[schema(example = 30000, minimum = 1, maximum = 300000)]
    pub timeout_ms: Option<u64>,
}

/// `{"type": "cron", "cron": "0 3 * * *", "timezone": "Europe/Oslo"}` or
/// `{"type": "once", "at": "2026-12-01T09:00:00Z"}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ScheduleInput {
    /// `cron` or `once`.
    #[serde(rename = "type")]
    #[schema(required = true, schema_with = schedule_kind_schema)]
    pub kind: Option<String>,
    /// For `cron`: 5 fields, or 6 with leading seconds; names, ranges, steps, lists,
    /// `L`, `#`, `@hourly`-style aliases.
    #[schema(example = "0 3 * * *")]
    pub cron: Option<String>,
    /// For `cron`: an IANA time zone; default `UTC`. A local time that does not exist is
    /// skipped, a repeated one runs once (at its first instant).
    #[schema(example = "Europe/Oslo")]
    pub timezone: Option<String>,
    /// For `once`: an RFC 3339 instant in the future (kept to the microsecond).
    #[schema(example = "2026-12-01T09:00:00Z")]
    pub at: Option<String>,
}

// The document's enums come from the domain's lists, so they cannot drift.
fn concurrency_schema() -> utoipa::openapi::Object {
    crate::docs::described(
        crate::docs::one_of_or_null(&ConcurrencyPolicy::ALL.map(|policy| policy.as_str())),
        "`allow` (default), `forbid` (skip while one runs) or `replace` (cancel the running one).",
    )
}

fn missed_runs_schema() -> utoipa::openapi::Object {
    crate::docs::described(
        crate::docs::one_of_or_null(&MissedRunPolicy::ALL.map(|policy| policy.as_str())),
        "Runs missed while Punctual was down: `skip` (default) or `run_once`.",
    )
}

fn schedule_kind_schema() -> utoipa::openapi::Object {
    crate::docs::described(crate::docs::one_of(&["cron", "once"]), "`cron` or `once`.")
}

fn method_schema() -> utoipa::openapi::Object {
    crate::docs::described(
        crate::docs::one_of_or_null(&HttpMethod::ALL.map(|method| method.as_str())),
        "GET (default), POST, PUT, PATCH, DELETE or HEAD (read without regard to case).",
    )
}

/// Retry policy; omitted fields take their defaults.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct RetryInput {
    /// Attempts in all, 1 (no retry) to 20; default 3.
    #[schema(example = 3, minimum = 1, maximum = 20)]
    pub max_attempts: Option<u32>,
    /// Shortest wait before a retry, 100 to 86400000 ms; default 5000.
    #[schema(example = 5000, minimum = 100, maximum = 86400000)]
    pub min_backoff_ms: Option<u64>,
    /// Longest wait, from `min_backoff_ms` to 86400000 ms; default 3600000.
    #[schema(example = 3600000, minimum = 100, maximum = 86400000)]
    pub max_backoff_ms: Option<u64>,
}

/// Collects every problem of a document.
#[derive(Default)]
pub(super) struct Problems(Vec<FieldProblem>);

impl Problems {
    pub(super) fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldProblem {
            field: field.into(),
            message: message.into(),
        });
    }

    fn domain(&mut self, error: DomainError) {
        self.push(error.field(), error.message());
    }

    pub(super) fn take<T>(&mut self, result: Result<T, DomainError>) -> Option<T> {
        result.map_err(|error| self.domain(error)).ok()
    }

    pub(super) fn required(&mut self, field: &str) {
        self.push(field, "is required");
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn into_error(self) -> ServiceError {
        ServiceError::Invalid(self.0)
    }
}

/// What a job document is checked against besides its own rules: the
/// deployment's and the organization's plan's.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules {
    /// Whether targets may be loopback or private addresses.
    pub allow_private_networks: bool,
    /// The plan's cap on the request body, in bytes.
    pub max_body_bytes: usize,
}

/// Parses a job document. `previous` is the schedule the job has now (none on create):
/// a one-off time must be in the future only when the schedule is new. With private
/// networks disallowed, a host name is resolved and refused when any address it
/// resolves to is private (a name that does not resolve is accepted: every request
/// checks again before it connects).
pub(super) async fn parse_job(
    input: &JobInput,
    previous: Option<&Schedule>,
    rules: Rules,
    now: DateTime<Utc>,
) -> Result<JobSpec, ServiceError> {
    let mut problems = Problems::default();
    let spec = parse_fields(input, previous, rules, now, &mut problems);
    if !rules.allow_private_networks {
        if let Some(spec) = &spec {
            if let Some(problem) = check_resolved_addresses(&spec.request.url).await {
                problems.0.push(problem);
            }
        }
    }
    match spec {
        Some(spec) if problems.0.is_empty() => Ok(spec),
        _ => Err(ServiceError::Invalid(problems.0)),
    }
}

fn parse_fields(
    input: &JobInput,
    previous: Option<&Schedule>,
    rules: Rules,
    now: DateTime<Utc>,
    problems: &mut Problems,
) -> Option<JobSpec> {
    let name = match &input.name {
        Some(name) => problems.take(JobName::parse(name)),
        None => {
            problems.required("name");
            None
        }
    };
    let key = match &input.key {
        Some(key) => problems.take(JobKey::parse(key)).map(Some),
        None => Some(None),
    };
    let request = match &input.request {
        Some(request) => parse_request(request, rules, problems),
        None => {
            problems.required("request");
            None
        }
    };
    let schedule = match &input.schedule {
        Some(schedule) => parse_schedule(schedule, previous, now, problems),
        None => {
            problems.required("schedule");
            None
        }
    };
    let retry = parse_retry(input.retry.as_ref(), problems);
    let concurrency = match &input.concurrency {
        Some(text) => problems.take(text.parse()),
        None => Some(Default::default()),
    };
    let missed_runs = match &input.missed_runs {
        Some(text) => problems.take(text.parse()),
        None => Some(Default::default()),
    };
    let catch_up_grace = match input.catch_up_grace_seconds {
        Some(seconds) => problems.take(CatchUpGrace::from_seconds(seconds)),
        None => Some(CatchUpGrace::DEFAULT),
    };
    Some(JobSpec {
        name: name?,
        key: key?,
        request: request?,
        schedule: schedule?,
        retry: retry?,
        concurrency: concurrency?,
        missed_runs: missed_runs?,
        catch_up_grace: catch_up_grace?,
        enabled: input.enabled.unwrap_or(true),
    })
}

fn parse_request(
    input: &RequestInput,
    rules: Rules,
    problems: &mut Problems,
) -> Option<HttpTarget> {
    let url = match &input.url {
        Some(url) => problems.take(TargetUrl::parse(url, rules.allow_private_networks)),
        None => {
            problems.required("request.url");
            None
        }
    };
    let method = match &input.method {
        Some(method) => problems.take(HttpMethod::parse(method)),
        None => Some(HttpMethod::Get),
    };
    let headers = match &input.headers {
        Some(map) => Headers::parse_reporting_all(map)
            .map_err(|errors| errors.into_iter().for_each(|e| problems.domain(e)))
            .ok(),
        None => Some(Headers::default()),
    };
    let body = match &input.body {
        Some(body) => problems
            .take(RequestBody::parse_within(body, rules.max_body_bytes))
            .map(Some),
        None => Some(None),
    };
    let timeout = match input.timeout_ms {
        Some(ms) => problems.take(TimeoutMs::new(ms)),
        None => Some(TimeoutMs::DEFAULT),
    };
    Some(HttpTarget {
        url: url?,
        method: method?,
        headers: headers?,
        body: body?,
        timeout: timeout?,
    })
}

fn parse_schedule(
    input: &ScheduleInput,
    previous: Option<&Schedule>,
    now: DateTime<Utc>,
    problems: &mut Problems,
) -> Option<Schedule> {
    let schedule = match input.kind.as_deref() {
        Some("cron") => {
            if input.at.is_some() {
                problems.push("schedule.at", "only a schedule of type once has `at`");
            }
            let cron = match &input.cron {
                Some(cron) => problems.take(punctual_domain::CronSchedule::parse(cron)),
                None => {
                    problems.required("schedule.cron");
                    None
                }
            };
            let timezone = match &input.timezone {
                Some(zone) => problems.take(punctual_domain::Timezone::parse(zone)),
                None => Some(punctual_domain::Timezone::UTC),
            };
            Schedule::Cron {
                cron: cron?,
                timezone: timezone?,
            }
        }
        Some("once") => {
            for (field, present) in [
                ("schedule.cron", input.cron.is_some()),
                ("schedule.timezone", input.timezone.is_some()),
            ] {
                if present {
                    problems.push(field, "only a schedule of type cron has this field");
                }
            }
            let Some(at) = &input.at else {
                problems.required("schedule.at");
                return None;
            };
            Schedule::Once {
                at: parse_instant("schedule.at", at, problems)?,
            }
        }
        Some(_) => {
            problems.push("schedule.type", "must be cron or once");
            return None;
        }
        None => {
            problems.required("schedule.type");
            return None;
        }
    };
    if let Schedule::Once { at } = schedule {
        if at <= now && previous != Some(&schedule) {
            problems.push(
                "schedule.at",
                format!(
                    "must be in the future (it is now {})",
                    now.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
            );
            return None;
        }
    }
    Some(schedule)
}

/// An RFC 3339 instant, cut to whole microseconds (what PostgreSQL keeps).
pub(super) fn parse_instant(
    field: &str,
    text: &str,
    problems: &mut Problems,
) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(text.trim()) {
        Ok(instant) => Some(to_micros(instant.with_timezone(&Utc))),
        Err(_) => {
            problems.push(
                field,
                "must be an RFC 3339 date-time with an offset, such as 2026-12-01T09:00:00Z",
            );
            None
        }
    }
}

/// `instant` without its sub-microsecond part.
pub(super) fn to_micros(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant
        .with_nanosecond(instant.nanosecond() / 1_000 * 1_000)
        .unwrap_or(instant)
}

fn parse_retry(input: Option<&RetryInput>, problems: &mut Problems) -> Option<RetryPolicy> {
    let Some(input) = input else {
        return Some(RetryPolicy::default());
    };
    let default = RetryPolicy::default();
    RetryPolicy::new_reporting_all(
        input.max_attempts.unwrap_or(default.max_attempts()),
        input.min_backoff_ms.unwrap_or(default.min_backoff_ms()),
        input.max_backoff_ms.unwrap_or(default.max_backoff_ms()),
    )
    .map_err(|errors| errors.into_iter().for_each(|e| problems.domain(e)))
    .ok()
}

/// With private networks disallowed: a host name that resolves to a blocked address is
/// a problem of `request.url`. IP literals were judged by [`TargetUrl::parse`].
async fn check_resolved_addresses(url: &TargetUrl) -> Option<FieldProblem> {
    resolves_to_blocked_address(url, "request.url").await
}

/// A host name that resolves to a blocked address (loopback, private, link-local
/// ...) is a problem of `field`; one that does not resolve within
/// [`SAVE_TIME_DNS_TIMEOUT`] is let through (every request checks again before it
/// connects). Job targets and notification webhooks are saved under this rule.
pub(crate) async fn resolves_to_blocked_address(
    url: &TargetUrl,
    field: &str,
) -> Option<FieldProblem> {
    if url.ip().is_some() {
        return None;
    }
    let lookup = resolve_checked(url.host(), url.port_or_default(), false);
    match tokio::time::timeout(SAVE_TIME_DNS_TIMEOUT, lookup).await {
        Ok(Err(OutboundError::Blocked { address, .. })) => Some(FieldProblem {
            field: field.to_owned(),
            message: format!(
                "{} resolves to {address}, a loopback, private, link-local or otherwise \
                 non-public address, which may not be called",
                url.host()
            ),
        }),
        Ok(Err(OutboundError::Resolve { .. })) | Ok(Ok(_)) | Err(_) => None,
    }
}

/// The document a stored job would be written as: what a `PATCH` is merged into.
pub(super) fn input_document(spec: &JobSpec) -> Value {
    let schedule = match &spec.schedule {
        Schedule::Cron { cron, timezone } => {
            json!({"type": "cron", "cron": cron.as_str(), "timezone": timezone.name()})
        }
        Schedule::Once { at } => {
            json!({"type": "once", "at": at.to_rfc3339_opts(SecondsFormat::AutoSi, true)})
        }
    };
    let headers: serde_json::Map<String, Value> = spec
        .request
        .headers
        .iter()
        .map(|(name, value)| (name.to_owned(), Value::from(value)))
        .collect();
    json!({
        "name": spec.name.as_str(),
        "key": spec.key.as_ref().map(|key| key.as_str()),
        "request": {
            "url": spec.request.url.as_str(),
            "method": spec.request.method.as_str(),
            "headers": headers,
            "body": spec.request.body.as_ref().map(|body| body.as_str()),
            "timeout_ms": spec.request.timeout.get(),
        },
        "schedule": schedule,
        "retry": {
            "max_attempts": spec.retry.max_attempts(),
            "min_backoff_ms": spec.retry.min_backoff_ms(),
            "max_backoff_ms": spec.retry.max_backoff_ms(),
        },
        "concurrency": spec.concurrency.as_str(),
        "missed_runs": spec.missed_runs.as_str(),
        "catch_up_grace_seconds": spec.catch_up_grace.seconds(),
        "enabled": spec.enabled,
    })
}

/// Applies a JSON merge patch (RFC 7396) to a job document, with one exception: a
/// `schedule` whose `type` differs from the current one replaces the schedule instead
/// of being merged into it (a cron schedule has no `at`, a one-off has no `cron`).
pub(super) fn apply_patch(document: &mut Value, patch: &Value) {
    let old_type = document.pointer("/schedule/type").cloned();
    let new_type = patch.pointer("/schedule/type").cloned();
    if let (Some(old_type), Some(new_type)) = (old_type, new_type) {
        if old_type != new_type {
            if let Some(object) = document.as_object_mut() {
                object.remove("schedule");
            }
        }
    }
    merge_patch(document, patch);
}

fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = target {
        for (name, value) in patch {
            if value.is_null() {
                target.remove(name);
            } else {
                merge_patch(target.entry(name.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Reads a merged document as a [`JobInput`]; a value of the wrong JSON type is a 422
/// naming its field.
pub(super) fn job_input(document: Value) -> Result<JobInput, ServiceError> {
    serde_path_to_error::deserialize(document).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        let message = error.into_inner().to_string();
        ServiceError::invalid(field, message)
    })
}

/// A stored job's spec; a row that no longer parses is our fault, not the caller's.
/// A one-off time is read to the microsecond, as documents are, so that a job written
/// with a finer time (SQLite keeps nanoseconds) compares equal to its own document.
pub(super) fn stored_spec(
    model: &punctual_persistence::entities::job::Model,
) -> Result<JobSpec, ServiceError> {
    let mut spec = punctual_persistence::jobs::job_spec(model).map_err(|error| {
        ServiceError::Internal(format!("stored job {} is invalid: {error}", model.id))
    })?;
    if let Schedule::Once { at } = &mut spec.schedule {
        *at = to_micros(*at);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut document = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut document, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(document, json!({"a": "z", "c": {"d": "e"}}));
        let mut document = json!({"a": [1]});
        merge_patch(&mut document, &json!({"a": {"b": "c", "d": null}}));
        assert_eq!(document, json!({"a": {"b": "c"}}));
    }

    #[test]
    fn a_schedule_of_another_type_replaces_the_old_one() {
        let mut document =
            json!({"schedule": {"type": "cron", "cron": "* * * * *", "timezone": "UTC"}});
        apply_patch(
            &mut document,
            &json!({"schedule": {"type": "once", "at": "2030-01-01T00:00:00Z"}}),
        );
        assert_eq!(
            document,
            json!({"schedule": {"type": "once", "at": "2030-01-01T00:00:00Z"}})
        );
        let mut document =
            json!({"schedule": {"type": "cron", "cron": "* * * * *", "timezone": "UTC"}});
        apply_patch(
            &mut document,
            &json!({"schedule": {"timezone": "Europe/Oslo"}}),
        );
        assert_eq!(
            document,
            json!({"schedule": {"type": "cron", "cron": "* * * * *", "timezone": "Europe/Oslo"}})
        );
    }

    #[test]
    fn instants_are_cut_to_microseconds() {
        let mut problems = Problems::default();
        let at = parse_instant("at", "2030-01-01T00:00:00.123456789+02:00", &mut problems).unwrap();
        assert_eq!(
            at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            "2029-12-31T22:00:00.123456Z"
        );
        assert!(parse_instant("at", "tomorrow", &mut problems).is_none());
        assert_eq!(problems.0.len(), 1);
    }
}
