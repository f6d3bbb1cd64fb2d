//! The vocabulary of executions (one attempt to run a job): their status and what
//! started them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Where an execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Created, waiting to be picked up.
    Pending,
    /// The request is in flight.
    Running,
    /// Answered with a 2xx status.
    Success,
    /// Answered with another status, or the request could not be made.
    Failed,
    /// No answer within the job's timeout.
    Timeout,
    /// Not run (e.g. the concurrency policy forbade it).
    Skipped,
    /// Stopped before it finished (e.g. replaced by a newer run).
    Canceled,
}

impl ExecutionStatus {
    /// Every status.
    pub const ALL: [ExecutionStatus; 7] = [
        Self::Pending,
        Self::Running,
        Self::Success,
        Self::Failed,
        Self::Timeout,
        Self::Skipped,
        Self::Canceled,
    ];

    /// The wire name, e.g. `timeout`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::Skipped => "skipped",
            Self::Canceled => "canceled",
        }
    }

    /// Whether the execution is over: every status but `pending` and `running`.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionStatus {
    type Err = DomainError;

    /// Parses the exact wire name; errors name the field `status`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid(
                    "status",
                    "must be one of pending, running, success, failed, timeout, skipped, canceled",
                )
            })
    }
}

/// What created an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionTrigger {
    /// The job's schedule fell due.
    Schedule,
    /// Someone asked for a run now (`POST .../trigger`).
    Manual,
    /// A previous attempt failed and the retry policy allows another.
    Retry,
    /// Catching up on runs missed while Punctual was down (`missed_runs: run_once`).
    CatchUp,
}

impl ExecutionTrigger {
    /// Every trigger.
    pub const ALL: [ExecutionTrigger; 4] =
        [Self::Schedule, Self::Manual, Self::Retry, Self::CatchUp];

    /// The wire name: `schedule`, `manual`, `retry` or `catch_up`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual => "manual",
            Self::Retry => "retry",
            Self::CatchUp => "catch_up",
        }
    }
}

impl fmt::Display for ExecutionTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionTrigger {
    type Err = DomainError;

    /// Parses the exact wire name; errors name the field `trigger`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|trigger| trigger.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid(
                    "trigger",
                    "must be one of schedule, manual, retry, catch_up",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for status in ExecutionStatus::ALL {
            assert_eq!(status.as_str().parse::<ExecutionStatus>().unwrap(), status);
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
            assert_eq!(
                serde_json::from_str::<ExecutionStatus>(&format!("\"{status}\"")).unwrap(),
                status
            );
        }
        for bad in ["", "Success", "cancelled", "done"] {
            assert_eq!(
                bad.parse::<ExecutionStatus>().unwrap_err().field(),
                "status"
            );
        }
    }

    #[test]
    fn only_pending_and_running_are_not_terminal() {
        use ExecutionStatus::*;
        for (status, terminal) in [
            (Pending, false),
            (Running, false),
            (Success, true),
            (Failed, true),
            (Timeout, true),
            (Skipped, true),
            (Canceled, true),
        ] {
            assert_eq!(status.is_terminal(), terminal, "{status}");
        }
    }

    #[test]
    fn trigger_names_round_trip() {
        for trigger in ExecutionTrigger::ALL {
            assert_eq!(
                trigger.as_str().parse::<ExecutionTrigger>().unwrap(),
                trigger
            );
            assert_eq!(
                serde_json::to_string(&trigger).unwrap(),
                format!("\"{trigger}\"")
            );
        }
        assert_eq!(
            serde_json::from_str::<ExecutionTrigger>("\"catch_up\"").unwrap(),
            ExecutionTrigger::CatchUp
        );
        for bad in ["", "catchup", "catch-up", "cron"] {
            assert_eq!(
                bad.parse::<ExecutionTrigger>().unwrap_err().field(),
                "trigger"
            );
        }
    }
}
