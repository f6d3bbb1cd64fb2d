//! `/api/v1/orgs/{org}/jobs/*` and `/api/v1/orgs/{org}/executions/{id}`.

use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::caller::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::ApiJson;
use crate::pagination::{Page, PageQuery};
use crate::service::jobs::{
    self, ExecutionSummary, ExecutionView, JobInput, JobView, ListExecutions, ListJobs, Saved,
};
use crate::state::AppState;

/// Filters of the job list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct JobListQuery {
    /// `true`: only enabled jobs; `false`: only paused or disabled ones.
    #[param(value_type = Option<bool>)]
    pub enabled: Option<String>,
    /// Only the job with this key.
    pub key: Option<String>,
}

/// The statuses an execution can have, as the document's enum.
fn execution_status() -> utoipa::openapi::Object {
    crate::docs::one_of(&punctual_domain::ExecutionStatus::ALL.map(|status| status.as_str()))
}

/// Filter of the execution list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ExecutionListQuery {
    /// `pending`, `running`, `success`, `failed`, `timeout`, `skipped` or `canceled`.
    #[param(schema_with = execution_status)]
    pub status: Option<String>,
}

/// Creates a job.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")),
    request_body = JobInput,
    responses(
        (status = 201, body = JobView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the key is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "every invalid field, by name", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/v1/orgs/{org}/jobs")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    ApiJson(body): ApiJson<JobInput>,
) -> Result<HttpResponse, ApiError> {
    let job = jobs::create(&state, &caller, &path, &body).await?;
    Ok(HttpResponse::Created().json(job))
}

/// Creates or replaces the job with this key: 201 created, 200 replaced. The same
/// document twice is the same job, unchanged. A `key` in the body must equal the path's.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = [])),
    params(
        ("org" = String, Path, description = "organization slug"),
        ("key" = String, Path, description = "the client's job key")
    ),
    request_body = JobInput,
    responses(
        (status = 200, description = "replaced (or already equal)", body = JobView),
        (status = 201, description = "created", body = JobView),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
#[put("/api/v1/orgs/{org}/jobs/by-key/{key}")]
pub async fn upsert(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    ApiJson(body): ApiJson<JobInput>,
) -> Result<HttpResponse, ApiError> {
    let (org, key) = path.into_inner();
    let (job, saved) = jobs::upsert_by_key(&state, &caller, &org, &key, &body).await?;
    Ok(match saved {
        Saved::Created => HttpResponse::Created().json(job),
        Saved::Replaced => HttpResponse::Ok().json(job),
    })
}

/// The organization's jobs, oldest first, each with its newest execution.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), PageQuery, JobListQuery),
    responses(
        (status = 200, body = Page<JobView>),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/v1/orgs/{org}/jobs")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    page: web::Query<PageQuery>,
    filter: web::Query<JobListQuery>,
) -> Result<web::Json<Page<JobView>>, ApiError> {
    let filter = filter.into_inner();
    let query = ListJobs {
        enabled: filter.enabled,
        key: filter.key,
        limit: page.limit()?,
        cursor: page.into_inner().cursor,
    };
    Ok(web::Json(jobs::list(&state, &caller, &path, &query).await?))
}

/// One job with `next_run_at` and its newest execution.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("id" = Uuid, Path, description = "job id")),
    responses(
        (status = 200, body = JobView),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/v1/orgs/{org}/jobs/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<JobView>, ApiError> {
    let (org, id) = path.into_inner();
    Ok(web::Json(jobs::get(&state, &caller, &org, &id).await?))
}

/// Changes some fields: a JSON merge patch (RFC 7396) of the job document (`null`
/// removes an optional field or a header; a `schedule` of another `type` replaces the
/// schedule). Validated like a new job; `next_run_at` is recomputed when the schedule
/// changes or the job is enabled.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("id" = Uuid, Path, description = "job id")),
    request_body(content = Object, description = "any subset of the job document (`JobInput`), as a JSON merge patch",
        example = json!({"schedule": {"cron": "*/5 * * * *"}, "request": {"timeout_ms": 10000}})),
    responses(
        (status = 200, body = JobView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the new key is another job's", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
#[patch("/api/v1/orgs/{org}/jobs/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    ApiJson(patch): ApiJson<serde_json::Value>,
) -> Result<web::Json<JobView>, ApiError> {
    let (org, id) = path.into_inner();
    Ok(web::Json(
        jobs::update(&state, &caller, &org, &id, &patch).await?,
    ))
}

/// Deletes a job and its execution history.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("id" = Uuid, Path, description = "job id")),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[delete("/api/v1/orgs/{org}/jobs/{id}")]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, id) = path.into_inner();
    jobs::delete(&state, &caller, &org, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Pauses a job: `enabled` false, `next_run_at` null.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("id" = Uuid, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[post("/api/v1/orgs/{org}/jobs/{id}/pause")]
pub async fn pause(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<JobView>, ApiError> {
    let (org, id) = path.into_inner();
    Ok(web::Json(jobs::pause(&state, &caller, &org, &id).await?))
}

/// Resumes a job: `enabled` true, `next_run_at` recomputed from now, the failure
/// streak reset.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("id" = Uuid, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[post("/api/v1/orgs/{org}/jobs/{id}/resume")]
pub async fn resume(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<JobView>, ApiError> {
    let (org, id) = path.into_inner();
    Ok(web::Json(jobs::resume(&state, &caller, &org, &id).await?))
}

/// Runs a job now (paused ones too): a pending manual execution. The schedule is not
/// shifted.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("id" = Uuid, Path, description = "job id")),
    responses((status = 202, body = ExecutionView), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[post("/api/v1/orgs/{org}/jobs/{id}/trigger")]
pub async fn trigger(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, id) = path.into_inner();
    let run = jobs::trigger(&state, &caller, &org, &id).await?;
    Ok(HttpResponse::Accepted().json(run))
}

/// A job's executions (attempts), newest first.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("id" = Uuid, Path, description = "job id"), PageQuery, ExecutionListQuery),
    responses(
        (status = 200, body = Page<ExecutionSummary>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/v1/orgs/{org}/jobs/{id}/executions")]
pub async fn executions(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    page: web::Query<PageQuery>,
    filter: web::Query<ExecutionListQuery>,
) -> Result<web::Json<Page<ExecutionSummary>>, ApiError> {
    let (org, id) = path.into_inner();
    let query = ListExecutions {
        status: filter.into_inner().status,
        limit: page.limit()?,
        cursor: page.into_inner().cursor,
    };
    Ok(web::Json(
        jobs::executions(&state, &caller, &org, &id, &query).await?,
    ))
}

/// One execution, with the (truncated) response body it got.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("id" = Uuid, Path, description = "execution id")),
    responses((status = 200, body = ExecutionView), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/api/v1/orgs/{org}/executions/{id}")]
pub async fn execution(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<ExecutionView>, ApiError> {
    let (org, id) = path.into_inner();
    Ok(web::Json(
        jobs::execution(&state, &caller, &org, &id).await?,
    ))
}
