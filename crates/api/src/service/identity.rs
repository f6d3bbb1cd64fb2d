//! Accounts and sessions: register, login, refresh with reuse detection, logout,
//! magic links, password resets, and turning a bearer token into a principal.

use chrono::{DateTime, Utc};
use punctual_auth::{
    looks_like_api_key, parse_api_key, validate_password, verify_api_key_secret, OpaqueToken, Role,
    TokenHash,
};
use punctual_domain::{Email, Slug};
use punctual_persistence::entities::{organization, user};
use punctual_persistence::{accounts, organizations, outbox};
use serde::Serialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth_cache::CachedKey;
use crate::caller::{Caller, Principal, RequestMeta};
use crate::service::audit::Entry;
use crate::service::ServiceError;
use crate::state::AppState;

type Result<T> = std::result::Result<T, ServiceError>;

const MAGIC_LINK: &str = "magic_link";
const PASSWORD_RESET: &str = "password_reset";
const EMAIL_TOKEN_TTL_MINUTES: i64 = 30;

/// A fresh access token and refresh token.
#[derive(Clone, Serialize, ToSchema)]
pub struct TokenPair {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque; exchange it at `/auth/refresh`. Single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: Uuid,
    /// Email (lowercased).
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// May use the internal admin endpoints.
    pub is_platform_admin: bool,
    /// Disabled users cannot sign in.
    pub disabled: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl From<&user::Model> for UserView {
    fn from(user: &user::Model) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            is_platform_admin: user.is_platform_admin,
            disabled: user.disabled_at.is_some(),
            created_at: user.created_at,
        }
    }
}

/// An organization as its members see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrganizationView {
    /// Id.
    pub id: Uuid,
    /// URL name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Plan name.
    pub plan: String,
    /// Suspended organizations' jobs do not run and their keys are refused.
    pub suspended: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// The caller's role here, when the caller is a member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl OrganizationView {
    /// The view of `org`, with the caller's `role` if any.
    pub fn new(org: &organization::Model, role: Option<&str>) -> Self {
        Self {
            id: org.id,
            slug: org.slug.clone(),
            name: org.name.clone(),
            plan: org.plan.clone(),
            suspended: org.suspended_at.is_some(),
            created_at: org.created_at,
            role: role.map(str::to_owned),
        }
    }
}

/// Input of [`register`].
#[derive(Clone)]
pub struct Registration {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
    /// Display name.
    pub name: Option<String>,
    /// An organization to create, the user its owner.
    pub organization: Option<(String, String)>,
}

/// What [`register`] created.
#[derive(Clone, Serialize, ToSchema)]
pub struct Registered {
    /// The new user.
    pub user: UserView,
    /// The organization created with it, if asked.
    pub organization: Option<OrganizationView>,
    /// The org's webhook signing secret, shown here once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    /// Tokens.
    #[serde(flatten)]
    pub tokens: TokenPair,
}

fn display_name(name: Option<String>) -> Result<Option<String>> {
    let Some(name) = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "name",
            "at most 100 printable characters",
        ));
    }
    Ok(Some(name))
}

/// Validates an organization's display name.
pub fn organization_name(field: &str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            field,
            "1 to 100 printable characters",
        ));
    }
    Ok(name.to_owned())
}

