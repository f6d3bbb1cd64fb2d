//! Jobs and their executions, as the REST API needs them. Every query takes the
//! organization id; another organization's rows are never read or written.
//!
//! A job row stores a [`JobSpec`] column by column (headers as a JSON object text)
//! plus the runtime fields the engine relies on ([`JobRuntime`]): `next_run_at` is the
//! next occurrence to dispatch, NULL when the job is disabled or finished.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use punctual_domain::{
    CatchUpGrace, DomainError, Headers, HttpMethod, HttpTarget, JobKey, JobName, JobSpec,
    RequestBody, RetryPolicy, Schedule, TargetUrl, TimeoutMs,
};
use sea_orm::prelude::*;
use sea_orm::sea_query::{Alias, Order, Query, SimpleExpr};
use sea_orm::{
    ActiveValue::Set, Condition, ConnectionTrait, Iterable, QueryOrder, QuerySelect,
    SelectTwoModel, SelectorTrait, SqlErr,
};

use crate::entities::{execution, job, organization};
use crate::parameters::Parameters;
use crate::PersistenceError;

type Result<T> = std::result::Result<T, PersistenceError>;

/// `schedule_kind` of a cron job.
const KIND_CRON: &str = "cron";
/// `schedule_kind` of a one-off job.
const KIND_ONCE: &str = "once";

/// The fields of a job the engine and the job's lifecycle own, as opposed to the
/// user's [`JobSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRuntime {
    /// The next occurrence to dispatch; `None` when disabled or finished.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Failed runs in a row.
    pub consecutive_failures: i32,
    /// Why the engine disabled the job, if it did.
    pub disabled_reason: Option<String>,
    /// When a one-off job finished.
    pub completed_at: Option<DateTime<Utc>>,
}

impl JobRuntime {
    /// The runtime fields of a stored job.
    pub fn of(model: &job::Model) -> Self {
        Self {
            next_run_at: model.next_run_at,
            consecutive_failures: model.consecutive_failures,
            disabled_reason: model.disabled_reason.clone(),
            completed_at: model.completed_at,
        }
    }
}

/// A place in a list ordered by `(created_at, id)`: lists resume strictly after (or
/// before, for newest-first lists) it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// `created_at` of the last row seen.
    pub created_at: DateTime<Utc>,
    /// `id` of the last row seen.
    pub id: Uuid,
}

/// Filters of [`list_jobs`].
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only enabled (`true`) or only disabled (`false`) jobs.
    pub enabled: Option<bool>,
    /// Only the job with this key.
    pub key: Option<String>,
}

/// Whether `error` is a unique-constraint violation (a job key taken, an occurrence
/// already recorded).
pub fn is_unique_violation(error: &PersistenceError) -> bool {
    matches!(
        error,
        PersistenceError::Query(db) if matches!(db.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
    )
}

/// Whether `error` is a foreign-key violation (the job was deleted meanwhile).
pub fn is_foreign_key_violation(error: &PersistenceError) -> bool {
    matches!(
        error,
        PersistenceError::Query(db) if matches!(db.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_)))
    )
}

// ------------------------------------------------------------------------------------
// Row <-> spec

/// Reads a stored job back into its spec. Values were checked when saved, so an error
/// means the row was changed behind Punctual's back. The URL is not checked against
/// the private ranges here: that happened at save time and happens again before every
/// request.
pub fn job_spec(model: &job::Model) -> std::result::Result<JobSpec, DomainError> {
    let headers: BTreeMap<String, String> = serde_json::from_str(&model.headers).map_err(|_| {
        DomainError::invalid("request.headers", "stored headers are not a JSON object")
    })?;
    let schedule = match model.schedule_kind.as_str() {
        KIND_CRON => Schedule::parse_cron(
            model.cron.as_deref().unwrap_or_default(),
            model.timezone.as_deref().unwrap_or_default(),
        )?,
        KIND_ONCE => Schedule::Once {
            at: model
                .run_at
                .ok_or_else(|| DomainError::invalid("schedule.at", "missing"))?,
        },
        _ => return Err(DomainError::invalid("schedule.type", "unknown kind")),
    };
    Ok(JobSpec {
        name: JobName::parse(&model.name)?,
        key: model.key.as_deref().map(JobKey::parse).transpose()?,
        request: HttpTarget {
            url: TargetUrl::parse(&model.url, true)?,
            method: HttpMethod::parse(&model.method)?,
            headers: Headers::parse(&headers)?,
            body: model.body.as_deref().map(RequestBody::parse).transpose()?,
            timeout: TimeoutMs::new(non_negative(model.timeout_ms))?,
        },
        schedule,
        retry: RetryPolicy::new(
            u32::try_from(model.retry_max_attempts).unwrap_or(0),
            non_negative(model.retry_min_backoff_ms),
            non_negative(model.retry_max_backoff_ms),
        )?,
        concurrency: model.concurrency.parse()?,
        missed_runs: model.missed_runs.parse()?,
        catch_up_grace: CatchUpGrace::from_millis(non_negative(model.catch_up_grace_ms))?,
        enabled: model.enabled,
    })
}

