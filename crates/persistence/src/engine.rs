//! The engine's queries: claiming due jobs and runnable executions, recording
//! outcomes, renewing and rescuing leases. On PostgreSQL claims use
//! `FOR UPDATE SKIP LOCKED` so any number of nodes share the work; on SQLite the
//! caller holds the single write lock ([`crate::Database::begin_write`]).

use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::{ConnectionTrait, DatabaseBackend, QueryOrder, QuerySelect, QueryTrait, Statement};

use crate::entities::{execution, job, organization};
use crate::job_rows::{job_from_row, JOB_COLUMNS};
use crate::parameters::{push_row, Parameters};
use crate::PersistenceError;

type Result<T> = std::result::Result<T, PersistenceError>;

/// Locks up to `limit` enabled jobs of unsuspended organizations whose
/// `next_run_at` has come by `now` — or comes by `horizon`, for jobs with
/// concurrency `allow` (those may be dispatched ahead: whether a run is still
/// in progress matters to the other policies only at the due time) — earliest
/// first. Call inside a write transaction; the rows stay locked (PostgreSQL)
/// until it ends, and other nodes skip them.
pub async fn lock_due_jobs(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<job::Model>> {
    let window = DueWindow {
        after: None,
        now,
        horizon,
    };
    lock_jobs_due_in(db, window, limit, &[]).await
}

/// Which jobs a dispatch takes, by their `next_run_at`.
#[derive(Debug, Clone, Copy)]
pub struct DueWindow {
    /// Only jobs due strictly after this, if set.
    pub after: Option<DateTime<Utc>>,
    /// Jobs due by this, whatever their concurrency.
    pub now: DateTime<Utc>,
    /// Jobs due by this that may be dispatched ahead (concurrency `allow`).
    pub horizon: DateTime<Utc>,
}

/// As [`lock_due_jobs`] for the jobs due in `window`, leaving out `except`
/// (jobs the caller locked already).
pub async fn lock_jobs_due_in(
    db: &impl ConnectionTrait,
    window: DueWindow,
    limit: u64,
    except: &[Uuid],
) -> Result<Vec<job::Model>> {
    let statement = lock_due_jobs_statement(db.get_database_backend(), window, limit, except);
    query_jobs(db, statement).await
}

/// Jobs selected with [`JOB_COLUMNS`], decoded by position where that is cheaper.
async fn query_jobs(db: &impl ConnectionTrait, statement: Statement) -> Result<Vec<job::Model>> {
    let rows = db.query_all(statement).await?;
    Ok(rows
        .iter()
        .map(job_from_row)
        .collect::<std::result::Result<_, _>>()?)
}

fn lock_due_jobs_statement(
    backend: DatabaseBackend,
    window: DueWindow,
    limit: u64,
    except: &[Uuid],
) -> Statement {
    let lock = match backend {
        DatabaseBackend::Postgres => " FOR UPDATE OF jobs SKIP LOCKED",
        _ => "",
    };
    let mut p = Parameters::new(backend);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut filters = String::new();
    if let Some(after) = window.after {
        filters.push_str(" AND jobs.next_run_at > ");
        p.bind(after).push_to(&mut filters);
    }
    if !except.is_empty() {
        filters.push_str(" AND jobs.id NOT IN (");
        filters.push_str(&p.list(except));
        filters.push(')');
    }
    let sql = format!(
        // A subquery rather than a join with organizations, so the planner walks
        // the next_run_at index in order and stops at the LIMIT instead of
        // sorting every due row (a backlog made each batch O(backlog)).
        "SELECT {columns} FROM jobs \
         WHERE jobs.next_run_at <= {} AND (jobs.next_run_at <= {} OR jobs.concurrency = 'allow') \
         AND jobs.enabled AND jobs.organization_id NOT IN ({SUSPENDED_ORGANIZATIONS}){filters} \
         ORDER BY jobs.next_run_at LIMIT {}{lock}",
        p.bind(window.horizon.max(window.now)),
        p.bind(window.now),
        p.bind(limit),
        columns = *JOB_COLUMNS,
    );
    p.statement(sql)
}

/// The engine's queue queries as it runs them at `now` (claims of `limit`
/// rows), by name: what `punctual-bench --explain` asks the planner about, so
/// the plans shown are those of the statements the engine sends.
pub fn queue_statements(
    backend: DatabaseBackend,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    limit: u64,
) -> Vec<(&'static str, Statement)> {
    vec![
        (
            "lock_due_jobs",
            lock_due_jobs_statement(
                backend,
                DueWindow {
                    after: None,
                    now,
                    horizon,
                },
                limit,
                &[],
            ),
        ),
        (
            "claim_runnable_executions",
            claim_runnable_statement(backend, now, limit),
        ),
        ("earliest_due_job", earliest_due_job_query().build(backend)),
        (
            "earliest_pending_execution",
            earliest_pending_execution_query().build(backend),
        ),
    ]
}

const SUSPENDED_ORGANIZATIONS: &str =
    "SELECT organizations.id FROM organizations WHERE organizations.suspended_at IS NOT NULL";

fn suspended_organizations() -> sea_orm::sea_query::SelectStatement {
    sea_orm::sea_query::Query::select()
        .column(organization::Column::Id)
        .from(organization::Entity)
        .and_where(organization::Column::SuspendedAt.is_not_null())
        .to_owned()
}

/// The earliest `next_run_at` of any enabled job of an unsuspended organization,
/// and whether that job may be dispatched ahead (concurrency `allow`).
pub async fn earliest_due_job(db: &impl ConnectionTrait) -> Result<Option<(DateTime<Utc>, bool)>> {
    Ok(earliest_due_job_query()
        .one(db)
        .await?
        .and_then(|j| Some((j.next_run_at?, j.concurrency == "allow"))))
}

fn earliest_due_job_query() -> sea_orm::Select<job::Entity> {
    job::Entity::find()
        .filter(job::Column::Enabled.eq(true))
        .filter(job::Column::NextRunAt.is_not_null())
        .filter(job::Column::OrganizationId.not_in_subquery(suspended_organizations()))
        .order_by_asc(job::Column::NextRunAt)
        .limit(1)
}

/// `status = 'pending'` written out, not bound: the partial index of pending
/// executions serves only a query whose predicate names the value (a prepared
/// statement's generic plan cannot know a parameter's).
fn is_pending() -> sea_orm::sea_query::SimpleExpr {
    Expr::cust("executions.status = 'pending'")
}

/// `status = 'running'` written out, for the partial index of running executions.
fn is_running() -> sea_orm::sea_query::SimpleExpr {
    Expr::cust("executions.status = 'running'")
}

/// The earliest `run_after` of a pending execution.
pub async fn earliest_pending_execution(
    db: &impl ConnectionTrait,
) -> Result<Option<DateTime<Utc>>> {
    Ok(earliest_pending_execution_query()
        .one(db)
        .await?
        .map(|e| e.run_after))
}

fn earliest_pending_execution_query() -> sea_orm::Select<execution::Entity> {
    execution::Entity::find()
        .filter(is_pending())
        .filter(execution::Column::OrganizationId.not_in_subquery(suspended_organizations()))
        .order_by_asc(execution::Column::RunAfter)
        .limit(1)
}

/// What a new execution row holds.
#[derive(Debug, Clone)]
pub struct NewExecution {
    /// Its job.
    pub job_id: Uuid,
    /// The job's organization.
    pub organization_id: Uuid,
    /// The occurrence it belongs to.
    pub scheduled_for: DateTime<Utc>,
    /// 1 for the first try.
    pub attempt: i32,
    /// `schedule`, `manual`, `retry` or `catch_up`.
    pub trigger: &'static str,
    /// `pending`, or `skipped` for occurrences recorded without running.
    pub status: &'static str,
    /// Earliest start.
    pub run_after: DateTime<Utc>,
    /// Why it was skipped, for skipped rows.
    pub error: Option<String>,
}

/// A node's hold on an execution it runs.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The node running it.
    pub node_id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Until when it is the node's without renewal.
    pub expires_at: DateTime<Utc>,
}