/// Creates an account (and optionally an organization it owns) and signs it in.
#[tracing::instrument(skip_all)]
pub async fn register(
    state: &AppState,
    input: Registration,
    meta: &RequestMeta,
) -> Result<Registered> {
    let mut problems = Vec::new();
    let email = Email::parse(&input.email)
        .map_err(|e| problems.push(field_problem(e)))
        .ok();
    if let Err(e) = validate_password(&input.password) {
        if let ServiceError::Invalid(mut p) = ServiceError::from(e) {
            problems.append(&mut p);
        }
    }
    let name = display_name(input.name)
        .map_err(|e| collect(&mut problems, e))
        .ok()
        .flatten();
    let organization = match input.organization {
        Some((org_name, slug)) => {
            let slug = Slug::parse(&slug)
                .map_err(|e| problems.push(prefixed(field_problem(e), "organization")))
                .ok();
            let org_name = organization_name("organization.name", &org_name)
                .map_err(|e| collect(&mut problems, e))
                .ok();
            slug.zip(org_name)
        }
        None => None,
    };
    let Some(email) = email.filter(|_| problems.is_empty()) else {
        return Err(ServiceError::Invalid(problems));
    };

    let hash = state.identity.hasher.hash(&input.password)?;
    let now = Utc::now();
    let transaction = state.database.begin_write().await?;
    if accounts::find_user_by_email(&transaction, email.as_str())
        .await?
        .is_some()
    {
        return Err(ServiceError::Conflict(
            "an account with this email exists".to_owned(),
        ));
    }
    // The check above cannot see a registration of the same email that is not
    // committed yet; the unique index can, and that is the same 409.
    let user = accounts::insert_user(&transaction, email.as_str(), name, Some(hash), now)
        .await
        .map_err(|e| conflict_if_taken(e, "an account with this email exists"))?;
    let mut created_org = None;
    let mut signing_secret = None;
    Entry::for_account(Some(user.id), meta, "user.registered")
        .metadata(json!({"email": user.email}))
        .record(&transaction, now)
        .await?;
    if let Some((slug, org_name)) = organization {
        if organizations::slug_exists(&transaction, slug.as_str()).await? {
            return Err(ServiceError::Conflict(format!(
                "the slug `{slug}` is taken"
            )));
        }
        let secret = punctual_auth::generate_signing_secret();
        let org = organizations::insert_organization(
            &transaction,
            slug.as_str(),
            &org_name,
            "free",
            user.id,
            secret.clone(),
            now,
        )
        .await
        .map_err(|e| conflict_if_taken(e, format!("the slug `{slug}` is taken")))?;
        Entry::for_account(Some(user.id), meta, "org.created")
            .org(org.id)
            .target("organization", org.id)
            .metadata(json!({"slug": org.slug, "name": org.name}))
            .record(&transaction, now)
            .await?;
        created_org = Some(OrganizationView::new(&org, Some("owner")));
        signing_secret = Some(secret);
    }
    let (tokens, _) = start_session(state, &transaction, user.id, meta, now).await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    tracing::info!(user_id = %user.id, "account registered");
    Ok(Registered {
        user: UserView::from(&user),
        organization: created_org,
        signing_secret,
        tokens,
    })
}

/// A write refused by a unique index (a concurrent request took the email or
/// slug between our check and our insert) is the same 409 as the check's; any
/// other failure stays a store error.
pub(crate) fn conflict_if_taken(
    error: punctual_persistence::PersistenceError,
    message: impl Into<String>,
) -> ServiceError {
    use punctual_persistence::sea_orm::SqlErr;
    if let punctual_persistence::PersistenceError::Query(db) = &error {
        if matches!(db.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
            return ServiceError::Conflict(message.into());
        }
    }
    ServiceError::Store(error)
}

fn field_problem(error: punctual_domain::DomainError) -> crate::error::FieldProblem {
    let punctual_domain::DomainError::Invalid { field, message } = error;
    crate::error::FieldProblem { field, message }
}

fn prefixed(mut problem: crate::error::FieldProblem, prefix: &str) -> crate::error::FieldProblem {
    problem.field = format!("{prefix}.{}", problem.field);
    problem
}

fn collect(problems: &mut Vec<crate::error::FieldProblem>, error: ServiceError) {
    if let ServiceError::Invalid(mut p) = error {
        problems.append(&mut p);
    }
}

