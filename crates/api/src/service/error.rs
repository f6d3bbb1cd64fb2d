//! The use cases' error, in their own terms; mapped to HTTP once, in `crate::error`.

use punctual_persistence::PersistenceError;

use crate::error::{ApiError, FieldProblem};

/// Why a use case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input that parsed but breaks a rule, per field.
    #[error("invalid input")]
    Invalid(Vec<FieldProblem>),
    /// No credential, or a bad one.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Known and in the caller's organization, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Unknown, or another tenant's.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; retry after this many seconds.
    #[error("too many attempts, retry later")]
    TooManyAttempts {
        /// Seconds until the window frees a slot.
        retry_after: u64,
    },
    /// A plan limit.
    #[error("{detail}")]
    QuotaExceeded {
        /// What was exceeded.
        detail: String,
        /// The plan's limit.
        limit: u64,
        /// The current figure.
        current: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] PersistenceError),
    /// Something that should not happen (a broken stored value, a crypto failure).
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// A 422 about one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldProblem {
            field: field.into(),
            message: message.into(),
        }])
    }
}

impl From<punctual_persistence::sea_orm::DbErr> for ServiceError {
    fn from(error: punctual_persistence::sea_orm::DbErr) -> Self {
        Self::Store(PersistenceError::Query(error))
    }
}

impl From<punctual_auth::AuthError> for ServiceError {
    fn from(error: punctual_auth::AuthError) -> Self {
        use punctual_auth::AuthError;
        match error {
            AuthError::InvalidField { field, message } => Self::invalid(field, message),
            AuthError::InvalidToken | AuthError::InvalidApiKey => {
                Self::Unauthenticated("invalid credentials")
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<punctual_domain::DomainError> for ServiceError {
    fn from(error: punctual_domain::DomainError) -> Self {
        match error {
            punctual_domain::DomainError::Invalid { field, message } => {
                Self::invalid(field, message)
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Invalid(errors) => ApiError::Validation(errors),
            ServiceError::Unauthenticated(message) => ApiError::Unauthorized(message.to_owned()),
            ServiceError::Forbidden(message) => ApiError::Forbidden(message),
            ServiceError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            ServiceError::Conflict(message) => ApiError::Conflict(message),
            ServiceError::TooManyAttempts { retry_after } => ApiError::TooManyRequests {
                detail: "too many attempts; retry later".to_owned(),
                limit: None,
                current: None,
                retry_after: Some(retry_after.max(1)),
            },
            ServiceError::QuotaExceeded {
                detail,
                limit,
                current,
            } => ApiError::TooManyRequests {
                detail,
                limit: Some(limit),
                current: Some(current),
                retry_after: None,
            },
            ServiceError::Store(error) => match error.refused_value() {
                Some(reason) => ApiError::BadRequest(reason.to_owned()),
                None => ApiError::internal(error),
            },
            ServiceError::Internal(message) => ApiError::internal(std::io::Error::other(message)),
        }
    }
}
