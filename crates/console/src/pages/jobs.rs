//! Jobs: the list, a job's page (next runs, executions, chart), the create and
//! edit form, pause / resume / run now / delete, and an execution's page.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use maud::{html, Markup};
use punctual_api::error::FieldProblem;
use punctual_api::service::jobs::{
    self, ExecutionSummary, JobInput, JobView, ListExecutions, ListJobs, PreviewInput, ScheduleView,
};
use punctual_api::service::ServiceError;
use punctual_api::AppState;
use punctual_auth::Permission;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{page_size, query, Empty};
use crate::chart;
use crate::error::ConsoleError;
use crate::form::Form;
use crate::layout::{self, errors, problems_of, Chrome, Field};
use crate::resource;
use crate::session::Viewer;

pub(super) fn register(cfg: &mut web::ServiceConfig) {
    resource(
        cfg,
        "/orgs/{org}/jobs",
        vec![web::get().to(list), web::post().to(create)],
    );
    resource(cfg, "/orgs/{org}/jobs/new", vec![web::get().to(new_form)]);
    resource(cfg, "/orgs/{org}/jobs/{id}", vec![web::get().to(show)]);
    resource(
        cfg,
        "/orgs/{org}/jobs/{id}/edit",
        vec![web::get().to(edit_form), web::post().to(update)],
    );
    resource(
        cfg,
        "/orgs/{org}/jobs/{id}/pause",
        vec![web::post().to(pause)],
    );
    resource(
        cfg,
        "/orgs/{org}/jobs/{id}/resume",
        vec![web::post().to(resume)],
    );
    resource(
        cfg,
        "/orgs/{org}/jobs/{id}/run",
        vec![web::post().to(run_now)],
    );
    resource(
        cfg,
        "/orgs/{org}/jobs/{id}/delete",
        vec![web::get().to(confirm_delete), web::post().to(delete)],
    );
    resource(
        cfg,
        "/orgs/{org}/executions/{id}",
        vec![web::get().to(execution)],
    );
}

/// What a redirect after an action tells the next page.
fn done_notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "created" => Some("Job created."),
        "saved" => Some("Job saved."),
        "paused" => Some("Job paused."),
        "resumed" => Some("Job resumed."),
        "triggered" => Some("A run was requested; it starts within moments."),
        "deleted" => Some("Job deleted."),
        _ => None,
    }
}

fn status_badge(status: &str) -> Markup {
    let class = match status {
        "success" => "success",
        "failed" | "timeout" | "canceled" => "failed",
        _ => "neutral",
    };
    html! { span class=(format!("badge {class}")) { (status) } }
}

