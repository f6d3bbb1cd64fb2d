//! The one error type of the domain: a value the user supplied is not valid, and which
//! field it was.

use serde::{Deserialize, Serialize};

/// One validation problem, as the REST API reports it in a 422 problem's `errors` list:
/// `{"field": "schedule.cron", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// JSON-ish path of the offending field, e.g. `schedule.timezone` or
    /// `request.headers.X-Foo`.
    pub field: String,
    /// What is wrong with it, in words a user can act on.
    pub message: String,
}

/// Why a domain value could not be constructed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The input for `field` is not acceptable.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// JSON-ish path of the offending field, e.g. `retry.max_attempts`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl DomainError {
    /// Builds an [`DomainError::Invalid`] for `field` with a human readable `message`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The path of the field the error is about, e.g. `schedule.cron`.
    pub fn field(&self) -> &str {
        match self {
            Self::Invalid { field, .. } => field,
        }
    }

    /// The human readable explanation, without the field name.
    pub fn message(&self) -> &str {
        match self {
            Self::Invalid { message, .. } => message,
        }
    }

    /// The same error with `prefix.` put in front of its field path, for callers that
    /// embed a value deeper in a document: `Slug::parse` reports `slug`, and the
    /// registration endpoint turns that into `organization.slug`.
    #[must_use]
    pub fn prefixed(self, prefix: &str) -> Self {
        match self {
            Self::Invalid { field, message } => Self::Invalid {
                field: format!("{prefix}.{field}"),
                message,
            },
        }
    }

    /// The error as the `{field, message}` pair the REST API reports.
    pub fn to_field_error(&self) -> FieldError {
        FieldError::from(self.clone())
    }
}

impl From<DomainError> for FieldError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Invalid { field, message } => FieldError { field, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_its_field_and_displays_both() {
        let error = DomainError::invalid("retry.max_attempts", "must be between 1 and 20");
        assert_eq!(error.field(), "retry.max_attempts");
        assert_eq!(error.message(), "must be between 1 and 20");
        assert_eq!(
            error.to_string(),
            "invalid retry.max_attempts: must be between 1 and 20"
        );
    }

    #[test]
    fn prefixed_extends_the_path() {
        let error = DomainError::invalid("slug", "too short").prefixed("organization");
        assert_eq!(error.field(), "organization.slug");
        assert_eq!(error.message(), "too short");
    }

    #[test]
    fn converts_to_field_error() {
        let error = DomainError::invalid("email", "missing @");
        assert_eq!(
            error.to_field_error(),
            FieldError {
                field: "email".into(),
                message: "missing @".into()
            }
        );
    }
}
