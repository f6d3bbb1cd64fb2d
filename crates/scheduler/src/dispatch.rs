//! Turning a due job into its occurrence: run it, record it skipped (missed after
//! downtime, or `forbid` while one runs), or catch it up once within the grace
//! window; and find the job's next occurrence.

use chrono::{DateTime, Duration, Utc};
use punctual_domain::{ConcurrencyPolicy, MissedRunPolicy, Schedule};
use punctual_persistence::engine::NewExecution;
use punctual_persistence::entities::job;

/// How many occurrences inside a catch-up window are looked at to find the latest.
const CATCH_UP_SCAN_LIMIT: usize = 100_000;

/// The schedule stored in a job row.
pub fn schedule_of(job: &job::Model) -> Result<Schedule, String> {
    match job.schedule_kind.as_str() {
        "cron" => Schedule::parse_cron(
            job.cron.as_deref().unwrap_or_default(),
            job.timezone.as_deref().unwrap_or("UTC"),
        )
        .map_err(|e| e.to_string()),
        "once" => job
            .run_at
            .map(|at| Schedule::Once { at })
            .ok_or_else(|| "a once-job without a time".to_owned()),
        other => Err(format!("unknown schedule kind {other}")),
    }
}

/// What to do with one due job.
#[derive(Debug, Clone)]
pub struct OccurrencePlan {
    /// The execution row to write (pending or skipped).
    pub execution: NewExecution,
    /// The job's next `next_run_at`.
    pub next_run_at: Option<DateTime<Utc>>,
    /// The job is finished (a once-job whose occurrence is recorded skipped).
    pub completes_job: bool,
    /// Cancel the job's unfinished executions first (`replace`).
    pub replace_running: bool,
}

/// Decides the occurrence of `job`, due at `due`, seen at `now`.
/// `has_unfinished`: whether an execution of this job is pending or running.
pub fn plan_occurrence(
    job: &job::Model,
    schedule: &Schedule,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    missed_tolerance: Duration,
    has_unfinished: bool,
) -> OccurrencePlan {
    let following = schedule.next_after(due);
    // Only lateness beyond the tolerance counts as missed (downtime). A busy
    // dispatcher a few seconds behind a per-second job must still deliver every
    // occurrence, one after the other, rather than skip ahead.
    let missed = now - due > missed_tolerance;
    let once = matches!(schedule, Schedule::Once { .. });
    let base = NewExecution {
        job_id: job.id,
        organization_id: job.organization_id,
        scheduled_for: due,
        attempt: 1,
        trigger: "schedule",
        status: "pending",
        run_after: due,
        error: None,
    };
    let (mut execution, next_run_at) = if !missed {
        (base, following)
    } else {
        let next = schedule.next_after(now);
        let policy = job
            .missed_runs
            .parse::<MissedRunPolicy>()
            .unwrap_or(MissedRunPolicy::Skip);
        let grace = Duration::milliseconds(job.catch_up_grace_ms.max(0));
        let catch_up = match policy {
            MissedRunPolicy::RunOnce => latest_occurrence_within(schedule, due, now, grace),
            MissedRunPolicy::Skip => None,
        };
        match catch_up {
            Some(at) => (
                NewExecution {
                    scheduled_for: at,
                    run_after: now,
                    trigger: "catch_up",
                    ..base
                },
                next,
            ),
            None => (
                NewExecution {
                    status: "skipped",
                    error: Some(format!(
                        "missed: due at {} but the scheduler only reached it at {}",
                        due.to_rfc3339(),
                        now.to_rfc3339()
                    )),
                    ..base
                },
                next,
            ),
        }
    };
    let concurrency = job
        .concurrency
        .parse::<ConcurrencyPolicy>()
        .unwrap_or(ConcurrencyPolicy::Allow);
    let mut replace_running = false;
    if execution.status == "pending" && has_unfinished {
        match concurrency {
            ConcurrencyPolicy::Forbid => {
                execution.status = "skipped";
                execution.error = Some("skipped: the previous run is still in progress".to_owned());
            }
            ConcurrencyPolicy::Replace => replace_running = true,
            ConcurrencyPolicy::Allow => {}
        }
    }
    let next_run_at = if once { None } else { next_run_at };
    OccurrencePlan {
        completes_job: once && execution.status == "skipped",
        execution,
        next_run_at,
        replace_running,
    }
}

