//! Organizations, memberships, invitations, API keys and signing secrets. Every
//! query on tenant data takes the organization id.

use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait, JoinType, QueryOrder, QuerySelect};

use crate::entities::{api_key, invitation, membership, organization, signing_secret, user};
use crate::PersistenceError;

type Result<T> = std::result::Result<T, PersistenceError>;

/// Inserts an organization with its owner and first signing secret.
pub async fn insert_organization(
    db: &impl ConnectionTrait,
    slug: &str,
    name: &str,
    plan: &str,
    owner: Uuid,
    signing_secret: String,
    now: DateTime<Utc>,
) -> Result<organization::Model> {
    let org = organization::ActiveModel {
        id: Set(Uuid::now_v7()),
        slug: Set(slug.to_owned()),
        name: Set(name.to_owned()),
        plan: Set(plan.to_owned()),
        suspended_at: Set(None),
        job_count: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    insert_membership(db, org.id, owner, "owner", now).await?;
    insert_signing_secret(db, org.id, signing_secret, now).await?;
    Ok(org)
}

/// Whether a slug is taken.
pub async fn slug_exists(db: &impl ConnectionTrait, slug: &str) -> Result<bool> {
    Ok(organization::Entity::find()
        .filter(organization::Column::Slug.eq(slug))
        .count(db)
        .await?
        > 0)
}

/// The organization with this slug.
pub async fn find_organization_by_slug(
    db: &impl ConnectionTrait,
    slug: &str,
) -> Result<Option<organization::Model>> {
    Ok(organization::Entity::find()
        .filter(organization::Column::Slug.eq(slug))
        .one(db)
        .await?)
}

/// The organization with this id.
pub async fn find_organization(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<organization::Model>> {
    Ok(organization::Entity::find_by_id(id).one(db).await?)
}

/// Locks the organization's row until the end of the transaction (`SELECT ...
/// FOR UPDATE`), so that changes to its memberships that check an invariant first
/// (the last owner) run one after the other. SQLite has no row locks and needs
/// none: a write transaction there holds the database's write lock from its start.
pub async fn lock_organization(db: &impl ConnectionTrait, id: Uuid) -> Result<()> {
    organization::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?;
    Ok(())
}

/// All organizations by id, after `cursor`.
pub async fn list_organizations(
    db: &impl ConnectionTrait,
    cursor: Option<Uuid>,
    limit: u64,
) -> Result<Vec<organization::Model>> {
    let mut query = organization::Entity::find()
        .order_by_asc(organization::Column::Id)
        .limit(limit);
    if let Some(cursor) = cursor {
        query = query.filter(organization::Column::Id.gt(cursor));
    }
    Ok(query.all(db).await?)
}

/// Renames an organization.
pub async fn rename_organization(
    db: &impl ConnectionTrait,
    id: Uuid,
    name: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    organization::Entity::update_many()
        .col_expr(organization::Column::Name, Expr::value(name))
        .col_expr(organization::Column::UpdatedAt, Expr::value(now))
        .filter(organization::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Sets the plan and/or the suspension of an organization.
pub async fn update_organization_admin(
    db: &impl ConnectionTrait,
    id: Uuid,
    plan: Option<&str>,
    suspended_at: Option<Option<DateTime<Utc>>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut update = organization::Entity::update_many()
        .col_expr(organization::Column::UpdatedAt, Expr::value(now))
        .filter(organization::Column::Id.eq(id));
    if let Some(plan) = plan {
        update = update.col_expr(organization::Column::Plan, Expr::value(plan));
    }
    if let Some(suspended_at) = suspended_at {
        update = update.col_expr(organization::Column::SuspendedAt, Expr::value(suspended_at));
    }
    update.exec(db).await?;
    Ok(())
}

/// Deletes an organization and, by cascade, everything it owns.
pub async fn delete_organization(db: &impl ConnectionTrait, id: Uuid) -> Result<()> {
    organization::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// Adds a member.
pub async fn insert_membership(
    db: &impl ConnectionTrait,
    org: Uuid,
    user: Uuid,
    role: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    membership::ActiveModel {
        organization_id: Set(org),
        user_id: Set(user),
        role: Set(role.to_owned()),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// A user's membership in an organization.
pub async fn find_membership(
    db: &impl ConnectionTrait,
    org: Uuid,
    user: Uuid,
) -> Result<Option<membership::Model>> {
    Ok(membership::Entity::find_by_id((org, user)).one(db).await?)
}

/// The organizations a user belongs to, with the role held in each.
pub async fn memberships_of_user(
    db: &impl ConnectionTrait,
    user: Uuid,
) -> Result<Vec<(membership::Model, organization::Model)>> {
    let memberships = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user))
        .order_by_asc(membership::Column::CreatedAt)
        .all(db)
        .await?;
    let mut result = Vec::with_capacity(memberships.len());
    for membership in memberships {
        if let Some(org) = organization::Entity::find_by_id(membership.organization_id)
            .one(db)
            .await?
        {
            result.push((membership, org));
        }
    }
    Ok(result)
}

/// Members of an organization with their users, oldest first.
pub async fn members_of_organization(
    db: &impl ConnectionTrait,
    org: Uuid,
) -> Result<Vec<(membership::Model, user::Model)>> {
    let rows = membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(org))
        .find_also_related_user()
        .order_by_asc(membership::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(m, u)| u.map(|u| (m, u)))
        .collect())
}

trait FindAlsoUser {
    fn find_also_related_user(self) -> sea_orm::SelectTwo<membership::Entity, user::Entity>;
}

impl FindAlsoUser for sea_orm::Select<membership::Entity> {
    fn find_also_related_user(self) -> sea_orm::SelectTwo<membership::Entity, user::Entity> {
        self.join(
            JoinType::InnerJoin,
            membership::Entity::belongs_to(user::Entity)
                .from(membership::Column::UserId)
                .to(user::Column::Id)
                .into(),
        )
        .select_also(user::Entity)
    }
}

/// How many owners an organization has.
pub async fn count_owners(db: &impl ConnectionTrait, org: Uuid) -> Result<u64> {
    Ok(membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(org))
        .filter(membership::Column::Role.eq("owner"))
        .count(db)
        .await?)
}

/// Changes a member's role.
pub async fn set_member_role(
    db: &impl ConnectionTrait,
    org: Uuid,
    user: Uuid,
    role: &str,
) -> Result<()> {
    membership::Entity::update_many()
        .col_expr(membership::Column::Role, Expr::value(role))
        .filter(membership::Column::OrganizationId.eq(org))
        .filter(membership::Column::UserId.eq(user))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes a member.
pub async fn delete_membership(db: &impl ConnectionTrait, org: Uuid, user: Uuid) -> Result<()> {
    membership::Entity::delete_by_id((org, user))
        .exec(db)
        .await?;
    Ok(())
}

/// Stores an invitation.
#[allow(clippy::too_many_arguments)]
pub async fn insert_invitation(
    db: &impl ConnectionTrait,
    org: Uuid,
    email: &str,
    role: &str,
    token_hash: String,
    invited_by: Option<Uuid>,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<invitation::Model> {
    Ok(invitation::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(org),
        email: Set(email.to_owned()),
        role: Set(role.to_owned()),
        token_hash: Set(token_hash),
        invited_by: Set(invited_by),
        created_at: Set(now),
        expires_at: Set(expires_at),
        accepted_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?)
}

/// Open (not accepted, not revoked) invitations of an organization, newest first.
pub async fn list_invitations(
    db: &impl ConnectionTrait,
    org: Uuid,
) -> Result<Vec<invitation::Model>> {
    Ok(invitation::Entity::find()
        .filter(invitation::Column::OrganizationId.eq(org))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::RevokedAt.is_null())
        .order_by_desc(invitation::Column::CreatedAt)
        .all(db)
        .await?)
}

/// Revokes an open invitation of `org`; false when there is none with that id.
pub async fn revoke_invitation(
    db: &impl ConnectionTrait,
    org: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool> {
    let result = invitation::Entity::update_many()
        .col_expr(invitation::Column::RevokedAt, Expr::value(Some(now)))
        .filter(invitation::Column::OrganizationId.eq(org))
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The invitation with this token hash.
pub async fn find_invitation_by_token(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<invitation::Model>> {
    Ok(invitation::Entity::find()
        .filter(invitation::Column::TokenHash.eq(token_hash))
        .one(db)
        .await?)
}

/// Marks an open invitation accepted; false if it was accepted or revoked meanwhile.
pub async fn mark_invitation_accepted(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool> {
    let result = invitation::Entity::update_many()
        .col_expr(invitation::Column::AcceptedAt, Expr::value(Some(now)))
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Stores an API key (only the hash of its secret).
#[allow(clippy::too_many_arguments)]
pub async fn insert_api_key(
    db: &impl ConnectionTrait,
    org: Uuid,
    public_id: &str,
    secret_hash: String,
    name: &str,
    role: &str,
    created_by: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<api_key::Model> {
    Ok(api_key::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(org),
        public_id: Set(public_id.to_owned()),
        secret_hash: Set(secret_hash),
        name: Set(name.to_owned()),
        role: Set(role.to_owned()),
        created_by: Set(created_by),
        created_at: Set(now),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?)
}

/// The key with this public id, revoked or not.
pub async fn find_api_key_by_public_id(
    db: &impl ConnectionTrait,
    public_id: &str,
) -> Result<Option<api_key::Model>> {
    Ok(api_key::Entity::find()
        .filter(api_key::Column::PublicId.eq(public_id))
        .one(db)
        .await?)
}

/// Live keys of an organization, newest first.
pub async fn list_api_keys(db: &impl ConnectionTrait, org: Uuid) -> Result<Vec<api_key::Model>> {
    Ok(api_key::Entity::find()
        .filter(api_key::Column::OrganizationId.eq(org))
        .filter(api_key::Column::RevokedAt.is_null())
        .order_by_desc(api_key::Column::CreatedAt)
        .all(db)
        .await?)
}

/// Revokes a key of `org`; false when there is no live key with that id.
pub async fn revoke_api_key(
    db: &impl ConnectionTrait,
    org: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool> {
    let result = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(Some(now)))
        .filter(api_key::Column::OrganizationId.eq(org))
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Records a key's use, at most once a minute: the condition makes the write a
/// no-op while the stored time is recent.
pub async fn touch_api_key(db: &impl ConnectionTrait, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    let a_minute_ago = now - chrono::Duration::minutes(1);
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, Expr::value(Some(now)))
        .filter(api_key::Column::Id.eq(id))
        .filter(
            sea_orm::Condition::any()
                .add(api_key::Column::LastUsedAt.is_null())
                .add(api_key::Column::LastUsedAt.lt(a_minute_ago)),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// Adds a signing secret.
pub async fn insert_signing_secret(
    db: &impl ConnectionTrait,
    org: Uuid,
    secret: String,
    now: DateTime<Utc>,
) -> Result<()> {
    signing_secret::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(org),
        secret: Set(secret),
        created_at: Set(now),
        expires_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Rotates: every current secret expires at `old_expires_at`, the new one is added.
/// The organization's row is held first (`db` should be a transaction), so that
/// a rotation running at the same time expires this one's new secret instead of
/// missing it and leaving two without an end.
pub async fn rotate_signing_secret(
    db: &impl ConnectionTrait,
    org: Uuid,
    secret: String,
    now: DateTime<Utc>,
    old_expires_at: DateTime<Utc>,
) -> Result<()> {
    lock_organization(db, org).await?;
    signing_secret::Entity::update_many()
        .col_expr(
            signing_secret::Column::ExpiresAt,
            Expr::value(Some(old_expires_at)),
        )
        .filter(signing_secret::Column::OrganizationId.eq(org))
        .filter(signing_secret::Column::ExpiresAt.is_null())
        .exec(db)
        .await?;
    insert_signing_secret(db, org, secret, now).await
}

/// Secrets that still sign at `now`, newest first.
pub async fn active_signing_secrets(
    db: &impl ConnectionTrait,
    org: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<signing_secret::Model>> {
    Ok(signing_secret::Entity::find()
        .filter(signing_secret::Column::OrganizationId.eq(org))
        .filter(
            sea_orm::Condition::any()
                .add(signing_secret::Column::ExpiresAt.is_null())
                .add(signing_secret::Column::ExpiresAt.gt(now)),
        )
        .order_by_desc(signing_secret::Column::CreatedAt)
        .all(db)
        .await?)
}