fn schedule_text(schedule: &ScheduleView, tz: Tz) -> Markup {
    match schedule {
        ScheduleView::Cron { cron, timezone } => {
            html! {
                @if let Some(words) = crate::words::describe(cron) { (words) br; }
                code { (cron) } " " span.muted { (timezone) }
            }
        }
        ScheduleView::Once { at } => html! { "once, " (layout::short_time(*at, tz)) },
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListQuery {
    enabled: String,
    cursor: String,
    limit: String,
    done: String,
}

async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let slug = path.into_inner();
    let q: ListQuery = query(&req)?;
    let chrome = Chrome::load(&state, &viewer, Some(&slug), req.path()).await?;
    let limit = page_size(Some(&q.limit), 25)?;
    let listing = ListJobs {
        enabled: Some(q.enabled.clone()).filter(|e| !e.is_empty()),
        key: None,
        cursor: Some(q.cursor.clone()).filter(|c| !c.is_empty()),
        limit,
    };
    let page = jobs::list(&state, &viewer.caller, &slug, &listing).await?;
    let now = Utc::now();
    let tz = chrome.tz;
    let base = format!("/orgs/{slug}/jobs");
    let next_link = page.next_cursor.as_ref().map(|cursor| {
        format!(
            "{base}?{}",
            serde_urlencoded::to_string([
                ("enabled", q.enabled.as_str()),
                ("limit", &limit.to_string()),
                ("cursor", cursor.as_str()),
            ])
            .unwrap_or_default()
        )
    });
    let body = html! {
        div.heading {
            h1 { "Jobs" }
            @if chrome.may(Permission::ManageJobs) { a.button href=(format!("{base}/new")) { "New job" } }
        }
        @if let Some(text) = done_notice(Some(&q.done)) { (layout::notice(text)) }
        form.filters method="get" action=(base) {
            label for="enabled" { "Show" }
            select id="enabled" name="enabled" {
                option value="" selected[q.enabled.is_empty()] { "all jobs" }
                option value="true" selected[q.enabled == "true"] { "enabled" }
                option value="false" selected[q.enabled == "false"] { "paused or disabled" }
            }
            button type="submit" { "Filter" }
        }
        @if page.data.is_empty() {
            p.muted { "No jobs here yet." }
        } @else {
            div.scroll {
                table.jobs {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Schedule" } th scope="col" { "Next run" }
                        th scope="col" { "Last status" } th scope="col" { "Enabled" }
                    } }
                    tbody {
                        @for job in &page.data {
                            tr {
                                td { a href=(format!("{base}/{}", job.id)) { (job.name) } }
                                td { (schedule_text(&job.schedule, tz)) }
                                td { @match job.next_run_at { Some(at) => (layout::time(at, tz, now)), None => span.muted { "—" } } }
                                td { @match &job.last_execution { Some(e) => (status_badge(&e.status)), None => span.muted { "never ran" } } }
                                td { @if job.enabled { "Yes" } @else { span.badge.neutral { "Paused" } } }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if !q.cursor.is_empty() { a href=(base) { "First page" } }
            @if let Some(next) = next_link { a href=(next) rel="next" { "Next page" } }
        }
    };
    Ok(layout::ok(layout::page(&chrome, "Jobs", body)))
}

// ------------------------------------------------------------------------------------
// The form.

// No `Debug`: its URL, headers and body may hold a target's credentials.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
struct JobForm {
    name: String,
    key: String,
    url: String,
    method: String,
    headers: String,
    body: String,
    timeout_ms: String,
    schedule_type: String,
    cron: String,
    timezone: String,
    at: String,
    max_attempts: String,
    min_backoff_ms: String,
    max_backoff_ms: String,
    concurrency: String,
    missed_runs: String,
    catch_up_grace_seconds: String,
    enabled: Option<String>,
}

impl JobForm {
    fn blank() -> Self {
        Self {
            method: "GET".to_owned(),
            timeout_ms: "30000".to_owned(),
            schedule_type: "cron".to_owned(),
            cron: "*/5 * * * *".to_owned(),
            timezone: "UTC".to_owned(),
            max_attempts: "3".to_owned(),
            min_backoff_ms: "5000".to_owned(),
            max_backoff_ms: "3600000".to_owned(),
            concurrency: "allow".to_owned(),
            missed_runs: "skip".to_owned(),
            catch_up_grace_seconds: "3600".to_owned(),
            enabled: Some("on".to_owned()),
            ..Self::default()
        }
    }

    fn of(job: &JobView, tz: Tz) -> Self {
        let (schedule_type, cron, timezone, at) = match &job.schedule {
            ScheduleView::Cron { cron, timezone } => {
                ("cron", cron.clone(), timezone.clone(), String::new())
            }
            ScheduleView::Once { at } => {
                ("once", String::new(), "UTC".to_owned(), form_time(at, tz))
            }
        };
        Self {
            name: job.name.clone(),
            key: job.key.clone().unwrap_or_default(),
            url: job.request.url.clone(),
            method: job.request.method.clone(),
            headers: job
                .request
                .headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}"))
                .collect::<Vec<_>>()
                .join("\n"),
            body: job.request.body.clone().unwrap_or_default(),
            timeout_ms: job.request.timeout_ms.to_string(),
            schedule_type: schedule_type.to_owned(),
            cron,
            timezone,
            at,
            max_attempts: job.retry.max_attempts.to_string(),
            min_backoff_ms: job.retry.min_backoff_ms.to_string(),
            max_backoff_ms: job.retry.max_backoff_ms.to_string(),
            concurrency: job.concurrency.clone(),
            missed_runs: job.missed_runs.clone(),
            catch_up_grace_seconds: job.catch_up_grace_seconds.to_string(),
            enabled: job.enabled.then(|| "on".to_owned()),
        }
    }

    /// The job document the form describes. `previous_headers` (editing) get a
    /// `null` when removed, as a merge patch needs. Values the form itself cannot
    /// read (a number that is not one, a header line without a colon) are
    /// problems named like the service's fields.
    fn document(
        &self,
        previous_headers: Option<&BTreeMap<String, String>>,
        tz: Tz,
    ) -> Result<Value, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let mut number = |field: &str, raw: &str| -> Value {
            let raw = raw.trim();
            if raw.is_empty() {
                return Value::Null;
            }
            match raw.parse::<u64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    problems.push(problem(field, "must be a whole number"));
                    Value::Null
                }
            }
        };
        let timeout = number("request.timeout_ms", &self.timeout_ms);
        let max_attempts = number("retry.max_attempts", &self.max_attempts);
        let min_backoff = number("retry.min_backoff_ms", &self.min_backoff_ms);
        let max_backoff = number("retry.max_backoff_ms", &self.max_backoff_ms);
        let grace = number("catch_up_grace_seconds", &self.catch_up_grace_seconds);

        let mut headers = Map::new();
        if let Some(previous) = previous_headers {
            for name in previous.keys() {
                headers.insert(name.clone(), Value::Null);
            }
        }
        for (index, line) in self.headers.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match line.split_once(':') {
                Some((name, value)) => {
                    let name = name.trim();
                    // A header kept under another spelling replaces the old one.
                    if let Some(old) = previous_headers
                        .and_then(|p| p.keys().find(|k| k.eq_ignore_ascii_case(name)))
                    {
                        headers.remove(old);
                    }
                    headers.insert(name.to_owned(), Value::from(value.trim()));
                }
                None => problems.push(problem(
                    "request.headers",
                    format!("line {}: write each header as `Name: value`", index + 1),
                )),
            }
        }
        let schedule = match self.schedule_type.as_str() {
            "once" => match local_instant(&self.at, tz) {
                Some(at) => json!({"type": "once", "at": at}),
                None => {
                    problems.push(problem(
                        "schedule.at",
                        "must be a date and time, such as 2026-12-01T09:00",
                    ));
                    Value::Null
                }
            },
            _ => json!({
                "type": "cron",
                "cron": self.cron.trim(),
                "timezone": if self.timezone.trim().is_empty() { "UTC" } else { self.timezone.trim() },
            }),
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let optional = |text: &str| {
            if text.is_empty() {
                Value::Null
            } else {
                Value::from(text)
            }
        };
        let mut document = json!({
            "name": self.name,
            "key": optional(self.key.trim()),
            "request": {
                "url": self.url.trim(),
                "method": if self.method.is_empty() { "GET" } else { self.method.as_str() },
                "headers": headers,
                "body": optional(&self.body),
                "timeout_ms": timeout,
            },
            "schedule": schedule,
            "retry": {
                "max_attempts": max_attempts,
                "min_backoff_ms": min_backoff,
                "max_backoff_ms": max_backoff,
            },
            "concurrency": optional(&self.concurrency),
            "missed_runs": optional(&self.missed_runs),
            "catch_up_grace_seconds": grace,
            "enabled": self.enabled.is_some(),
        });
        if previous_headers.is_none() {
            strip_nulls(&mut document);
        }
        Ok(document)
    }
}

