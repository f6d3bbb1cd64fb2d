//! The email outbox: messages are written in the same transaction as the change
//! that causes them and sent later by a background task, so none is lost.

use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait, QueryOrder, QuerySelect};

use crate::entities::email_outbox;
use crate::PersistenceError;

type Result<T> = std::result::Result<T, PersistenceError>;

/// Queues an email.
pub async fn enqueue_email(
    db: &impl ConnectionTrait,
    recipient: &str,
    subject: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    email_outbox::ActiveModel {
        id: Set(id),
        recipient: Set(recipient.to_owned()),
        subject: Set(subject.to_owned()),
        body: Set(body.to_owned()),
        created_at: Set(now),
        attempts: Set(0),
        next_attempt_at: Set(now),
        sent_at: Set(None),
        last_error: Set(None),
        locked_until: Set(None),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// Claims up to `limit` unsent emails that are due and not locked by another
/// sender, locking them until `lock_until`. Each is claimed by a conditional
/// update, so two senders never take the same message at once.
pub async fn claim_due_emails(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lock_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<email_outbox::Model>> {
    let candidates = email_outbox::Entity::find()
        .filter(email_outbox::Column::SentAt.is_null())
        .filter(email_outbox::Column::NextAttemptAt.lte(now))
        .filter(
            sea_orm::Condition::any()
                .add(email_outbox::Column::LockedUntil.is_null())
                .add(email_outbox::Column::LockedUntil.lt(now)),
        )
        .order_by_asc(email_outbox::Column::NextAttemptAt)
        .limit(limit)
        .all(db)
        .await?;
    let mut claimed = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let result = email_outbox::Entity::update_many()
            .col_expr(
                email_outbox::Column::LockedUntil,
                Expr::value(Some(lock_until)),
            )
            .filter(email_outbox::Column::Id.eq(candidate.id))
            .filter(email_outbox::Column::SentAt.is_null())
            .filter(
                sea_orm::Condition::any()
                    .add(email_outbox::Column::LockedUntil.is_null())
                    .add(email_outbox::Column::LockedUntil.lt(now)),
            )
            .exec(db)
            .await?;
        if result.rows_affected == 1 {
            claimed.push(candidate);
        }
    }
    Ok(claimed)
}

/// Records a successful send.
pub async fn mark_email_sent(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    email_outbox::Entity::update_many()
        .col_expr(email_outbox::Column::SentAt, Expr::value(Some(now)))
        .col_expr(
            email_outbox::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(email_outbox::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a failed send and when to try again.
pub async fn mark_email_failed(
    db: &impl ConnectionTrait,
    id: Uuid,
    attempts: i32,
    error: &str,
    next_attempt_at: DateTime<Utc>,
) -> Result<()> {
    email_outbox::Entity::update_many()
        .col_expr(email_outbox::Column::Attempts, Expr::value(attempts))
        .col_expr(
            email_outbox::Column::LastError,
            Expr::value(Some(error.to_owned())),
        )
        .col_expr(
            email_outbox::Column::NextAttemptAt,
            Expr::value(next_attempt_at),
        )
        .col_expr(
            email_outbox::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(email_outbox::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Unsent emails (for tests and operators).
pub async fn pending_email_count(db: &impl ConnectionTrait) -> Result<u64> {
    Ok(email_outbox::Entity::find()
        .filter(email_outbox::Column::SentAt.is_null())
        .count(db)
        .await?)
}
