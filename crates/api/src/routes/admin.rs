//! `/api/v1/admin/*`: platform admins or the configured service token.

use actix_web::{get, patch, web};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::pagination::{Page, PageQuery};
use crate::service::admin::{self, AdminOrganization, Stats};
use crate::service::identity::UserView;
use crate::state::AppState;

fn next_cursor<T>(items: &[T], limit: u64, id: impl Fn(&T) -> Uuid) -> Option<String> {
    (items.len() as u64 == limit)
        .then(|| items.last().map(|i| id(i).to_string()))
        .flatten()
}

/// All organizations with usage.
#[utoipa::path(tag = "admin", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = Page<AdminOrganization>)))]
#[get("/api/v1/admin/orgs")]
pub async fn organizations(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<AdminOrganization>>, ApiError> {
    let limit = query.limit()?;
    let data = admin::list_organizations(&state, &caller, query.uuid_cursor()?, limit).await?;
    let next_cursor = next_cursor(&data, limit, |o| o.id);
    Ok(web::Json(Page { data, next_cursor }))
}

/// One organization with usage.
#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("org" = String, Path)), responses((status = 200, body = AdminOrganization)))]
#[get("/api/v1/admin/orgs/{org}")]
pub async fn organization(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<AdminOrganization>, ApiError> {
    Ok(web::Json(
        admin::get_organization(&state, &caller, &path).await?,
    ))
}

/// `PATCH /admin/orgs/{org}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AdminUpdateOrganization {
    /// A configured plan name.
    pub plan: Option<String>,
    /// Suspend (jobs stop, keys get 403) or unsuspend.
    pub suspended: Option<bool>,
}

/// Sets the plan, suspends or unsuspends.
#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("org" = String, Path)), request_body = AdminUpdateOrganization, responses((status = 200, body = AdminOrganization)))]
#[patch("/api/v1/admin/orgs/{org}")]
pub async fn update_organization(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    ApiJson(body): ApiJson<AdminUpdateOrganization>,
) -> Result<web::Json<AdminOrganization>, ApiError> {
    Ok(web::Json(
        admin::update_organization(&state, &caller, &path, body.plan, body.suspended).await?,
    ))
}

/// All users.
#[utoipa::path(tag = "admin", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = Page<UserView>)))]
#[get("/api/v1/admin/users")]
pub async fn users(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<UserView>>, ApiError> {
    let limit = query.limit()?;
    let data = admin::list_users(&state, &caller, query.uuid_cursor()?, limit).await?;
    let next_cursor = next_cursor(&data, limit, |u| u.id);
    Ok(web::Json(Page { data, next_cursor }))
}

/// `PATCH /admin/users/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AdminUpdateUser {
    /// Disable (sessions and logins stop working) or enable.
    pub disabled: Option<bool>,
    /// Grant or withdraw platform admin.
    pub is_platform_admin: Option<bool>,
}

/// Disables / enables a user, grants platform admin.
#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = AdminUpdateUser, responses((status = 200, body = UserView)))]
#[patch("/api/v1/admin/users/{id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    ApiJson(body): ApiJson<AdminUpdateUser>,
) -> Result<web::Json<UserView>, ApiError> {
    Ok(web::Json(
        admin::update_user(
            &state,
            &caller,
            *path,
            body.disabled,
            body.is_platform_admin,
        )
        .await?,
    ))
}

/// Platform-wide counts.
#[utoipa::path(tag = "admin", security(("bearer" = [])), responses((status = 200, body = Stats)))]
#[get("/api/v1/admin/stats")]
pub async fn stats(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<Stats>, ApiError> {
    Ok(web::Json(admin::stats(&state, &caller).await?))
}