/// A new job's document has no `null`s: an omitted field takes its default.
fn strip_nulls(value: &mut Value) {
    if let Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
        for v in map.values_mut() {
            strip_nulls(v);
        }
    }
}

fn problem(field: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// A once-job's time posted back as the edit form showed it keeps the stored
/// instant. The form shows whole seconds in the viewer's zone, and reading that
/// back would drop sub-second digits (making a finished job's time "changed" and
/// in the past, so the save is refused) or, in the hour a clock change repeats,
/// land on the other one of the two.
fn keep_an_untouched_time(patch: &mut Value, form: &JobForm, job: &JobView, tz: Tz) {
    let ScheduleView::Once { at } = &job.schedule else {
        return;
    };
    if form.schedule_type != "once" || form.at.trim() != form_time(at, tz) {
        return;
    }
    if let Some(schedule) = patch.get_mut("schedule").and_then(Value::as_object_mut) {
        schedule.insert(
            "at".to_owned(),
            json!(at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        );
    }
}

/// An instant as the form shows it: a `datetime-local` value in the viewer's zone.
fn form_time(at: &DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// An RFC 3339 instant, or a `datetime-local` value read in the viewer's zone.
fn local_instant(raw: &str, tz: Tz) -> Option<String> {
    let raw = raw.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(raw) {
        return Some(
            instant
                .with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        );
    }
    let naive = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M"))
        .ok()?;
    tz.from_local_datetime(&naive).earliest().map(|local| {
        local
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
    })
}

fn select(name: &str, label: &str, current: &str, options: &[(&str, &str)]) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                @for (value, text) in options {
                    option value=(value) selected[*value == current] { (text) }
                }
            }
        }
    }
}