fn non_negative(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn stored(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn headers_json(headers: &Headers) -> String {
    let object: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(name, value)| (name.to_owned(), serde_json::Value::from(value)))
        .collect();
    serde_json::Value::Object(object).to_string()
}

/// Writes `spec` and `runtime` into every column they own.
fn set_columns(model: &mut job::ActiveModel, spec: &JobSpec, runtime: &JobRuntime) {
    let (kind, cron, timezone, run_at) = match &spec.schedule {
        Schedule::Cron { cron, timezone } => (
            KIND_CRON,
            Some(cron.as_str().to_owned()),
            Some(timezone.name().to_owned()),
            None,
        ),
        Schedule::Once { at } => (KIND_ONCE, None, None, Some(*at)),
    };
    model.key = Set(spec.key.as_ref().map(|key| key.as_str().to_owned()));
    model.name = Set(spec.name.as_str().to_owned());
    model.url = Set(spec.request.url.as_str().to_owned());
    model.method = Set(spec.request.method.as_str().to_owned());
    model.headers = Set(headers_json(&spec.request.headers));
    model.body = Set(spec.request.body.as_ref().map(|b| b.as_str().to_owned()));
    model.timeout_ms = Set(stored(spec.request.timeout.get()));
    model.schedule_kind = Set(kind.to_owned());
    model.cron = Set(cron);
    model.timezone = Set(timezone);
    model.run_at = Set(run_at);
    model.retry_max_attempts = Set(i32::try_from(spec.retry.max_attempts()).unwrap_or(i32::MAX));
    model.retry_min_backoff_ms = Set(stored(spec.retry.min_backoff_ms()));
    model.retry_max_backoff_ms = Set(stored(spec.retry.max_backoff_ms()));
    model.concurrency = Set(spec.concurrency.as_str().to_owned());
    model.missed_runs = Set(spec.missed_runs.as_str().to_owned());
    model.catch_up_grace_ms = Set(stored(spec.catch_up_grace.millis()));
    model.enabled = Set(spec.enabled);
    model.next_run_at = Set(runtime.next_run_at);
    model.consecutive_failures = Set(runtime.consecutive_failures);
    model.disabled_reason = Set(runtime.disabled_reason.clone());
    model.completed_at = Set(runtime.completed_at);
}

// ------------------------------------------------------------------------------------
// Jobs

/// Inserts a new job (a taken key is a unique violation, see [`is_unique_violation`])
/// and counts it in its organization's `job_count`. Call inside a transaction:
/// the organization's row stays locked until it ends, so [`job_count`] read in
/// the same transaction is exact whatever else is being created.
pub async fn insert_job(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    spec: &JobSpec,
    runtime: &JobRuntime,
    now: DateTime<Utc>,
) -> Result<job::Model> {
    let mut model = job::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    set_columns(&mut model, spec, runtime);
    // The count first: concurrent creators then queue on the organization's row
    // before their inserts' foreign-key checks share-lock it. The other way round
    // each waiting creator had already added its share lock to the row the first
    // was updating, and every read of that row on PostgreSQL expanded a
    // MultiXact of up to one member per creator (11% of PostgreSQL's CPU in a
    // profile of W4's POSTs).
    change_job_count(db, organization_id, 1).await?;
    Ok(model.insert(db).await?)
}

async fn change_job_count(db: &impl ConnectionTrait, organization_id: Uuid, by: i64) -> Result<()> {
    organization::Entity::update_many()
        .col_expr(
            organization::Column::JobCount,
            Expr::col(organization::Column::JobCount).add(by),
        )
        .filter(organization::Column::Id.eq(organization_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The number of jobs the organization has (its `job_count`).
pub async fn job_count(db: &impl ConnectionTrait, organization_id: Uuid) -> Result<u64> {
    let count = organization::Entity::find_by_id(organization_id)
        .select_only()
        .column(organization::Column::JobCount)
        .into_tuple::<i64>()
        .one(db)
        .await?
        .unwrap_or(0);
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Overwrites a stored job with `spec` and `runtime`, setting `updated_at` to `now`.
pub async fn update_job(
    db: &impl ConnectionTrait,
    existing: &job::Model,
    spec: &JobSpec,
    runtime: &JobRuntime,
    now: DateTime<Utc>,
) -> Result<job::Model> {
    let mut model: job::ActiveModel = existing.clone().into();
    set_columns(&mut model, spec, runtime);
    model.updated_at = Set(now);
    Ok(model.update(db).await?)
}

fn scoped(organization_id: Uuid) -> Select<job::Entity> {
    job::Entity::find().filter(job::Column::OrganizationId.eq(organization_id))
}

/// The job `id` of the organization.
pub async fn find_job(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<job::Model>> {
    Ok(scoped(organization_id)
        .filter(job::Column::Id.eq(id))
        .one(db)
        .await?)
}

/// The id of the newest execution of the `jobs` row in the enclosing query, as a
/// scalar subquery: one walk down the job's (job_id, created_at, id) index that
/// stops at the first entry, so its cost does not grow with the job's history.
fn newest_execution_of_job() -> SimpleExpr {
    let latest = Alias::new("latest");
    let newest = Query::select()
        .column((latest.clone(), execution::Column::Id))
        .from_as(execution::Entity, latest.clone())
        .and_where(
            Expr::col((latest.clone(), execution::Column::JobId))
                .equals((job::Entity, job::Column::Id)),
        )
        .order_by((latest.clone(), execution::Column::CreatedAt), Order::Desc)
        .order_by((latest, execution::Column::Id), Order::Desc)
        .limit(1)
        .to_owned();
    SimpleExpr::SubQuery(None, Box::new(newest.into_sub_query_statement()))
}

/// A job and its newest execution, if it has one: what reading one job shows.
pub type JobWithLatest = (job::Model, Option<execution::Model>);

/// Keys read by one statement at most; longer lists take several.
pub const MAX_KEYS_PER_READ: usize = 64;

/// The jobs with these `(organization id, job id)` keys, each with its newest
/// execution, in one statement per [`MAX_KEYS_PER_READ`] keys. A key whose job
/// does not exist or belongs to another organization is absent from the result.
pub async fn find_jobs_with_latest_execution(
    db: &impl ConnectionTrait,
    keys: &[(Uuid, Uuid)],
) -> Result<HashMap<(Uuid, Uuid), JobWithLatest>> {
    let backend = db.get_database_backend();
    let mut found = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_KEYS_PER_READ) {
        for row in db
            .query_all(jobs_with_latest_execution(backend, chunk))
            .await?
        {
            let (job, latest) =
                SelectTwoModel::<job::Model, execution::Model>::from_raw_query_result(row)?;
            found.insert((job.organization_id, job.id), (job, latest));
        }
    }
    Ok(found)
}

/// The statement reading `keys` (1 to [`MAX_KEYS_PER_READ`]). Their number is
/// rounded up to a power of two, the last key repeated, so a backend prepares
/// at most seven statement texts.
fn jobs_with_latest_execution(
    backend: sea_orm::DatabaseBackend,
    keys: &[(Uuid, Uuid)],
) -> sea_orm::Statement {
    let last = keys.last().copied().unwrap_or_default();
    let padded = keys
        .iter()
        .copied()
        .chain(std::iter::repeat(last))
        .take(keys.len().next_power_of_two());
    let mut p = Parameters::new(backend);
    let columns = job_and_execution_columns();
    let sql = match backend {
        // Each job through the primary key and its newest execution through
        // (job_id, created_at, id), whatever the planner believes of the tables:
        // on a young table without statistics it would rather scan the whole
        // organization, or all jobs, once per statement, and a plan cached for a
        // small table kept walking the organization's index (~1,000 buffers a
        // statement) as the table grew. `OFFSET 0` keeps the lookup a
        // parameterized subquery; the organization is checked on the row found.
        sea_orm::DatabaseBackend::Postgres => {
            let (organizations, ids): (Vec<Uuid>, Vec<Uuid>) = padded.unzip();
            format!(
                "SELECT {columns} \
                 FROM unnest(ARRAY[{}]::uuid[], ARRAY[{}]::uuid[]) AS wanted (organization_id, id) \
                 CROSS JOIN LATERAL (SELECT * FROM jobs WHERE jobs.id = wanted.id OFFSET 0) AS jobs \
                 LEFT JOIN LATERAL (SELECT * FROM executions WHERE executions.job_id = jobs.id \
                 ORDER BY executions.created_at DESC, executions.id DESC LIMIT 1) AS executions ON true \
                 WHERE jobs.organization_id = wanted.organization_id",
                p.list(&organizations),
                p.list(&ids)
            )
        }
        // SQLite loops over the left side of a CROSS JOIN: the keys, then each
        // job by its primary key.
        _ => {
            let wanted = padded
                .map(|(organization_id, id)| {
                    format!("({}, {})", p.bind(organization_id), p.bind(id))
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "SELECT {columns} FROM (VALUES {wanted}) AS wanted CROSS JOIN jobs \
                 LEFT JOIN executions ON executions.id = (SELECT latest.id FROM executions AS latest \
                 WHERE latest.job_id = jobs.id ORDER BY latest.created_at DESC, latest.id DESC LIMIT 1) \
                 WHERE jobs.id = wanted.column2 AND jobs.organization_id = wanted.column1"
            )
        }
    };
    p.statement(sql)
}

/// Every column of `jobs` and of `executions`, named as [`SelectTwoModel`] reads them.
fn job_and_execution_columns() -> &'static str {
    static COLUMNS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| {
        let jobs =
            job::Column::iter().map(|column| format!("jobs.\"{0}\" AS \"A_{0}\"", column.as_str()));
        let executions = execution::Column::iter()
            .map(|column| format!("executions.\"{0}\" AS \"B_{0}\"", column.as_str()));
        jobs.chain(executions).collect::<Vec<_>>().join(", ")
    })
}

/// The job `id` of the organization, locked for the rest of the transaction
/// (`FOR UPDATE` on PostgreSQL; on SQLite the write transaction of
/// `Database::begin_write` already excludes other writers).
pub async fn lock_job(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<job::Model>> {
    Ok(scoped(organization_id)
        .filter(job::Column::Id.eq(id))
        .lock_exclusive()
        .one(db)
        .await?)
}

/// The job with this client key in the organization.
pub async fn find_job_by_key(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    key: &str,
) -> Result<Option<job::Model>> {
    Ok(scoped(organization_id)
        .filter(job::Column::Key.eq(key))
        .one(db)
        .await?)
}

/// The job with this client key, locked like [`lock_job`].
pub async fn lock_job_by_key(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    key: &str,
) -> Result<Option<job::Model>> {
    Ok(scoped(organization_id)
        .filter(job::Column::Key.eq(key))
        .lock_exclusive()
        .one(db)
        .await?)
}

/// Up to `limit` jobs of the organization in `(created_at, id)` order, strictly after
/// `after`. Keyset pagination: a walk visits every job that existed when it started
/// exactly once, whatever is inserted meanwhile.
pub async fn list_jobs(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    filter: &JobFilter,
    after: Option<Position>,
    limit: u64,
) -> Result<Vec<job::Model>> {
    let mut query = scoped(organization_id)
        .order_by_asc(job::Column::CreatedAt)
        .order_by_asc(job::Column::Id)
        .limit(limit);
    if let Some(enabled) = filter.enabled {
        query = query.filter(job::Column::Enabled.eq(enabled));
    }
    if let Some(key) = &filter.key {
        query = query.filter(job::Column::Key.eq(key.as_str()));
    }
    if let Some(after) = after {
        query = query.filter(
            Condition::any()
                .add(job::Column::CreatedAt.gt(after.created_at))
                .add(
                    Condition::all()
                        .add(job::Column::CreatedAt.eq(after.created_at))
                        .add(job::Column::Id.gt(after.id)),
                ),
        );
    }
    Ok(query.all(db).await?)
}

/// Deletes a job of the organization and, by cascade, its executions. Whether it
/// existed.
pub async fn delete_job(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    id: Uuid,
) -> Result<bool> {
    // Executions first, then the job: the engine records an outcome by updating
    // the execution and then the job, so taking locks in the same order here keeps
    // a delete during a run from deadlocking with it (the cascade alone would lock
    // the job first).
    execution::Entity::delete_many()
        .filter(execution::Column::OrganizationId.eq(organization_id))
        .filter(execution::Column::JobId.eq(id))
        .exec(db)
        .await?;
    let result = job::Entity::delete_many()
        .filter(job::Column::OrganizationId.eq(organization_id))
        .filter(job::Column::Id.eq(id))
        .exec(db)
        .await?;
    if result.rows_affected > 0 {
        change_job_count(db, organization_id, -1).await?;
    }
    Ok(result.rows_affected > 0)
}

// ------------------------------------------------------------------------------------
// Executions

/// Records a manual run of a job, due now: a `pending` execution (attempt 1,
/// `scheduled_for` and `run_after` = `now`) for the engine to pick up.
pub async fn insert_manual_execution(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    job_id: Uuid,
    now: DateTime<Utc>,
) -> Result<execution::Model> {
    let model = execution::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization_id),
        job_id: Set(job_id),
        scheduled_for: Set(now),
        attempt: Set(1),
        trigger: Set("manual".to_owned()),
        status: Set("pending".to_owned()),
        run_after: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
        duration_ms: Set(None),
        lag_ms: Set(None),
        status_code: Set(None),
        response_body: Set(None),
        error: Set(None),
        node_id: Set(None),
        lease_expires_at: Set(None),
        created_at: Set(now),
    };
    Ok(model.insert(db).await?)
}

/// The newest execution (by `created_at`, then id) of each of `job_ids` that has one.
pub async fn latest_executions(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    job_ids: &[Uuid],
) -> Result<HashMap<Uuid, execution::Model>> {
    if job_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let newest_ids = Query::select()
        .expr(newest_execution_of_job())
        .from(job::Entity)
        .and_where(job::Column::OrganizationId.eq(organization_id))
        .and_where(job::Column::Id.is_in(job_ids.iter().copied()))
        .to_owned();
    let rows = execution::Entity::find()
        .filter(execution::Column::OrganizationId.eq(organization_id))
        .filter(execution::Column::Id.in_subquery(newest_ids))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|row| (row.job_id, row)).collect())
}

/// Up to `limit` executions of one job, newest first (`created_at`, then id,
/// descending), strictly before `before`, optionally only those with `status`.
pub async fn list_executions(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    job_id: Uuid,
    status: Option<&str>,
    before: Option<Position>,
    limit: u64,
) -> Result<Vec<execution::Model>> {
    let mut query = execution::Entity::find()
        .filter(execution::Column::OrganizationId.eq(organization_id))
        .filter(execution::Column::JobId.eq(job_id))
        .order_by_desc(execution::Column::CreatedAt)
        .order_by_desc(execution::Column::Id)
        .limit(limit);
    if let Some(status) = status {
        query = query.filter(Expr::expr(shown_status_sql()).eq(status));
    }
    if let Some(before) = before {
        query = query.filter(
            Condition::any()
                .add(execution::Column::CreatedAt.lt(before.created_at))
                .add(
                    Condition::all()
                        .add(execution::Column::CreatedAt.eq(before.created_at))
                        .add(execution::Column::Id.lt(before.id)),
                ),
        );
    }
    Ok(query.all(db).await?)
}

/// The status an execution is shown with. One claimed ahead of its time by a
/// node but not started is stored `running` and shown `pending`: to its owner
/// it is still waiting for its time. `shown_status_sql` is the same rule for
/// filters and counts.
pub fn shown_status(row: &execution::Model) -> &str {
    if row.status == "running" && row.started_at.is_none() {
        "pending"
    } else {
        &row.status
    }
}

/// [`shown_status`] as an SQL expression over `executions`.
pub(crate) fn shown_status_sql() -> SimpleExpr {
    Expr::cust(
        "CASE WHEN executions.status = 'running' AND executions.started_at IS NULL \
         THEN 'pending' ELSE executions.status END",
    )
}

/// One execution of the organization.
pub async fn find_execution(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<execution::Model>> {
    Ok(execution::Entity::find()
        .filter(execution::Column::OrganizationId.eq(organization_id))
        .filter(execution::Column::Id.eq(id))
        .one(db)
        .await?)
}

/// How many executions a job has (for tests and the console).
pub async fn count_executions(db: &impl ConnectionTrait, job_id: Uuid) -> Result<u64> {
    Ok(execution::Entity::find()
        .filter(execution::Column::JobId.eq(job_id))
        .count(db)
        .await?)
}
