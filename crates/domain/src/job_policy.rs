//! How a job behaves beyond its request and schedule: retries, request timeout,
//! overlapping runs and runs missed while Punctual was down.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

// ------------------------------------------------------------------------------------
// Retries

/// When and how often a failed execution is tried again.
///
/// Fields are private so that every value is valid; read them with the methods of the
/// same names. Serialized as `{"max_attempts", "min_backoff_ms", "max_backoff_ms"}`;
/// deserializing checks the same rules as [`RetryPolicy::new`] and fills missing fields
/// from [`RetryPolicy::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RetryPolicyFields")]
pub struct RetryPolicy {
    max_attempts: u32,
    min_backoff_ms: u64,
    max_backoff_ms: u64,
}

impl RetryPolicy {
    /// Most attempts (the first one included) an execution may get.
    pub const MAX_ATTEMPTS: u32 = 20;
    /// Shortest allowed backoff, in milliseconds.
    pub const MIN_BACKOFF_FLOOR_MS: u64 = 100;
    /// Longest allowed backoff, in milliseconds (one day).
    pub const MAX_BACKOFF_CEILING_MS: u64 = 86_400_000;

    /// Checks and builds a policy:
    /// `max_attempts` 1..=20 (`retry.max_attempts`; 1 means no retry),
    /// `min_backoff_ms` 100..=86 400 000 (`retry.min_backoff_ms`),
    /// `max_backoff_ms` from `min_backoff_ms` to 86 400 000 (`retry.max_backoff_ms`).
    pub fn new(
        max_attempts: u32,
        min_backoff_ms: u64,
        max_backoff_ms: u64,
    ) -> Result<Self, DomainError> {
        check_max_attempts(max_attempts)?;
        check_min_backoff(min_backoff_ms)?;
        check_max_backoff(min_backoff_ms, max_backoff_ms)?;
        Ok(Self {
            max_attempts,
            min_backoff_ms,
            max_backoff_ms,
        })
    }