fn textarea(name: &str, label: &str, value: &str, hint: &str, mine: &[&str]) -> Markup {
    let error_id = format!("{name}-error");
    html! {
        div.field.invalid[!mine.is_empty()] {
            label for=(name) { (label) }
            textarea id=(name) name=(name) rows="3"
                aria-invalid=[(!mine.is_empty()).then_some("true")]
                aria-describedby=(format!("{name}-hint")) { (value) }
            small id=(format!("{name}-hint")) { (hint) }
            (errors(&error_id, mine))
        }
    }
}

const FORM_FIELDS: &[&str] = &[
    "name",
    "key",
    "request.url",
    "request.method",
    "request.headers",
    "request.body",
    "request.timeout_ms",
    "schedule.type",
    "schedule.cron",
    "schedule.timezone",
    "schedule.at",
    "schedule",
    "retry.max_attempts",
    "retry.min_backoff_ms",
    "retry.max_backoff_ms",
    "retry",
    "concurrency",
    "missed_runs",
    "catch_up_grace_seconds",
];

fn job_form(
    chrome: &Chrome,
    action: &str,
    form: &JobForm,
    problems: &[FieldProblem],
    message: Option<&str>,
) -> Markup {
    let field = |name: &'static str,
                 label: &'static str,
                 value: &str,
                 kind: &'static str,
                 hint: Option<&'static str>,
                 problem_field: &str| {
        Field {
            name,
            label,
            value,
            kind,
            hint,
            required: false,
        }
        .render(problems, problem_field)
    };
    html! {
        @if let Some(message) = message { p.alert role="alert" { (message) } }
        @if !problems.is_empty() { p.alert role="alert" { "The job was not saved: check the fields marked below." } }
        form.job method="post" action=(action) novalidate {
            (chrome.csrf_field())
            fieldset {
                legend { "Job" }
                (field("name", "Name", &form.name, "text", None, "name"))
                (field("key", "Key (optional)", &form.key, "text", Some("unique in the organization: letters, digits, . _ -"), "key"))
                div.field.checkbox {
                    input id="enabled" name="enabled" type="checkbox" checked[form.enabled.is_some()];
                    label for="enabled" { "Enabled (runs on its schedule)" }
                }
            }
            fieldset {
                legend { "Request" }
                (field("url", "URL", &form.url, "url", Some("http or https"), "request.url"))
                (select("method", "Method", &form.method, &[("GET", "GET"), ("POST", "POST"), ("PUT", "PUT"), ("PATCH", "PATCH"), ("DELETE", "DELETE"), ("HEAD", "HEAD")]))
                (errors("method-error", &problems_of(problems, "request.method")))
                (textarea("headers", "Headers", &form.headers, "one per line, as Name: value", &problems_of(problems, "request.headers")))
                (textarea("body", "Body", &form.body, "sent as is; the plan caps its size (64 KiB on the free plan)", &problems_of(problems, "request.body")))
                (field("timeout_ms", "Timeout (ms)", &form.timeout_ms, "number", None, "request.timeout_ms"))
            }
            fieldset {
                legend { "Schedule" }
                (select("schedule_type", "Kind", &form.schedule_type, &[("cron", "Repeating (cron)"), ("once", "Once")]))
                (errors("schedule_type-error", &problems_of(problems, "schedule.type")))
                (field("cron", "Cron expression", &form.cron, "text", Some("5 fields (or 6 with seconds), e.g. 0 3 * * *"), "schedule.cron"))
                (field("timezone", "Time zone", &form.timezone, "text", Some("IANA name, e.g. Europe/Oslo"), "schedule.timezone"))
                (Field { name: "at", label: "Once at", value: &form.at, kind: "datetime-local", hint: None, required: false }.render(problems, "schedule.at"))
                p.muted { "A one-off time is read in your time zone (" (chrome.tz.name()) ")." }
            }
            fieldset {
                legend { "Retries and policies" }
                (field("max_attempts", "Attempts", &form.max_attempts, "number", Some("1 = no retry"), "retry.max_attempts"))
                (field("min_backoff_ms", "Shortest backoff (ms)", &form.min_backoff_ms, "number", None, "retry.min_backoff_ms"))
                (field("max_backoff_ms", "Longest backoff (ms)", &form.max_backoff_ms, "number", None, "retry.max_backoff_ms"))
                (select("concurrency", "While a run is still going", &form.concurrency, &[("allow", "allow another"), ("forbid", "skip the new one"), ("replace", "cancel the running one")]))
                (errors("concurrency-error", &problems_of(problems, "concurrency")))
                (select("missed_runs", "Runs missed during downtime", &form.missed_runs, &[("skip", "skip"), ("run_once", "run once")]))
                (errors("missed_runs-error", &problems_of(problems, "missed_runs")))
                (field("catch_up_grace_seconds", "Catch-up grace (s)", &form.catch_up_grace_seconds, "number", None, "catch_up_grace_seconds"))
            }
            (layout::other_problems(problems, FORM_FIELDS))
            button type="submit" { "Save" }
        }
    }
}

