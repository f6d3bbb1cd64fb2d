//! Organizations and everything an organization owns besides jobs: members,
//! invitations, API keys and the webhook signing secret. Access is decided once,
//! in [`authorize`]: another organization's things are "not found".

use chrono::{DateTime, Duration, Utc};
use punctual_auth::{ApiKeyMaterial, OpaqueToken, Permission, Role, TokenHash};
use punctual_domain::{Email, Slug};
use punctual_persistence::entities::{api_key, invitation, organization};
use punctual_persistence::{accounts, organizations, outbox};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::{Caller, Principal};
use crate::service::audit::Entry;
use crate::service::identity::{conflict_if_taken, organization_name, OrganizationView, UserView};
use crate::service::ServiceError;
use crate::state::AppState;

type Result<T> = std::result::Result<T, ServiceError>;

const INVITATION_TTL_DAYS: i64 = 7;
const OLD_SECRET_GRACE_HOURS: i64 = 24;

/// The caller's standing in one organization.
#[derive(Debug, Clone)]
pub struct OrgAccess {
    /// The organization.
    pub org: organization::Model,
    /// The caller's role there.
    pub role: Role,
}

/// Finds `slug` as the caller may see it and checks `permission`. Not a member
/// (or a key of another organization) → 404; a member without the permission → 403.
pub async fn authorize(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    permission: Permission,
) -> Result<OrgAccess> {
    let org = match &caller.principal {
        // The key's own organization was read with the key, moments ago.
        Principal::ApiKey { organization, .. } if organization.slug == slug => {
            organization.as_ref().clone()
        }
        _ => organizations::find_organization_by_slug(state.database.conn(), slug)
            .await?
            .ok_or(ServiceError::NotFound("organization"))?,
    };
    let role = match &caller.principal {
        Principal::User { user_id, .. } => {
            let membership =
                organizations::find_membership(state.database.conn(), org.id, *user_id)
                    .await?
                    .ok_or(ServiceError::NotFound("organization"))?;
            membership
                .role
                .parse::<Role>()
                .map_err(|_| ServiceError::Internal("stored role is invalid".to_owned()))?
        }
        Principal::ApiKey {
            organization_id,
            role,
            ..
        } => {
            if *organization_id != org.id {
                return Err(ServiceError::NotFound("organization"));
            }
            *role
        }
        // The service token is for the internal admin endpoints (API.md), not a
        // key to every tenant: to the organizations' own routes it is nobody.
        Principal::Service => return Err(ServiceError::NotFound("organization")),
    };
    if !role.allows(permission) {
        return Err(ServiceError::Forbidden(format!(
            "the {} role may not do this",
            role.as_str()
        )));
    }
    Ok(OrgAccess { org, role })
}

fn require_user(caller: &Caller) -> Result<Uuid> {
    caller
        .user_id()
        .ok_or_else(|| ServiceError::Forbidden("only a signed-in user may do this".to_owned()))
}

/// An organization with its freshly created signing secret.
#[derive(Clone, Serialize, ToSchema)]
pub struct CreatedOrganization {
    /// The organization.
    #[serde(flatten)]
    pub organization: OrganizationView,
    /// `whsec_...`: verifies the signatures of this organization's requests. Shown once.
    pub signing_secret: String,
}

