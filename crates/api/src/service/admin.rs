//! The internal admin endpoints' use cases: platform admins or the service token.

use chrono::{DateTime, Duration, Utc};
use punctual_domain::UsagePeriod;
use punctual_persistence::entities::organization;
use punctual_persistence::{accounts, jobs, organizations, usage};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::{Caller, Principal};
use crate::service::audit::Entry;
use crate::service::identity::UserView;
use crate::service::ServiceError;
use crate::state::AppState;

type Result<T> = std::result::Result<T, ServiceError>;

/// Platform admins and the service token only (403 otherwise).
pub(crate) fn require_admin(caller: &Caller) -> Result<()> {
    match caller.principal {
        Principal::Service
        | Principal::User {
            platform_admin: true,
            ..
        } => Ok(()),
        _ => Err(ServiceError::Forbidden("platform admins only".to_owned())),
    }
}

/// An organization with its usage, for admins.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminOrganization {
    /// Id.
    pub id: Uuid,
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Plan.
    pub plan: String,
    /// Suspended since.
    pub suspended_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Jobs it has.
    pub jobs: u64,
    /// Executions this calendar month.
    pub executions_this_period: u64,
}

async fn with_usage(state: &AppState, org: organization::Model) -> Result<AdminOrganization> {
    let db = state.database.conn();
    Ok(AdminOrganization {
        jobs: jobs::job_count(db, org.id).await?,
        executions_this_period: usage::count_executions_since(
            db,
            org.id,
            UsagePeriod::containing(Utc::now()).start,
        )
        .await?,
        id: org.id,
        slug: org.slug,
        name: org.name,
        plan: org.plan,
        suspended_at: org.suspended_at,
        created_at: org.created_at,
    })
}

/// Every organization, by id, after `cursor`.
pub async fn list_organizations(
    state: &AppState,
    caller: &Caller,
    cursor: Option<Uuid>,
    limit: u64,
) -> Result<Vec<AdminOrganization>> {
    require_admin(caller)?;
    let orgs = organizations::list_organizations(state.database.conn(), cursor, limit).await?;
    let mut result = Vec::with_capacity(orgs.len());
    for org in orgs {
        result.push(with_usage(state, org).await?);
    }
    Ok(result)
}

/// One organization.
pub async fn get_organization(
    state: &AppState,
    caller: &Caller,
    slug: &str,
) -> Result<AdminOrganization> {
    require_admin(caller)?;
    let org = organizations::find_organization_by_slug(state.database.conn(), slug)
        .await?
        .ok_or(ServiceError::NotFound("organization"))?;
    with_usage(state, org).await
}