fn require_manage(chrome: &Chrome) -> Result<(), ConsoleError> {
    if chrome.may(Permission::ManageJobs) {
        Ok(())
    } else {
        Err(ConsoleError::forbidden("your role may not change jobs"))
    }
}

async fn new_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let slug = path.into_inner();
    let chrome = Chrome::load(&state, &viewer, Some(&slug), req.path()).await?;
    require_manage(&chrome)?;
    let action = format!("/orgs/{slug}/jobs");
    let body = html! {
        h1 { "New job" }
        (job_form(&chrome, &action, &JobForm::blank(), &[], None))
    };
    Ok(layout::ok(layout::page(&chrome, "New job", body)))
}

/// A refused save shown on the form: field problems next to their fields, a plan
/// limit or a conflict above it; anything else is an error page.
fn refused_form(
    chrome: &Chrome,
    title: &str,
    action: &str,
    form: &JobForm,
    error: ServiceError,
) -> Result<HttpResponse, ConsoleError> {
    let (status, problems, message) = match error {
        ServiceError::Invalid(problems) => (StatusCode::UNPROCESSABLE_ENTITY, problems, None),
        ServiceError::QuotaExceeded { detail, .. } => {
            (StatusCode::TOO_MANY_REQUESTS, Vec::new(), Some(detail))
        }
        ServiceError::Conflict(detail) => (StatusCode::CONFLICT, Vec::new(), Some(detail)),
        other => return Err(other.into()),
    };
    let body = html! {
        h1 { (title) }
        (job_form(chrome, action, form, &problems, message.as_deref()))
    };
    Ok(layout::html(status, layout::page(chrome, title, body)))
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
    Form(form): Form<JobForm>,
) -> Result<HttpResponse, ConsoleError> {
    let slug = path.into_inner();
    let chrome = Chrome::load(&state, &viewer, Some(&slug), req.path()).await?;
    let action = format!("/orgs/{slug}/jobs");
    let result = match form.document(None, chrome.tz) {
        Err(problems) => Err(ServiceError::Invalid(problems)),
        Ok(document) => match serde_json::from_value::<JobInput>(document) {
            Ok(input) => jobs::create(&state, &viewer.caller, &slug, &input).await,
            Err(error) => Err(ServiceError::invalid("body", error.to_string())),
        },
    };
    match result {
        Ok(job) => Ok(layout::redirect(&format!(
            "/orgs/{slug}/jobs/{}?done=created",
            job.id
        ))),
        Err(error) => refused_form(&chrome, "New job", &action, &form, error),
    }
}

