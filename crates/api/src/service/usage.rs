//! What an organization used this period against what its plan allows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use punctual_auth::Permission;
use punctual_domain::{PlanLimits, UsagePeriod};
use punctual_persistence::{jobs, quota, usage};
use serde::Serialize;
use utoipa::ToSchema;

use crate::caller::Caller;
use crate::service::organizations::authorize;
use crate::service::{plans, ServiceError};
use crate::state::AppState;

/// Used against allowed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Meter {
    /// Used so far.
    pub used: u64,
    /// What the plan allows.
    pub limit: Option<u64>,
}

/// An organization's usage this period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Usage {
    /// Plan name.
    #[schema(example = "free")]
    pub plan: String,
    /// `YYYY-MM`.
    #[schema(example = "2026-11")]
    pub period: String,
    /// First instant of the period (UTC).
    pub period_start: DateTime<Utc>,
    /// First instant of the next period.
    pub period_end: DateTime<Utc>,
    /// Executions started this period (each attempt counts).
    pub executions: Meter,
    /// Jobs the organization has.
    pub jobs: Meter,
    /// Executions recorded this period, by status (skipped ones included).
    pub executions_by_status: BTreeMap<String, u64>,
    /// The plan's limits.
    #[schema(value_type = Object)]
    pub limits: Option<PlanLimits>,
}

/// `GET /orgs/{org}/usage` (members).
pub async fn usage(state: &AppState, caller: &Caller, slug: &str) -> Result<Usage, ServiceError> {
    let access = authorize(state, caller, slug, Permission::ReadOrg).await?;
    let now = Utc::now();
    let period = UsagePeriod::containing(now);
    let db = state.database.conn();
    let limits = plans::limits_of(state, &access.org).cloned();
    let executions_by_status = usage::executions_by_status(db, Some(access.org.id), period.start)
        .await?
        .into_iter()
        .collect();
    Ok(Usage {
        plan: access.org.plan.clone(),
        period: period.key(),
        period_start: period.start,
        period_end: period.end,
        executions: Meter {
            used: quota::executions_used(db, access.org.id, &period.key()).await?,
            limit: limits.as_ref().map(|l| l.executions_per_month),
        },
        jobs: Meter {
            used: jobs::job_count(db, access.org.id).await?,
            limit: limits.as_ref().map(|l| l.max_jobs),
        },
        executions_by_status,
        limits,
    })
}
