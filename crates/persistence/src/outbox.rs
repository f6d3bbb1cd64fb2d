//! The outboxes of emails and of webhook notifications: messages are written in
//! the same transaction as the change that causes them and sent later by a
//! background task, so none is lost. Both tables are claimed and marked by the
//! same functions, generic over [`Outbox`].

use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait, QueryOrder, QuerySelect};

use crate::entities::{email_outbox, webhook_outbox};
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

/// A table of messages sent in the background (emails, webhook notifications):
/// the columns by which they are claimed, locked and marked.
pub trait Outbox: EntityTrait {
    /// The message's id.
    const ID: Self::Column;
    /// When it was sent; null until then.
    const SENT_AT: Self::Column;
    /// When it is due (again).
    const NEXT_ATTEMPT_AT: Self::Column;
    /// Until when a sender holds it.
    const LOCKED_UNTIL: Self::Column;
    /// Attempts so far.
    const ATTEMPTS: Self::Column;
    /// Why the last attempt failed.
    const LAST_ERROR: Self::Column;
    /// The id of a message read.
    fn id(message: &Self::Model) -> Uuid;
}

impl Outbox for webhook_outbox::Entity {
    const ID: Self::Column = webhook_outbox::Column::Id;
    const SENT_AT: Self::Column = webhook_outbox::Column::SentAt;
    const NEXT_ATTEMPT_AT: Self::Column = webhook_outbox::Column::NextAttemptAt;
    const LOCKED_UNTIL: Self::Column = webhook_outbox::Column::LockedUntil;
    const ATTEMPTS: Self::Column = webhook_outbox::Column::Attempts;
    const LAST_ERROR: Self::Column = webhook_outbox::Column::LastError;
    fn id(message: &Self::Model) -> Uuid {
        message.id
    }
}

impl Outbox for email_outbox::Entity {
    const ID: Self::Column = email_outbox::Column::Id;
    const SENT_AT: Self::Column = email_outbox::Column::SentAt;
    const NEXT_ATTEMPT_AT: Self::Column = email_outbox::Column::NextAttemptAt;
    const LOCKED_UNTIL: Self::Column = email_outbox::Column::LockedUntil;
    const ATTEMPTS: Self::Column = email_outbox::Column::Attempts;
    const LAST_ERROR: Self::Column = email_outbox::Column::LastError;
    fn id(message: &Self::Model) -> Uuid {
        message.id
    }
}

/// Claims up to `limit` unsent messages that are due and not locked by another
/// sender, locking them until `lock_until`. Each is claimed by a conditional
/// update, so two senders never take the same message at once.
pub async fn claim_due<E: Outbox>(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lock_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<E::Model>> {
    let unlocked = || {
        sea_orm::Condition::any()
            .add(E::LOCKED_UNTIL.is_null())
            .add(E::LOCKED_UNTIL.lt(now))
    };
    let candidates = E::find()
        .filter(E::SENT_AT.is_null())
        .filter(E::NEXT_ATTEMPT_AT.lte(now))
        .filter(unlocked())
        .order_by_asc(E::NEXT_ATTEMPT_AT)
        .limit(limit)
        .all(db)
        .await?;
    let mut claimed = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let result = E::update_many()
            .col_expr(E::LOCKED_UNTIL, Expr::value(Some(lock_until)))
            .filter(E::ID.eq(E::id(&candidate)))
            .filter(E::SENT_AT.is_null())
            .filter(unlocked())
            .exec(db)
            .await?;
        if result.rows_affected == 1 {
            claimed.push(candidate);
        }
    }
    Ok(claimed)
}

/// Records a message sent.
pub async fn mark_sent<E: Outbox>(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    E::update_many()
        .col_expr(E::SENT_AT, Expr::value(Some(now)))
        .col_expr(E::LOCKED_UNTIL, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(E::ID.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a failed attempt and when to try again.
pub async fn mark_failed<E: Outbox>(
    db: &impl ConnectionTrait,
    id: Uuid,
    attempts: i32,
    error: &str,
    next_attempt_at: DateTime<Utc>,
) -> Result<()> {
    E::update_many()
        .col_expr(E::ATTEMPTS, Expr::value(attempts))
        .col_expr(E::LAST_ERROR, Expr::value(Some(error.to_owned())))
        .col_expr(E::NEXT_ATTEMPT_AT, Expr::value(next_attempt_at))
        .col_expr(E::LOCKED_UNTIL, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(E::ID.eq(id))
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