/// Creates an organization owned by the calling user.
#[tracing::instrument(skip_all)]
pub async fn create(
    state: &AppState,
    caller: &Caller,
    name: &str,
    slug: &str,
) -> Result<CreatedOrganization> {
    let user_id = require_user(caller)?;
    let slug = Slug::parse(slug);
    let name = organization_name("name", name);
    let (slug, name) = match (slug, name) {
        (Ok(slug), Ok(name)) => (slug, name),
        (slug, name) => {
            let mut problems = Vec::new();
            if let Err(punctual_domain::DomainError::Invalid { field, message }) = slug {
                problems.push(crate::error::FieldProblem { field, message });
            }
            if let Err(ServiceError::Invalid(mut more)) = name {
                problems.append(&mut more);
            }
            return Err(ServiceError::Invalid(problems));
        }
    };
    let now = Utc::now();
    let transaction = state.database.begin_write().await?;
    if organizations::slug_exists(&transaction, slug.as_str()).await? {
        return Err(ServiceError::Conflict(format!(
            "the slug `{slug}` is taken"
        )));
    }
    let secret = punctual_auth::generate_signing_secret();
    let org = organizations::insert_organization(
        &transaction,
        slug.as_str(),
        &name,
        "free",
        user_id,
        secret.clone(),
        now,
    )
    .await
    .map_err(|e| conflict_if_taken(e, format!("the slug `{slug}` is taken")))?;
    Entry::by(caller, "org.created")
        .org(org.id)
        .target("organization", org.id)
        .metadata(json!({"slug": org.slug, "name": org.name}))
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    tracing::info!(org_id = %org.id, "organization created");
    Ok(CreatedOrganization {
        organization: OrganizationView::new(&org, Some("owner")),
        signing_secret: secret,
    })
}

/// The caller's organizations (an API key sees its own).
pub async fn list_mine(state: &AppState, caller: &Caller) -> Result<Vec<OrganizationView>> {
    match &caller.principal {
        Principal::User { user_id, .. } => Ok(organizations::memberships_of_user(
            state.database.conn(),
            *user_id,
        )
        .await?
        .iter()
        .map(|(m, org)| OrganizationView::new(org, Some(&m.role)))
        .collect()),
        Principal::ApiKey {
            organization_id,
            role,
            ..
        } => Ok(
            organizations::find_organization(state.database.conn(), *organization_id)
                .await?
                .map(|org| vec![OrganizationView::new(&org, Some(role.as_str()))])
                .unwrap_or_default(),
        ),
        Principal::Service => Ok(Vec::new()),
    }
}

/// One organization.
pub async fn get(state: &AppState, caller: &Caller, slug: &str) -> Result<OrganizationView> {
    let access = authorize(state, caller, slug, Permission::ReadOrg).await?;
    Ok(OrganizationView::new(
        &access.org,
        Some(access.role.as_str()),
    ))
}

/// Updates an organization (admins): renames it when `name` is given. A patch
/// without changes is an admin's too (API.md: PATCH is admin), and answers the
/// organization as it is.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    name: Option<&str>,
) -> Result<OrganizationView> {
    let access = authorize(state, caller, slug, Permission::UpdateOrg).await?;
    let Some(name) = name else {
        return Ok(OrganizationView::new(
            &access.org,
            Some(access.role.as_str()),
        ));
    };
    let name = organization_name("name", name)?;
    let now = Utc::now();
    let transaction = state.database.begin_write().await?;
    organizations::rename_organization(&transaction, access.org.id, &name, now).await?;
    Entry::by(caller, "org.updated")
        .org(access.org.id)
        .target("organization", access.org.id)
        .metadata(json!({"old_name": access.org.name, "name": name}))
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    state.api_keys.forget_organization(access.org.id);
    let org = organizations::find_organization(state.database.conn(), access.org.id)
        .await?
        .ok_or(ServiceError::NotFound("organization"))?;
    Ok(OrganizationView::new(&org, Some(access.role.as_str())))
}

/// Deletes an organization and everything it owns (owners).
pub async fn delete(state: &AppState, caller: &Caller, slug: &str) -> Result<()> {
    let access = authorize(state, caller, slug, Permission::DeleteOrg).await?;
    let now = Utc::now();
    let transaction = state.database.begin_write().await?;
    // The entry keeps the organization's id: audit rows are not bound to the
    // organization, so its history (and this row) outlive it for platform admins.
    Entry::by(caller, "org.deleted")
        .org(access.org.id)
        .target("organization", access.org.id)
        .metadata(json!({
            "organization_id": access.org.id,
            "slug": access.org.slug,
            "name": access.org.name,
        }))
        .record(&transaction, now)
        .await?;
    organizations::delete_organization(&transaction, access.org.id).await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    state.api_keys.forget_organization(access.org.id);
    tracing::info!(org_id = %access.org.id, "organization deleted");
    Ok(())
}

