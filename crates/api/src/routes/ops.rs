//! Operational endpoints: liveness, readiness, metrics, the API's own description.

use std::time::Duration;

use actix_web::http::header::ContentType;
use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// How long readiness waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness and readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` or `ready`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: 200 while the process lives.
#[utoipa::path(tag = "operations", responses((status = 200, body = Status)))]
#[get("/health")]
pub async fn health() -> web::Json<Status> {
    web::Json(Status { status: "ok" })
}

/// Readiness: 200 when the database answers, 503 otherwise.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, body = Status),
        (status = 503, body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> Result<web::Json<Status>, ApiError> {
    match state.database.ping(READY_TIMEOUT).await {
        Ok(()) => Ok(web::Json(Status { status: "ready" })),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            Err(ApiError::Unavailable(
                "the database does not answer".to_owned(),
            ))
        }
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.prometheus.render())
}

/// This document: OpenAPI 3.1, generated from the handlers.
#[utoipa::path(tag = "operations", responses((status = 200, content_type = "application/json", body = Object)))]
#[get("/api/v1/openapi.json")]
pub async fn openapi_json(doc: web::Data<crate::docs::ApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(doc.json.clone())
}

/// Browsable API documentation.
#[utoipa::path(tag = "operations", responses((status = 200, content_type = "text/html", body = String)))]
#[get("/docs")]
pub async fn docs(doc: web::Data<crate::docs::ApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(doc.html.clone())
}