async fn edit_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    let (slug, id) = path.into_inner();
    let chrome = Chrome::load(&state, &viewer, Some(&slug), req.path()).await?;
    let job = jobs::get(&state, &viewer.caller, &slug, &id).await?;
    require_manage(&chrome)?;
    let action = format!("/orgs/{slug}/jobs/{id}/edit");
    let title = format!("Edit {}", job.name);
    let body = html! {
        h1 { (title) }
        (job_form(&chrome, &action, &JobForm::of(&job, chrome.tz), &[], None))
    };
    Ok(layout::ok(layout::page(&chrome, &title, body)))
}

async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
    Form(form): Form<JobForm>,
) -> Result<HttpResponse, ConsoleError> {
    let (slug, id) = path.into_inner();
    let chrome = Chrome::load(&state, &viewer, Some(&slug), req.path()).await?;
    let job = jobs::get(&state, &viewer.caller, &slug, &id).await?;
    let action = format!("/orgs/{slug}/jobs/{id}/edit");
    let result = match form.document(Some(&job.request.headers), chrome.tz) {
        Err(problems) => Err(ServiceError::Invalid(problems)),
        Ok(mut patch) => {
            keep_an_untouched_time(&mut patch, &form, &job, chrome.tz);
            jobs::update(&state, &viewer.caller, &slug, &id, &patch).await
        }
    };
    match result {
        Ok(job) => Ok(layout::redirect(&format!(
            "/orgs/{slug}/jobs/{}?done=saved",
            job.id
        ))),
        Err(error) => refused_form(
            &chrome,
            &format!("Edit {}", job.name),
            &action,
            &form,
            error,
        ),
    }
}

// ------------------------------------------------------------------------------------
// A job's page.

/// How often a job's page reloads itself with `?live=1` (a `<meta http-equiv=refresh>`:
/// live without any script).
const LIVE_REFRESH_SECONDS: u32 = 5;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ShowQuery {
    cursor: String,
    done: String,
    live: String,
}

