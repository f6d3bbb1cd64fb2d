//! Jobs and their executions: create, upsert by key, list, get, patch, delete,
//! pause, resume, trigger, execution history, and the schedule preview.
//!
//! Members (and member API keys) may do all of it; another organization's jobs and
//! executions are "not found". After a change that may move the earliest run, the
//! engine is woken so it re-reads `next_run_at`.

mod changes;
mod input;
mod preview;
mod views;

use chrono::{DateTime, Utc};
use punctual_auth::Permission;
use punctual_domain::{ExecutionStatus, JobKey, JobSpec, RequestBody, Schedule};
use punctual_persistence::entities::{job, organization};
use punctual_persistence::jobs::{self, JobFilter, JobRuntime, Position};
use punctual_persistence::PersistenceError;
use serde_json::{json, Value};
use uuid::Uuid;

pub use input::{JobInput, RequestInput, RetryInput, ScheduleInput};
pub use preview::{preview, Preview, PreviewInput, PreviewRun, MAX_PREVIEW_COUNT};
pub use views::{ExecutionSummary, ExecutionView, JobView, RequestView, RetryView, ScheduleView};

use self::changes::{job_metadata, update_metadata};
pub(crate) use self::input::resolves_to_blocked_address;
use self::input::{
    apply_patch, input_document, job_input, parse_job, stored_spec, to_micros, Rules,
};
use crate::caller::Caller;
use crate::pagination::Page;
use crate::service::audit::Entry;
use crate::service::organizations::{authorize, OrgAccess};
use crate::service::plans;
use crate::service::ServiceError;
use crate::state::AppState;

type Result<T> = std::result::Result<T, ServiceError>;

/// How often a save that raced with another one is retried before giving up (409).
const SAVE_ATTEMPTS: usize = 3;

/// The current time, to the microsecond (what PostgreSQL keeps), so that what is
/// returned is exactly what is stored on either engine.
fn now() -> DateTime<Utc> {
    to_micros(Utc::now())
}

/// Whether a save created the job or replaced an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// A new job (201).
    Created,
    /// An existing job, changed or not (200).
    Replaced,
}

/// Filters and paging of [`list`], as given in the query string.
#[derive(Debug, Clone, Default)]
pub struct ListJobs {
    /// `true` or `false`.
    pub enabled: Option<String>,
    /// A job key.
    pub key: Option<String>,
    /// From a previous page.
    pub cursor: Option<String>,
    /// Page size (already checked).
    pub limit: u64,
}

/// Filters and paging of [`executions`], as given in the query string.
#[derive(Debug, Clone, Default)]
pub struct ListExecutions {
    /// An execution status.
    pub status: Option<String>,
    /// From a previous page.
    pub cursor: Option<String>,
    /// Page size (already checked).
    pub limit: u64,
}

async fn access(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    permission: Permission,
) -> Result<OrgAccess> {
    let access = authorize(state, caller, slug, permission).await?;
    tracing::Span::current().record("org_id", tracing::field::display(access.org.id));
    Ok(access)
}

/// A path id: anything but a UUID names no job (404, not 400).
fn path_id(raw: &str, what: &'static str) -> Result<Uuid> {
    let id = raw.parse().map_err(|_| ServiceError::NotFound(what))?;
    tracing::Span::current().record("job_id", tracing::field::display(&id));
    Ok(id)
}

/// The runtime fields of a new job.
fn fresh_runtime(spec: &JobSpec, now: DateTime<Utc>) -> JobRuntime {
    JobRuntime {
        next_run_at: if spec.enabled {
            spec.schedule.next_after(now)
        } else {
            None
        },
        consecutive_failures: 0,
        disabled_reason: None,
        completed_at: None,
    }
}

/// When a paused job resumes: its next run after now, or, for a once-job whose
/// time passed while it was paused and that has not run, that time, so that the
/// engine treats it as a run missed during downtime (recorded skipped, or run
/// once within the catch-up grace) instead of leaving it enabled with no run.
fn next_run_on_resume(
    schedule: &Schedule,
    runtime: &JobRuntime,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match schedule {
        Schedule::Once { at } if runtime.completed_at.is_none() => Some(*at),
        _ => schedule.next_after(now),
    }
}