/// The latest occurrence in `[now - grace, now]` that is not before `due`.
///
/// Found backwards: the first occurrence after `now - 1 s`, `now - 2 s`,
/// `now - 4 s`, … until one is at or before `now`, then forward from there to
/// the last. Walking forward from the window's start instead took one step per
/// occurrence: for a per-second job with a week of grace, more steps than the
/// scan allowed, inside the dispatch transaction, and an answer days old.
fn latest_occurrence_within(
    schedule: &Schedule,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: Duration,
) -> Option<DateTime<Utc>> {
    let floor = due.max(now - grace);
    if floor > now {
        return None;
    }
    let first_from = |from: DateTime<Utc>| {
        if from == due {
            Some(due)
        } else {
            schedule.next_after(from - Duration::milliseconds(1))
        }
    };
    let mut back = Duration::seconds(1);
    loop {
        let from = (now - back).max(floor);
        if let Some(first) = first_from(from).filter(|at| *at <= now) {
            let mut latest = first;
            for _ in 0..CATCH_UP_SCAN_LIMIT {
                match schedule.next_after(latest) {
                    Some(next) if next <= now => latest = next,
                    _ => break,
                }
            }
            return Some(latest);
        }
        if from == floor {
            return None;
        }
        back = back + back;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn job(missed_runs: &str, concurrency: &str) -> job::Model {
        let now = Utc::now();
        job::Model {
            id: uuid::Uuid::now_v7(),
            organization_id: uuid::Uuid::now_v7(),
            key: None,
            name: "t".into(),
            url: "http://127.0.0.1/".into(),
            method: "GET".into(),
            headers: "{}".into(),
            body: None,
            timeout_ms: 1000,
            schedule_kind: "cron".into(),
            cron: Some("* * * * *".into()),
            timezone: Some("UTC".into()),
            run_at: None,
            retry_max_attempts: 1,
            retry_min_backoff_ms: 1000,
            retry_max_backoff_ms: 1000,
            concurrency: concurrency.into(),
            missed_runs: missed_runs.into(),
            catch_up_grace_ms: 3_600_000,
            enabled: true,
            next_run_at: None,
            consecutive_failures: 0,
            disabled_reason: None,
            completed_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn on_time_occurrence_runs_and_advances() {
        let j = job("skip", "allow");
        let s = schedule_of(&j).unwrap();
        let plan = plan_occurrence(
            &j,
            &s,
            at("2026-01-01T10:00:00Z"),
            at("2026-01-01T10:00:00.2Z"),
            Duration::seconds(60),
            false,
        );
        assert_eq!(plan.execution.status, "pending");
        assert_eq!(plan.next_run_at, Some(at("2026-01-01T10:01:00Z")));
    }

    #[test]
    fn a_few_seconds_behind_a_per_second_job_still_runs_every_occurrence() {
        let mut j = job("skip", "allow");
        j.cron = Some("* * * * * *".into());
        let s = schedule_of(&j).unwrap();
        let plan = plan_occurrence(
            &j,
            &s,
            at("2026-01-01T10:00:00Z"),
            at("2026-01-01T10:00:05Z"),
            Duration::seconds(60),
            false,
        );
        assert_eq!(plan.execution.status, "pending");
        assert_eq!(plan.execution.scheduled_for, at("2026-01-01T10:00:00Z"));
        assert_eq!(
            plan.next_run_at,
            Some(at("2026-01-01T10:00:01Z")),
            "the next occurrence, not a jump to now"
        );
    }

    #[test]
    fn downtime_with_skip_records_one_skipped_and_moves_to_the_future() {
        let j = job("skip", "allow");
        let s = schedule_of(&j).unwrap();
        let plan = plan_occurrence(
            &j,
            &s,
            at("2026-01-01T10:00:00Z"),
            at("2026-01-01T11:30:30Z"),
            Duration::seconds(60),
            false,
        );
        assert_eq!(plan.execution.status, "skipped");
        assert_eq!(plan.next_run_at, Some(at("2026-01-01T11:31:00Z")));
    }

    #[test]
    fn downtime_with_run_once_catches_up_the_latest_within_grace() {
        let mut j = job("run_once", "allow");
        j.catch_up_grace_ms = 10 * 60 * 1000;
        let s = schedule_of(&j).unwrap();
        let plan = plan_occurrence(
            &j,
            &s,
            at("2026-01-01T10:00:00Z"),
            at("2026-01-01T11:30:30Z"),
            Duration::seconds(60),
            false,
        );
        assert_eq!(plan.execution.status, "pending");
        assert_eq!(plan.execution.trigger, "catch_up");
        assert_eq!(plan.execution.scheduled_for, at("2026-01-01T11:30:00Z"));
        assert_eq!(plan.next_run_at, Some(at("2026-01-01T11:31:00Z")));
    }

    /// A per-second job back after two days, with a week of grace, catches up
    /// the occurrence of the last second, not one a day and a half old.
    #[test]
    fn run_once_catches_up_the_very_latest_of_a_per_second_job() {
        let mut j = job("run_once", "allow");
        j.cron = Some("* * * * * *".into());
        j.catch_up_grace_ms = 7 * 24 * 3_600_000;
        let s = schedule_of(&j).unwrap();
        let now = at("2026-01-03T10:00:00.400Z");
        let plan = plan_occurrence(
            &j,
            &s,
            at("2026-01-01T10:00:00Z"),
            now,
            Duration::seconds(60),
            false,
        );
        assert_eq!(plan.execution.trigger, "catch_up");
        assert_eq!(plan.execution.scheduled_for, at("2026-01-03T10:00:00Z"));
        assert_eq!(plan.next_run_at, Some(at("2026-01-03T10:00:01Z")));
        // A sparse schedule: the latest within the window, or none before it.
        let hourly = Schedule::parse_cron("0 0 * * * *", "UTC").unwrap();
        let due = at("2026-01-01T10:00:00Z");
        let week = Duration::days(7);
        assert_eq!(
            latest_occurrence_within(&hourly, due, now, week),
            Some(at("2026-01-03T10:00:00Z"))
        );
        assert_eq!(
            latest_occurrence_within(&hourly, due, at("2026-01-03T09:59:59Z"), week),
            Some(at("2026-01-03T09:00:00Z"))
        );
        assert_eq!(
            latest_occurrence_within(
                &hourly,
                due,
                at("2026-01-03T10:30:00Z"),
                Duration::minutes(20)
            ),
            None
        );
        assert_eq!(latest_occurrence_within(&hourly, due, due, week), Some(due));
    }

    #[test]
    fn run_once_outside_the_grace_window_is_skipped() {
        let mut j = job("run_once", "allow");
        j.schedule_kind = "once".into();
        j.run_at = Some(at("2026-01-01T10:00:00Z"));
        j.catch_up_grace_ms = 60_000;
        let s = schedule_of(&j).unwrap();
        let plan = plan_occurrence(
            &j,
            &s,
            at("2026-01-01T10:00:00Z"),
            at("2026-01-01T12:00:00Z"),
            Duration::seconds(60),
            false,
        );
        assert_eq!(plan.execution.status, "skipped");
        assert!(plan.completes_job);
        assert_eq!(plan.next_run_at, None);
    }

    #[test]
    fn forbid_skips_while_one_runs_and_replace_cancels() {
        let due = at("2026-01-01T10:00:00Z");
        let forbid = job("skip", "forbid");
        let s = schedule_of(&forbid).unwrap();
        let plan = plan_occurrence(&forbid, &s, due, due, Duration::seconds(60), true);
        assert_eq!(plan.execution.status, "skipped");
        let replace = job("skip", "replace");
        let plan = plan_occurrence(&replace, &s, due, due, Duration::seconds(60), true);
        assert_eq!(plan.execution.status, "pending");
        assert!(plan.replace_running);
        let allow = job("skip", "allow");
        let plan = plan_occurrence(&allow, &s, due, due, Duration::seconds(60), true);
        assert!(!plan.replace_running && plan.execution.status == "pending");
    }
}
