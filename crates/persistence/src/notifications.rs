//! Notification settings per organization, the events already notified (for
//! coalescing), and the outbox of signed webhook notifications.

use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait, QueryOrder, QuerySelect};

use crate::entities::{membership, notification_event, notification_setting, user, webhook_outbox};
use crate::PersistenceError;

type Result<T> = std::result::Result<T, PersistenceError>;

/// An organization's notification settings, if it saved any.
pub async fn settings(
    db: &impl ConnectionTrait,
    org: Uuid,
) -> Result<Option<notification_setting::Model>> {
    Ok(notification_setting::Entity::find_by_id(org)
        .one(db)
        .await?)
}

/// Replaces an organization's notification settings.
pub async fn save_settings(
    db: &impl ConnectionTrait,
    settings: notification_setting::Model,
) -> Result<()> {
    notification_setting::Entity::delete_by_id(settings.organization_id)
        .exec(db)
        .await?;
    notification_setting::ActiveModel {
        organization_id: Set(settings.organization_id),
        emails: Set(settings.emails),
        webhook_url: Set(settings.webhook_url),
        on_failure: Set(settings.on_failure),
        on_auto_disable: Set(settings.on_auto_disable),
        on_recovery: Set(settings.on_recovery),
        updated_at: Set(settings.updated_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Emails of the organization's owners and admins (recipients when nothing is configured).
pub async fn admin_emails(db: &impl ConnectionTrait, org: Uuid) -> Result<Vec<String>> {
    let members = membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(org))
        .filter(membership::Column::Role.is_in(["owner", "admin"]))
        .all(db)
        .await?;
    let ids: Vec<Uuid> = members.iter().map(|m| m.user_id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .filter(user::Column::DisabledAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .map(|u| u.email)
        .collect())
}

/// When `kind` was last notified for `job` (or the organization when None).
pub async fn last_event(
    db: &impl ConnectionTrait,
    org: Uuid,
    job: Option<Uuid>,
    kind: &str,
) -> Result<Option<DateTime<Utc>>> {
    let mut query = notification_event::Entity::find()
        .filter(notification_event::Column::OrganizationId.eq(org))
        .filter(notification_event::Column::Kind.eq(kind));
    query = match job {
        Some(job) => query.filter(notification_event::Column::JobId.eq(job)),
        None => query.filter(notification_event::Column::JobId.is_null()),
    };
    Ok(query
        .order_by_desc(notification_event::Column::CreatedAt)
        .limit(1)
        .one(db)
        .await?
        .map(|e| e.created_at))
}

/// Records that `kind` was notified now.
pub async fn record_event(
    db: &impl ConnectionTrait,
    org: Uuid,
    job: Option<Uuid>,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    notification_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(org),
        job_id: Set(job),
        kind: Set(kind.to_owned()),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Queues a webhook notification.
pub async fn enqueue_webhook(
    db: &impl ConnectionTrait,
    org: Uuid,
    url: &str,
    payload: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    webhook_outbox::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(org),
        url: Set(url.to_owned()),
        payload: Set(payload.to_owned()),
        created_at: Set(now),
        attempts: Set(0),
        next_attempt_at: Set(now),
        sent_at: Set(None),
        last_error: Set(None),
        locked_until: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Earliest retry of an unsent webhook notification.
pub async fn earliest_webhook(db: &impl ConnectionTrait) -> Result<Option<DateTime<Utc>>> {
    Ok(webhook_outbox::Entity::find()
        .filter(webhook_outbox::Column::SentAt.is_null())
        .order_by_asc(webhook_outbox::Column::NextAttemptAt)
        .one(db)
        .await?
        .map(|w| w.next_attempt_at))
}