/// The runtime fields after `row` (whose spec is `previous`) is saved as `spec`:
/// `next_run_at` is recomputed from now when the schedule changes or the job is
/// enabled, cleared when it is disabled, and kept otherwise; enabling also forgets
/// the failure streak and the reason of an automatic disable.
fn runtime_after(
    row: &job::Model,
    previous: &JobSpec,
    spec: &JobSpec,
    now: DateTime<Utc>,
) -> JobRuntime {
    let current = JobRuntime::of(row);
    let schedule_changed = previous.schedule != spec.schedule;
    let enabling = spec.enabled && !row.enabled;
    JobRuntime {
        next_run_at: match (spec.enabled, schedule_changed, enabling) {
            (false, _, _) => None,
            (true, true, _) => spec.schedule.next_after(now),
            (true, false, true) => next_run_on_resume(&spec.schedule, &current, now),
            (true, false, false) => current.next_run_at,
        },
        consecutive_failures: if enabling {
            0
        } else {
            current.consecutive_failures
        },
        disabled_reason: if enabling {
            None
        } else {
            current.disabled_reason
        },
        completed_at: if schedule_changed {
            None
        } else {
            current.completed_at
        },
    }
}

fn key_taken(spec: &JobSpec) -> impl Fn(PersistenceError) -> ServiceError + '_ {
    move |error| {
        if jobs::is_unique_violation(&error) {
            let key = spec.key.as_ref().map(JobKey::as_str).unwrap_or_default();
            ServiceError::Conflict(format!(
                "a job with the key `{key}` exists; use PUT .../jobs/by-key/{key} to replace it"
            ))
        } else {
            ServiceError::Store(error)
        }
    }
}

async fn view_of(state: &AppState, row: &job::Model, spec: &JobSpec) -> Result<JobView> {
    let latest =
        jobs::latest_executions(state.database.conn(), row.organization_id, &[row.id]).await?;
    Ok(JobView::new(row, spec, latest.get(&row.id)))
}

/// The deployment's and `org`'s plan's rules for a job document.
fn parse_rules(state: &AppState, org: &organization::Model) -> Rules {
    let max_body_bytes = plans::limits_of(state, org).map_or(RequestBody::MAX_BYTES, |limits| {
        usize::try_from(limits.max_request_body_bytes).unwrap_or(usize::MAX)
    });
    Rules {
        allow_private_networks: state.allow_private_networks,
        max_body_bytes,
    }
}

/// Creates a job (`201`); a key another job has is a 409.
#[tracing::instrument(skip_all, fields(org_id, job_id))]
pub async fn create(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    input: &JobInput,
) -> Result<JobView> {
    let access = access(state, caller, slug, Permission::ManageJobs).await?;
    let now = now();
    let spec = parse_job(input, None, parse_rules(state, &access.org), now).await?;
    plans::enforce(state, &access.org, &spec, now).await?;
    let transaction = state.database.begin_write().await?;
    let row = jobs::insert_job(
        &transaction,
        access.org.id,
        &spec,
        &fresh_runtime(&spec, now),
        now,
    )
    .await
    .map_err(key_taken(&spec))?;
    plans::check_job_count(state, &access.org, &transaction).await?;
    Entry::by(caller, "job.created")
        .org(access.org.id)
        .target("job", row.id)
        .metadata(job_metadata(&spec))
        .record(&transaction, now)
        .await?;
    transaction.commit().await?;
    tracing::Span::current().record("job_id", tracing::field::display(row.id));
    state.engine_wakeup.notify_one();
    Ok(JobView::new(&row, &spec, None))
}

