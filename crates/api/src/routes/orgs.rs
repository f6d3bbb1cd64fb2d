//! `/api/v1/orgs/*` (besides jobs) and `/api/v1/invitations/accept`.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use punctual_domain::Role;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::ApiJson;
use crate::pagination::{Page, PageQuery};
use crate::service::identity::OrganizationView;
use crate::service::organizations::{
    self, ApiKeyView, CreatedApiKey, CreatedOrganization, InvitationView, MemberView,
    SigningSecrets,
};
use crate::state::AppState;

/// `POST /orgs`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOrganization {
    /// Display name.
    #[schema(example = "Acme")]
    pub name: String,
    /// Lowercase letters, digits, hyphens; 3–48; unique.
    #[schema(example = "acme", pattern = "^[a-z0-9][a-z0-9-]{1,46}[a-z0-9]$")]
    pub slug: String,
}

/// Creates an organization; the caller becomes its owner.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    request_body = CreateOrganization,
    responses(
        (status = 201, body = CreatedOrganization),
        (status = 409, description = "slug taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/v1/orgs")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateOrganization>,
) -> Result<HttpResponse, ApiError> {
    let created = organizations::create(&state, &caller, &body.name, &body.slug).await?;
    Ok(HttpResponse::Created().json(created))
}

/// The caller's organizations.
#[utoipa::path(tag = "organizations", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = Page<OrganizationView>)))]
#[get("/api/v1/orgs")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<OrganizationView>>, ApiError> {
    let all = organizations::list_mine(&state, &caller).await?;
    Ok(web::Json(Page::of_list(all, |org| org.id, &page)?))
}

/// One organization (members).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")),
    responses((status = 200, body = OrganizationView), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/api/v1/orgs/{org}")]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<OrganizationView>, ApiError> {
    Ok(web::Json(organizations::get(&state, &caller, &path).await?))
}

/// `PATCH /orgs/{org}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateOrganization {
    /// New display name.
    pub name: Option<String>,
}

/// Renames an organization (admins).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")),
    request_body = UpdateOrganization,
    responses((status = 200, body = OrganizationView), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
#[patch("/api/v1/orgs/{org}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    ApiJson(body): ApiJson<UpdateOrganization>,
) -> Result<web::Json<OrganizationView>, ApiError> {
    Ok(web::Json(
        organizations::update(&state, &caller, &path, body.name.as_deref()).await?,
    ))
}

/// Deletes an organization and everything it owns (owners).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
#[delete("/api/v1/orgs/{org}")]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    organizations::delete(&state, &caller, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Members with roles.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), PageQuery),
    responses((status = 200, body = Page<MemberView>))
)]
#[get("/api/v1/orgs/{org}/members")]
pub async fn members(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<MemberView>>, ApiError> {
    let all = organizations::members(&state, &caller, &path).await?;
    Ok(web::Json(Page::of_list(
        all,
        |member| member.user.id,
        &page,
    )?))
}

// The roles come from the domain's list; a field's schema_with replaces its doc
// comment, hence the descriptions here.
fn member_role() -> utoipa::openapi::Object {
    crate::docs::described(
        crate::docs::one_of(&Role::ALL.map(|role| role.as_str())),
        "`owner`, `admin` or `member`.",
    )
}

fn invited_role() -> utoipa::openapi::Object {
    crate::docs::described(
        crate::docs::one_of(&Role::ALL.map(|role| role.as_str())),
        "`admin` or `member` (owners may also invite owners).",
    )
}

/// API keys cannot be owners (`create_api_key` refuses it).
fn api_key_role() -> utoipa::openapi::Object {
    let roles: Vec<&str> = Role::ALL
        .iter()
        .filter(|role| **role != Role::Owner)
        .map(|role| role.as_str())
        .collect();
    crate::docs::described(
        crate::docs::one_of_or_null(&roles),
        "`admin` or `member` (default `member`).",
    )
}

/// `PATCH /orgs/{org}/members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateMember {
    /// `owner`, `admin` or `member`.
    #[schema(schema_with = member_role)]
    pub role: String,
}

/// Changes a member's role (admins; owners to touch owners; the last owner stays).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("user_id" = Uuid, Path)),
    request_body = UpdateMember,
    responses(
        (status = 200, body = MemberView),
        (status = 409, description = "last owner", body = Problem, content_type = "application/problem+json")
    )
)]
#[patch("/api/v1/orgs/{org}/members/{user_id}")]
pub async fn update_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, Uuid)>,
    ApiJson(body): ApiJson<UpdateMember>,
) -> Result<web::Json<MemberView>, ApiError> {
    let (org, user_id) = path.into_inner();
    Ok(web::Json(
        organizations::change_role(&state, &caller, &org, user_id, &body.role).await?,
    ))
}

