//! Plan limits on what an organization saves: job count, minimum interval,
//! timeout ceiling and retry ceiling. Over a limit is a 429 naming the limit and
//! the current figure. (The plan's cap on a job's request body is checked with
//! the rest of the job's fields, a 422 naming `request.body` as API.md says; the
//! monthly execution quota is counted by the engine as executions start.)

use chrono::{DateTime, Utc};
use punctual_domain::{JobSpec, PlanLimits};
use punctual_persistence::entities::organization;
use punctual_persistence::jobs;
use punctual_persistence::sea_orm::ConnectionTrait;

use crate::service::ServiceError;
use crate::state::AppState;

/// The limits of `org`'s plan (the free plan's when its plan is not configured).
pub fn limits_of<'a>(state: &'a AppState, org: &organization::Model) -> Option<&'a PlanLimits> {
    punctual_domain::limits_for(&state.plans, &org.plan)
}

fn too_many_jobs(org: &organization::Model, limits: &PlanLimits, current: u64) -> ServiceError {
    ServiceError::QuotaExceeded {
        detail: format!("the {} plan allows {} jobs", org.plan, limits.max_jobs),
        limit: limits.max_jobs,
        current,
    }
}

/// Before a manual run: with the month's executions used up, a 429 (API.md:
/// monthly executions are enforced with `limit` and `current`) rather than a
/// run accepted only to be recorded skipped.
pub async fn check_execution_quota(
    state: &AppState,
    org: &organization::Model,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let Some(limits) = limits_of(state, org) else {
        return Ok(());
    };
    let period = punctual_domain::UsagePeriod::containing(now);
    let used =
        punctual_persistence::quota::executions_used(state.database.conn(), org.id, &period.key())
            .await?;
    if used >= limits.executions_per_month {
        return Err(ServiceError::QuotaExceeded {
            detail: format!(
                "the {} plan allows {} executions a month, all used in {}",
                org.plan,
                limits.executions_per_month,
                period.key()
            ),
            limit: limits.executions_per_month,
            current: used,
        });
    }
    Ok(())
}

/// Right after a job was inserted in `db`'s transaction: past the plan's job
/// count, a 429 (the caller drops the transaction, so nothing is created). The
/// insert keeps the organization's row locked until the transaction ends, so
/// concurrent creations are counted one after the other.
pub async fn check_job_count(
    state: &AppState,
    org: &organization::Model,
    db: &impl ConnectionTrait,
) -> Result<(), ServiceError> {
    let Some(limits) = limits_of(state, org) else {
        return Ok(());
    };
    let count = jobs::job_count(db, org.id).await?;
    if count > limits.max_jobs {
        return Err(too_many_jobs(org, limits, count.saturating_sub(1)));
    }
    Ok(())
}

/// Checks `spec` against the plan (the job count is checked as a job is
/// inserted: [`check_job_count`]).
pub async fn enforce(
    state: &AppState,
    org: &organization::Model,
    spec: &JobSpec,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let Some(limits) = limits_of(state, org) else {
        return Ok(());
    };
    let over = |detail: String, limit: u64, current: u64| ServiceError::QuotaExceeded {
        detail,
        limit,
        current,
    };
    let limit =
        chrono::Duration::seconds(i64::try_from(limits.min_interval_seconds).unwrap_or(i64::MAX));
    if let Some(interval) = spec.schedule.interval_shorter_than(now, limit) {
        let seconds = u64::try_from(interval.num_seconds()).unwrap_or(0);
        return Err(over(
            format!(
                "the {} plan allows at least {} s between runs; this schedule runs every {} s",
                org.plan, limits.min_interval_seconds, seconds
            ),
            limits.min_interval_seconds,
            seconds,
        ));
    }
    let timeout = spec.request.timeout.get();
    if timeout > limits.max_timeout_ms {
        return Err(over(
            format!(
                "the {} plan allows timeouts up to {} ms",
                org.plan, limits.max_timeout_ms
            ),
            limits.max_timeout_ms,
            timeout,
        ));
    }
    let attempts = u64::from(spec.retry.max_attempts());
    if attempts > u64::from(limits.max_retry_attempts) {
        return Err(over(
            format!(
                "the {} plan allows {} attempts per run",
                org.plan, limits.max_retry_attempts
            ),
            u64::from(limits.max_retry_attempts),
            attempts,
        ));
    }
    Ok(())
}