    /// Like [`RetryPolicy::new`], but reports every bad field instead of the first one
    /// (for a 422 that lists them all). `max_backoff_ms` is only judged against a valid
    /// `min_backoff_ms`.
    pub fn new_reporting_all(
        max_attempts: u32,
        min_backoff_ms: u64,
        max_backoff_ms: u64,
    ) -> Result<Self, Vec<DomainError>> {
        let mut errors: Vec<DomainError> = [
            check_max_attempts(max_attempts).err(),
            check_min_backoff(min_backoff_ms).err(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if errors.iter().all(|e| e.field() != "retry.min_backoff_ms") {
            errors.extend(check_max_backoff(min_backoff_ms, max_backoff_ms).err());
        }
        if errors.is_empty() {
            Ok(Self {
                max_attempts,
                min_backoff_ms,
                max_backoff_ms,
            })
        } else {
            Err(errors)
        }
    }

    /// Attempts an execution may get in all, the first one included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The shortest wait before a retry, in milliseconds.
    pub fn min_backoff_ms(&self) -> u64 {
        self.min_backoff_ms
    }

    /// The longest wait before a retry, in milliseconds.
    pub fn max_backoff_ms(&self) -> u64 {
        self.max_backoff_ms
    }

    /// Whether an execution that has made `attempts_made` attempts, all failed, may
    /// make another.
    pub fn allows_another_attempt(&self, attempts_made: u32) -> bool {
        attempts_made < self.max_attempts
    }

    /// How long to wait after attempt number `failed_attempt` (1 for the first attempt)
    /// failed, before the next one: exponential backoff with jitter over the whole
    /// window above the minimum.
    ///
    /// ```text
    /// cap     = min(max_backoff, min_backoff * 2^failed_attempt)
    /// backoff = min_backoff + floor(jitter * (cap - min_backoff))     in milliseconds
    /// ```
    ///
    /// Even the first retry is spread (over `[min, 2·min)`), so jobs that fail together
    /// (one dead target, many jobs on the same cron instant) do not retry together.
    /// `jitter` is a random number in `[0, 1)` supplied by the caller (this crate has no
    /// randomness); values outside are clamped to `[0, 1]` and NaN counts as 0. So the
    /// result always lies in `[min_backoff, cap]`. `failed_attempt` 0 counts as 1, and the
    /// arithmetic saturates: any attempt number up to `u32::MAX` is fine.
    pub fn backoff(&self, failed_attempt: u32, jitter: f64) -> Duration {
        let exponent = failed_attempt.max(1);
        let factor = 1u64.checked_shl(exponent).unwrap_or(u64::MAX);
        let cap = self
            .min_backoff_ms
            .saturating_mul(factor)
            .min(self.max_backoff_ms);
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        let window = cap.saturating_sub(self.min_backoff_ms);
        // `window` is at most one day in ms, exactly representable in an f64; the float
        // to integer cast truncates toward zero (floor, for non-negative values).
        let jittered = (jitter * window as f64) as u64;
        Duration::from_millis(self.min_backoff_ms + jittered.min(window))
    }
}

fn check_max_attempts(max_attempts: u32) -> Result<(), DomainError> {
    if (1..=RetryPolicy::MAX_ATTEMPTS).contains(&max_attempts) {
        return Ok(());
    }
    Err(DomainError::invalid(
        "retry.max_attempts",
        format!(
            "must be between 1 and {} (got {max_attempts})",
            RetryPolicy::MAX_ATTEMPTS
        ),
    ))
}

fn check_min_backoff(min_backoff_ms: u64) -> Result<(), DomainError> {
    if (RetryPolicy::MIN_BACKOFF_FLOOR_MS..=RetryPolicy::MAX_BACKOFF_CEILING_MS)
        .contains(&min_backoff_ms)
    {
        return Ok(());
    }
    Err(DomainError::invalid(
        "retry.min_backoff_ms",
        format!(
            "must be between {} and {} milliseconds (got {min_backoff_ms})",
            RetryPolicy::MIN_BACKOFF_FLOOR_MS,
            RetryPolicy::MAX_BACKOFF_CEILING_MS
        ),
    ))
}

fn check_max_backoff(min_backoff_ms: u64, max_backoff_ms: u64) -> Result<(), DomainError> {
    if (min_backoff_ms..=RetryPolicy::MAX_BACKOFF_CEILING_MS).contains(&max_backoff_ms) {
        return Ok(());
    }
    Err(DomainError::invalid(
        "retry.max_backoff_ms",
        format!(
            "must be between min_backoff_ms ({min_backoff_ms}) and {} milliseconds \
             (got {max_backoff_ms})",
            RetryPolicy::MAX_BACKOFF_CEILING_MS
        ),
    ))
}

impl Default for RetryPolicy {
    /// 3 attempts, backoff between 5 s and 1 h.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            min_backoff_ms: 5_000,
            max_backoff_ms: 3_600_000,
        }
    }
}

/// The wire form of [`RetryPolicy`], checked on the way in.
#[derive(Deserialize)]
#[serde(default)]
struct RetryPolicyFields {
    max_attempts: u32,
    min_backoff_ms: u64,
    max_backoff_ms: u64,
}

impl Default for RetryPolicyFields {
    fn default() -> Self {
        let policy = RetryPolicy::default();
        Self {
            max_attempts: policy.max_attempts,
            min_backoff_ms: policy.min_backoff_ms,
            max_backoff_ms: policy.max_backoff_ms,
        }
    }
}

impl TryFrom<RetryPolicyFields> for RetryPolicy {
    type Error = DomainError;

    fn try_from(fields: RetryPolicyFields) -> Result<Self, Self::Error> {
        Self::new(
            fields.max_attempts,
            fields.min_backoff_ms,
            fields.max_backoff_ms,
        )
    }
}

// ------------------------------------------------------------------------------------
// Timeout

/// The ceiling of a request timeout, in milliseconds (5 minutes). Plans may set a lower
/// one; that is checked where plans are known.
pub const MAX_TIMEOUT_MS: u64 = 300_000;