/// Removes a member, or leaves when it is the caller.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 409, description = "last owner", body = Problem, content_type = "application/problem+json"))
)]
#[delete("/api/v1/orgs/{org}/members/{user_id}")]
pub async fn remove_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org, user_id) = path.into_inner();
    organizations::remove_member(&state, &caller, &org, user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /orgs/{org}/invitations`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateInvitation {
    /// Who to invite.
    pub email: String,
    /// `admin` or `member` (owners may also invite owners).
    #[schema(schema_with = invited_role)]
    pub role: String,
}

/// Invites by email (admins).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")),
    request_body = CreateInvitation,
    responses((status = 201, body = InvitationView))
)]
#[post("/api/v1/orgs/{org}/invitations")]
pub async fn invite(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    ApiJson(body): ApiJson<CreateInvitation>,
) -> Result<HttpResponse, ApiError> {
    let invitation = organizations::invite(&state, &caller, &path, &body.email, &body.role).await?;
    Ok(HttpResponse::Created().json(invitation))
}

/// Open invitations (admins).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), PageQuery),
    responses((status = 200, body = Page<InvitationView>))
)]
#[get("/api/v1/orgs/{org}/invitations")]
pub async fn invitations(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<InvitationView>>, ApiError> {
    let all = organizations::invitations(&state, &caller, &path).await?;
    Ok(web::Json(Page::of_list(
        all,
        |invitation| invitation.id,
        &page,
    )?))
}

/// Revokes an invitation (admins).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("id" = Uuid, Path)),
    responses((status = 204))
)]
#[delete("/api/v1/orgs/{org}/invitations/{id}")]
pub async fn revoke_invitation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org, id) = path.into_inner();
    organizations::revoke_invitation(&state, &caller, &org, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /invitations/accept`.
#[derive(Deserialize, ToSchema)]
pub struct AcceptInvitation {
    /// The token from the invitation email.
    pub token: String,
}

/// Accepts an invitation as the signed-in, invited user.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    request_body = AcceptInvitation,
    responses((status = 200, body = OrganizationView), (status = 403, description = "invited another email", body = Problem, content_type = "application/problem+json"))
)]
#[post("/api/v1/invitations/accept")]
pub async fn accept_invitation(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<AcceptInvitation>,
) -> Result<web::Json<OrganizationView>, ApiError> {
    Ok(web::Json(
        organizations::accept_invitation(&state, &caller, &body.token).await?,
    ))
}

/// `POST /orgs/{org}/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateApiKey {
    /// What it is for.
    #[schema(example = "terraform")]
    pub name: String,
    /// `admin` or `member` (default `member`).
    #[schema(schema_with = api_key_role)]
    pub role: Option<String>,
}

/// Creates an API key; the full key is in this answer only (admins).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")),
    request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey))
)]
#[post("/api/v1/orgs/{org}/api-keys")]
pub async fn create_api_key(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> Result<HttpResponse, ApiError> {
    let role = body.role.as_deref().unwrap_or("member");
    let created = organizations::create_api_key(&state, &caller, &path, &body.name, role).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Live API keys, without secrets (admins).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), PageQuery),
    responses((status = 200, body = Page<ApiKeyView>))
)]
#[get("/api/v1/orgs/{org}/api-keys")]
pub async fn api_keys(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<ApiKeyView>>, ApiError> {
    let all = organizations::api_keys(&state, &caller, &path).await?;
    Ok(web::Json(Page::of_list(all, |key| key.id, &page)?))
}

/// Revokes an API key (admins).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("id" = Uuid, Path)),
    responses((status = 204))
)]
#[delete("/api/v1/orgs/{org}/api-keys/{id}")]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org, id) = path.into_inner();
    organizations::revoke_api_key(&state, &caller, &org, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces the webhook signing secret; the old one signs beside it for 24 h (admins).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")),
    responses((status = 200, body = SigningSecrets))
)]
#[post("/api/v1/orgs/{org}/signing-secret/rotate")]
pub async fn rotate_signing_secret(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<SigningSecrets>, ApiError> {
    Ok(web::Json(
        organizations::rotate_signing_secret(&state, &caller, &path).await?,
    ))
}

/// The signing secrets in force (admins).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")),
    responses((status = 200, body = SigningSecrets))
)]
#[get("/api/v1/orgs/{org}/signing-secret")]
pub async fn signing_secret(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<SigningSecrets>, ApiError> {
    Ok(web::Json(
        organizations::signing_secrets(&state, &caller, &path).await?,
    ))
}

impl std::fmt::Debug for AcceptInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptInvitation")
            .field("token", &"<redacted>")
            .finish()
    }
}