/// The row a new execution becomes: `pending` (or terminal, e.g. `skipped`), or
/// `running` under `lease`.
fn execution_row(new: NewExecution, now: DateTime<Utc>, lease: Option<&Lease>) -> execution::Model {
    let terminal = new.status != "pending";
    let (status, node_id, started_at, lease_expires_at) = match lease {
        Some(lease) => (
            "running".to_owned(),
            Some(lease.node_id.clone()),
            // Claimed ahead of its due time: not started yet (the outcome says when).
            (new.run_after <= lease.started_at).then_some(lease.started_at),
            Some(lease.expires_at),
        ),
        None => (new.status.to_owned(), None, None, None),
    };
    execution::Model {
        id: Uuid::now_v7(),
        organization_id: new.organization_id,
        job_id: new.job_id,
        scheduled_for: new.scheduled_for,
        attempt: new.attempt,
        trigger: new.trigger.to_owned(),
        status,
        run_after: new.run_after,
        started_at,
        finished_at: (terminal && lease.is_none()).then_some(now),
        duration_ms: None,
        lag_ms: None,
        status_code: None,
        response_body: None,
        error: new.error,
        node_id,
        lease_expires_at,
        created_at: now,
    }
}

/// Inserts rows in multi-row statements, skipping any whose (job,
/// scheduled_for, attempt) exists already — the last guard against a double
/// dispatch. Returns how many were inserted. Written out rather than built by
/// sea-orm: a batch's rows share their node, lease, times and status, bound
/// once each, and the columns a new row leaves empty are not sent.
async fn insert_rows(db: &impl ConnectionTrait, rows: &[execution::Model]) -> Result<u64> {
    // Up to 7 values a row plus the shared ones: far under SQLite's 32,766.
    const CHUNK: usize = 1000;
    let backend = db.get_database_backend();
    let mut inserted = 0;
    for chunk in rows.chunks(CHUNK) {
        let mut p = Parameters::new(backend);
        let mut sql = String::with_capacity(300 + chunk.len() * 80);
        sql.push_str(
            "INSERT INTO executions (id, organization_id, job_id, scheduled_for, attempt, \
             trigger, status, run_after, started_at, finished_at, error, node_id, \
             lease_expires_at, created_at) VALUES ",
        );
        for (i, row) in chunk.iter().enumerate() {
            // What an attempt's outcome fills in is not sent: a new row has none.
            debug_assert!(
                row.duration_ms.is_none()
                    && row.lag_ms.is_none()
                    && row.status_code.is_none()
                    && row.response_body.is_none()
            );
            if i > 0 {
                sql.push_str(", ");
            }
            let placeholders = [
                p.bind(row.id),
                p.bind(row.organization_id),
                p.bind(row.job_id),
                p.bind(row.scheduled_for),
                p.bind_shared(&row.attempt),
                p.bind_shared(&row.trigger),
                p.bind_shared(&row.status),
                p.bind(row.run_after),
                p.bind_shared(&row.started_at),
                p.bind_shared(&row.finished_at),
                p.bind_shared(&row.error),
                p.bind_shared(&row.node_id),
                p.bind_shared(&row.lease_expires_at),
                p.bind_shared(&row.created_at),
            ];
            push_row(&mut sql, &placeholders);
        }
        sql.push_str(" ON CONFLICT (job_id, scheduled_for, attempt) DO NOTHING");
        inserted += db.execute(p.statement(sql)).await?.rows_affected();
    }
    Ok(inserted)
}