/// How long one HTTP attempt may take, in milliseconds: 1 to [`MAX_TIMEOUT_MS`].
/// Serialized as a plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct TimeoutMs(u64);

impl TimeoutMs {
    /// The timeout of a job that does not choose one: 30 s.
    pub const DEFAULT: TimeoutMs = TimeoutMs(30_000);

    /// Checks a timeout; errors name the field `request.timeout_ms`.
    pub fn new(ms: u64) -> Result<Self, DomainError> {
        if (1..=MAX_TIMEOUT_MS).contains(&ms) {
            Ok(Self(ms))
        } else {
            Err(DomainError::invalid(
                "request.timeout_ms",
                format!("must be between 1 and {MAX_TIMEOUT_MS} milliseconds (got {ms})"),
            ))
        }
    }

    /// The timeout in milliseconds.
    pub fn get(&self) -> u64 {
        self.0
    }

    /// The timeout as a [`Duration`].
    pub fn as_duration(&self) -> Duration {
        Duration::from_millis(self.0)
    }
}

impl Default for TimeoutMs {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u64> for TimeoutMs {
    type Error = DomainError;

    fn try_from(ms: u64) -> Result<Self, Self::Error> {
        Self::new(ms)
    }
}

impl From<TimeoutMs> for u64 {
    fn from(timeout: TimeoutMs) -> Self {
        timeout.0
    }
}

// ------------------------------------------------------------------------------------
// Concurrency and missed runs

/// What happens when a run is due while the previous one is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrencyPolicy {
    /// Start it anyway; runs may overlap.
    #[default]
    Allow,
    /// Record it as skipped while another run is in progress.
    Forbid,
    /// Cancel the running one and start the new one.
    Replace,
}

impl ConcurrencyPolicy {
    /// Every policy.
    pub const ALL: [ConcurrencyPolicy; 3] = [Self::Allow, Self::Forbid, Self::Replace];

    /// The wire name: `allow`, `forbid` or `replace`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Forbid => "forbid",
            Self::Replace => "replace",
        }
    }
}

impl fmt::Display for ConcurrencyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConcurrencyPolicy {
    type Err = DomainError;

    /// Parses the exact wire name; errors name the field `concurrency`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|policy| policy.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid("concurrency", "must be one of allow, forbid, replace")
            })
    }
}

/// What happens to runs that fell due while Punctual was not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedRunPolicy {
    /// Forget them; continue with the next future run.
    #[default]
    Skip,
    /// Run once to catch up (within a grace window), however many were missed.
    RunOnce,
}

impl MissedRunPolicy {
    /// Every policy.
    pub const ALL: [MissedRunPolicy; 2] = [Self::Skip, Self::RunOnce];

    /// The wire name: `skip` or `run_once`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::RunOnce => "run_once",
        }
    }
}

impl fmt::Display for MissedRunPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MissedRunPolicy {
    type Err = DomainError;

