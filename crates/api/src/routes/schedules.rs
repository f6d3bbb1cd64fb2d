//! `/api/v1/schedules/*`: schedule tools that need no organization.

use actix_web::{post, web};

use crate::caller::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::ApiJson;
use crate::service::jobs::{self, Preview, PreviewInput};

/// The next `count` (1 to 100, default 5) run times of a cron expression in a time
/// zone, strictly after `after` (default now), in UTC and on the zone's wall clock.
/// Computed by the same function the engine schedules jobs with. Any authenticated
/// caller (user or API key) may ask.
#[utoipa::path(
    tag = "jobs",
    security(("bearer" = [])),
    request_body = PreviewInput,
    responses(
        (status = 200, body = Preview),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`cron`, `timezone`, `count` or `after` invalid", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/v1/schedules/preview")]
pub async fn preview(
    caller: Caller,
    ApiJson(body): ApiJson<PreviewInput>,
) -> Result<web::Json<Preview>, ApiError> {
    Ok(web::Json(jobs::preview_schedule(&caller, &body)?))
}
