//! Punctual's domain: the types and rules of a multi-tenant HTTP job scheduler, pure
//! (no I/O, no async, no database).
//!
//! Values are parsed once, at the edge, into types that can only hold valid values
//! ([`Slug`], [`Email`], [`CronSchedule`], [`Timezone`], [`TargetUrl`], [`Headers`],
//! [`RetryPolicy`], ...); every parse error is a [`DomainError`] naming the JSON field
//! the user got wrong (`schedule.cron`, `request.headers.X-Foo`, ...). A whole job is a
//! [`JobSpec`] made of such parts.
//!
//! The one function that decides when a job runs is [`Schedule::next_after`]:
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use punctual_domain::Schedule;
//!
//! let schedule = Schedule::parse_cron("30 2 * * *", "Europe/Oslo")?;
//! // Oslo springs forward on 2026-03-29: 02:30 does not exist that day, so it is skipped.
//! let after = Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap();
//! let runs = schedule.upcoming(after, 3);
//! for run in &runs {
//!     println!("{run}");
//! }
//! assert_eq!(runs[0].to_rfc3339(), "2026-03-28T01:30:00+00:00"); // 02:30 CET
//! assert_eq!(runs[1].to_rfc3339(), "2026-03-30T00:30:00+00:00"); // 02:30 CEST
//! # Ok::<(), punctual_domain::DomainError>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod email;
mod error;
mod execution;
mod http_target;
mod job;
mod job_policy;
mod plan;
mod role;
mod schedule;
pub mod signing_secret;
mod slug;

pub use email::Email;
pub use error::{DomainError, FieldError};
pub use execution::{ExecutionStatus, ExecutionTrigger};
pub use http_target::{is_blocked_ip, Headers, HttpMethod, TargetUrl};
pub use job::{CatchUpGrace, HttpTarget, JobKey, JobName, JobSpec, RequestBody};
pub use job_policy::{ConcurrencyPolicy, MissedRunPolicy, RetryPolicy, TimeoutMs, MAX_TIMEOUT_MS};
pub use plan::{limits_for, PlanLimits, UsagePeriod, FALLBACK_PLAN};
pub use role::Role;
pub use schedule::{CronSchedule, Schedule, Timezone, MIN_INTERVAL_SAMPLE};
pub use slug::Slug;