async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    let (slug, id) = path.into_inner();
    let q: ShowQuery = query(&req)?;
    let mut chrome = Chrome::load(&state, &viewer, Some(&slug), req.path()).await?;
    let live = q.live == "1";
    if live {
        chrome.refresh_seconds = Some(LIVE_REFRESH_SECONDS);
    }
    let job = jobs::get(&state, &viewer.caller, &slug, &id).await?;
    let history = jobs::executions(
        &state,
        &viewer.caller,
        &slug,
        &id,
        &ListExecutions {
            status: None,
            cursor: Some(q.cursor.clone()).filter(|c| !c.is_empty()),
            limit: 20,
        },
    )
    .await?;
    let recent = jobs::executions(
        &state,
        &viewer.caller,
        &slug,
        &id,
        &ListExecutions {
            status: None,
            cursor: None,
            limit: 50,
        },
    )
    .await?;
    let upcoming: Vec<(DateTime<Utc>, String)> = match &job.schedule {
        ScheduleView::Cron { cron, timezone } => jobs::preview_schedule(
            &viewer.caller,
            &PreviewInput {
                cron: Some(cron.clone()),
                timezone: Some(timezone.clone()),
                count: Some(5),
                after: None,
            },
        )?
        .runs
        .into_iter()
        .filter_map(|run| {
            DateTime::parse_from_rfc3339(&run.utc)
                .ok()
                .map(|utc| (utc.with_timezone(&Utc), run.local))
        })
        .collect(),
        ScheduleView::Once { at } => {
            if job.completed_at.is_none() {
                vec![(*at, at.to_rfc3339_opts(SecondsFormat::Secs, true))]
            } else {
                Vec::new()
            }
        }
    };
    let now = Utc::now();
    let tz = chrome.tz;
    let base = format!("/orgs/{slug}/jobs/{id}");
    let manage = chrome.may(Permission::ManageJobs);
    let body = html! {
        div.heading {
            h1 { (job.name) }
            @if job.enabled { span.badge.success { "enabled" } } @else { span.badge.neutral { "paused" } }
        }
        @if let Some(text) = done_notice(Some(&q.done)) { (layout::notice(text)) }
        @if let Some(reason) = &job.disabled_reason { p.alert role="alert" { "Disabled by Punctual: " (reason) } }
        @if manage {
            div.actions {
                a.button href=(format!("{base}/edit")) { "Edit" }
                form.inline method="post" action=(format!("{base}/run")) { (chrome.csrf_field()) button type="submit" { "Run now" } }
                @if job.enabled {
                    form.inline method="post" action=(format!("{base}/pause")) { (chrome.csrf_field()) button type="submit" { "Pause" } }
                } @else {
                    form.inline method="post" action=(format!("{base}/resume")) { (chrome.csrf_field()) button type="submit" { "Resume" } }
                }
                a.button.danger href=(format!("{base}/delete")) { "Delete" }
            }
        }
        div.grid {
            section {
                h2 { "Request" }
                dl {
                    dt { "Request" } dd { code { (job.request.method) " " (job.request.url) } }
                    dt { "Schedule" } dd { (schedule_text(&job.schedule, tz)) }
                    dt { "Next run" } dd { @match job.next_run_at { Some(at) => (layout::time(at, tz, now)), None => "—" } }
                    dt { "Timeout" } dd { (job.request.timeout_ms) " ms" }
                    dt { "Attempts" } dd { (job.retry.max_attempts) " (backoff " (job.retry.min_backoff_ms) "–" (job.retry.max_backoff_ms) " ms)" }
                    dt { "Concurrency" } dd { (job.concurrency) }
                    dt { "Missed runs" } dd { (job.missed_runs) }
                    @if let Some(key) = &job.key { dt { "Key" } dd { code { (key) } } }
                    dt { "Failures in a row" } dd { (job.consecutive_failures) }
                }
            }
            section {
                h2 { "Next runs" }
                @if upcoming.is_empty() {
                    p.muted { "No upcoming runs." }
                } @else {
                    @if !job.enabled { p.muted { "Paused: these are the times it would run." } }
                    ol.runs {
                        @for (utc, local) in &upcoming {
                            li { (layout::time(*utc, tz, now)) br; small.muted { "job's zone: " (local) } }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Duration and lag" }
            (chart::durations(&recent.data))
        }
        section {
            div.heading {
                h2 { "Executions" }
                @if live {
                    a href=(base) { "Stop live refresh" }
                } @else {
                    a href=(format!("{base}?live=1")) { "Live refresh (every " (LIVE_REFRESH_SECONDS) " s)" }
                }
            }
            (executions_table(&slug, &history.data, tz, now))
            nav.pager aria-label="Execution pages" {
                @if !q.cursor.is_empty() { a href=(base) { "Newest" } }
                @if let Some(cursor) = &history.next_cursor {
                    a rel="next" href=(format!("{base}?{}", serde_urlencoded::to_string([("cursor", cursor.as_str())]).unwrap_or_default())) { "Older" }
                }
            }
        }
    };
    Ok(layout::ok(layout::page(&chrome, &job.name, body)))
}

fn executions_table(
    slug: &str,
    executions: &[ExecutionSummary],
    tz: Tz,
    now: DateTime<Utc>,
) -> Markup {
    html! {
        @if executions.is_empty() {
            p.muted { "No executions yet." }
        } @else {
            div.scroll {
                table.executions {
                    thead { tr {
                        th scope="col" { "Scheduled for" } th scope="col" { "Status" } th scope="col" { "Code" }
                        th scope="col" { "Lag" } th scope="col" { "Duration" } th scope="col" { "Attempt" } th scope="col" { "Trigger" }
                    } }
                    tbody {
                        @for e in executions {
                            tr {
                                td { a href=(format!("/orgs/{slug}/executions/{}", e.id)) { (layout::time(e.scheduled_for, tz, now)) } }
                                td { (status_badge(&e.status)) }
                                td { @match e.status_code { Some(code) => (code), None => "—" } }
                                td { @match e.lag_ms { Some(ms) => { (ms) " ms" } None => "—" } }
                                td { @match e.duration_ms { Some(ms) => { (ms) " ms" } None => "—" } }
                                td { (e.attempt) }
                                td { (e.trigger) }
                            }
                        }
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------
// Actions.

async fn pause(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, ConsoleError> {
    let (slug, id) = path.into_inner();
    jobs::pause(&state, &viewer.caller, &slug, &id).await?;
    Ok(layout::redirect(&format!(
        "/orgs/{slug}/jobs/{id}?done=paused"
    )))
}

async fn resume(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, ConsoleError> {
    let (slug, id) = path.into_inner();
    jobs::resume(&state, &viewer.caller, &slug, &id).await?;
    Ok(layout::redirect(&format!(
        "/orgs/{slug}/jobs/{id}?done=resumed"
    )))
}

async fn run_now(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, ConsoleError> {
    let (slug, id) = path.into_inner();
    jobs::trigger(&state, &viewer.caller, &slug, &id).await?;
    Ok(layout::redirect(&format!(
        "/orgs/{slug}/jobs/{id}?done=triggered"
    )))
}

async fn confirm_delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    let (slug, id) = path.into_inner();
    let chrome = Chrome::load(&state, &viewer, Some(&slug), req.path()).await?;
    let job = jobs::get(&state, &viewer.caller, &slug, &id).await?;
    require_manage(&chrome)?;
    let title = format!("Delete {}?", job.name);
    let body = html! {
        h1 { (title) }
        p { "The job and its whole execution history will be deleted. This cannot be undone." }
        form.inline method="post" action=(format!("/orgs/{slug}/jobs/{id}/delete")) {
            (chrome.csrf_field())
            button.danger type="submit" { "Delete the job" }
        }
        " "
        a href=(format!("/orgs/{slug}/jobs/{id}")) { "Cancel" }
    };
    Ok(layout::ok(layout::page(&chrome, &title, body)))
}

async fn delete(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, ConsoleError> {
    let (slug, id) = path.into_inner();
    jobs::delete(&state, &viewer.caller, &slug, &id).await?;
    Ok(layout::redirect(&format!("/orgs/{slug}/jobs?done=deleted")))
}

async fn execution(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    let (slug, id) = path.into_inner();
    let chrome = Chrome::load(&state, &viewer, Some(&slug), req.path()).await?;
    let execution = jobs::execution(&state, &viewer.caller, &slug, &id).await?;
    let e = &execution.summary;
    let job = jobs::get(&state, &viewer.caller, &slug, &e.job_id.to_string()).await?;
    let now = Utc::now();
    let tz = chrome.tz;
    let title = format!("Execution of {}", job.name);
    let body = html! {
        p { a href=(format!("/orgs/{slug}/jobs/{}", job.id)) { "← " (job.name) } }
        h1 { "Execution " (status_badge(&e.status)) }
        dl {
            dt { "Scheduled for" } dd { (layout::time(e.scheduled_for, tz, now)) }
            dt { "Trigger" } dd { (e.trigger) }
            dt { "Attempt" } dd { (e.attempt) }
            dt { "Started" } dd { @match e.started_at { Some(at) => (layout::time(at, tz, now)), None => "—" } }
            dt { "Finished" } dd { @match e.finished_at { Some(at) => (layout::time(at, tz, now)), None => "—" } }
            dt { "Lag" } dd { @match e.lag_ms { Some(ms) => { (ms) " ms" } None => "—" } }
            dt { "Duration" } dd { @match e.duration_ms { Some(ms) => { (ms) " ms" } None => "—" } }
            dt { "Response status" } dd { @match e.status_code { Some(code) => (code), None => "—" } }
            @if let Some(error) = &e.error { dt { "Error" } dd.error { (error) } }
        }
        section {
            h2 { "Request sent" }
            p.muted { "As the job is configured now; requests are signed with the organization's secret (Standard Webhooks headers)." }
            pre { (job.request.method) " " (job.request.url) "\n"
                @for (name, value) in &job.request.headers { (name) ": " (value) "\n" }
                @if let Some(body) = &job.request.body { "\n" (body) }
            }
        }
        section {
            h2 { "Response kept" }
            @match &execution.response_body {
                Some(body) if !body.is_empty() => pre { (body) },
                _ => p.muted { "No response body was kept." },
            }
        }
    };
    Ok(layout::ok(layout::page(&chrome, &title, body)))
}
