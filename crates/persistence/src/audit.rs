//! The audit trail: one row per mutation or security event, written in the same
//! transaction as the change it records. Metadata never holds secrets.
//!
//! Rows are deliberately not bound to `organizations` by a foreign key: the
//! record of what happened in an organization outlives the organization.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, Condition, ConnectionTrait, QueryOrder, QuerySelect};

use crate::entities::audit_event;
use crate::PersistenceError;

type Result<T> = std::result::Result<T, PersistenceError>;

/// The kinds of actor an event can name (`actor_type`).
pub mod actor {
    /// A signed-in user; `actor_id` is the user id.
    pub const USER: &str = "user";
    /// An organization's API key; `actor_id` is the key id.
    pub const API_KEY: &str = "api_key";
    /// The configured admin service token; no `actor_id`.
    pub const ADMIN: &str = "admin";
    /// Punctual itself (the engine, the command line); no `actor_id`.
    pub const SYSTEM: &str = "system";
    /// Nobody we could name (a login with an unknown email); no `actor_id`.
    pub const ANONYMOUS: &str = "anonymous";
}

/// What happened, by whom, to what.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent {
    /// The organization, or None for platform-wide events (logins, admin actions on users).
    pub organization_id: Option<Uuid>,
    /// One of [`actor`]'s constants.
    pub actor_type: String,
    /// The user or key id.
    pub actor_id: Option<String>,
    /// Dotted action, e.g. `job.created`.
    pub action: String,
    /// Kind of the thing acted on.
    pub target_type: Option<String>,
    /// Its id.
    pub target_id: Option<String>,
    /// Caller's address.
    pub ip: Option<String>,
    /// Caller's user agent.
    pub user_agent: Option<String>,
    /// JSON details (no secrets).
    pub metadata: serde_json::Value,
}

/// Appends an audit event. Pass the transaction of the change it records, so
/// that both are kept or neither is.
pub async fn record(
    db: &impl ConnectionTrait,
    event: NewAuditEvent,
    now: DateTime<Utc>,
) -> Result<()> {
    audit_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(event.organization_id),
        actor_type: Set(event.actor_type),
        actor_id: Set(event.actor_id),
        action: Set(event.action),
        target_type: Set(event.target_type),
        target_id: Set(event.target_id),
        ip: Set(event.ip),
        user_agent: Set(event.user_agent),
        metadata: Set(event.metadata.to_string()),
        // PostgreSQL keeps microseconds; storing the same on SQLite makes the
        // (created_at, id) cursor exact on both engines.
        created_at: Set(now.trunc_subsecs(6)),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// One organization (None: all, for platform admins).
    pub organization_id: Option<Uuid>,
    /// Exact action.
    pub action: Option<String>,
    /// Exact actor id, or, for actors without one (`admin`, `system`,
    /// `anonymous`), the actor type.
    pub actor: Option<String>,
    /// Not before.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
    /// Continue after this (created_at, id), newest first.
    pub cursor: Option<(DateTime<Utc>, Uuid)>,
}

/// Events newest first (ties broken by id, descending).
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &AuditFilter,
    limit: u64,
) -> Result<Vec<audit_event::Model>> {
    let mut query = audit_event::Entity::find();
    if let Some(org) = filter.organization_id {
        query = query.filter(audit_event::Column::OrganizationId.eq(org));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_event::Column::Action.eq(action.as_str()));
    }
    if let Some(actor) = &filter.actor {
        query = query.filter(
            Condition::any()
                .add(audit_event::Column::ActorId.eq(actor.as_str()))
                .add(
                    Condition::all()
                        .add(audit_event::Column::ActorId.is_null())
                        .add(audit_event::Column::ActorType.eq(actor.as_str())),
                ),
        );
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_event::Column::CreatedAt.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_event::Column::CreatedAt.lt(until));
    }
    if let Some((at, id)) = filter.cursor {
        query = query.filter(
            Condition::any()
                .add(audit_event::Column::CreatedAt.lt(at))
                .add(
                    Condition::all()
                        .add(audit_event::Column::CreatedAt.eq(at))
                        .add(audit_event::Column::Id.lt(id)),
                ),
        );
    }
    Ok(query
        .order_by_desc(audit_event::Column::CreatedAt)
        .order_by_desc(audit_event::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}