/// Opens a session family; returns its tokens and the session id (for the audit log).
async fn start_session(
    state: &AppState,
    db: &impl punctual_persistence::sea_orm::ConnectionTrait,
    user_id: Uuid,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(TokenPair, Uuid)> {
    let (refresh_token, refresh_hash) = OpaqueToken::generate();
    let session = accounts::insert_session(
        db,
        user_id,
        refresh_hash.to_hex(),
        now,
        now + state.identity.refresh_ttl,
        meta.user_agent.clone(),
        meta.ip.clone(),
    )
    .await?;
    let access = state.identity.jwt.issue(user_id, session.id, now)?;
    Ok((
        TokenPair {
            access_token: access.token,
            refresh_token,
            token_type: "Bearer",
            expires_in: access.expires_in,
        },
        session.id,
    ))
}

/// How a subject of failed attempts is kept (see [`admit`]).
fn failure_subject(subject: &str) -> String {
    TokenHash::from_plaintext(subject).to_hex()
}

/// Puts an attempt on record, then counts the window's attempts with it: over
/// `max` before this one, it is taken back and refused with the time until the
/// oldest leaves the window. Recording before counting is what makes attempts
/// arriving together see each other: had each counted first, a burst would all
/// pass the check before any of its failures was written.
///
/// The subject (an email as typed, an address) is kept as its SHA-256: a fixed
/// 64 characters whatever the input's length (the column is indexed, and
/// PostgreSQL refuses index entries over ~2.7 KB), and no email addresses in
/// a table of failed attempts.
async fn admit(
    state: &AppState,
    scope: &str,
    subject: &str,
    max: u64,
    now: DateTime<Utc>,
) -> Result<Uuid> {
    let db = state.database.conn();
    let subject = &failure_subject(subject);
    let attempt = accounts::record_auth_failure(db, scope, subject, now).await?;
    let window = state.identity.failure_window;
    let (count, oldest) = accounts::recent_auth_failures(db, scope, subject, now - window).await?;
    if count > max {
        accounts::forget_auth_failures(db, &[attempt]).await?;
        let retry_after = oldest
            .map(|oldest| (oldest + window - now).num_seconds().max(1))
            .unwrap_or(1);
        return Err(ServiceError::TooManyAttempts {
            retry_after: u64::try_from(retry_after).unwrap_or(1),
        });
    }
    Ok(attempt)
}

/// What the audit log keeps of an email typed at sign-in: the address if it
/// is one, nothing otherwise (a password typed into the email field must not
/// be stored where admins read it).
fn audited_email(typed: &str) -> Option<&str> {
    Email::parse(typed).ok().map(|_| typed)
}

/// Signs in with email and password. Unknown email and wrong password answer the
/// same, after the same work (a dummy hash is verified for unknown emails).
#[tracing::instrument(skip_all)]
pub async fn login(
    state: &AppState,
    email: &str,
    password: &str,
    meta: &RequestMeta,
) -> Result<TokenPair> {
    let now = Utc::now();
    let normalized = email.trim().to_lowercase();
    let ip = meta.address_key();
    // Both attempts count as failures until the password is verified.
    let by_email = admit(
        state,
        "login_email",
        &normalized,
        state.identity.max_failed_logins_per_email,
        now,
    )
    .await?;
    let by_ip = match admit(
        state,
        "login_ip",
        &ip,
        state.identity.max_failed_logins_per_ip,
        now,
    )
    .await
    {
        Ok(attempt) => attempt,
        Err(refused) => {
            accounts::forget_auth_failures(state.database.conn(), &[by_email]).await?;
            return Err(refused);
        }
    };

    let user = accounts::find_user_by_email(state.database.conn(), &normalized).await?;
    // Why a login failed, for the audit log only (the caller always gets the same 401).
    let verified = match user
        .as_ref()
        .and_then(|u| u.password_hash.as_ref().map(|h| (u, h)))
    {
        Some((user, hash)) => {
            let check = state.identity.hasher.verify(password, hash)?;
            match (check.valid, user.disabled_at.is_none()) {
                (true, true) => Ok((user, check.needs_rehash)),
                (true, false) => Err("account_disabled"),
                (false, _) => Err("wrong_password"),
            }
        }
        None => {
            state.identity.hasher.verify_dummy(password);
            Err(if user.is_some() {
                "no_password"
            } else {
                "unknown_email"
            })
        }
    };
    let (user, needs_rehash) = match verified {
        Ok(verified) => verified,
        Err(reason) => {
            // The attempts stay on record: they were failures.
            let transaction = state.database.begin_write().await?;
            Entry::for_account(user.as_ref().map(|u| u.id), meta, "auth.login_failed")
                .metadata(json!({"email": audited_email(&normalized), "reason": reason}))
                .record(&transaction, now)
                .await?;
            transaction.commit().await.map_err(ServiceError::from)?;
            tracing::info!("login failed");
            return Err(ServiceError::Unauthenticated("invalid email or password"));
        }
    };
    let new_hash = if needs_rehash {
        Some(state.identity.hasher.hash(password)?)
    } else {
        None
    };
    let transaction = state.database.begin_write().await?;
    accounts::clear_auth_failures(&transaction, "login_email", &failure_subject(&normalized))
        .await?;
    accounts::forget_auth_failures(&transaction, &[by_ip]).await?;
    if let Some(hash) = new_hash {
        accounts::set_password_hash(&transaction, user.id, hash, now).await?;
    }
    let (tokens, session_id) = start_session(state, &transaction, user.id, meta, now).await?;
    Entry::for_account(Some(user.id), meta, "auth.login_succeeded")
        .metadata(json!({"method": "password", "session_id": session_id}))
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    tracing::info!(user_id = %user.id, "login succeeded");
    Ok(tokens)
}

/// Exchanges a refresh token for a new pair. A token that was already used is
/// taken as stolen: its whole session family is revoked.
#[tracing::instrument(skip_all)]
pub async fn refresh(
    state: &AppState,
    refresh_token: &str,
    meta: &RequestMeta,
) -> Result<TokenPair> {
    let now = Utc::now();
    let hash = TokenHash::from_plaintext(refresh_token).to_hex();
    let transaction = state.database.begin_write().await?;
    let Some((token, session)) = accounts::find_refresh_token(&transaction, &hash).await? else {
        return Err(ServiceError::Unauthenticated("invalid refresh token"));
    };
    let user = accounts::find_user(&transaction, session.user_id).await?;
    let usable = session.revoked_at.is_none()
        && session.expires_at > now
        && token.expires_at > now
        && user.as_ref().is_some_and(|u| u.disabled_at.is_none());
    if !usable {
        return Err(ServiceError::Unauthenticated("invalid refresh token"));
    }
    if token.used_at.is_some()
        || !accounts::mark_refresh_token_used(&transaction, token.id, now).await?
    {
        accounts::revoke_session(&transaction, session.id, now).await?;
        Entry::for_account(Some(session.user_id), meta, "auth.session_revoked")
            .target("session", session.id)
            .metadata(json!({"reason": "refresh_token_reused", "user_id": session.user_id}))
            .record(&transaction, now)
            .await?;
        transaction.commit().await.map_err(ServiceError::from)?;
        tracing::warn!(session_id = %session.id, "refresh token reused; session family revoked");
        return Err(ServiceError::Unauthenticated("invalid refresh token"));
    }
    let (next, next_hash) = OpaqueToken::generate();
    accounts::insert_refresh_token(
        &transaction,
        session.id,
        next_hash.to_hex(),
        now,
        session.expires_at,
    )
    .await?;
    let access = state.identity.jwt.issue(session.user_id, session.id, now)?;
    transaction.commit().await.map_err(ServiceError::from)?;
    Ok(TokenPair {
        access_token: access.token,
        refresh_token: next,
        token_type: "Bearer",
        expires_in: access.expires_in,
    })
}

/// Ends the session the refresh token belongs to. Unknown tokens are ignored so
/// logout cannot be used to probe tokens.
#[tracing::instrument(skip_all)]
pub async fn logout(state: &AppState, refresh_token: &str, meta: &RequestMeta) -> Result<()> {
    let now = Utc::now();
    let hash = TokenHash::from_plaintext(refresh_token).to_hex();
    let transaction = state.database.begin_write().await?;
    if let Some((_, session)) = accounts::find_refresh_token(&transaction, &hash).await? {
        accounts::revoke_session(&transaction, session.id, now).await?;
        Entry::for_account(Some(session.user_id), meta, "auth.logout")
            .target("session", session.id)
            .metadata(json!({"user_id": session.user_id}))
            .record(&transaction, now)
            .await?;
        transaction.commit().await.map_err(ServiceError::from)?;
    }
    Ok(())
}

/// Sends a single-use sign-in link when the email belongs to an active account;
/// answers the same either way.
#[tracing::instrument(skip_all)]
pub async fn request_magic_link(state: &AppState, email: &str, meta: &RequestMeta) -> Result<()> {
    send_email_token(state, email, MAGIC_LINK, meta, |link, token| {
        (
            "Your Punctual sign-in link".to_owned(),
            format!(
                "Sign in to Punctual with this link (valid 30 minutes, single use):\n\n{link}\n\nToken: {token}\n\nIf you did not ask for it, ignore this email.\n"
            ),
        )
    })
    .await
}

/// Sends a single-use password-reset token when the email belongs to an active
/// account; answers the same either way.
#[tracing::instrument(skip_all)]
pub async fn request_password_reset(
    state: &AppState,
    email: &str,
    meta: &RequestMeta,
) -> Result<()> {
    send_email_token(state, email, PASSWORD_RESET, meta, |link, token| {
        (
            "Reset your Punctual password".to_owned(),
            format!(
                "Choose a new password with this link (valid 30 minutes, single use):\n\n{link}\n\nToken: {token}\n\nIf you did not ask for it, ignore this email.\n"
            ),
        )
    })
    .await
}

async fn send_email_token(
    state: &AppState,
    email: &str,
    purpose: &str,
    meta: &RequestMeta,
    compose: impl FnOnce(String, &str) -> (String, String),
) -> Result<()> {
    let now = Utc::now();
    let normalized = email.trim().to_lowercase();
    let scope = format!("{purpose}_request");
    // Every request counts against the window, known email or not, so the limit
    // reveals nothing either.
    admit(
        state,
        &scope,
        &normalized,
        state.identity.max_email_requests_per_email,
        now,
    )
    .await?;
    let action = if purpose == MAGIC_LINK {
        "auth.magic_link_requested"
    } else {
        "auth.password_reset_requested"
    };
    let user = accounts::find_user_by_email(state.database.conn(), &normalized).await?;
    let transaction = state.database.begin_write().await?;
    let recipient = user.as_ref().filter(|u| u.disabled_at.is_none());
    Entry::for_account(user.as_ref().map(|u| u.id), meta, action)
        .metadata(json!({"email": audited_email(&normalized), "sent": recipient.is_some()}))
        .record(&transaction, now)
        .await?;
    let Some(user) = recipient else {
        transaction.commit().await.map_err(ServiceError::from)?;
        return Ok(());
    };
    let (token, hash) = OpaqueToken::generate();
    let path = if purpose == MAGIC_LINK {
        "login/magic"
    } else {
        "password-reset"
    };
    let link = format!(
        "{}/{path}?token={token}",
        state.public_url.trim_end_matches('/')
    );
    let (subject, body) = compose(link, &token);
    accounts::insert_email_token(
        &transaction,
        user.id,
        purpose,
        hash.to_hex(),
        now,
        now + chrono::Duration::minutes(EMAIL_TOKEN_TTL_MINUTES),
    )
    .await?;
    outbox::enqueue_email(&transaction, &user.email, &subject, &body, now).await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    state.mail_wakeup.notify_one();
    Ok(())
}

/// Signs in with a magic-link token (single use, 30 minutes).
#[tracing::instrument(skip_all)]
pub async fn verify_magic_link(
    state: &AppState,
    token: &str,
    meta: &RequestMeta,
) -> Result<TokenPair> {
    let now = Utc::now();
    let hash = TokenHash::from_plaintext(token).to_hex();
    let transaction = state.database.begin_write().await?;
    let Some(user_id) = accounts::consume_email_token(&transaction, MAGIC_LINK, &hash, now).await?
    else {
        return Err(ServiceError::Unauthenticated("invalid or expired token"));
    };
    let user = accounts::find_user(&transaction, user_id).await?;
    if user.is_none_or(|u| u.disabled_at.is_some()) {
        return Err(ServiceError::Unauthenticated("invalid or expired token"));
    }
    let (tokens, session_id) = start_session(state, &transaction, user_id, meta, now).await?;
    Entry::for_account(Some(user_id), meta, "auth.magic_link_used")
        .metadata(json!({"session_id": session_id}))
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    Ok(tokens)
}

/// Sets a new password with a reset token and revokes every session of the user.
#[tracing::instrument(skip_all)]
pub async fn confirm_password_reset(
    state: &AppState,
    token: &str,
    password: &str,
    meta: &RequestMeta,
) -> Result<()> {
    validate_password(password)?;
    let now = Utc::now();
    let hash = TokenHash::from_plaintext(token).to_hex();
    let password_hash = state.identity.hasher.hash(password)?;
    let transaction = state.database.begin_write().await?;
    let Some(user_id) =
        accounts::consume_email_token(&transaction, PASSWORD_RESET, &hash, now).await?
    else {
        return Err(ServiceError::Unauthenticated("invalid or expired token"));
    };
    accounts::set_password_hash(&transaction, user_id, password_hash, now).await?;
    let revoked = accounts::revoke_user_sessions(&transaction, user_id, now).await?;
    Entry::for_account(Some(user_id), meta, "auth.password_reset")
        .metadata(json!({"revoked_sessions": revoked}))
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    tracing::info!(%user_id, revoked, "password reset; sessions revoked");
    Ok(())
}

/// The caller and the organizations it belongs to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Me {
    /// The user.
    pub user: UserView,
    /// Memberships, with the role in each.
    pub organizations: Vec<OrganizationView>,
}