/// Creates or replaces the job with this key. The same document twice gives the same
/// job, and the second time nothing is written (`updated_at` stays).
#[tracing::instrument(skip_all, fields(org_id, job_id))]
pub async fn upsert_by_key(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    key: &str,
    input: &JobInput,
) -> Result<(JobView, Saved)> {
    let access = access(state, caller, slug, Permission::ManageJobs).await?;
    let key = JobKey::parse(key)?;
    if input
        .key
        .as_deref()
        .is_some_and(|given| given != key.as_str())
    {
        return Err(ServiceError::invalid(
            "key",
            "must be omitted or equal to the key in the path",
        ));
    }
    let input = JobInput {
        key: Some(key.as_str().to_owned()),
        ..input.clone()
    };
    let org_id = access.org.id;
    for _ in 0..SAVE_ATTEMPTS {
        let now = now();
        let snapshot = jobs::find_job_by_key(state.database.conn(), org_id, key.as_str()).await?;
        let previous = snapshot.as_ref().map(stored_spec).transpose()?;
        let spec = parse_job(
            &input,
            previous.as_ref().map(|p| &p.schedule),
            parse_rules(state, &access.org),
            now,
        )
        .await?;
        plans::enforce(state, &access.org, &spec, now).await?;
        let saved = match (snapshot, previous) {
            (Some(row), Some(previous)) if previous == spec => Some((row, Saved::Replaced)),
            (Some(row), Some(previous)) => replace(state, caller, &row, &previous, &spec, now)
                .await?
                .map(|row| (row, Saved::Replaced)),
            _ => insert_keyed(state, caller, &access.org, &key, &spec, now)
                .await?
                .map(|row| (row, Saved::Created)),
        };
        if let Some((row, saved)) = saved {
            tracing::Span::current().record("job_id", tracing::field::display(row.id));
            return Ok((view_of(state, &row, &spec).await?, saved));
        }
    }
    Err(ServiceError::Conflict(
        "the job kept changing while it was being saved; try again".to_owned(),
    ))
}

/// Inserts a keyed job unless one with the key appeared meanwhile (`None`: look again).
async fn insert_keyed(
    state: &AppState,
    caller: &Caller,
    org: &organization::Model,
    key: &JobKey,
    spec: &JobSpec,
    now: DateTime<Utc>,
) -> Result<Option<job::Model>> {
    let org_id = org.id;
    let transaction = state.database.begin_write().await?;
    if jobs::lock_job_by_key(&transaction, org_id, key.as_str())
        .await?
        .is_some()
    {
        return Ok(None);
    }
    let row =
        match jobs::insert_job(&transaction, org_id, spec, &fresh_runtime(spec, now), now).await {
            Ok(row) => row,
            Err(error) if jobs::is_unique_violation(&error) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
    plans::check_job_count(state, org, &transaction).await?;
    Entry::by(caller, "job.created")
        .org(org_id)
        .target("job", row.id)
        .metadata(job_metadata(spec))
        .record(&transaction, now)
        .await?;
    transaction.commit().await?;
    state.engine_wakeup.notify_one();
    Ok(Some(row))
}

/// Saves `spec` over `snapshot` if the stored spec is still `previous` (`None`: it
/// changed or vanished meanwhile, look again). Runtime fields are taken from the locked row, so a
/// concurrent engine update is never overwritten with stale values.
async fn replace(
    state: &AppState,
    caller: &Caller,
    snapshot: &job::Model,
    previous: &JobSpec,
    spec: &JobSpec,
    now: DateTime<Utc>,
) -> Result<Option<job::Model>> {
    let transaction = state.database.begin_write().await?;
    let Some(current) = jobs::lock_job(&transaction, snapshot.organization_id, snapshot.id).await?
    else {
        return Ok(None);
    };
    if stored_spec(&current)? != *previous {
        return Ok(None);
    }
    let runtime = runtime_after(&current, previous, spec, now);
    let row = jobs::update_job(&transaction, &current, spec, &runtime, now)
        .await
        .map_err(key_taken(spec))?;
    Entry::by(caller, "job.updated")
        .org(row.organization_id)
        .target("job", row.id)
        .metadata(update_metadata(previous, spec))
        .record(&transaction, now)
        .await?;
    transaction.commit().await?;
    state.engine_wakeup.notify_one();
    Ok(Some(row))
}

/// A page of the organization's jobs, oldest first, each with its newest execution.
#[tracing::instrument(skip_all, fields(org_id, job_id))]
pub async fn list(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    query: &ListJobs,
) -> Result<Page<JobView>> {
    let access = access(state, caller, slug, Permission::ReadOrg).await?;
    let filter = JobFilter {
        enabled: query
            .enabled
            .as_deref()
            .map(|text| match text {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ServiceError::invalid("enabled", "must be true or false")),
            })
            .transpose()?,
        key: query.key.clone(),
    };
    let after = decode_cursor(query.cursor.as_deref())?;
    let mut rows = jobs::list_jobs(
        state.database.conn(),
        access.org.id,
        &filter,
        after,
        query.limit + 1,
    )
    .await?;
    let next_cursor = next_cursor(&mut rows, query.limit, |row| (row.created_at, row.id));
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let latest = jobs::latest_executions(state.database.conn(), access.org.id, &ids).await?;
    let data = rows
        .iter()
        .map(|row| Ok(JobView::new(row, &stored_spec(row)?, latest.get(&row.id))))
        .collect::<Result<Vec<_>>>()?;
    Ok(Page { data, next_cursor })
}