/// Inserts an execution unless (job, scheduled_for, attempt) exists already, the
/// last guard against a double dispatch. Returns whether a row was inserted.
pub async fn insert_execution(
    db: &impl ConnectionTrait,
    new: NewExecution,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(insert_rows(db, &[execution_row(new, now, None)]).await? == 1)
}

/// Inserts many executions in one statement per chunk, skipping any whose
/// (job, scheduled_for, attempt) exists already.
pub async fn insert_executions(
    db: &impl ConnectionTrait,
    rows: Vec<NewExecution>,
    now: DateTime<Utc>,
) -> Result<()> {
    let rows: Vec<_> = rows
        .into_iter()
        .map(|new| execution_row(new, now, None))
        .collect();
    insert_rows(db, &rows).await?;
    Ok(())
}

/// Inserts occurrences already `running` under `lease` — dispatch straight to
/// running, without a claim round — and returns the rows inserted. One whose
/// (job, scheduled_for, attempt) exists already is not inserted and must not run.
pub async fn insert_running_executions(
    db: &impl ConnectionTrait,
    rows: Vec<NewExecution>,
    lease: &Lease,
    now: DateTime<Utc>,
) -> Result<Vec<execution::Model>> {
    let rows: Vec<_> = rows
        .into_iter()
        .map(|new| execution_row(new, now, Some(lease)))
        .collect();
    let inserted = insert_rows(db, &rows).await?;
    if inserted == rows.len() as u64 {
        return Ok(rows);
    }
    // Rare: some occurrence existed. Keep only the rows that are ours.
    let mut ours = std::collections::HashSet::new();
    for chunk in rows.chunks(500) {
        let ids: Vec<Uuid> = chunk.iter().map(|row| row.id).collect();
        ours.extend(
            execution::Entity::find()
                .select_only()
                .column(execution::Column::Id)
                .filter(execution::Column::Id.is_in(ids))
                .into_tuple::<Uuid>()
                .all(db)
                .await?,
        );
    }
    Ok(rows
        .into_iter()
        .filter(|row| ours.contains(&row.id))
        .collect())
}

/// Moves many jobs to their next occurrences: one statement per distinct time
/// (a herd of jobs due together mostly shares its next time too).
pub async fn set_next_runs(
    db: &impl ConnectionTrait,
    updates: Vec<(Uuid, Option<DateTime<Utc>>)>,
) -> Result<()> {
    let mut by_time: std::collections::BTreeMap<Option<DateTime<Utc>>, Vec<Uuid>> =
        std::collections::BTreeMap::new();
    for (job, next) in updates {
        by_time.entry(next).or_default().push(job);
    }
    for (next, jobs) in by_time {
        update_jobs(db, &jobs, |p| format!("next_run_at = {}", p.bind(next))).await?;
    }
    Ok(())
}

/// `UPDATE jobs SET {set} WHERE id IN (…)` for `ids`, 500 a statement; `set`
/// binds its values in each statement's parameters. Written out: sea-query's
/// builder cost ~5k instructions a job on the engine's paths.
async fn update_jobs(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
    set: impl Fn(&mut Parameters) -> String,
) -> Result<()> {
    let backend = db.get_database_backend();
    for chunk in ids.chunks(500) {
        let mut p = Parameters::new(backend);
        let sql = format!(
            "UPDATE jobs SET {} WHERE id IN ({})",
            set(&mut p),
            p.list(chunk)
        );
        db.execute(p.statement(sql)).await?;
    }
    Ok(())
}

