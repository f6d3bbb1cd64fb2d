//! A job: what it calls ([`HttpTarget`]), when ([`Schedule`]) and how it behaves
//! ([`RetryPolicy`], [`ConcurrencyPolicy`], [`MissedRunPolicy`]), bundled as a
//! [`JobSpec`] whose every part was parsed at the edge.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::error::DomainError;
use crate::http_target::{Headers, HttpMethod, TargetUrl};
use crate::job_policy::{ConcurrencyPolicy, MissedRunPolicy, RetryPolicy, TimeoutMs};
use crate::schedule::Schedule;

// ------------------------------------------------------------------------------------
// Name

/// A job's display name: 1 to [`JobName::MAX_LEN`] characters after trimming
/// surrounding whitespace, none of them a control character (so no line breaks or tabs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobName(String);

impl JobName {
    /// Longest accepted name, in characters.
    pub const MAX_LEN: usize = 200;

    /// Parses a name (surrounding whitespace is dropped); errors name the field `name`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let name = input.trim();
        if name.is_empty() {
            return Err(DomainError::invalid("name", "must not be empty"));
        }
        let len = name.chars().count();
        if len > Self::MAX_LEN {
            return Err(DomainError::invalid(
                "name",
                format!(
                    "must be at most {} characters long (got {len})",
                    Self::MAX_LEN
                ),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "name",
                "must not contain control characters such as line breaks or tabs",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for JobName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

// ------------------------------------------------------------------------------------
// Key

/// A client-chosen job key, unique within an organization (the handle of the
/// idempotent `PUT .../jobs/by-key/{key}`): 1 to [`JobKey::MAX_LEN`] characters of
/// ASCII letters, digits, `.`, `_` and `-`. Taken exactly as given (case-sensitive, not
/// trimmed), so it is safe in a URL path as is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobKey(String);

impl JobKey {
    /// Longest accepted key, in characters.
    pub const MAX_LEN: usize = 128;

    /// Parses a key; errors name the field `key`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        if input.is_empty() {
            return Err(DomainError::invalid("key", "must not be empty"));
        }
        let len = input.chars().count();
        if len > Self::MAX_LEN {
            return Err(DomainError::invalid(
                "key",
                format!(
                    "must be at most {} characters long (got {len})",
                    Self::MAX_LEN
                ),
            ));
        }
        if let Some(bad) = input
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(DomainError::invalid(
                "key",
                format!("may contain only letters A-Z a-z, digits, '.', '_' and '-', not {bad:?}"),
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for JobKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

// ------------------------------------------------------------------------------------
// Body

/// The body a job sends, as text: at most [`RequestBody::MAX_BYTES`] bytes of UTF-8.
/// (Each plan sets its own cap at or under this ceiling; that is checked where
/// plans are known.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestBody(String);

impl RequestBody {
    /// The largest body any plan may allow, in bytes (256 KiB). With its JSON
    /// escaping it still fits the API's 1 MiB request limit, and a node holds a
    /// copy with each claimed execution, so it stays well below that.
    pub const MAX_BYTES: usize = 256 * 1024;

    /// Checks a body's size against [`Self::MAX_BYTES`]; errors name the field
    /// `request.body`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        Self::parse_within(input, Self::MAX_BYTES)
    }

    /// Checks a body's size against a plan's cap of `max_bytes` (never above
    /// [`Self::MAX_BYTES`]); errors name the field `request.body`.
    pub fn parse_within(input: &str, max_bytes: usize) -> Result<Self, DomainError> {
        let max_bytes = max_bytes.min(Self::MAX_BYTES);
        if input.len() > max_bytes {
            return Err(DomainError::invalid(
                "request.body",
                format!(
                    "must be at most {max_bytes} bytes long (got {})",
                    input.len()
                ),
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// The body.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for RequestBody {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

// ------------------------------------------------------------------------------------
// Catch-up grace

/// How late a run missed while Punctual was down may still be made up for, under
/// [`MissedRunPolicy::RunOnce`]: 1 second to 7 days, default 1 hour. Runs missed by more
/// are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CatchUpGrace(u64);

impl CatchUpGrace {
    /// The grace window of a job that does not choose one: one hour.
    pub const DEFAULT: CatchUpGrace = CatchUpGrace(3_600);
    /// The longest grace window, in seconds (7 days).
    pub const MAX_SECONDS: u64 = 7 * 24 * 3_600;

    /// Checks a window given in seconds; errors name the field `catch_up_grace_seconds`.
    pub fn from_seconds(seconds: u64) -> Result<Self, DomainError> {
        if (1..=Self::MAX_SECONDS).contains(&seconds) {
            Ok(Self(seconds))
        } else {
            Err(DomainError::invalid(
                "catch_up_grace_seconds",
                format!(
                    "must be between 1 and {} seconds (got {seconds})",
                    Self::MAX_SECONDS
                ),
            ))
        }
    }

    /// Checks a window given in milliseconds (as stored); whole seconds only.
    pub fn from_millis(ms: u64) -> Result<Self, DomainError> {
        if ms % 1_000 != 0 {
            return Err(DomainError::invalid(
                "catch_up_grace_seconds",
                "must be a whole number of seconds",
            ));
        }
        Self::from_seconds(ms / 1_000)
    }

    /// The window in seconds.
    pub fn seconds(&self) -> u64 {
        self.0
    }

    /// The window in milliseconds.
    pub fn millis(&self) -> u64 {
        self.0 * 1_000
    }

    /// The window as a [`Duration`].
    pub fn as_duration(&self) -> Duration {
        Duration::from_secs(self.0)
    }
}

impl Default for CatchUpGrace {
    fn default() -> Self {
        Self::DEFAULT
    }
}

// ------------------------------------------------------------------------------------
// The whole job

/// The HTTP request a job makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpTarget {
    /// Where (checked against the private ranges when parsed).
    pub url: TargetUrl,
    /// With which method.
    pub method: HttpMethod,
    /// Extra headers.
    pub headers: Headers,
    /// The body, if any.
    pub body: Option<RequestBody>,
    /// How long one attempt may take.
    pub timeout: TimeoutMs,
}

/// Everything a user decides about a job, each part already valid. Two specs are equal
/// exactly when saving one over the other would change nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobSpec {
    /// Display name.
    pub name: JobName,
    /// The client's key, unique in the organization.
    pub key: Option<JobKey>,
    /// What to call.
    pub request: HttpTarget,
    /// When.
    pub schedule: Schedule,
    /// Retries of a failed run.
    pub retry: RetryPolicy,
    /// Overlapping runs.
    pub concurrency: ConcurrencyPolicy,
    /// Runs missed while Punctual was down.
    pub missed_runs: MissedRunPolicy,
    /// How late a missed run may be made up for (with `missed_runs: run_once`).
    pub catch_up_grace: CatchUpGrace,
    /// Whether it runs on its schedule.
    pub enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            JobName::parse("  nightly report ").unwrap().as_str(),
            "nightly report"
        );
        assert_eq!(
            JobName::parse("Ünïcødé ✓").unwrap().to_string(),
            "Ünïcødé ✓"
        );
        let longest = "é".repeat(JobName::MAX_LEN);
        assert!(JobName::parse(&longest).is_ok());
        for bad in [
            String::new(),
            "   ".to_owned(),
            "a".repeat(JobName::MAX_LEN + 1),
            "two\nlines".to_owned(),
            "tab\there".to_owned(),
            "nul\u{0}".to_owned(),
            "del\u{7f}".to_owned(),
        ] {
            assert_eq!(JobName::parse(&bad).unwrap_err().field(), "name", "{bad:?}");
        }
    }

    #[test]
    fn keys_are_url_safe_and_exact() {
        for good in [
            "a",
            "report-nightly",
            "A.b_C-9",
            &"k".repeat(JobKey::MAX_LEN),
        ] {
            assert_eq!(JobKey::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            String::new(),
            " key".to_owned(),
            "key ".to_owned(),
            "a/b".to_owned(),
            "a%2Fb".to_owned(),
            "clé".to_owned(),
            "a:b".to_owned(),
            "k".repeat(JobKey::MAX_LEN + 1),
        ] {
            assert_eq!(JobKey::parse(&bad).unwrap_err().field(), "key", "{bad:?}");
        }
    }

    #[test]
    fn body_cap_is_inclusive() {
        let exact = "x".repeat(RequestBody::MAX_BYTES);
        let body = RequestBody::parse(&exact).unwrap();
        assert_eq!(body.len(), RequestBody::MAX_BYTES);
        assert!(!body.is_empty());
        assert!(RequestBody::parse("").unwrap().is_empty());
        let over = format!("{exact}x");
        assert_eq!(
            RequestBody::parse(&over).unwrap_err().field(),
            "request.body"
        );
        // Bytes, not characters.
        let wide = "é".repeat(RequestBody::MAX_BYTES / 2 + 1);
        assert!(RequestBody::parse(&wide).is_err());
    }

    #[test]
    fn a_plans_body_cap_applies_up_to_the_ceiling() {
        assert_eq!(RequestBody::parse_within("abcd", 4).unwrap().len(), 4);
        let over = RequestBody::parse_within("abcde", 4).unwrap_err();
        assert_eq!(over.field(), "request.body");
        assert!(over.to_string().contains("at most 4 bytes"), "{over}");
        // A cap above the ceiling is the ceiling.
        let past = "x".repeat(RequestBody::MAX_BYTES + 1);
        assert!(RequestBody::parse_within(&past, usize::MAX).is_err());
    }

    #[test]
    fn catch_up_grace_bounds() {
        assert_eq!(CatchUpGrace::default().seconds(), 3_600);
        assert_eq!(CatchUpGrace::default().millis(), 3_600_000);
        assert_eq!(
            CatchUpGrace::from_seconds(1).unwrap().as_duration(),
            Duration::from_secs(1)
        );
        assert!(CatchUpGrace::from_seconds(CatchUpGrace::MAX_SECONDS).is_ok());
        for bad in [0, CatchUpGrace::MAX_SECONDS + 1, u64::MAX] {
            assert_eq!(
                CatchUpGrace::from_seconds(bad).unwrap_err().field(),
                "catch_up_grace_seconds"
            );
        }
        assert_eq!(CatchUpGrace::from_millis(60_000).unwrap().seconds(), 60);
        assert!(CatchUpGrace::from_millis(1_500).is_err());
        assert!(CatchUpGrace::from_millis(0).is_err());
    }

    #[test]
    fn names_keys_and_bodies_serialize_as_strings() {
        assert_eq!(
            serde_json::to_string(&JobName::parse("n").unwrap()).unwrap(),
            "\"n\""
        );
        assert_eq!(
            serde_json::to_string(&JobKey::parse("k").unwrap()).unwrap(),
            "\"k\""
        );
        assert_eq!(
            serde_json::to_string(&RequestBody::parse("{}").unwrap()).unwrap(),
            "\"{}\""
        );
    }
}
