//! Users, their sessions (refresh-token families), email tokens and the record
//! of failed authentication attempts.

use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, Condition, ConnectionTrait, QueryOrder, QuerySelect};

use crate::entities::{auth_failure, auth_session, email_token, refresh_token, user};
use crate::PersistenceError;

type Result<T> = std::result::Result<T, PersistenceError>;

/// Inserts a user.
pub async fn insert_user(
    db: &impl ConnectionTrait,
    email: &str,
    name: Option<String>,
    password_hash: Option<String>,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    let model = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.to_owned()),
        name: Set(name),
        password_hash: Set(password_hash),
        is_platform_admin: Set(false),
        disabled_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    Ok(model.insert(db).await?)
}

/// The user with this (normalized) email.
pub async fn find_user_by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await?)
}

/// The user with this id.
pub async fn find_user(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id).one(db).await?)
}

/// Replaces a user's password hash.
pub async fn set_password_hash(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    hash: String,
    now: DateTime<Utc>,
) -> Result<()> {
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(hash))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Sets or clears the platform-admin flag; false when no such user.
pub async fn set_platform_admin(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    admin: bool,
    now: DateTime<Utc>,
) -> Result<bool> {
    let result = user::Entity::update_many()
        .col_expr(user::Column::IsPlatformAdmin, Expr::value(admin))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Disables (with a time) or enables (None) a user.
pub async fn set_user_disabled(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    disabled_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let result = user::Entity::update_many()
        .col_expr(user::Column::DisabledAt, Expr::value(disabled_at))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Users ordered by id, after `cursor`, at most `limit`.
pub async fn list_users(
    db: &impl ConnectionTrait,
    cursor: Option<Uuid>,
    limit: u64,
) -> Result<Vec<user::Model>> {
    let mut query = user::Entity::find()
        .order_by_asc(user::Column::Id)
        .limit(limit);
    if let Some(cursor) = cursor {
        query = query.filter(user::Column::Id.gt(cursor));
    }
    Ok(query.all(db).await?)
}

/// Starts a session family and its first refresh token.
pub async fn insert_session(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    refresh_token_hash: String,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    user_agent: Option<String>,
    ip: Option<String>,
) -> Result<auth_session::Model> {
    let session = auth_session::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        created_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        user_agent: Set(user_agent),
        ip: Set(ip),
    }
    .insert(db)
    .await?;
    insert_refresh_token(db, session.id, refresh_token_hash, now, expires_at).await?;
    Ok(session)
}

/// Adds a refresh token to a session family.
pub async fn insert_refresh_token(
    db: &impl ConnectionTrait,
    session_id: Uuid,
    token_hash: String,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(session_id),
        token_hash: Set(token_hash),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// A refresh token with its session.
pub async fn find_refresh_token(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<(refresh_token::Model, auth_session::Model)>> {
    let Some(token) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let session = auth_session::Entity::find_by_id(token.session_id)
        .one(db)
        .await?;
    Ok(session.map(|session| (token, session)))
}

/// Marks a refresh token used, only if it was not already; false when another
/// request used it first (so the caller treats it as reuse).
pub async fn mark_refresh_token_used(
    db: &impl ConnectionTrait,
    token_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool> {
    let result = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(Some(now)))
        .filter(refresh_token::Column::Id.eq(token_id))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Revokes one session family.
pub async fn revoke_session(
    db: &impl ConnectionTrait,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    auth_session::Entity::update_many()
        .col_expr(auth_session::Column::RevokedAt, Expr::value(Some(now)))
        .filter(auth_session::Column::Id.eq(session_id))
        .filter(auth_session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes every live session of a user.
pub async fn revoke_user_sessions(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64> {
    let result = auth_session::Entity::update_many()
        .col_expr(auth_session::Column::RevokedAt, Expr::value(Some(now)))
        .filter(auth_session::Column::UserId.eq(user_id))
        .filter(auth_session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// A session with its user, for checking an access token against revocation
/// and disabled accounts.
pub async fn find_session_with_user(
    db: &impl ConnectionTrait,
    session_id: Uuid,
) -> Result<Option<(auth_session::Model, user::Model)>> {
    let Some(session) = auth_session::Entity::find_by_id(session_id).one(db).await? else {
        return Ok(None);
    };
    let user = user::Entity::find_by_id(session.user_id).one(db).await?;
    Ok(user.map(|user| (session, user)))
}

/// Stores a single-use email token (password reset, magic link).
pub async fn insert_email_token(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    purpose: &str,
    token_hash: String,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    email_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        purpose: Set(purpose.to_owned()),
        token_hash: Set(token_hash),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Consumes an unexpired, unused email token of `purpose`, returning its user id.
/// The conditional update makes a token usable exactly once, even concurrently.
pub async fn consume_email_token(
    db: &impl ConnectionTrait,
    purpose: &str,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>> {
    let Some(token) = email_token::Entity::find()
        .filter(email_token::Column::TokenHash.eq(token_hash))
        .filter(email_token::Column::Purpose.eq(purpose))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if token.used_at.is_some() || token.expires_at <= now {
        return Ok(None);
    }
    let result = email_token::Entity::update_many()
        .col_expr(email_token::Column::UsedAt, Expr::value(Some(now)))
        .filter(email_token::Column::Id.eq(token.id))
        .filter(email_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok((result.rows_affected == 1).then_some(token.user_id))
}

/// Records an attempt that counts against a limit (`scope` such as
/// `login_email`, `login_ip`) and returns its id.
pub async fn record_auth_failure(
    db: &impl ConnectionTrait,
    scope: &str,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    auth_failure::ActiveModel {
        id: Set(id),
        scope: Set(scope.to_owned()),
        subject: Set(subject.to_owned()),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// Takes back attempts recorded by [`record_auth_failure`] that turned out not
/// to count (refused before they were tried, or successful).
pub async fn forget_auth_failures(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    auth_failure::Entity::delete_many()
        .filter(auth_failure::Column::Id.is_in(ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

/// Failed attempts of `subject` in `scope` since `since`: how many, and the oldest.
pub async fn recent_auth_failures(
    db: &impl ConnectionTrait,
    scope: &str,
    subject: &str,
    since: DateTime<Utc>,
) -> Result<(u64, Option<DateTime<Utc>>)> {
    let condition = Condition::all()
        .add(auth_failure::Column::Scope.eq(scope))
        .add(auth_failure::Column::Subject.eq(subject))
        .add(auth_failure::Column::CreatedAt.gt(since));
    let count = auth_failure::Entity::find()
        .filter(condition.clone())
        .count(db)
        .await?;
    let oldest = auth_failure::Entity::find()
        .filter(condition)
        .order_by_asc(auth_failure::Column::CreatedAt)
        .one(db)
        .await?
        .map(|f| f.created_at);
    Ok((count, oldest))
}

/// Forgets the failures of `subject` in `scope` (after a success).
pub async fn clear_auth_failures(
    db: &impl ConnectionTrait,
    scope: &str,
    subject: &str,
) -> Result<()> {
    auth_failure::Entity::delete_many()
        .filter(auth_failure::Column::Scope.eq(scope))
        .filter(auth_failure::Column::Subject.eq(subject))
        .exec(db)
        .await?;
    Ok(())
}