/// `GET /me`.
pub async fn me(state: &AppState, caller: &Caller) -> Result<Me> {
    let Some(user_id) = caller.user_id() else {
        return Err(ServiceError::Forbidden(
            "only users have a profile".to_owned(),
        ));
    };
    let user = accounts::find_user(state.database.conn(), user_id)
        .await?
        .ok_or(ServiceError::Unauthenticated("invalid credentials"))?;
    let organizations = organizations::memberships_of_user(state.database.conn(), user_id)
        .await?
        .iter()
        .map(|(membership, org)| OrganizationView::new(org, Some(&membership.role)))
        .collect();
    Ok(Me {
        user: UserView::from(&user),
        organizations,
    })
}

/// Resolves a bearer token: the admin service token, an API key, or a user's
/// access token whose session is live and whose account is enabled.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Principal> {
    let invalid = ServiceError::Unauthenticated("invalid credentials");
    if let Some(service_token) = &state.identity.service_token {
        if bool::from(service_token.as_bytes().ct_eq(token.as_bytes())) {
            return Ok(Principal::Service);
        }
    }
    let now = Utc::now();
    if looks_like_api_key(token) {
        let parsed = parse_api_key(token)
            .map_err(|_| ServiceError::Unauthenticated("invalid credentials"))?;
        let CachedKey {
            key,
            organization: org,
        } = match state.api_keys.get(&parsed.public_id) {
            Some(cached) => cached,
            None => {
                let read_at = std::time::Instant::now();
                let conn = state.database.conn();
                let key = organizations::find_api_key_by_public_id(conn, &parsed.public_id)
                    .await?
                    .filter(|k| k.revoked_at.is_none())
                    .ok_or(ServiceError::Unauthenticated("invalid credentials"))?;
                let organization = organizations::find_organization(conn, key.organization_id)
                    .await?
                    .ok_or(ServiceError::Unauthenticated("invalid credentials"))?;
                let cached = CachedKey { key, organization };
                // Only live keys are kept: made-up ids cannot fill the cache.
                state
                    .api_keys
                    .put(&parsed.public_id, cached.clone(), read_at);
                cached
            }
        };
        let stored = TokenHash::from_hex(&key.secret_hash)
            .map_err(|_| ServiceError::Unauthenticated("invalid credentials"))?;
        if !verify_api_key_secret(&parsed.secret, &stored) {
            return Err(invalid);
        }
        if org.suspended_at.is_some() {
            return Err(ServiceError::Forbidden(
                "the organization is suspended".to_owned(),
            ));
        }
        let role: Role = key
            .role
            .parse()
            .map_err(|_| ServiceError::Internal("stored key role is invalid".to_owned()))?;
        // The row just read says whether the minute has passed: skip the write
        // (still conditional, for concurrent requests) on every other request.
        if key
            .last_used_at
            .is_none_or(|used| now - used >= chrono::Duration::minutes(1))
        {
            organizations::touch_api_key(state.database.conn(), key.id, now).await?;
            state.api_keys.touched(&parsed.public_id, now);
        }
        return Ok(Principal::ApiKey {
            key_id: key.id,
            organization_id: key.organization_id,
            role,
            organization: Box::new(org),
        });
    }
    let claims = state
        .identity
        .jwt
        .verify(token, now)
        .map_err(|_| ServiceError::Unauthenticated("invalid credentials"))?;
    let (session, user) = accounts::find_session_with_user(state.database.conn(), claims.sid)
        .await?
        .ok_or(ServiceError::Unauthenticated("invalid credentials"))?;
    if session.user_id != claims.sub || session.revoked_at.is_some() || user.disabled_at.is_some() {
        return Err(invalid);
    }
    Ok(Principal::User {
        user_id: user.id,
        session_id: session.id,
        platform_admin: user.is_platform_admin,
    })
}

// Values holding a password or a token say so when printed, never what it is.

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("name", &self.name)
            .field("organization", &self.organization)
            .finish()
    }
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("user", &self.user)
            .field("organization", &self.organization)
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("tokens", &self.tokens)
            .finish()
    }
}
