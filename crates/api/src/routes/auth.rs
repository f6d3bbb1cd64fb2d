//! `/api/v1/auth/*` and `/api/v1/me`.

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::caller::{Caller, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::ApiJson;
use crate::service::identity::{self, Me, Registered, Registration, TokenPair};
use crate::state::AppState;

/// An organization to create with the account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewOrganization {
    /// Display name.
    #[schema(example = "Acme")]
    pub name: String,
    /// Lowercase letters, digits and hyphens, 3–48.
    #[schema(example = "acme", pattern = "^[a-z0-9][a-z0-9-]{1,46}[a-z0-9]$")]
    pub slug: String,
}

/// `POST /auth/register`.
#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Email address.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 8 to 128 characters.
    #[schema(
        example = "correct horse battery staple",
        min_length = 8,
        max_length = 128
    )]
    pub password: String,
    /// Display name.
    pub name: Option<String>,
    /// Create this organization too, owned by the new user.
    pub organization: Option<NewOrganization>,
}

/// Creates an account (and optionally an organization) and signs it in.
#[utoipa::path(
    tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = Registered),
        (status = 409, description = "email or slug taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/v1/auth/register")]
pub async fn register(
    state: web::Data<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let input = Registration {
        email: body.email,
        password: body.password,
        name: body.name,
        organization: body.organization.map(|o| (o.name, o.slug)),
    };
    let registered = identity::register(&state, input, &meta).await?;
    Ok(HttpResponse::Created().json(registered))
}

/// `POST /auth/login`.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Signs in; a wrong email or password is the same 401.
#[utoipa::path(
    tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenPair),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many failures; see Retry-After", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/v1/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<web::Json<TokenPair>, ApiError> {
    Ok(web::Json(
        identity::login(&state, &body.email, &body.password, &meta).await?,
    ))
}

/// A refresh token.
#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The opaque refresh token.
    pub refresh_token: String,
}

/// Exchanges a refresh token for a new pair; reusing a spent one revokes its session.
#[utoipa::path(
    tag = "accounts",
    request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
#[post("/api/v1/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<web::Json<TokenPair>, ApiError> {
    Ok(web::Json(
        identity::refresh(&state, &body.refresh_token, &meta).await?,
    ))
}

/// Ends the session of a refresh token.
#[utoipa::path(tag = "accounts", request_body = RefreshRequest, responses((status = 204)))]
#[post("/api/v1/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    identity::logout(&state, &body.refresh_token, &meta).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An email address.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailRequest {
    /// Email address.
    pub email: String,
}

/// Emails a single-use sign-in link; 202 whether or not the address is known.
#[utoipa::path(
    tag = "accounts",
    request_body = EmailRequest,
    responses((status = 202), (status = 429, body = Problem, content_type = "application/problem+json"))
)]
#[post("/api/v1/auth/magic-link")]
pub async fn magic_link(
    state: web::Data<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<EmailRequest>,
) -> Result<HttpResponse, ApiError> {
    identity::request_magic_link(&state, &body.email, &meta).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// A single-use token from an email.
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The token.
    pub token: String,
}

/// Signs in with a magic-link token.
#[utoipa::path(
    tag = "accounts",
    request_body = TokenRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
#[post("/api/v1/auth/magic-link/verify")]
pub async fn magic_link_verify(
    state: web::Data<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<web::Json<TokenPair>, ApiError> {
    Ok(web::Json(
        identity::verify_magic_link(&state, &body.token, &meta).await?,
    ))
}

/// Emails a single-use password-reset token; 202 whether or not the address is known.
#[utoipa::path(
    tag = "accounts",
    request_body = EmailRequest,
    responses((status = 202), (status = 429, body = Problem, content_type = "application/problem+json"))
)]
#[post("/api/v1/auth/password-reset")]
pub async fn password_reset(
    state: web::Data<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<EmailRequest>,
) -> Result<HttpResponse, ApiError> {
    identity::request_password_reset(&state, &body.email, &meta).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// `POST /auth/password-reset/confirm`.
#[derive(Deserialize, ToSchema)]
pub struct ResetConfirmRequest {
    /// The token from the email.
    pub token: String,
    /// The new password: 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

/// Sets a new password; every session of the user is revoked.
#[utoipa::path(
    tag = "accounts",
    request_body = ResetConfirmRequest,
    responses(
        (status = 204),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/v1/auth/password-reset/confirm")]
pub async fn password_reset_confirm(
    state: web::Data<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<ResetConfirmRequest>,
) -> Result<HttpResponse, ApiError> {
    identity::confirm_password_reset(&state, &body.token, &body.password, &meta).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller and their organizations.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
#[get("/api/v1/me")]
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<web::Json<Me>, ApiError> {
    Ok(web::Json(identity::me(&state, &caller).await?))
}

// Requests holding a password or a token say so when printed, never what it is.

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for ResetConfirmRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetConfirmRequest")
            .field("token", &"<redacted>")
            .field("password", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("refresh_token", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("token", &"<redacted>")
            .finish()
    }
}