/// A member with their role.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberView {
    /// The user.
    pub user: UserView,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// Since when.
    pub joined_at: DateTime<Utc>,
}

/// Members of an organization.
pub async fn members(state: &AppState, caller: &Caller, slug: &str) -> Result<Vec<MemberView>> {
    let access = authorize(state, caller, slug, Permission::ReadOrg).await?;
    Ok(
        organizations::members_of_organization(state.database.conn(), access.org.id)
            .await?
            .iter()
            .map(|(m, u)| MemberView {
                user: UserView::from(u),
                role: m.role.clone(),
                joined_at: m.created_at,
            })
            .collect(),
    )
}

fn parse_role(field: &str, role: &str) -> Result<Role> {
    role.parse::<Role>()
        .map_err(|_| ServiceError::invalid(field, "one of owner, admin, member"))
}

/// Changes a member's role. Admins manage admins and members; only owners touch
/// owners (or make new ones); the last owner cannot be demoted.
pub async fn change_role(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    user_id: Uuid,
    role: &str,
) -> Result<MemberView> {
    let new_role = parse_role("role", role)?;
    let access = authorize(state, caller, slug, Permission::ManageMembers).await?;
    let transaction = state.database.begin_write().await?;
    // Serializes membership changes of this organization: without it two owners
    // stepping down at once both count two owners and both succeed (PostgreSQL).
    organizations::lock_organization(&transaction, access.org.id).await?;
    let membership = organizations::find_membership(&transaction, access.org.id, user_id)
        .await?
        .ok_or(ServiceError::NotFound("member"))?;
    let current = parse_role("role", &membership.role)?;
    if (current == Role::Owner || new_role == Role::Owner)
        && !access.role.allows(Permission::ManageOwners)
    {
        return Err(ServiceError::Forbidden(
            "only owners may change owners".to_owned(),
        ));
    }
    if current == Role::Owner
        && new_role != Role::Owner
        && organizations::count_owners(&transaction, access.org.id).await? <= 1
    {
        return Err(ServiceError::Conflict(
            "the last owner cannot be demoted".to_owned(),
        ));
    }
    organizations::set_member_role(&transaction, access.org.id, user_id, new_role.as_str()).await?;
    let user = accounts::find_user(&transaction, user_id)
        .await?
        .ok_or(ServiceError::NotFound("member"))?;
    Entry::by(caller, "member.role_changed")
        .org(access.org.id)
        .target("user", user_id)
        .metadata(json!({
            "email": user.email,
            "old_role": current.as_str(),
            "role": new_role.as_str(),
        }))
        .record(&transaction, Utc::now())
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    Ok(MemberView {
        user: UserView::from(&user),
        role: new_role.as_str().to_owned(),
        joined_at: membership.created_at,
    })
}

/// Removes a member (admins; owners to remove owners); any member may remove
/// themself (leave). The last owner can be neither removed nor leave.
pub async fn remove_member(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    user_id: Uuid,
) -> Result<()> {
    let leaving = caller.user_id() == Some(user_id);
    let permission = if leaving {
        Permission::ReadOrg
    } else {
        Permission::ManageMembers
    };
    let access = authorize(state, caller, slug, permission).await?;
    let transaction = state.database.begin_write().await?;
    // Serializes membership changes of this organization: without it two owners
    // stepping down at once both count two owners and both succeed (PostgreSQL).
    organizations::lock_organization(&transaction, access.org.id).await?;
    let membership = organizations::find_membership(&transaction, access.org.id, user_id)
        .await?
        .ok_or(ServiceError::NotFound("member"))?;
    let current = parse_role("role", &membership.role)?;
    if current == Role::Owner && !leaving && !access.role.allows(Permission::ManageOwners) {
        return Err(ServiceError::Forbidden(
            "only owners may remove owners".to_owned(),
        ));
    }
    if current == Role::Owner
        && organizations::count_owners(&transaction, access.org.id).await? <= 1
    {
        return Err(ServiceError::Conflict(
            "the last owner cannot be removed".to_owned(),
        ));
    }
    organizations::delete_membership(&transaction, access.org.id, user_id).await?;
    Entry::by(
        caller,
        if leaving {
            "member.left"
        } else {
            "member.removed"
        },
    )
    .org(access.org.id)
    .target("user", user_id)
    .metadata(json!({"role": current.as_str()}))
    .record(&transaction, Utc::now())
    .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    Ok(())
}

