//! The audit log: how use cases describe what they changed (`Entry`), and
//! reading the log back, per organization (its admins) or platform-wide
//! (platform admins and the service token).
//!
//! An entry is written with the transaction of the change it records, so a
//! refused or failed change leaves no entry, and a recorded change always has one.
//! Metadata names what changed, never a password, token, key, secret or hash.

use chrono::{DateTime, Utc};
use punctual_auth::Permission;
use punctual_persistence::audit::{self, actor, AuditFilter, NewAuditEvent};
use punctual_persistence::entities::audit_event;
use punctual_persistence::organizations;
use punctual_persistence::sea_orm::ConnectionTrait;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::{Caller, Principal, RequestMeta};
use crate::pagination::Page;
use crate::service::admin::require_admin;
use crate::service::jobs::{decode_cursor, next_cursor};
use crate::service::organizations::authorize;
use crate::service::ServiceError;
use crate::state::AppState;

type Result<T> = std::result::Result<T, ServiceError>;

/// One audit event under construction: who (from the caller or named
/// explicitly), what, on which organization and target, with which details.
#[derive(Debug, Clone)]
pub(crate) struct Entry(NewAuditEvent);

impl Entry {
    /// `action` done by an authenticated caller: a user, an API key, or the
    /// service token (`admin`).
    pub(crate) fn by(caller: &Caller, action: &str) -> Self {
        let (actor_type, actor_id) = match &caller.principal {
            Principal::User { user_id, .. } => (actor::USER, Some(user_id.to_string())),
            Principal::ApiKey { key_id, .. } => (actor::API_KEY, Some(key_id.to_string())),
            Principal::Service => (actor::ADMIN, None),
        };
        Self::new(actor_type, actor_id, &caller.meta, action)
    }

    /// `action` of an unauthenticated request about `user` (sign-in, reset,
    /// magic link): the account it names, or nobody when no account matches.
    pub(crate) fn for_account(user: Option<Uuid>, meta: &RequestMeta, action: &str) -> Self {
        match user {
            Some(user) => {
                Self::new(actor::USER, Some(user.to_string()), meta, action).target("user", user)
            }
            None => Self::new(actor::ANONYMOUS, None, meta, action),
        }
    }

    /// `action` done by Punctual itself (the command line, the engine).
    pub(crate) fn by_system(action: &str) -> Self {
        Self::new(actor::SYSTEM, None, &RequestMeta::default(), action)
    }

    fn new(actor_type: &str, actor_id: Option<String>, meta: &RequestMeta, action: &str) -> Self {
        Self(NewAuditEvent {
            organization_id: None,
            actor_type: actor_type.to_owned(),
            actor_id,
            action: action.to_owned(),
            target_type: None,
            target_id: None,
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            metadata: Value::Object(serde_json::Map::new()),
        })
    }

    /// The organization the event belongs to (shown in its audit log).
    pub(crate) fn org(mut self, organization_id: Uuid) -> Self {
        self.0.organization_id = Some(organization_id);
        self
    }

    /// The thing acted on.
    pub(crate) fn target(mut self, kind: &str, id: impl ToString) -> Self {
        self.0.target_type = Some(kind.to_owned());
        self.0.target_id = Some(id.to_string());
        self
    }

    /// Details; callers put names, roles and flags here, never secret values.
    pub(crate) fn metadata(mut self, metadata: Value) -> Self {
        self.0.metadata = metadata;
        self
    }

    /// Writes the entry with `db`: the transaction of the change it records.
    pub(crate) async fn record(self, db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<()> {
        audit::record(db, self.0, now).await?;
        Ok(())
    }
}

/// One event of the audit log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEventView {
    /// Id.
    pub id: Uuid,
    /// When (newest first).
    pub created_at: DateTime<Utc>,
    /// The organization it belongs to; null for platform-wide events (sign-ins,
    /// admin changes to users).
    pub organization_id: Option<Uuid>,
    /// Dotted action, e.g. `job.created`, `auth.login_failed`.
    #[schema(example = "job.created")]
    pub action: String,
    /// `user`, `api_key`, `admin` (the service token), `system` or `anonymous`.
    #[schema(example = "user")]
    pub actor_type: String,
    /// The user or API key id; null for the other actor types.
    pub actor_id: Option<String>,
    /// Kind of the thing acted on (`job`, `user`, `api_key`, `invitation`, ...).
    pub target_type: Option<String>,
    /// Its id.
    pub target_id: Option<String>,
    /// The caller's address.
    pub ip: Option<String>,
    /// The caller's `User-Agent`.
    pub user_agent: Option<String>,
    /// Details of the change (never secrets).
    #[schema(value_type = Object)]
    pub metadata: Value,
}