/// One job with its newest execution.
#[tracing::instrument(skip_all, fields(org_id, job_id))]
pub async fn get(state: &AppState, caller: &Caller, slug: &str, id: &str) -> Result<JobView> {
    let access = access(state, caller, slug, Permission::ReadOrg).await?;
    let id = path_id(id, "job")?;
    let (row, latest) = state
        .job_reads
        .find(access.org.id, id)
        .await?
        .ok_or(ServiceError::NotFound("job"))?;
    Ok(JobView::new(&row, &stored_spec(&row)?, latest.as_ref()))
}

/// Changes some fields of a job: `patch` is a JSON merge patch (RFC 7396) of the job
/// document (`null` removes an optional field or a header); a `schedule` of another
/// `type` replaces the schedule whole. The result is validated like a new job.
/// Nothing is written when nothing changes.
#[tracing::instrument(skip_all, fields(org_id, job_id))]
pub async fn update(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    id: &str,
    patch: &Value,
) -> Result<JobView> {
    let access = access(state, caller, slug, Permission::ManageJobs).await?;
    let id = path_id(id, "job")?;
    if !patch.is_object() {
        return Err(ServiceError::invalid("body", "must be a JSON object"));
    }
    for _ in 0..SAVE_ATTEMPTS {
        let now = now();
        let snapshot = jobs::find_job(state.database.conn(), access.org.id, id)
            .await?
            .ok_or(ServiceError::NotFound("job"))?;
        let previous = stored_spec(&snapshot)?;
        let mut document = input_document(&previous);
        apply_patch(&mut document, patch);
        let input = job_input(document)?;
        let spec = parse_job(
            &input,
            Some(&previous.schedule),
            parse_rules(state, &access.org),
            now,
        )
        .await?;
        if spec == previous {
            return view_of(state, &snapshot, &spec).await;
        }
        plans::enforce(state, &access.org, &spec, now).await?;
        if let Some(row) = replace(state, caller, &snapshot, &previous, &spec, now).await? {
            return view_of(state, &row, &spec).await;
        }
    }
    Err(ServiceError::Conflict(
        "the job kept changing while it was being saved; try again".to_owned(),
    ))
}

/// Deletes a job and its executions.
#[tracing::instrument(skip_all, fields(org_id, job_id))]
pub async fn delete(state: &AppState, caller: &Caller, slug: &str, id: &str) -> Result<()> {
    let access = access(state, caller, slug, Permission::ManageJobs).await?;
    let id = path_id(id, "job")?;
    let transaction = state.database.begin_write().await?;
    // Read (not locked) first so the entry can name the job: locking the row ahead
    // of the DELETE would widen the window in which it deadlocks with the engine
    // recording an outcome (execution row, then job row).
    let row = jobs::find_job(&transaction, access.org.id, id)
        .await?
        .ok_or(ServiceError::NotFound("job"))?;
    if !jobs::delete_job(&transaction, access.org.id, id).await? {
        return Err(ServiceError::NotFound("job"));
    }
    Entry::by(caller, "job.deleted")
        .org(access.org.id)
        .target("job", id)
        .metadata(json!({"name": row.name, "key": row.key}))
        .record(&transaction, now())
        .await?;
    transaction.commit().await?;
    // An occurrence claimed ahead of its time is given up at the engine's next
    // wake-up: this one, not whenever something else wakes it.
    state.engine_wakeup.notify_one();
    tracing::info!("job deleted");
    Ok(())
}

/// Pauses a job: disabled, no next run. Pausing a paused job changes nothing.
#[tracing::instrument(skip_all, fields(org_id, job_id))]
pub async fn pause(state: &AppState, caller: &Caller, slug: &str, id: &str) -> Result<JobView> {
    set_enabled(state, caller, slug, id, false).await
}

/// Resumes a job: enabled, next run recomputed from now, failure streak and automatic
/// disable reason forgotten. On an enabled job only the failure streak is reset.
#[tracing::instrument(skip_all, fields(org_id, job_id))]
pub async fn resume(state: &AppState, caller: &Caller, slug: &str, id: &str) -> Result<JobView> {
    set_enabled(state, caller, slug, id, true).await
}