/// Sets the plan and/or suspends or unsuspends.
pub async fn update_organization(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    plan: Option<String>,
    suspended: Option<bool>,
) -> Result<AdminOrganization> {
    require_admin(caller)?;
    if let Some(plan) = &plan {
        if !state.plans.contains_key(plan) {
            return Err(ServiceError::invalid(
                "plan",
                format!(
                    "one of {}",
                    state.plans.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let now = Utc::now();
    let transaction = state.database.begin_write().await?;
    let org = organizations::find_organization_by_slug(&transaction, slug)
        .await?
        .ok_or(ServiceError::NotFound("organization"))?;
    let suspended_at = suspended.map(|s| {
        if s {
            Some(org.suspended_at.unwrap_or(now))
        } else {
            None
        }
    });
    organizations::update_organization_admin(
        &transaction,
        org.id,
        plan.as_deref(),
        suspended_at,
        now,
    )
    .await?;
    let was_suspended = org.suspended_at.is_some();
    Entry::by(caller, "admin.org_updated")
        .org(org.id)
        .target("organization", org.id)
        .metadata(json!({
            "slug": org.slug,
            "old_plan": org.plan,
            "plan": plan.as_deref().unwrap_or(&org.plan),
            "old_suspended": was_suspended,
            "suspended": suspended.unwrap_or(was_suspended),
        }))
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    state.api_keys.forget_organization(org.id);
    // Suspended, its runs claimed ahead of their time are given up at the
    // engine's next wake-up: this one; unsuspended, its jobs may be due.
    state.engine_wakeup.notify_one();
    tracing::info!(org_id = %org.id, ?plan, ?suspended, "organization updated by an admin");
    get_organization(state, caller, slug).await
}

/// Users by id, after `cursor`.
pub async fn list_users(
    state: &AppState,
    caller: &Caller,
    cursor: Option<Uuid>,
    limit: u64,
) -> Result<Vec<UserView>> {
    require_admin(caller)?;
    Ok(accounts::list_users(state.database.conn(), cursor, limit)
        .await?
        .iter()
        .map(UserView::from)
        .collect())
}

/// Disables / enables a user (disabling revokes every session) and grants or
/// withdraws platform admin.
pub async fn update_user(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    disabled: Option<bool>,
    platform_admin: Option<bool>,
) -> Result<UserView> {
    require_admin(caller)?;
    let now = Utc::now();
    let transaction = state.database.begin_write().await?;
    let before = accounts::find_user(&transaction, id)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    let mut revoked_sessions = 0;
    if let Some(disabled) = disabled {
        accounts::set_user_disabled(
            &transaction,
            id,
            disabled.then_some(before.disabled_at.unwrap_or(now)),
            now,
        )
        .await?;
        if disabled {
            revoked_sessions = accounts::revoke_user_sessions(&transaction, id, now).await?;
        }
    }
    if let Some(admin) = platform_admin {
        accounts::set_platform_admin(&transaction, id, admin, now).await?;
    }
    let user = accounts::find_user(&transaction, id)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    Entry::by(caller, "admin.user_updated")
        .target("user", id)
        .metadata(json!({
            "email": user.email,
            "old_disabled": before.disabled_at.is_some(),
            "disabled": user.disabled_at.is_some(),
            "old_platform_admin": before.is_platform_admin,
            "platform_admin": user.is_platform_admin,
            "revoked_sessions": revoked_sessions,
        }))
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    Ok(UserView::from(&user))
}

/// Platform-wide counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stats {
    /// Organizations.
    pub organizations: u64,
    /// Users.
    pub users: u64,
    /// Jobs.
    pub jobs: u64,
    /// Executions created in the last 24 hours, by status.
    pub executions_last_24h: BTreeMap<String, u64>,
    /// How late the engine runs.
    pub engine_lag: EngineLag,
}

/// How late the engine runs (the `punctual_execution_lag_seconds` histogram of
/// `/metrics` has the distribution, per node).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EngineLag {
    /// How long the most overdue job has been due without being dispatched
    /// (0 when none is waiting): the engine falling behind shows here first.
    pub overdue_ms: u64,
    /// Attempts started in the last 5 minutes, all nodes.
    pub last_5_minutes: RecentLag,
}

/// The lag (start minus due time) of the attempts started in a window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecentLag {
    /// Attempts that started.
    pub executions: u64,
    /// Their mean lag, in milliseconds; null without attempts.
    pub mean_ms: Option<i64>,
    /// Their largest lag, in milliseconds; null without attempts.
    pub max_ms: Option<i64>,
}

/// Platform-wide counts.
pub async fn stats(state: &AppState, caller: &Caller) -> Result<Stats> {
    require_admin(caller)?;
    let db = state.database.conn();
    let (organizations, users, jobs) = usage::totals(db).await?;
    let executions_last_24h =
        usage::executions_by_status(db, None, Utc::now() - Duration::hours(24))
            .await?
            .into_iter()
            .collect();
    let now = Utc::now();
    let overdue_ms = punctual_persistence::engine::earliest_due_job(db)
        .await?
        .map(|(due, _)| (now - due).num_milliseconds())
        .and_then(|late| u64::try_from(late).ok())
        .unwrap_or(0);
    let recent = usage::recent_lag(db, now - Duration::minutes(5)).await?;
    Ok(Stats {
        organizations,
        users,
        jobs,
        executions_last_24h,
        engine_lag: EngineLag {
            overdue_ms,
            last_5_minutes: RecentLag {
                executions: recent.executions,
                mean_ms: recent.mean_ms,
                max_ms: recent.max_ms,
            },
        },
    })
}

/// `punctual admin grant <email>`: makes an existing user a platform admin.
pub async fn grant_platform_admin(
    database: &punctual_persistence::Database,
    email: &str,
) -> Result<Uuid> {
    let normalized = email.trim().to_lowercase();
    let now = Utc::now();
    let transaction = database.begin_write().await?;
    let user = accounts::find_user_by_email(&transaction, &normalized)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    accounts::set_platform_admin(&transaction, user.id, true, now).await?;
    Entry::by_system("admin.user_updated")
        .target("user", user.id)
        .metadata(json!({
            "email": user.email,
            "old_platform_admin": user.is_platform_admin,
            "platform_admin": true,
            "via": "command line",
        }))
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    Ok(user.id)
}
