//! Every failure of a console request becomes an HTML page here, once: the
//! problem+json rule of the API, rendered for people. Never a 500 for bad input.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use punctual_api::error::FieldProblem;
use punctual_api::service::ServiceError;

use crate::layout;

/// Why a console request did not render its page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No session (or an ended one): sign in, then come back to `next`.
    #[error("sign in required")]
    SignIn {
        /// A local path to return to.
        next: String,
    },
    /// A refusal shown as a page with its status.
    #[error("{detail}")]
    Page {
        /// 4xx.
        status: StatusCode,
        /// What happened.
        detail: String,
        /// The invalid fields, for a 422.
        problems: Vec<FieldProblem>,
        /// Seconds before a retry can succeed (429).
        retry_after: Option<u64>,
    },
    /// Our fault; the cause is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl ConsoleError {
    /// A page with `status` and `detail`.
    pub fn page(status: StatusCode, detail: impl Into<String>) -> Self {
        Self::Page {
            status,
            detail: detail.into(),
            problems: Vec::new(),
            retry_after: None,
        }
    }

    /// 400: the request could not be read.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::page(StatusCode::BAD_REQUEST, detail)
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::page(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::page(StatusCode::FORBIDDEN, detail)
    }

    /// 500 with a cause for the log.
    pub fn internal(cause: impl Into<String>) -> Self {
        Self::Internal(cause.into())
    }
}

impl From<ServiceError> for ConsoleError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Invalid(problems) => Self::Page {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                detail: "the request has invalid fields".to_owned(),
                problems,
                retry_after: None,
            },
            ServiceError::Unauthenticated(_) => Self::SignIn {
                next: "/".to_owned(),
            },
            ServiceError::Forbidden(detail) => Self::page(StatusCode::FORBIDDEN, detail),
            ServiceError::NotFound(what) => Self::not_found(what),
            ServiceError::Conflict(detail) => Self::page(StatusCode::CONFLICT, detail),
            ServiceError::TooManyAttempts { retry_after } => Self::Page {
                status: StatusCode::TOO_MANY_REQUESTS,
                detail: "too many attempts; try again later".to_owned(),
                problems: Vec::new(),
                retry_after: Some(retry_after.max(1)),
            },
            ServiceError::QuotaExceeded { detail, .. } => {
                Self::page(StatusCode::TOO_MANY_REQUESTS, detail)
            }
            ServiceError::Store(error) => match error.refused_value() {
                Some(reason) => Self::page(StatusCode::BAD_REQUEST, reason),
                None => Self::Internal(error.to_string()),
            },
            ServiceError::Internal(message) => Self::Internal(message),
        }
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::Page { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn { next } => {
                let query =
                    serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, format!("/login?{query}")))
                    .finish()
            }
            Self::Page {
                status,
                detail,
                problems,
                retry_after,
            } => {
                let mut response =
                    layout::html(*status, layout::error_page(*status, detail, problems));
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
                }
                response
            }
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "console request failed");
                let status = StatusCode::INTERNAL_SERVER_ERROR;
                layout::html(
                    status,
                    layout::error_page(status, "something went wrong on our side", &[]),
                )
            }
        }
    }
}