async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    id: &str,
    enabled: bool,
) -> Result<JobView> {
    let access = access(state, caller, slug, Permission::ManageJobs).await?;
    let id = path_id(id, "job")?;
    let now = now();
    let transaction = state.database.begin_write().await?;
    let current = jobs::lock_job(&transaction, access.org.id, id)
        .await?
        .ok_or(ServiceError::NotFound("job"))?;
    let mut spec = stored_spec(&current)?;
    let mut runtime = JobRuntime::of(&current);
    match (enabled, current.enabled) {
        (false, true) => runtime.next_run_at = None,
        (true, false) => {
            runtime.next_run_at = next_run_on_resume(&spec.schedule, &runtime, now);
            runtime.consecutive_failures = 0;
            runtime.disabled_reason = None;
        }
        (true, true) => {
            runtime.consecutive_failures = 0;
            runtime.disabled_reason = None;
        }
        (false, false) => {}
    }
    spec.enabled = enabled;
    let unchanged = runtime == JobRuntime::of(&current) && enabled == current.enabled;
    let row = if unchanged {
        current
    } else {
        jobs::update_job(&transaction, &current, &spec, &runtime, now).await?
    };
    // Recorded even when nothing changed (pausing a paused job): someone asked.
    let mut metadata = job_metadata(&spec);
    if let Value::Object(map) = &mut metadata {
        map.insert("changed".to_owned(), Value::Bool(!unchanged));
    }
    Entry::by(caller, if enabled { "job.resumed" } else { "job.paused" })
        .org(access.org.id)
        .target("job", row.id)
        .metadata(metadata)
        .record(&transaction, now)
        .await?;
    transaction.commit().await?;
    // Resumed, it may be due; paused, an occurrence claimed ahead of its time is
    // given up at the engine's next wake-up: this one.
    state.engine_wakeup.notify_one();
    view_of(state, &row, &spec).await
}