    /// Parses the exact wire name; errors name the field `missed_runs`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|policy| policy.as_str() == s)
            .ok_or_else(|| DomainError::invalid("missed_runs", "must be one of skip, run_once"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ------------------------------------------------------------------ retry

    #[test]
    fn retry_policy_accepts_the_edges() {
        for (attempts, min, max) in [
            (1, 100, 100),
            (20, 100, 86_400_000),
            (3, 86_400_000, 86_400_000),
            (5, 1_000, 60_000),
        ] {
            let policy = RetryPolicy::new(attempts, min, max).unwrap();
            assert_eq!(
                (
                    policy.max_attempts(),
                    policy.min_backoff_ms(),
                    policy.max_backoff_ms()
                ),
                (attempts, min, max)
            );
        }
    }

    #[test]
    fn retry_policy_rejections_name_their_field() {
        for (attempts, min, max, field) in [
            (0, 5_000, 60_000, "retry.max_attempts"),
            (21, 5_000, 60_000, "retry.max_attempts"),
            (u32::MAX, 5_000, 60_000, "retry.max_attempts"),
            (3, 99, 60_000, "retry.min_backoff_ms"),
            (3, 0, 60_000, "retry.min_backoff_ms"),
            (3, 86_400_001, 86_400_001, "retry.min_backoff_ms"),
            (3, 5_000, 4_999, "retry.max_backoff_ms"),
            (3, 5_000, 86_400_001, "retry.max_backoff_ms"),
            (3, 5_000, u64::MAX, "retry.max_backoff_ms"),
        ] {
            let error = RetryPolicy::new(attempts, min, max).unwrap_err();
            assert_eq!(error.field(), field, "{attempts} {min} {max}");
        }
    }

    #[test]
    fn retry_policy_can_report_every_bad_field() {
        let fields = |a, min, max| -> Vec<String> {
            RetryPolicy::new_reporting_all(a, min, max)
                .unwrap_err()
                .iter()
                .map(|e| e.field().to_owned())
                .collect()
        };
        assert_eq!(
            fields(0, 5_000, 1_000),
            ["retry.max_attempts", "retry.max_backoff_ms"]
        );
        assert_eq!(
            fields(0, 1, 1),
            ["retry.max_attempts", "retry.min_backoff_ms"]
        );
        assert_eq!(fields(3, 5_000, 4_999), ["retry.max_backoff_ms"]);
        assert_eq!(
            RetryPolicy::new_reporting_all(3, 5_000, 3_600_000).unwrap(),
            RetryPolicy::default()
        );
    }

    #[test]
    fn retry_policy_default() {
        let policy = RetryPolicy::default();
        assert_eq!(policy, RetryPolicy::new(3, 5_000, 3_600_000).unwrap());
        assert!(policy.allows_another_attempt(1));
        assert!(policy.allows_another_attempt(2));
        assert!(!policy.allows_another_attempt(3));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_above_the_minimum() {
        let policy = RetryPolicy::new(10, 1_000, 10_000).unwrap();
        let ms = |attempt, jitter| policy.backoff(attempt, jitter).as_millis();
        // Full jitter: the cap, which doubles per attempt from twice the minimum.
        assert_eq!(ms(1, 1.0), 2_000);
        assert_eq!(ms(2, 1.0), 4_000);
        assert_eq!(ms(3, 1.0), 8_000);
        assert_eq!(ms(4, 1.0), 10_000);
        assert_eq!(ms(50, 1.0), 10_000);
        // Just below 1: floor of the window above the minimum.
        assert_eq!(ms(2, 0.999_999), 3_999);
        // Half jitter: halfway between the minimum and the cap.
        assert_eq!(ms(1, 0.5), 1_500);
        assert_eq!(ms(2, 0.5), 2_500);
        assert_eq!(ms(6, 0.5), 5_500);
        // No jitter: the minimum.
        assert_eq!(ms(1, 0.0), 1_000);
        assert_eq!(ms(9, 0.0), 1_000);
    }

    /// Jobs failing together retry apart, from the first retry on.
    #[test]
    fn the_first_retry_is_spread_too() {
        let policy = RetryPolicy::new(3, 5_000, 3_600_000).unwrap();
        assert!(policy.backoff(1, 0.0) < policy.backoff(1, 0.9));
        assert!(policy.backoff(1, 0.9) < Duration::from_millis(10_000));
    }

    #[test]
    fn backoff_is_always_between_min_and_max() {
        let policy = RetryPolicy::new(20, 100, 86_400_000).unwrap();
        for attempt in [0, 1, 2, 10, 27, 28, 40, 63, 64, 65, 1_000, u32::MAX] {
            for jitter in [
                0.0,
                0.25,
                0.5,
                0.999,
                1.0,
                -1.0,
                7.5,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ] {
                let wait = policy.backoff(attempt, jitter).as_millis();
                assert!(
                    (100..=86_400_000).contains(&wait),
                    "attempt {attempt} jitter {jitter}: {wait}"
                );
            }
        }
        assert_eq!(policy.backoff(u32::MAX, 1.0).as_millis(), 86_400_000);
        assert_eq!(policy.backoff(0, 1.0), policy.backoff(1, 1.0));
        assert_eq!(policy.backoff(1, f64::NAN).as_millis(), 100);
    }

    #[test]
    fn retry_policy_serde_validates_and_defaults() {
        let policy: RetryPolicy = serde_json::from_str(
            r#"{"max_attempts":5,"min_backoff_ms":1000,"max_backoff_ms":60000}"#,
        )
        .unwrap();
        assert_eq!(policy, RetryPolicy::new(5, 1_000, 60_000).unwrap());
        assert_eq!(
            serde_json::to_value(policy).unwrap(),
            serde_json::json!({"max_attempts": 5, "min_backoff_ms": 1000, "max_backoff_ms": 60000})
        );
        let partial: RetryPolicy = serde_json::from_str(r#"{"max_attempts":1}"#).unwrap();
        assert_eq!(partial, RetryPolicy::new(1, 5_000, 3_600_000).unwrap());
        assert!(serde_json::from_str::<RetryPolicy>(r#"{"max_attempts":0}"#).is_err());
        assert!(serde_json::from_str::<RetryPolicy>(
            r#"{"min_backoff_ms":5000,"max_backoff_ms":10}"#
        )
        .is_err());
    }

    // ------------------------------------------------------------------ timeout

    #[test]
    fn timeout_bounds() {
        assert_eq!(TimeoutMs::new(1).unwrap().get(), 1);
        assert_eq!(
            TimeoutMs::new(MAX_TIMEOUT_MS).unwrap().as_duration(),
            Duration::from_secs(300)
        );
        for bad in [0, MAX_TIMEOUT_MS + 1, u64::MAX] {
            assert_eq!(
                TimeoutMs::new(bad).unwrap_err().field(),
                "request.timeout_ms",
                "{bad}"
            );
        }
        assert_eq!(TimeoutMs::default().get(), 30_000);
    }

    #[test]
    fn timeout_serde_is_a_number() {
        let timeout: TimeoutMs = serde_json::from_str("30000").unwrap();
        assert_eq!(timeout.get(), 30_000);
        assert_eq!(serde_json::to_string(&timeout).unwrap(), "30000");
        assert!(serde_json::from_str::<TimeoutMs>("0").is_err());
        assert!(serde_json::from_str::<TimeoutMs>("300001").is_err());
    }

    // ------------------------------------------------------------------ enums

    #[test]
    fn concurrency_names_round_trip() {
        for policy in ConcurrencyPolicy::ALL {
            assert_eq!(
                policy.as_str().parse::<ConcurrencyPolicy>().unwrap(),
                policy
            );
            assert_eq!(
                serde_json::to_string(&policy).unwrap(),
                format!("\"{policy}\"")
            );
            assert_eq!(
                serde_json::from_str::<ConcurrencyPolicy>(&format!("\"{policy}\"")).unwrap(),
                policy
            );
        }
        assert_eq!(ConcurrencyPolicy::default(), ConcurrencyPolicy::Allow);
        for bad in ["", "Allow", "queue", "forbid "] {
            assert_eq!(
                bad.parse::<ConcurrencyPolicy>().unwrap_err().field(),
                "concurrency"
            );
        }
    }

    #[test]
    fn missed_run_names_round_trip() {
        for policy in MissedRunPolicy::ALL {
            assert_eq!(policy.as_str().parse::<MissedRunPolicy>().unwrap(), policy);
            assert_eq!(
                serde_json::to_string(&policy).unwrap(),
                format!("\"{policy}\"")
            );
        }
        assert_eq!(MissedRunPolicy::RunOnce.as_str(), "run_once");
        assert_eq!(MissedRunPolicy::default(), MissedRunPolicy::Skip);
        for bad in ["", "runOnce", "run-once", "all"] {
            assert_eq!(
                bad.parse::<MissedRunPolicy>().unwrap_err().field(),
                "missed_runs"
            );
        }
    }
}
