//! Fixtures for engine tests that drive `punctual-scheduler` directly: a migrated
//! database with one organization, jobs inserted as rows, and polling helpers.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use punctual_persistence::entities::{execution, job};
use punctual_persistence::sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use punctual_persistence::{accounts, organizations, Database};
use punctual_scheduler::EngineConfig;
use uuid::Uuid;

use crate::TestDatabase;

/// A job row to insert.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Target URL.
    pub url: String,
    /// Method.
    pub method: String,
    /// Header JSON object.
    pub headers: String,
    /// Body.
    pub body: Option<String>,
    /// Cron (None: a once-job at `run_at`).
    pub cron: Option<String>,
    /// Time zone of the cron.
    pub timezone: String,
    /// When a once-job runs.
    pub run_at: Option<DateTime<Utc>>,
    /// The first occurrence to dispatch.
    pub next_run_at: DateTime<Utc>,
    /// Per-request timeout.
    pub timeout_ms: i64,
    /// Attempts per occurrence.
    pub max_attempts: i32,
    /// Backoff bounds.
    pub min_backoff_ms: i64,
    /// Backoff bounds.
    pub max_backoff_ms: i64,
    /// allow | forbid | replace.
    pub concurrency: String,
    /// skip | run_once.
    pub missed_runs: String,
    /// Catch-up window.
    pub catch_up_grace_ms: i64,
}

impl JobSpec {
    /// A cron job calling `url`, first due at the next occurrence after now.
    pub fn cron(cron: &str, url: &str) -> Self {
        let schedule = punctual_domain::Schedule::parse_cron(cron, "UTC").expect("valid cron");
        let next = schedule.next_after(Utc::now()).expect("a next run");
        Self {
            url: url.to_owned(),
            method: "POST".to_owned(),
            headers: r#"{"content-type":"application/json"}"#.to_owned(),
            body: Some(r#"{"hello":"world"}"#.to_owned()),
            cron: Some(cron.to_owned()),
            timezone: "UTC".to_owned(),
            run_at: None,
            next_run_at: next,
            timeout_ms: 5_000,
            max_attempts: 1,
            min_backoff_ms: 100,
            max_backoff_ms: 1_000,
            concurrency: "allow".to_owned(),
            missed_runs: "skip".to_owned(),
            catch_up_grace_ms: 3_600_000,
        }
    }

    /// A once-job calling `url` at `at`.
    pub fn once(at: DateTime<Utc>, url: &str) -> Self {
        Self {
            cron: None,
            run_at: Some(at),
            next_run_at: at,
            ..Self::cron("* * * * *", url)
        }
    }
}

/// A database with one organization, for engine tests.
pub struct EngineFixture {
    /// The migrated store.
    pub database: Database,
    /// The organization owning the jobs.
    pub organization_id: Uuid,
    /// Its signing secret.
    pub signing_secret: String,
    /// Kept last: dropped (and on PostgreSQL, deleted) after the rest.
    pub test_database: TestDatabase,
}

impl EngineFixture {
    /// A fresh database (SQLite, or PostgreSQL with `TEST_DATABASE_URL`).
    pub async fn new() -> Self {
        let test_database = TestDatabase::create().await;
        let database = test_database.connect().await;
        let now = Utc::now();
        let user = accounts::insert_user(
            database.conn(),
            &format!("{}@example.com", Uuid::new_v4().simple()),
            None,
            None,
            now,
        )
        .await
        .expect("user");
        let signing_secret = punctual_auth::generate_signing_secret();
        let org = organizations::insert_organization(
            database.conn(),
            &format!("org-{}", &Uuid::new_v4().simple().to_string()[..8]),
            "Engine tests",
            "free",
            user.id,
            signing_secret.clone(),
            now,
        )
        .await
        .expect("organization");
        Self {
            database,
            organization_id: org.id,
            signing_secret,
            test_database,
        }
    }

    /// Engine settings for tests: loopback targets allowed, short leases and
    /// timers so rescue and wake-ups happen within a test's patience.
    pub fn config(&self) -> EngineConfig {
        EngineConfig {
            allow_private_networks: true,
            lease: Duration::from_secs(2),
            rescue_interval: Duration::from_millis(250),
            max_idle: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(5),
            ..EngineConfig::default()
        }
    }

    /// Inserts a job row.
    pub async fn insert_job(&self, spec: JobSpec) -> Uuid {
        insert_job_row(&self.database, self.organization_id, spec).await
    }
}

/// Inserts a job row for `organization_id`, bypassing the API's validation.
pub async fn insert_job_row(database: &Database, organization_id: Uuid, spec: JobSpec) -> Uuid {
    let now = Utc::now();
    let id = Uuid::now_v7();
    job::ActiveModel {
        id: Set(id),
        organization_id: Set(organization_id),
        key: Set(None),
        name: Set("engine test".to_owned()),
        url: Set(spec.url),
        method: Set(spec.method),
        headers: Set(spec.headers),
        body: Set(spec.body),
        timeout_ms: Set(spec.timeout_ms),
        schedule_kind: Set(if spec.cron.is_some() { "cron" } else { "once" }.to_owned()),
        cron: Set(spec.cron),
        timezone: Set(Some(spec.timezone)),
        run_at: Set(spec.run_at),
        retry_max_attempts: Set(spec.max_attempts),
        retry_min_backoff_ms: Set(spec.min_backoff_ms),
        retry_max_backoff_ms: Set(spec.max_backoff_ms),
        concurrency: Set(spec.concurrency),
        missed_runs: Set(spec.missed_runs),
        catch_up_grace_ms: Set(spec.catch_up_grace_ms),
        enabled: Set(true),
        next_run_at: Set(Some(spec.next_run_at)),
        consecutive_failures: Set(0),
        disabled_reason: Set(None),
        completed_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(database.conn())
    .await
    .expect("insert job");
    id
}

impl EngineFixture {
    /// The job row.
    pub async fn job(&self, id: Uuid) -> job::Model {
        job::Entity::find_by_id(id)
            .one(self.database.conn())
            .await
            .expect("query")
            .expect("job exists")
    }

    /// A job's executions, by occurrence then attempt.
    pub async fn executions(&self, job_id: Uuid) -> Vec<execution::Model> {
        execution::Entity::find()
            .filter(execution::Column::JobId.eq(job_id))
            .order_by_asc(execution::Column::ScheduledFor)
            .order_by_asc(execution::Column::Attempt)
            .all(self.database.conn())
            .await
            .expect("query")
    }

    /// Changes a job row as the API does (the change stamped in `updated_at`,
    /// which an engine holding a claim made ahead compares).
    pub async fn change_job(&self, id: Uuid, change: impl FnOnce(&mut job::ActiveModel)) {
        let mut model = job::ActiveModel {
            id: Set(id),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        change(&mut model);
        model
            .update(self.database.conn())
            .await
            .expect("job changed");
    }

    /// Whether an execution of the job has finished, waiting up to `timeout`.
    pub async fn one_finishes(&self, job_id: Uuid, timeout: Duration) -> bool {
        eventually(timeout, || async {
            self.executions(job_id)
                .await
                .iter()
                .any(|e| e.finished_at.is_some())
        })
        .await
    }
}

/// Polls `check` until it answers true or `timeout` passes; returns the last answer.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