/// Runs a job now, once, whatever its schedule (paused jobs too): a `pending` manual
/// execution for the engine. `next_run_at` is not touched.
#[tracing::instrument(skip_all, fields(org_id, job_id))]
pub async fn trigger(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    id: &str,
) -> Result<ExecutionView> {
    let access = access(state, caller, slug, Permission::ManageJobs).await?;
    let id = path_id(id, "job")?;
    let job = jobs::find_job(state.database.conn(), access.org.id, id)
        .await?
        .ok_or(ServiceError::NotFound("job"))?;
    plans::check_execution_quota(state, &access.org, Utc::now()).await?;
    for _ in 0..SAVE_ATTEMPTS {
        // A transaction per attempt: on PostgreSQL a failed insert spoils the
        // transaction it ran in, and the retry needs a clean one.
        let transaction = state.database.begin_write().await?;
        let at = now();
        match jobs::insert_manual_execution(&transaction, access.org.id, id, at).await {
            Ok(execution) => {
                Entry::by(caller, "job.triggered")
                    .org(access.org.id)
                    .target("job", id)
                    .metadata(json!({
                        "name": job.name,
                        "key": job.key,
                        "execution_id": execution.id,
                    }))
                    .record(&transaction, at)
                    .await?;
                transaction.commit().await?;
                state.engine_wakeup.notify_one();
                tracing::info!(execution_id = %execution.id, "manual run requested");
                return Ok(ExecutionView::from(&execution));
            }
            // Two triggers in the same microsecond: take the next one.
            Err(error) if jobs::is_unique_violation(&error) => continue,
            Err(error) if jobs::is_foreign_key_violation(&error) => {
                return Err(ServiceError::NotFound("job"))
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(ServiceError::Conflict(
        "too many runs requested at once; try again".to_owned(),
    ))
}

/// A page of a job's executions, newest first.
#[tracing::instrument(skip_all, fields(org_id, job_id))]
pub async fn executions(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    id: &str,
    query: &ListExecutions,
) -> Result<Page<ExecutionSummary>> {
    let access = access(state, caller, slug, Permission::ReadOrg).await?;
    let id = path_id(id, "job")?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<ExecutionStatus>)
        .transpose()?;
    let before = decode_cursor(query.cursor.as_deref())?;
    let conn = state.database.conn();
    jobs::find_job(conn, access.org.id, id)
        .await?
        .ok_or(ServiceError::NotFound("job"))?;
    let mut rows = jobs::list_executions(
        conn,
        access.org.id,
        id,
        status.as_ref().map(ExecutionStatus::as_str),
        before,
        query.limit + 1,
    )
    .await?;
    let next_cursor = next_cursor(&mut rows, query.limit, |row| (row.created_at, row.id));
    Ok(Page {
        data: rows.iter().map(ExecutionSummary::from).collect(),
        next_cursor,
    })
}

/// One execution with the response it got.
#[tracing::instrument(skip_all, fields(org_id, job_id))]
pub async fn execution(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    id: &str,
) -> Result<ExecutionView> {
    let access = access(state, caller, slug, Permission::ReadOrg).await?;
    let id: Uuid = id
        .parse()
        .map_err(|_| ServiceError::NotFound("execution"))?;
    let row = jobs::find_execution(state.database.conn(), access.org.id, id)
        .await?
        .ok_or(ServiceError::NotFound("execution"))?;
    tracing::Span::current().record("job_id", tracing::field::display(row.job_id));
    Ok(ExecutionView::from(&row))
}

/// The next runs of a schedule (any authenticated caller).
#[tracing::instrument(skip_all)]
pub fn preview_schedule(_caller: &Caller, input: &PreviewInput) -> Result<Preview> {
    preview(input, Utc::now())
}

// ------------------------------------------------------------------------------------
// Cursors: `<unix seconds>.<nanoseconds>.<id>` of the last row of a page. Opaque to
// clients; exact on both engines.

fn encode_cursor(created_at: DateTime<Utc>, id: Uuid) -> String {
    format!(
        "{}.{:09}.{}",
        created_at.timestamp(),
        created_at.timestamp_subsec_nanos(),
        id.simple()
    )
}

/// 9999-12-31T23:59:59Z, the last second a cursor may name.
const LAST_CURSOR_SECOND: i64 = 253_402_300_799;

pub(crate) fn decode_cursor(raw: Option<&str>) -> Result<Option<Position>> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let invalid = || ServiceError::invalid("cursor", "is not a cursor from this list");
    let mut parts = raw.splitn(3, '.');
    let (Some(seconds), Some(nanos), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let seconds: i64 = seconds.parse().map_err(|_| invalid())?;
    // Our cursors name rows written since 1970; a time outside what every
    // database stores (PostgreSQL's range ends before chrono's) is not ours.
    if !(0..=LAST_CURSOR_SECOND).contains(&seconds) {
        return Err(invalid());
    }
    let nanos: u32 = nanos.parse().map_err(|_| invalid())?;
    let created_at = DateTime::from_timestamp(seconds, nanos).ok_or_else(invalid)?;
    let id = Uuid::try_parse(id).map_err(|_| invalid())?;
    Ok(Some(Position { created_at, id }))
}

/// Cuts the extra row fetched to learn whether another page follows, and names the
/// cursor of that page.
pub(crate) fn next_cursor<T>(
    rows: &mut Vec<T>,
    limit: u64,
    position: impl Fn(&T) -> (DateTime<Utc>, Uuid),
) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(|row| {
        let (created_at, id) = position(row);
        encode_cursor(created_at, id)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn cursors_round_trip_to_the_nanosecond() {
        let created_at = DateTime::from_timestamp(1_790_000_000, 123_456_789).unwrap();
        let id = Uuid::now_v7();
        let cursor = encode_cursor(created_at, id);
        assert_eq!(
            decode_cursor(Some(&cursor)).unwrap(),
            Some(Position { created_at, id })
        );
        assert_eq!(decode_cursor(None).unwrap(), None);
        for bad in [
            "",
            "x",
            "1.2",
            "1.2.3",
            "a.0.00000000000000000000000000000000",
            // Times chrono holds but PostgreSQL does not.
            "-8000000000000.0.00000000000000000000000000000000",
            "-1.0.00000000000000000000000000000000",
            "253402300800.0.00000000000000000000000000000000",
        ] {
            assert!(decode_cursor(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_cursor_only_when_more_rows_follow() {
        let t = DateTime::from_timestamp(0, 0).unwrap();
        let id = Uuid::nil();
        let mut rows = vec![1, 2, 3];
        assert_eq!(next_cursor(&mut rows, 3, |_| (t, id)), None);
        assert_eq!(rows.len(), 3);
        let mut rows = vec![1, 2, 3];
        assert!(next_cursor(&mut rows, 2, |_| (t, id)).is_some());
        assert_eq!(rows, [1, 2]);
    }
}
