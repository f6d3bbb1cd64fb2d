//! The one place where failures become HTTP: RFC 9457 problem details.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldProblem {
    /// JSON path of the field, e.g. `schedule.cron`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An RFC 9457 problem details body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// The invalid fields (422 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldProblem>>,
    /// The quota's limit (429 for plan limits only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// The caller's current usage (429 for plan limits only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
}

/// Everything a handler can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be read.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no usable credential.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: known, in the caller's organization, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: unknown, or in another organization.
    #[error("{0}")]
    NotFound(String),
    /// 409: conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 413: body over the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but invalid.
    #[error("the request has invalid fields")]
    Validation(Vec<FieldProblem>),
    /// 429: a plan limit (with `limit`/`current`) or a rate limit (with retry-after).
    #[error("{detail}")]
    TooManyRequests {
        /// What was exceeded.
        detail: String,
        /// The limit, for quota problems.
        limit: Option<u64>,
        /// The current figure, for quota problems.
        current: Option<u64>,
        /// Seconds until a retry can succeed.
        retry_after: Option<u64>,
    },
    /// 503: a dependency is down.
    #[error("{0}")]
    Unavailable(String),
    /// 500: our fault; the source is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A 422 about one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldProblem {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// A 500 wrapping its cause.
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }

    fn problem(&self) -> Problem {
        let status = self.status_code();
        let mut problem = Problem::for_status(status, self.to_string());
        match self {
            Self::Validation(errors) => problem.errors = Some(errors.clone()),
            Self::TooManyRequests { limit, current, .. } => {
                problem.limit = *limit;
                problem.current = *current;
            }
            _ => {}
        }
        problem
    }
}

impl Problem {
    /// A problem for `status` with the status's own title.
    pub fn for_status(status: StatusCode, detail: impl Into<String>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        let slug = title.to_ascii_lowercase().replace([' ', '\''], "-");
        Self {
            kind: format!("https://punctual.dev/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: None,
            limit: None,
            current: None,
        }
    }

    /// The serialized body with its media type.
    pub fn into_response(self, status: StatusCode) -> HttpResponse {
        let body = serde_json::to_string(&self).unwrap_or_else(|_| "{}".to_owned());
        HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
            .body(body)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(source) = self {
            tracing::error!(error = %source, source_chain = ?source, "request failed");
        }
        let status = self.status_code();
        let mut response = self.problem().into_response(status);
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::TooManyRequests {
                retry_after: Some(seconds),
                ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
            }
            _ => {}
        }
        response
    }
}