impl From<audit_event::Model> for AuditEventView {
    fn from(row: audit_event::Model) -> Self {
        Self {
            id: row.id,
            created_at: row.created_at,
            organization_id: row.organization_id,
            // Written by `record` from a `serde_json::Value`; an unreadable one is
            // shown as its text rather than failing the whole page.
            metadata: serde_json::from_str(&row.metadata).unwrap_or(Value::String(row.metadata)),
            action: row.action,
            actor_type: row.actor_type,
            actor_id: row.actor_id,
            target_type: row.target_type,
            target_id: row.target_id,
            ip: row.ip,
            user_agent: row.user_agent,
        }
    }
}

/// Filters and paging of the audit log, as given in the query string.
#[derive(Debug, Clone, Default)]
pub struct ListAudit {
    /// An exact action.
    pub action: Option<String>,
    /// An actor id, or `admin` / `system` / `anonymous`.
    pub actor: Option<String>,
    /// RFC 3339: events at or after.
    pub since: Option<String>,
    /// RFC 3339: events before.
    pub until: Option<String>,
    /// Platform log only: one organization's slug.
    pub org: Option<String>,
    /// Platform log only: one organization's id (also of a deleted one).
    pub org_id: Option<String>,
    /// From a previous page.
    pub cursor: Option<String>,
    /// Page size (already checked).
    pub limit: u64,
}

/// The organization's audit log, newest first (admins and owners).
#[tracing::instrument(skip_all, fields(org_id))]
pub async fn organization_log(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    query: &ListAudit,
) -> Result<Page<AuditEventView>> {
    let access = authorize(state, caller, slug, Permission::ReadAuditLog).await?;
    tracing::Span::current().record("org_id", tracing::field::display(access.org.id));
    let mut filter = filter_of(query)?;
    filter.organization_id = Some(access.org.id);
    page(state, &filter, query.limit).await
}

/// Every organization's audit log and the platform-wide events, newest first
/// (platform admins and the service token); `org` / `org_id` narrow it to one
/// organization.
#[tracing::instrument(skip_all)]
pub async fn platform_log(
    state: &AppState,
    caller: &Caller,
    query: &ListAudit,
) -> Result<Page<AuditEventView>> {
    require_admin(caller)?;
    let mut filter = filter_of(query)?;
    if let Some(raw) = query.org_id.as_deref() {
        let id = Uuid::try_parse(raw)
            .map_err(|_| ServiceError::invalid("org_id", "must be an organization id"))?;
        filter.organization_id = Some(id);
    }
    if let Some(slug) = query.org.as_deref() {
        let Some(org) =
            organizations::find_organization_by_slug(state.database.conn(), slug).await?
        else {
            // A filter that matches nothing: an empty page, as for any other filter.
            return Ok(Page::all(Vec::new()));
        };
        if filter.organization_id.is_some_and(|id| id != org.id) {
            return Ok(Page::all(Vec::new()));
        }
        filter.organization_id = Some(org.id);
    }
    page(state, &filter, query.limit).await
}

fn filter_of(query: &ListAudit) -> Result<AuditFilter> {
    let mut problems = Vec::new();
    let mut instant = |field: &str, raw: Option<&str>| {
        raw.and_then(|raw| match DateTime::parse_from_rfc3339(raw.trim()) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(_) => {
                problems.push(crate::error::FieldProblem {
                    field: field.to_owned(),
                    message: "must be an RFC 3339 date-time, e.g. 2026-01-31T09:00:00Z".to_owned(),
                });
                None
            }
        })
    };
    let since = instant("since", query.since.as_deref());
    let until = instant("until", query.until.as_deref());
    if let (Some(since), Some(until)) = (since, until) {
        if until < since {
            problems.push(crate::error::FieldProblem {
                field: "until".to_owned(),
                message: "must not be before `since`".to_owned(),
            });
        }
    }
    let cursor = match decode_cursor(query.cursor.as_deref()) {
        Ok(cursor) => cursor.map(|position| (position.created_at, position.id)),
        Err(ServiceError::Invalid(mut more)) => {
            problems.append(&mut more);
            None
        }
        Err(other) => return Err(other),
    };
    if !problems.is_empty() {
        return Err(ServiceError::Invalid(problems));
    }
    let text = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    Ok(AuditFilter {
        organization_id: None,
        action: text(&query.action),
        actor: text(&query.actor),
        since,
        until,
        cursor,
    })
}

async fn page(state: &AppState, filter: &AuditFilter, limit: u64) -> Result<Page<AuditEventView>> {
    // One row more than asked tells whether another page follows.
    let mut rows = audit::list(state.database.conn(), filter, limit + 1).await?;
    let next_cursor = next_cursor(&mut rows, limit, |row| (row.created_at, row.id));
    Ok(Page {
        data: rows.into_iter().map(AuditEventView::from).collect(),
        next_cursor,
    })
}
