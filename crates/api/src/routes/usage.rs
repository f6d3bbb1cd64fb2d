//! `/api/v1/orgs/{org}/usage` and `/api/v1/orgs/{org}/notifications`.

use actix_web::{get, put, web};

use crate::caller::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::ApiJson;
use crate::service::notifications::{self, NotificationSettings};
use crate::service::usage::{self, Usage};
use crate::state::AppState;

/// Plan, period, executions and jobs used against the limits (members).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")),
    responses((status = 200, body = Usage), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/api/v1/orgs/{org}/usage")]
pub async fn get_usage(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<Usage>, ApiError> {
    Ok(web::Json(usage::usage(&state, &caller, &path).await?))
}

/// Notification settings (admins).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")),
    responses((status = 200, body = NotificationSettings), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
#[get("/api/v1/orgs/{org}/notifications")]
pub async fn get_notifications(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<NotificationSettings>, ApiError> {
    Ok(web::Json(notifications::get(&state, &caller, &path).await?))
}

/// Replaces the notification settings (admins).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")),
    request_body = NotificationSettings,
    responses((status = 200, body = NotificationSettings), (status = 422, body = Problem, content_type = "application/problem+json"))
)]
#[put("/api/v1/orgs/{org}/notifications")]
pub async fn put_notifications(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    ApiJson(body): ApiJson<NotificationSettings>,
) -> Result<web::Json<NotificationSettings>, ApiError> {
    Ok(web::Json(
        notifications::put(&state, &caller, &path, body).await?,
    ))
}
