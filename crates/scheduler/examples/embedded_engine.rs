//! Embed Punctual's engine in your own program: open a SQLite database, migrate
//! it, create a job that calls a local HTTP server this program starts, run the
//! engine in-process until the job has fired three times, print the recorded
//! executions and shut down gracefully.
//!
//! ```sh
//! cargo run -p punctual-scheduler --example embedded_engine
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use punctual_domain::{
    CatchUpGrace, ConcurrencyPolicy, Headers, HttpMethod, HttpTarget, JobName, JobSpec,
    MissedRunPolicy, RetryPolicy, Schedule, TargetUrl, TimeoutMs,
};
use punctual_migration::{Migrator, MigratorTrait};
use punctual_persistence::entities::execution;
use punctual_persistence::jobs::JobRuntime;
use punctual_persistence::sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use punctual_persistence::{accounts, jobs, organizations, Database, DatabaseOptions};
use punctual_scheduler::{Engine, EngineConfig};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A target to call: a real HTTP server on loopback.
    let target = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("pong"))
        .mount(&target)
        .await;

    // The store: a SQLite file in a temporary directory, migrated.
    let dir = tempfile::tempdir()?;
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("embedded.db").display()
    );
    let database = Database::connect(&DatabaseOptions::new(url)).await?;
    Migrator::up(database.conn(), None).await?;

    // An organization owns every job.
    let now = Utc::now();
    let owner =
        accounts::insert_user(database.conn(), "owner@example.com", None, None, now).await?;
    let secret = punctual_auth::generate_signing_secret();
    let org = organizations::insert_organization(
        database.conn(),
        "embedded",
        "Embedded",
        "free",
        owner.id,
        secret,
        now,
    )
    .await?;

    // A job firing every second.
    let spec = JobSpec {
        name: JobName::parse("every second")?,
        key: None,
        request: HttpTarget {
            url: TargetUrl::parse(&format!("{}/ping", target.uri()), true)?,
            method: HttpMethod::Get,
            headers: Headers::parse(&BTreeMap::new())?,
            body: None,
            timeout: TimeoutMs::new(5_000)?,
        },
        schedule: Schedule::parse_cron("* * * * * *", "UTC")?,
        retry: RetryPolicy::default(),
        concurrency: ConcurrencyPolicy::Allow,
        missed_runs: MissedRunPolicy::Skip,
        catch_up_grace: CatchUpGrace::default(),
        enabled: true,
    };
    let runtime = JobRuntime {
        next_run_at: spec.schedule.next_after(now),
        consecutive_failures: 0,
        disabled_reason: None,
        completed_at: None,
    };
    let job = jobs::insert_job(database.conn(), org.id, &spec, &runtime, now).await?;

    // The engine, in-process. Loopback targets are allowed for this demo only.
    let config = EngineConfig {
        allow_private_networks: true,
        ..EngineConfig::default()
    };
    let engine = Engine::new(database.clone(), config)?.start(None);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let executions = loop {
        let executions = execution::Entity::find()
            .filter(execution::Column::JobId.eq(job.id))
            .filter(execution::Column::Status.eq("success"))
            .order_by_asc(execution::Column::ScheduledFor)
            .all(database.conn())
            .await?;
        if executions.len() >= 3 || tokio::time::Instant::now() > deadline {
            break executions;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    engine.shutdown().await;

    for execution in &executions {
        println!(
            "{}  attempt {}  {}  HTTP {:?}  lag {:?} ms  body {:?}",
            execution.scheduled_for.to_rfc3339(),
            execution.attempt,
            execution.status,
            execution.status_code,
            execution.lag_ms,
            execution.response_body.as_deref().unwrap_or_default()
        );
    }
    let received = target
        .received_requests()
        .await
        .map(|r| r.len())
        .unwrap_or(0);
    if executions.len() >= 3 && received >= 3 {
        println!("the job fired {} times; engine stopped", executions.len());
        Ok(())
    } else {
        Err(format!(
            "expected 3 runs, saw {} executions and {received} requests",
            executions.len()
        )
        .into())
    }
}