/// Moves a job to its next occurrence (None: nothing more to dispatch).
pub async fn set_next_run(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    next_run_at: Option<DateTime<Utc>>,
) -> Result<()> {
    job::Entity::update_many()
        .col_expr(job::Column::NextRunAt, Expr::value(next_run_at))
        .filter(job::Column::Id.eq(job_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Those of `job_ids` that have a pending or running execution: one query per
/// state and chunk for a whole dispatch batch, not one per job. Each names its
/// state literally so the planner may take that state's partial index (the
/// queue, however long the jobs' histories are).
pub async fn jobs_with_unfinished_executions(
    db: &impl ConnectionTrait,
    job_ids: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>> {
    let mut busy = std::collections::HashSet::new();
    for chunk in job_ids.chunks(500) {
        for state in [is_pending(), is_running()] {
            busy.extend(
                execution::Entity::find()
                    .select_only()
                    .column(execution::Column::JobId)
                    .filter(state)
                    .filter(execution::Column::JobId.is_in(chunk.to_vec()))
                    .into_tuple::<Uuid>()
                    .all(db)
                    .await?,
            );
        }
    }
    Ok(busy)
}

/// Marks the unfinished (running or pending) executions of a job canceled
/// (concurrency `replace`); the node running each notices at its next lease
/// renewal, or at once if local.
pub async fn cancel_unfinished(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<Vec<Uuid>> {
    let running = execution::Entity::find()
        .filter(execution::Column::JobId.eq(job_id))
        .filter(execution::Column::Status.is_in(["pending", "running"]))
        .all(db)
        .await?;
    let ids: Vec<Uuid> = running.iter().map(|e| e.id).collect();
    if !ids.is_empty() {
        execution::Entity::update_many()
            .col_expr(execution::Column::Status, Expr::value("canceled"))
            .col_expr(execution::Column::FinishedAt, Expr::value(Some(now)))
            .col_expr(
                execution::Column::Error,
                Expr::value(Some(reason.to_owned())),
            )
            .col_expr(
                execution::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(execution::Column::Id.is_in(ids.clone()))
            .filter(execution::Column::Status.is_in(["pending", "running"]))
            .exec(db)
            .await?;
    }
    Ok(ids)
}

/// A claimed execution with the job it runs.
#[derive(Debug, Clone)]
pub struct ClaimedExecution {
    /// The execution, now `running` on this node.
    pub execution: execution::Model,
    /// Its job.
    pub job: job::Model,
}

fn claim_runnable_statement(backend: DatabaseBackend, now: DateTime<Utc>, limit: u64) -> Statement {
    let lock = match backend {
        DatabaseBackend::Postgres => " FOR UPDATE OF executions SKIP LOCKED",
        _ => "",
    };
    let mut p = Parameters::new(backend);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT executions.* FROM executions \
         WHERE executions.status = 'pending' AND executions.run_after <= {} \
         AND executions.organization_id NOT IN ({SUSPENDED_ORGANIZATIONS}) \
         ORDER BY executions.run_after LIMIT {}{lock}",
        p.bind(now),
        p.bind(limit),
    );
    p.statement(sql)
}

/// Claims up to `limit` pending executions that may start, marking them running
/// on `node_id` with a lease until `lease_until`. Call inside a write transaction.
/// Executions of jobs that were deleted meanwhile go with their job (cascade);
/// those of suspended organizations wait. Those of a paused (or auto-disabled)
/// job are canceled instead, unless they are a manual run or its retry: a pause
/// stops the job's traffic, retries included, while a run asked for by hand
/// runs whatever the job's state.
pub async fn claim_runnable_executions(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    node_id: &str,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<ClaimedExecution>> {
    let statement = claim_runnable_statement(db.get_database_backend(), now, limit);
    let mut pending = execution::Entity::find()
        .from_raw_sql(statement)
        .all(db)
        .await?;
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let job_ids: Vec<Uuid> = pending.iter().map(|e| e.job_id).collect();
    let statement = job::Entity::find()
        .filter(job::Column::Id.is_in(job_ids))
        .build(db.get_database_backend());
    let jobs: std::collections::HashMap<Uuid, job::Model> = query_jobs(db, statement)
        .await?
        .into_iter()
        .map(|job| (job.id, job))
        .collect();
    let paused = |e: &execution::Model| jobs.get(&e.job_id).is_some_and(|job| !job.enabled);
    if pending.iter().any(paused) {
        let (stopped, runnable): (Vec<_>, Vec<_>) = pending.into_iter().partition(paused);
        pending = runnable;
        let mut canceled = Vec::new();
        let mut not_begun = Vec::new();
        let mut occurrences = Vec::new();
        for execution in stopped {
            if asked_for_by_hand(db, &execution).await? {
                pending.push(execution);
            } else if execution.attempt > 1 {
                canceled.push(execution.id);
                occurrences.push((execution.job_id, execution.scheduled_for));
            } else {
                not_begun.push(execution.id);
            }
        }
        // An occurrence not begun (due while the node was busy, or handed back)
        // is the job's to run when resumed, as its schedule then says: gone
        // from the queue, as a claim made ahead of a paused job is.
        execution::Entity::delete_many()
            .filter(execution::Column::Id.is_in(not_begun))
            .filter(execution::Column::Status.eq("pending"))
            .exec(db)
            .await?;
        // A once-job's own occurrence ends with its retries: the job is
        // complete, as after any last attempt.
        complete_once_jobs(db, &occurrences, now).await?;
        execution::Entity::update_many()
            .col_expr(execution::Column::Status, Expr::value("canceled"))
            .col_expr(execution::Column::FinishedAt, Expr::value(Some(now)))
            .col_expr(
                execution::Column::Error,
                Expr::value(Some("the job was paused".to_owned())),
            )
            .filter(execution::Column::Id.is_in(canceled))
            .filter(execution::Column::Status.eq("pending"))
            .exec(db)
            .await?;
        if pending.is_empty() {
            return Ok(Vec::new());
        }
    }
    let ids: Vec<Uuid> = pending.iter().map(|e| e.id).collect();
    execution::Entity::update_many()
        .col_expr(execution::Column::Status, Expr::value("running"))
        .col_expr(
            execution::Column::NodeId,
            Expr::value(Some(node_id.to_owned())),
        )
        .col_expr(execution::Column::StartedAt, Expr::value(Some(now)))
        .col_expr(
            execution::Column::LeaseExpiresAt,
            Expr::value(Some(lease_until)),
        )
        .filter(execution::Column::Id.is_in(ids.clone()))
        .filter(execution::Column::Status.eq("pending"))
        .exec(db)
        .await?;
    Ok(pending
        .into_iter()
        .filter_map(|mut execution| {
            // Cloned: retries of one job may be claimed together.
            let job = jobs.get(&execution.job_id)?.clone();
            execution.status = "running".to_owned();
            execution.node_id = Some(node_id.to_owned());
            execution.started_at = Some(now);
            execution.lease_expires_at = Some(lease_until);
            Some(ClaimedExecution { execution, job })
        })
        .collect())
}

/// Whether a pending execution belongs to a manual run: the run itself, or a
/// retry of an occurrence whose first attempt was manual.
async fn asked_for_by_hand(
    db: &impl ConnectionTrait,
    execution: &execution::Model,
) -> Result<bool> {
    if execution.trigger == "manual" {
        return Ok(true);
    }
    if execution.trigger != "retry" {
        return Ok(false);
    }
    Ok(execution::Entity::find()
        .filter(execution::Column::JobId.eq(execution.job_id))
        .filter(execution::Column::ScheduledFor.eq(execution.scheduled_for))
        .filter(execution::Column::Attempt.eq(1))
        .filter(execution::Column::Trigger.eq("manual"))
        .count(db)
        .await?
        > 0)
}

/// Ids bound per lease renewal statement: well under SQLite's limit.
const RENEWAL_CHUNK: usize = 5_000;

/// Extends the leases of every execution `node_id` runs, a statement per chunk, and
/// returns which of `local` are no longer running here (canceled, rescued by
/// another node, or deleted): the caller stops those.
pub async fn renew_leases(
    db: &impl ConnectionTrait,
    node_id: &str,
    local: &[Uuid],
    until: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    if local.is_empty() {
        return Ok(Vec::new());
    }
    // Only the runs this node still holds in memory: a row it can no longer
    // finish (its outcome could not be written) must let its lease expire, so
    // that a rescuer gives the occurrence its next attempt. In chunks: a node
    // may hold tens of thousands (claims ahead, outcomes queued), more than
    // SQLite binds in one statement.
    let mut still_running = std::collections::HashSet::with_capacity(local.len());
    for chunk in local.chunks(RENEWAL_CHUNK) {
        execution::Entity::update_many()
            .col_expr(execution::Column::LeaseExpiresAt, Expr::value(Some(until)))
            .filter(execution::Column::Id.is_in(chunk.to_vec()))
            .filter(execution::Column::NodeId.eq(node_id))
            .filter(is_running())
            .exec(db)
            .await?;
        // Only the ids: every running row of this node comes back at each renewal.
        still_running.extend(
            execution::Entity::find()
                .select_only()
                .column(execution::Column::Id)
                .filter(execution::Column::Id.is_in(chunk.to_vec()))
                .filter(execution::Column::Status.eq("running"))
                .filter(execution::Column::NodeId.eq(node_id))
                .into_tuple::<Uuid>()
                .all(db)
                .await?,
        );
    }
    Ok(local
        .iter()
        .filter(|id| !still_running.contains(id))
        .copied()
        .collect())
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    /// `success`, `failed`, `timeout` or `canceled`.
    pub status: &'static str,
    /// When the request started (an execution dispatched ahead is claimed
    /// before it starts).
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How long the request took.
    pub duration_ms: i64,
    /// Start minus the time it was due.
    pub lag_ms: i64,
    /// The response's status code, if one came.
    pub status_code: Option<i32>,
    /// The response body, truncated.
    pub response_body: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
}

async fn returned_ids(db: &impl ConnectionTrait, statement: Statement) -> Result<Vec<Uuid>> {
    db.query_all(statement)
        .await?
        .iter()
        .map(|row| {
            row.try_get::<Uuid>("", "id")
                .map_err(PersistenceError::from)
        })
        .collect()
}

/// Locks those of `ids` still running on `node_id` and returns their ids: how
/// the recorder finds the outcomes it may write.
pub fn lock_running_statement(backend: DatabaseBackend, node_id: &str, ids: &[Uuid]) -> Statement {
    let mut p = Parameters::new(backend);
    let sql = match backend {
        // Each row fetched through the primary key, whatever the planner
        // believes of the table: `OFFSET 0` keeps the lookup a parameterized
        // subquery. Left to itself, on a young table without statistics it
        // scans the whole table once per chunk, a cost that grows with the
        // history. The state is tested outside the lookup: inside, it let the
        // planner take the running queue's partial index and filter it by id,
        // a scan of every running (and dead) entry for each row.
        DatabaseBackend::Postgres => format!(
            "SELECT found.id FROM unnest(ARRAY[{}]::uuid[]) AS wanted (id), \
             LATERAL (SELECT id, status, node_id FROM executions \
             WHERE executions.id = wanted.id OFFSET 0 FOR UPDATE) AS found \
             WHERE found.status = 'running' AND found.node_id = {}",
            p.list(ids),
            p.bind(node_id)
        ),
        _ => format!(
            "SELECT id FROM executions WHERE id IN ({}) \
             AND status = 'running' AND node_id = {}",
            p.list(ids),
            p.bind(node_id)
        ),
    };
    p.statement(sql)
}

/// Records the outcomes of executions this node runs; returns the ids
/// recorded. The others were canceled or rescued meanwhile (no longer running
/// here) and are left as they are.
///
/// On PostgreSQL one statement a chunk updates the rows still running here and
/// returns them. A row this node's lease renewal changed meanwhile has moved (a
/// new version at a new address) and that statement skips it; those few, and
/// the rows no longer ours, go through [`record_locked_outcomes`], which locks
/// first and so finds each row's current version. SQLite, whose writer is
/// alone, takes that path for all.
pub async fn record_outcomes(
    db: &impl ConnectionTrait,
    node_id: &str,
    outcomes: &[(Uuid, AttemptOutcome)],
) -> Result<Vec<Uuid>> {
    let backend = db.get_database_backend();
    if backend != DatabaseBackend::Postgres {
        return record_locked_outcomes(db, node_id, outcomes).await;
    }
    let mut recorded = Vec::with_capacity(outcomes.len());
    for chunk in outcomes.chunks(OUTCOME_CHUNK) {
        let statement = outcome_update_statement(backend, chunk.iter(), Some(node_id));
        let updated: std::collections::HashSet<Uuid> =
            returned_ids(db, statement).await?.into_iter().collect();
        let missed: Vec<(Uuid, AttemptOutcome)> = chunk
            .iter()
            .filter(|(id, _)| !updated.contains(id))
            .cloned()
            .collect();
        recorded.extend(updated);
        if !missed.is_empty() {
            recorded.extend(record_locked_outcomes(db, node_id, &missed).await?);
        }
    }
    Ok(recorded)
}

/// At most 9 parameters a row: well under SQLite's and PostgreSQL's limits.
const OUTCOME_CHUNK: usize = 256;

/// Records outcomes by first locking the rows still running on `node_id`, then
/// updating those; returns the ids recorded.
pub async fn record_locked_outcomes(
    db: &impl ConnectionTrait,
    node_id: &str,
    outcomes: &[(Uuid, AttemptOutcome)],
) -> Result<Vec<Uuid>> {
    let backend = db.get_database_backend();
    let mut recorded = Vec::with_capacity(outcomes.len());
    for chunk in outcomes.chunks(OUTCOME_CHUNK) {
        // First the rows still running here, locked; then the update joins on
        // the primary key alone. With the status and node tests in the join,
        // PostgreSQL's estimate for a young, unanalyzed table is one row and it
        // rescans the VALUES list for every running execution: quadratic.
        let ids: Vec<Uuid> = chunk.iter().map(|(id, _)| *id).collect();
        let statement = lock_running_statement(backend, node_id, &ids);
        let ours: std::collections::HashSet<Uuid> =
            returned_ids(db, statement).await?.into_iter().collect();
        if ours.is_empty() {
            continue;
        }
        let mine = chunk.iter().filter(|(id, _)| ours.contains(id));
        db.execute(outcome_update_statement(backend, mine, None))
            .await?;
        recorded.extend(ours);
    }
    Ok(recorded)
}

/// The update writing `outcomes`. With `still_running_on`, only rows still
/// running on that node are written, and their ids returned (PostgreSQL).
pub fn outcome_update_statement<'a>(
    backend: DatabaseBackend,
    outcomes: impl Iterator<Item = &'a (Uuid, AttemptOutcome)>,
    still_running_on: Option<&str>,
) -> Statement {
    let mut p = Parameters::new(backend);
    let mut rows = String::new();
    for (id, outcome) in outcomes {
        if !rows.is_empty() {
            rows.push_str(", ");
        }
        // Most outcomes of a batch share their status, end, code, body and
        // error: those are bound once.
        let placeholders = [
            p.bind(*id),
            p.bind_shared(outcome.status),
            p.bind(outcome.started_at),
            p.bind_shared(&outcome.finished_at),
            p.bind(outcome.duration_ms),
            p.bind(outcome.lag_ms),
            p.bind_shared(&outcome.status_code),
            p.bind_shared(&outcome.response_body),
            p.bind_shared(&outcome.error),
        ];
        push_row(&mut rows, &placeholders);
    }
    // PostgreSQL reaches each row through its primary key, then by address
    // (a locked row's address holds until the commit).
    let (target, join) = match backend {
        DatabaseBackend::Postgres => (
            ", LATERAL (SELECT ctid AS address FROM executions AS locked \
             WHERE locked.id = outcome.eid OFFSET 0) AS found",
            "executions.ctid = found.address",
        ),
        _ => ("", "executions.id = outcome.eid"),
    };
    // The state is tested inside a CASE so that the planner cannot prove the
    // running queue's partial index usable and scan it instead of going by
    // address.
    let guard = match still_running_on {
        Some(node_id) => format!(
            " AND CASE WHEN executions.status = 'running' THEN executions.node_id END = {} \
             RETURNING executions.id",
            p.bind(node_id)
        ),
        None => String::new(),
    };
    let sql = format!(
        "WITH outcome (eid, status, started_at, finished_at, duration_ms, lag_ms, status_code, response_body, error) \
         AS (VALUES {rows}) \
         UPDATE executions SET status = outcome.status, started_at = outcome.started_at, \
         finished_at = outcome.finished_at, \
         duration_ms = outcome.duration_ms, lag_ms = outcome.lag_ms, \
         status_code = outcome.status_code, response_body = outcome.response_body, \
         error = outcome.error, lease_expires_at = NULL \
         FROM outcome{target} WHERE {join}{guard}"
    );
    p.statement(sql)
}

/// Ends the failure streaks of these jobs after successes; returns the jobs
/// that had one (they recovered).
pub async fn reset_failure_streaks(
    db: &impl ConnectionTrait,
    job_ids: &[Uuid],
) -> Result<Vec<Uuid>> {
    let mut recovered = Vec::new();
    for chunk in job_ids.chunks(500) {
        let mut p = Parameters::new(db.get_database_backend());
        let sql = format!(
            "UPDATE jobs SET consecutive_failures = 0 \
             WHERE consecutive_failures > 0 AND id IN ({}) RETURNING id",
            p.list(chunk)
        );
        recovered.extend(returned_ids(db, p.statement(sql)).await?);
    }
    Ok(recovered)
}

/// Marks once-jobs finished by the end of their own occurrence, given as
/// (job, the occurrence's `scheduled_for`): a job completes only while it is
/// still a once-job due at that time. One rescheduled while its old occurrence
/// ran (a new `at`, or made a cron job) keeps its new schedule. One statement
/// per distinct time (a drain of jobs due together shares one).
pub async fn complete_once_jobs(
    db: &impl ConnectionTrait,
    finished: &[(Uuid, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Result<()> {
    let mut by_time: std::collections::BTreeMap<DateTime<Utc>, Vec<Uuid>> =
        std::collections::BTreeMap::new();
    for (job_id, scheduled_for) in finished {
        by_time.entry(*scheduled_for).or_default().push(*job_id);
    }
    let backend = db.get_database_backend();
    for (scheduled_for, ids) in by_time {
        for chunk in ids.chunks(500) {
            let mut p = Parameters::new(backend);
            let sql = format!(
                "UPDATE jobs SET completed_at = {}, next_run_at = NULL \
                 WHERE schedule_kind = 'once' AND run_at = {} AND id IN ({})",
                p.bind(now),
                p.bind(scheduled_for),
                p.list(chunk)
            );
            db.execute(p.statement(sql)).await?;
        }
    }
    Ok(())
}

/// Marks once-jobs finished (the caller holds their rows, as read).
pub async fn complete_jobs(
    db: &impl ConnectionTrait,
    job_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<()> {
    update_jobs(db, job_ids, |p| {
        format!("completed_at = {}, next_run_at = NULL", p.bind(now))
    })
    .await
}

/// What a claim made ahead of its time is judged by: when its job was last
/// changed, whether it is enabled, and whether its organization is suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobVersion {
    /// The job.
    pub id: Uuid,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
    /// Whether it is enabled (not paused, not auto-disabled).
    pub enabled: bool,
    /// Whether its organization is suspended (its jobs do not run meanwhile).
    pub suspended: bool,
}

/// The versions of those of `job_ids` that exist.
pub async fn job_versions(db: &impl ConnectionTrait, job_ids: &[Uuid]) -> Result<Vec<JobVersion>> {
    let mut versions = Vec::with_capacity(job_ids.len());
    for chunk in job_ids.chunks(500) {
        let rows = job::Entity::find()
            .select_only()
            .column(job::Column::Id)
            .column(job::Column::UpdatedAt)
            .column(job::Column::Enabled)
            .expr_as(
                Expr::col(job::Column::OrganizationId).in_subquery(suspended_organizations()),
                "suspended",
            )
            .filter(job::Column::Id.is_in(chunk.to_vec()))
            .into_tuple::<(Uuid, DateTime<Utc>, bool, bool)>()
            .all(db)
            .await?;
        versions.extend(
            rows.into_iter()
                .map(|(id, updated_at, enabled, suspended)| JobVersion {
                    id,
                    updated_at,
                    enabled,
                    suspended,
                }),
        );
    }
    Ok(versions)
}

/// Those of `ids` still running on `node_id` (claims it holds), their rows
/// locked in id order (PostgreSQL; on SQLite the caller's write lock does it)
/// until the transaction ends.
pub async fn held_claims(
    db: &impl ConnectionTrait,
    node_id: &str,
    ids: &[Uuid],
) -> Result<Vec<Uuid>> {
    let mut ids = ids.to_vec();
    ids.sort();
    let mut held = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        held.extend(
            execution::Entity::find()
                .select_only()
                .column(execution::Column::Id)
                .filter(execution::Column::Id.is_in(chunk.to_vec()))
                .filter(is_running())
                .filter(execution::Column::NodeId.eq(node_id))
                .order_by_asc(execution::Column::Id)
                .lock_exclusive()
                .into_tuple::<Uuid>()
                .all(db)
                .await?,
        );
    }
    Ok(held)
}

/// Those of `job_ids` that exist, locked for update in id order (so that two
/// nodes locking overlapping sets wait rather than deadlock).
pub async fn lock_jobs(db: &impl ConnectionTrait, job_ids: &[Uuid]) -> Result<Vec<job::Model>> {
    let mut job_ids = job_ids.to_vec();
    job_ids.sort();
    let mut jobs = Vec::with_capacity(job_ids.len());
    for chunk in job_ids.chunks(500) {
        jobs.extend(
            job::Entity::find()
                .filter(job::Column::Id.is_in(chunk.to_vec()))
                .order_by_asc(job::Column::Id)
                .lock_exclusive()
                .all(db)
                .await?,
        );
    }
    Ok(jobs)
}

/// Moves each job's `next_run_at` back to the given occurrence, unless it is
/// due earlier already: the occurrence is dispatched again when due.
pub async fn rewind_next_runs(
    db: &impl ConnectionTrait,
    occurrences: &std::collections::BTreeMap<Uuid, DateTime<Utc>>,
) -> Result<()> {
    for (job_id, at) in occurrences {
        job::Entity::update_many()
            .col_expr(job::Column::NextRunAt, Expr::value(Some(*at)))
            .filter(job::Column::Id.eq(*job_id))
            .filter(job::Column::Enabled.eq(true))
            .filter(job::Column::CompletedAt.is_null())
            .filter(
                sea_orm::Condition::any()
                    .add(job::Column::NextRunAt.is_null())
                    .add(job::Column::NextRunAt.gt(*at)),
            )
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Gives up executions this node claimed ahead and has not started: those in
/// `to_pending` go back to `pending` (any node claims them when due, with the
/// job as it is then), those in `to_delete` are removed (their job was paused
/// or deleted before they were due: they never ran).
pub async fn release_claims(
    db: &impl ConnectionTrait,
    node_id: &str,
    to_pending: &[Uuid],
    to_delete: &[Uuid],
) -> Result<()> {
    for chunk in to_pending.chunks(500) {
        execution::Entity::update_many()
            .col_expr(execution::Column::Status, Expr::value("pending"))
            .col_expr(
                execution::Column::NodeId,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                execution::Column::StartedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                execution::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(execution::Column::Id.is_in(chunk.to_vec()))
            .filter(execution::Column::Status.eq("running"))
            .filter(execution::Column::NodeId.eq(node_id))
            .exec(db)
            .await?;
    }
    for chunk in to_delete.chunks(500) {
        execution::Entity::delete_many()
            .filter(execution::Column::Id.is_in(chunk.to_vec()))
            .filter(execution::Column::Status.eq("running"))
            .filter(execution::Column::NodeId.eq(node_id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Records a failed occurrence on its job; past `auto_disable_after` consecutive
/// failures the job is disabled with the reason. Returns whether it was disabled.
///
/// The count is incremented in the database, not read and written back: two
/// nodes recording failures of one job at once must both count (the first
/// update holds the row until its transaction ends), and only one of them may
/// disable it.
pub async fn record_occurrence_failure(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    auto_disable_after: i32,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut p = Parameters::new(db.get_database_backend());
    let sql = format!(
        "UPDATE jobs SET consecutive_failures = consecutive_failures + 1 \
         WHERE id = {} RETURNING consecutive_failures",
        p.bind(job_id)
    );
    let Some(row) = db.query_one(p.statement(sql)).await? else {
        return Ok(false);
    };
    let failures: i32 = row.try_get("", "consecutive_failures")?;
    if auto_disable_after <= 0 || failures < auto_disable_after {
        return Ok(false);
    }
    let disabled = job::Entity::update_many()
        .col_expr(job::Column::Enabled, Expr::value(false))
        .col_expr(
            job::Column::NextRunAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            job::Column::DisabledReason,
            Expr::value(Some(format!(
                "auto-disabled after {failures} consecutive failed occurrences"
            ))),
        )
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::Id.eq(job_id))
        .filter(job::Column::Enabled.eq(true))
        .exec(db)
        .await?;
    Ok(disabled.rows_affected == 1)
}

/// Takes over executions whose lease expired (their node died): each is marked
/// failed with `reason` by a conditional update, so only one rescuer wins it.
/// Returns the executions taken over, with their jobs.
pub async fn take_over_expired_leases(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    reason: &str,
    limit: u64,
) -> Result<Vec<ClaimedExecution>> {
    let expired = execution::Entity::find()
        .filter(is_running())
        .filter(execution::Column::LeaseExpiresAt.lt(now))
        .order_by_asc(execution::Column::LeaseExpiresAt)
        .limit(limit)
        .all(db)
        .await?;
    let mut taken = Vec::with_capacity(expired.len());
    for execution in expired {
        let result = execution::Entity::update_many()
            .col_expr(execution::Column::Status, Expr::value("failed"))
            .col_expr(execution::Column::FinishedAt, Expr::value(Some(now)))
            .col_expr(
                execution::Column::Error,
                Expr::value(Some(reason.to_owned())),
            )
            .col_expr(
                execution::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(execution::Column::Id.eq(execution.id))
            .filter(execution::Column::Status.eq("running"))
            .filter(execution::Column::LeaseExpiresAt.lt(now))
            .exec(db)
            .await?;
        if result.rows_affected == 1 {
            if let Some(job) = job::Entity::find_by_id(execution.job_id).one(db).await? {
                taken.push(ClaimedExecution { execution, job });
            }
        }
    }
    Ok(taken)
}

/// Marks this node's running executions interrupted (graceful shutdown past its
/// grace period), returning them with their jobs.
pub async fn interrupt_node_executions(
    db: &impl ConnectionTrait,
    node_id: &str,
    ids: &[Uuid],
    now: DateTime<Utc>,
    reason: &str,
) -> Result<Vec<ClaimedExecution>> {
    let mut interrupted = Vec::new();
    for id in ids {
        let result = execution::Entity::update_many()
            .col_expr(execution::Column::Status, Expr::value("failed"))
            .col_expr(execution::Column::FinishedAt, Expr::value(Some(now)))
            .col_expr(
                execution::Column::Error,
                Expr::value(Some(reason.to_owned())),
            )
            .col_expr(
                execution::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(execution::Column::Id.eq(*id))
            .filter(execution::Column::Status.eq("running"))
            .filter(execution::Column::NodeId.eq(node_id))
            .exec(db)
            .await?;
        if result.rows_affected == 1 {
            if let Some(execution) = execution::Entity::find_by_id(*id).one(db).await? {
                if let Some(job) = job::Entity::find_by_id(execution.job_id).one(db).await? {
                    interrupted.push(ClaimedExecution { execution, job });
                }
            }
        }
    }
    Ok(interrupted)
}

/// Executions due and not started: the queue depth.
pub async fn queue_depth(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    Ok(execution::Entity::find()
        .filter(is_pending())
        .filter(execution::Column::RunAfter.lte(now))
        .count(db)
        .await?)
}

/// The signing secrets of an organization that still sign at `now`.
pub async fn signing_secrets(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    Ok(
        crate::organizations::active_signing_secrets(db, organization_id, now)
            .await?
            .into_iter()
            .map(|s| s.secret)
            .collect(),
    )
}

/// Records claimed executions as skipped without running them (quota exceeded).
pub async fn skip_claimed(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
    now: DateTime<Utc>,
    reason: &str,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    execution::Entity::update_many()
        .col_expr(execution::Column::Status, Expr::value("skipped"))
        .col_expr(execution::Column::FinishedAt, Expr::value(Some(now)))
        .col_expr(
            execution::Column::Error,
            Expr::value(Some(reason.to_owned())),
        )
        .col_expr(
            execution::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(execution::Column::Id.is_in(ids.to_vec()))
        .exec(db)
        .await?;
    Ok(())
}

/// The plans of these organizations, by id.
pub async fn organization_plans(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(organization::Entity::find()
        .filter(organization::Column::Id.is_in(ids.to_vec()))
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.id, o.plan))
        .collect())
}