/// An invitation as admins see it (never its token).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvitationView {
    /// Id.
    pub id: Uuid,
    /// Invited address.
    pub email: String,
    /// Role granted on acceptance.
    pub role: String,
    /// Sent.
    pub created_at: DateTime<Utc>,
    /// Expires (7 days).
    pub expires_at: DateTime<Utc>,
}

impl From<&invitation::Model> for InvitationView {
    fn from(i: &invitation::Model) -> Self {
        Self {
            id: i.id,
            email: i.email.clone(),
            role: i.role.clone(),
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

/// Invites an email address with a role; the token travels by email only.
pub async fn invite(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    email: &str,
    role: &str,
) -> Result<InvitationView> {
    let access = authorize(state, caller, slug, Permission::ManageInvitations).await?;
    let email = Email::parse(email)?;
    let role = parse_role("role", role)?;
    if role == Role::Owner && !access.role.allows(Permission::ManageOwners) {
        return Err(ServiceError::Forbidden(
            "only owners may invite owners".to_owned(),
        ));
    }
    let now = Utc::now();
    let (token, hash) = OpaqueToken::generate();
    let link = format!(
        "{}/invitations/accept?token={token}",
        state.public_url.trim_end_matches('/')
    );
    let body = format!(
        "You are invited to join {} on Punctual as {}.\n\nAccept (valid 7 days, sign in with this email address first):\n{link}\n\nToken: {token}\n",
        access.org.name,
        role.as_str()
    );
    let transaction = state.database.begin_write().await?;
    let invitation = organizations::insert_invitation(
        &transaction,
        access.org.id,
        email.as_str(),
        role.as_str(),
        hash.to_hex(),
        caller.user_id(),
        now,
        now + Duration::days(INVITATION_TTL_DAYS),
    )
    .await?;
    outbox::enqueue_email(
        &transaction,
        email.as_str(),
        &format!("Join {} on Punctual", access.org.name),
        &body,
        now,
    )
    .await?;
    Entry::by(caller, "invitation.created")
        .org(access.org.id)
        .target("invitation", invitation.id)
        .metadata(json!({"email": invitation.email, "role": invitation.role}))
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    state.mail_wakeup.notify_one();
    Ok(InvitationView::from(&invitation))
}

/// Open invitations.
pub async fn invitations(
    state: &AppState,
    caller: &Caller,
    slug: &str,
) -> Result<Vec<InvitationView>> {
    let access = authorize(state, caller, slug, Permission::ManageInvitations).await?;
    Ok(
        organizations::list_invitations(state.database.conn(), access.org.id)
            .await?
            .iter()
            .map(InvitationView::from)
            .collect(),
    )
}

/// Revokes an open invitation.
pub async fn revoke_invitation(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    id: Uuid,
) -> Result<()> {
    let access = authorize(state, caller, slug, Permission::ManageInvitations).await?;
    let now = Utc::now();
    let transaction = state.database.begin_write().await?;
    if !organizations::revoke_invitation(&transaction, access.org.id, id, now).await? {
        return Err(ServiceError::NotFound("invitation"));
    }
    Entry::by(caller, "invitation.revoked")
        .org(access.org.id)
        .target("invitation", id)
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    Ok(())
}

/// Accepts an invitation: the signed-in user's email must be the invited one.
pub async fn accept_invitation(
    state: &AppState,
    caller: &Caller,
    token: &str,
) -> Result<OrganizationView> {
    let user_id = require_user(caller)?;
    let now = Utc::now();
    let hash = TokenHash::from_plaintext(token).to_hex();
    let transaction = state.database.begin_write().await?;
    let invitation = organizations::find_invitation_by_token(&transaction, &hash)
        .await?
        .filter(|i| i.accepted_at.is_none() && i.revoked_at.is_none() && i.expires_at > now)
        .ok_or(ServiceError::NotFound("invitation"))?;
    let user = accounts::find_user(&transaction, user_id)
        .await?
        .ok_or(ServiceError::NotFound("invitation"))?;
    if user.email != invitation.email {
        return Err(ServiceError::Forbidden(
            "this invitation was sent to another email address".to_owned(),
        ));
    }
    if organizations::find_membership(&transaction, invitation.organization_id, user_id)
        .await?
        .is_some()
    {
        return Err(ServiceError::Conflict("already a member".to_owned()));
    }
    if !organizations::mark_invitation_accepted(&transaction, invitation.id, now).await? {
        return Err(ServiceError::NotFound("invitation"));
    }
    // Two invitations of one address accepted at once both pass the check
    // above; the membership's key refuses the second.
    organizations::insert_membership(
        &transaction,
        invitation.organization_id,
        user_id,
        &invitation.role,
        now,
    )
    .await
    .map_err(|error| conflict_if_taken(error, "already a member"))?;
    let org = organizations::find_organization(&transaction, invitation.organization_id)
        .await?
        .ok_or(ServiceError::NotFound("invitation"))?;
    Entry::by(caller, "invitation.accepted")
        .org(org.id)
        .target("invitation", invitation.id)
        .metadata(json!({"email": invitation.email, "role": invitation.role}))
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    Ok(OrganizationView::new(&org, Some(&invitation.role)))
}

/// An API key as listed (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// Id.
    pub id: Uuid,
    /// Name given at creation.
    pub name: String,
    /// `admin` or `member`.
    pub role: String,
    /// `pk_live_<id>`: identifies the key without revealing it.
    pub prefix: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last authenticated use (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&api_key::Model> for ApiKeyView {
    fn from(k: &api_key::Model) -> Self {
        Self {
            id: k.id,
            name: k.name.clone(),
            role: k.role.clone(),
            prefix: format!("pk_live_{}", k.public_id),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// A new key, with its full value shown this once.
#[derive(Clone, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key.
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// `pk_live_<id>.sk_live_<secret>`; store it now, it cannot be shown again.
    pub api_key: String,
}

/// Creates an API key with a role (admin or member, never owner).
pub async fn create_api_key(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    name: &str,
    role: &str,
) -> Result<CreatedApiKey> {
    let access = authorize(state, caller, slug, Permission::ManageApiKeys).await?;
    let role = parse_role("role", role)?;
    if role == Role::Owner {
        return Err(ServiceError::invalid(
            "role",
            "API keys are admin or member",
        ));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "name",
            "1 to 100 printable characters",
        ));
    }
    let material = ApiKeyMaterial::generate();
    let now = Utc::now();
    let transaction = state.database.begin_write().await?;
    let key = organizations::insert_api_key(
        &transaction,
        access.org.id,
        &material.public_id,
        material.secret_hash.to_hex(),
        name,
        role.as_str(),
        caller.user_id(),
        now,
    )
    .await?;
    // The public prefix identifies the key in listings; the secret half never
    // leaves this function except in the response.
    Entry::by(caller, "api_key.created")
        .org(access.org.id)
        .target("api_key", key.id)
        .metadata(json!({
            "name": key.name,
            "role": key.role,
            "prefix": format!("pk_live_{}", key.public_id),
        }))
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    tracing::info!(org_id = %access.org.id, key_id = %key.id, "api key created");
    Ok(CreatedApiKey {
        key: ApiKeyView::from(&key),
        api_key: material.full_key.clone(),
    })
}

/// Live API keys.
pub async fn api_keys(state: &AppState, caller: &Caller, slug: &str) -> Result<Vec<ApiKeyView>> {
    let access = authorize(state, caller, slug, Permission::ManageApiKeys).await?;
    Ok(
        organizations::list_api_keys(state.database.conn(), access.org.id)
            .await?
            .iter()
            .map(ApiKeyView::from)
            .collect(),
    )
}

/// Revokes an API key: it stops authenticating at once.
pub async fn revoke_api_key(state: &AppState, caller: &Caller, slug: &str, id: Uuid) -> Result<()> {
    let access = authorize(state, caller, slug, Permission::ManageApiKeys).await?;
    let now = Utc::now();
    let transaction = state.database.begin_write().await?;
    if !organizations::revoke_api_key(&transaction, access.org.id, id, now).await? {
        return Err(ServiceError::NotFound("API key"));
    }
    Entry::by(caller, "api_key.revoked")
        .org(access.org.id)
        .target("api_key", id)
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    state.api_keys.forget_key(id);
    Ok(())
}

/// The signing secrets in force.
#[derive(Clone, Serialize, ToSchema)]
pub struct SigningSecrets {
    /// Signs from now on.
    pub signing_secret: String,
    /// Still signs beside the new one until `previous_expires_at`.
    pub previous_secret: Option<String>,
    /// When the previous secret stops signing.
    pub previous_expires_at: Option<DateTime<Utc>>,
}

/// Replaces the signing secret; the old one keeps signing for 24 hours.
pub async fn rotate_signing_secret(
    state: &AppState,
    caller: &Caller,
    slug: &str,
) -> Result<SigningSecrets> {
    let access = authorize(state, caller, slug, Permission::RotateSigningSecret).await?;
    let now = Utc::now();
    let secret = punctual_auth::generate_signing_secret();
    let transaction = state.database.begin_write().await?;
    organizations::rotate_signing_secret(
        &transaction,
        access.org.id,
        secret,
        now,
        now + Duration::hours(OLD_SECRET_GRACE_HOURS),
    )
    .await?;
    Entry::by(caller, "signing_secret.rotated")
        .org(access.org.id)
        .target("organization", access.org.id)
        .metadata(json!({
            "previous_expires_at": now + Duration::hours(OLD_SECRET_GRACE_HOURS),
        }))
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    tracing::info!(org_id = %access.org.id, "signing secret rotated");
    signing_secrets_of(state, access.org.id, now).await
}

/// The secrets in force (admins).
pub async fn signing_secrets(
    state: &AppState,
    caller: &Caller,
    slug: &str,
) -> Result<SigningSecrets> {
    let access = authorize(state, caller, slug, Permission::RotateSigningSecret).await?;
    signing_secrets_of(state, access.org.id, Utc::now()).await
}

async fn signing_secrets_of(
    state: &AppState,
    org: Uuid,
    now: DateTime<Utc>,
) -> Result<SigningSecrets> {
    let secrets = organizations::active_signing_secrets(state.database.conn(), org, now).await?;
    let mut secrets = secrets.into_iter();
    let current = secrets
        .next()
        .ok_or_else(|| ServiceError::Internal("no signing secret".to_owned()))?;
    let previous = secrets.next();
    Ok(SigningSecrets {
        signing_secret: current.secret,
        previous_expires_at: previous.as_ref().and_then(|p| p.expires_at),
        previous_secret: previous.map(|p| p.secret),
    })
}

// Values holding a key or a secret say so when printed, never what it is.

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("key", &self.key)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for SigningSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningSecrets")
            .field("signing_secret", &"<redacted>")
            .field(
                "previous_secret",
                &self.previous_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("previous_expires_at", &self.previous_expires_at)
            .finish()
    }
}

impl std::fmt::Debug for CreatedOrganization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedOrganization")
            .field("organization", &self.organization)
            .field("signing_secret", &"<redacted>")
            .finish()
    }
}
