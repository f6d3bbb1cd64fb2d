//! Plans: the limits on saving jobs (429 with limit/current), the monthly
//! execution quota counted as executions start, usage figures, failure and
//! recovery notifications by email and signed webhook with coalescing, and
//! retention pruning.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::Utc;
use hmac::{Hmac, Mac};
use punctual_domain::{PlanLimits, UsagePeriod};
use punctual_persistence::entities::{audit_event, execution, organization};
use punctual_persistence::quota;
use punctual_persistence::sea_orm::sea_query::Expr;
use punctual_persistence::sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter,
};
use punctual_scheduler::{Clock as _, Engine, EngineConfig, OffsetClock};
use punctual_tests::engine::{eventually, EngineFixture, JobSpec};
use punctual_tests::smtp::SmtpSink;
use punctual_tests::{problem, spawn_app_with, TestApp, TestOrg, TestUser};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn plan(max_jobs: u64, executions_per_month: u64) -> PlanLimits {
    PlanLimits {
        max_jobs,
        min_interval_seconds: 60,
        max_timeout_ms: 10_000,
        max_retry_attempts: 3,
        executions_per_month,
        retention_days: 7,
        api_requests_per_second: 100_000,
        max_request_body_bytes: 64 * 1024,
    }
}

fn job(name: &str, url: &str, cron: &str) -> Value {
    json!({
        "name": name,
        "request": {"url": url, "method": "GET", "timeout_ms": 5000},
        "schedule": {"type": "cron", "cron": cron, "timezone": "UTC"},
        "retry": {"max_attempts": 1, "min_backoff_ms": 100, "max_backoff_ms": 100}
    })
}

async fn owner_and_org(app: &TestApp) -> (TestUser, TestOrg) {
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    (owner, org)
}

async fn create_job(
    app: &TestApp,
    owner: &TestUser,
    org: &TestOrg,
    body: &Value,
) -> reqwest::Response {
    app.post_json(
        &format!("/api/v1/orgs/{}/jobs", org.slug),
        Some(&owner.access_token),
        body,
    )
    .await
}

async fn list_jobs(app: &TestApp, owner: &TestUser, org: &TestOrg) -> Value {
    app.get_json(
        &format!("/api/v1/orgs/{}/jobs", org.slug),
        &owner.access_token,
    )
    .await
}

/// A target that answers 200 to everything.
async fn answering_200() -> MockServer {
    let target = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&target)
        .await;
    target
}

/// Moves `org` to `plan` through the admin API with the service `token`.
async fn move_to_plan(app: &TestApp, org: &TestOrg, token: &str, plan: &str) {
    let moved = app
        .authed(
            Method::PATCH,
            &format!("/api/v1/admin/orgs/{}", org.slug),
            token,
        )
        .json(&json!({"plan": plan}))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
}

#[tokio::test]
async fn each_plan_limit_answers_429_with_limit_and_current() {
    let app = spawn_app_with(|s| {
        s.plans.insert("free".to_owned(), plan(2, 1_000));
    })
    .await;
    let (owner, org) = owner_and_org(&app).await;
    let url = "http://127.0.0.1:9/hook";

    let seconds = problem(
        create_job(&app, &owner, &org, &job("fast", url, "*/10 * * * * *")).await,
        429,
    )
    .await;
    assert_eq!(
        (seconds["limit"].as_u64(), seconds["current"].as_u64()),
        (Some(60), Some(10))
    );

    let mut slow = job("slow", url, "0 * * * *");
    slow["request"]["timeout_ms"] = json!(20_000);
    let timeout = problem(create_job(&app, &owner, &org, &slow).await, 429).await;
    assert_eq!(
        (timeout["limit"].as_u64(), timeout["current"].as_u64()),
        (Some(10_000), Some(20_000))
    );

    let mut stubborn = job("stubborn", url, "0 * * * *");
    stubborn["retry"]["max_attempts"] = json!(5);
    let retries = problem(create_job(&app, &owner, &org, &stubborn).await, 429).await;
    assert_eq!(
        (retries["limit"].as_u64(), retries["current"].as_u64()),
        (Some(3), Some(5))
    );

    for name in ["one", "two"] {
        assert_eq!(
            create_job(&app, &owner, &org, &job(name, url, "0 * * * *"))
                .await
                .status(),
            201
        );
    }
    let count = problem(
        create_job(&app, &owner, &org, &job("three", url, "0 * * * *")).await,
        429,
    )
    .await;
    assert_eq!(
        (count["limit"].as_u64(), count["current"].as_u64()),
        (Some(2), Some(2))
    );

    // An update may not sneak past the interval limit either.
    let jobs = list_jobs(&app, &owner, &org).await;
    let id = jobs["data"][0]["id"].as_str().unwrap();
    let patch = app
        .authed(
            Method::PATCH,
            &format!("/api/v1/orgs/{}/jobs/{id}", org.slug),
            &owner.access_token,
        )
        .json(&json!({"schedule": {"type": "cron", "cron": "* * * * * *", "timezone": "UTC"}}))
        .send()
        .await
        .unwrap();
    problem(patch, 429).await;
}

/// Each plan caps the body a job sends (API.md: "a body over the plan's cap is a
/// 422 naming the field"), on creation and on every kind of update, and a plan
/// with a higher cap allows what a lower one refuses.
#[tokio::test]
async fn the_request_body_is_capped_by_the_plan() {
    let token = "s".repeat(40);
    let app = spawn_app_with(|s| {
        let mut free = plan(10, 1_000);
        free.max_request_body_bytes = 1_024;
        s.plans.insert("free".to_owned(), free);
        let mut pro = plan(10, 1_000);
        pro.max_request_body_bytes = 200 * 1024;
        s.plans.insert("pro".to_owned(), pro);
        s.admin.service_token = "s".repeat(40);
    })
    .await;
    let (owner, org) = owner_and_org(&app).await;
    let url = "http://127.0.0.1:9/hook";
    let with_body = |name: &str, bytes: usize| {
        let mut job = job(name, url, "0 * * * *");
        job["request"]["method"] = json!("POST");
        job["request"]["body"] = json!("b".repeat(bytes));
        job
    };
    let refused_field = |response: reqwest::Response| async move {
        let problem = problem(response, 422).await;
        problem["errors"][0]["field"].as_str().map(str::to_owned)
    };

    assert_eq!(
        create_job(&app, &owner, &org, &with_body("fits", 1_024))
            .await
            .status(),
        201
    );
    assert_eq!(
        refused_field(create_job(&app, &owner, &org, &with_body("big", 1_025)).await).await,
        Some("request.body".to_owned())
    );
    let jobs = list_jobs(&app, &owner, &org).await;
    let id = jobs["data"][0]["id"].as_str().unwrap().to_owned();
    let patch = app
        .authed(
            Method::PATCH,
            &format!("/api/v1/orgs/{}/jobs/{id}", org.slug),
            &owner.access_token,
        )
        .json(&json!({"request": {"url": url, "method": "POST", "body": "b".repeat(2_000)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused_field(patch).await, Some("request.body".to_owned()));
    let put = app
        .authed(
            Method::PUT,
            &format!("/api/v1/orgs/{}/jobs/by-key/big-one", org.slug),
            &owner.access_token,
        )
        .json(&with_body("big", 2_000))
        .send()
        .await
        .unwrap();
    assert_eq!(refused_field(put).await, Some("request.body".to_owned()));

    move_to_plan(&app, &org, &token, "pro").await;
    // Over the old 64 KiB ceiling, within the pro plan's cap.
    let large = create_job(&app, &owner, &org, &with_body("large", 150 * 1024)).await;
    assert_eq!(large.status(), 201);
    let stored = large.json::<Value>().await.unwrap();
    assert_eq!(
        stored["request"]["body"].as_str().map(str::len),
        Some(150 * 1024)
    );
    assert_eq!(
        refused_field(create_job(&app, &owner, &org, &with_body("huge", 200 * 1024 + 1)).await)
            .await,
        Some("request.body".to_owned())
    );
    let usage = app
        .get_json(
            &format!("/api/v1/orgs/{}/usage", org.slug),
            &owner.access_token,
        )
        .await;
    assert_eq!(usage["limits"]["max_request_body_bytes"], 200 * 1024);
}

/// A manual run with the month's executions used up is a 429 with `limit` and
/// `current`, not a run accepted and then recorded skipped.
#[tokio::test]
async fn a_manual_run_past_the_monthly_quota_is_a_429() {
    let app = spawn_app_with(|s| {
        s.plans.insert("free".to_owned(), plan(10, 2));
    })
    .await;
    let (owner, org) = owner_and_org(&app).await;
    let created = create_job(
        &app,
        &owner,
        &org,
        &job("manual", "http://127.0.0.1:9/hook", "0 0 1 1 *"),
    )
    .await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trigger = || {
        app.authed(
            Method::POST,
            &format!("/api/v1/orgs/{}/jobs/{id}/trigger", org.slug),
            &owner.access_token,
        )
        .send()
    };
    assert_eq!(trigger().await.unwrap().status(), 202, "within the quota");
    let org_id: uuid::Uuid = org.id.parse().unwrap();
    let period = UsagePeriod::containing(Utc::now()).key();
    let used = || quota::executions_used(app.database.conn(), org_id, &period);
    // The engine counts the manual run as it starts; then the month's last one
    // goes elsewhere.
    assert!(
        eventually(Duration::from_secs(10), || async {
            used().await.unwrap() == 1
        })
        .await
    );
    let transaction = app.database.begin_write().await.unwrap();
    quota::consume_executions(&transaction, org_id, &period, 1, 2)
        .await
        .unwrap();
    transaction.commit().await.unwrap();
    let over = problem(trigger().await.unwrap(), 429).await;
    assert_eq!(
        (over["limit"].as_u64(), over["current"].as_u64()),
        (Some(2), Some(2))
    );
}

/// Creations racing for the last places: the count taken as each job is
/// inserted decides, so the plan's limit holds exactly; a delete frees a place.
#[tokio::test]
async fn concurrent_creations_never_pass_the_job_limit() {
    let app = spawn_app_with(|s| {
        s.plans.insert("free".to_owned(), plan(5, 1_000));
    })
    .await;
    let (owner, org) = owner_and_org(&app).await;
    let url = "http://127.0.0.1:9/hook";
    let attempts = (0..20).map(|n| {
        let body = job(&format!("racer-{n}"), url, "0 * * * *");
        let (app, owner, org) = (&app, &owner, &org);
        async move { create_job(app, owner, org, &body).await.status().as_u16() }
    });
    let mut statuses = futures_util::future::join_all(attempts).await;
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 429),
        "{statuses:?}"
    );

    let jobs = list_jobs(&app, &owner, &org).await;
    assert_eq!(jobs["data"].as_array().unwrap().len(), 5);
    let id = jobs["data"][0]["id"].as_str().unwrap();
    let deleted = app
        .authed(
            Method::DELETE,
            &format!("/api/v1/orgs/{}/jobs/{id}", org.slug),
            &owner.access_token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let again = create_job(&app, &owner, &org, &job("after-delete", url, "0 * * * *")).await;
    assert_eq!(again.status(), 201);
    let over = problem(
        create_job(&app, &owner, &org, &job("one-too-many", url, "0 * * * *")).await,
        429,
    )
    .await;
    assert_eq!(
        (over["limit"].as_u64(), over["current"].as_u64()),
        (Some(5), Some(5))
    );
}

#[tokio::test]
async fn a_plan_change_through_the_admin_api_changes_the_limits() {
    let token = "s".repeat(40);
    let app = spawn_app_with(|s| {
        s.plans.insert("free".to_owned(), plan(1, 1_000));
        s.plans.insert("pro".to_owned(), plan(5, 1_000));
        s.admin.service_token = "s".repeat(40);
    })
    .await;
    let (owner, org) = owner_and_org(&app).await;
    let url = "http://127.0.0.1:9/hook";
    assert_eq!(
        create_job(&app, &owner, &org, &job("one", url, "0 * * * *"))
            .await
            .status(),
        201
    );
    problem(
        create_job(&app, &owner, &org, &job("two", url, "0 * * * *")).await,
        429,
    )
    .await;
    move_to_plan(&app, &org, &token, "pro").await;
    assert_eq!(
        create_job(&app, &owner, &org, &job("two", url, "0 * * * *"))
            .await
            .status(),
        201
    );
    let usage = app
        .get_json(
            &format!("/api/v1/orgs/{}/usage", org.slug),
            &owner.access_token,
        )
        .await;
    assert_eq!(usage["plan"], "pro");
    assert_eq!(usage["jobs"]["used"], 2);
    assert_eq!(usage["jobs"]["limit"], 5);
}

#[tokio::test]
async fn the_quota_boundary_runs_the_nth_skips_the_next_and_notifies_once() {
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let app = spawn_app_with(move |s| {
        let mut limits = plan(10, 3);
        limits.min_interval_seconds = 1;
        s.plans.insert("free".to_owned(), limits);
        s.email.smtp_url = smtp;
    })
    .await;
    let (owner, org) = owner_and_org(&app).await;
    let target = answering_200().await;
    let created = create_job(
        &app,
        &owner,
        &org,
        &job("every second", &target.uri(), "* * * * * *"),
    )
    .await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let executions = |app: &TestApp| {
        let path = format!("/api/v1/orgs/{}/jobs/{id}/executions?limit=200", org.slug);
        let token = owner.access_token.clone();
        let request = app.authed(Method::GET, &path, &token);
        async move {
            request.send().await.unwrap().json::<Value>().await.unwrap()["data"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    assert!(
        eventually(Duration::from_secs(20), || async {
            executions(&app).await.len() >= 6
        })
        .await,
        "six occurrences recorded"
    );
    let mut all = executions(&app).await;
    all.reverse(); // oldest first
    let statuses: Vec<&str> = all.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(
        &statuses[..3],
        &["success", "success", "success"],
        "the first three run: {statuses:?}"
    );
    assert!(
        statuses[3..].iter().all(|s| *s == "skipped"),
        "then skipped: {statuses:?}"
    );
    assert!(all[3]["error"]
        .as_str()
        .unwrap()
        .starts_with("quota_exceeded"));
    assert_eq!(
        target.received_requests().await.unwrap().len(),
        3,
        "nothing past the quota reached the target"
    );

    let usage = app
        .get_json(
            &format!("/api/v1/orgs/{}/usage", org.slug),
            &owner.access_token,
        )
        .await;
    assert_eq!(usage["executions"]["used"], 3);
    assert_eq!(usage["executions"]["limit"], 3);
    assert_eq!(usage["executions_by_status"]["success"], 3);
    assert!(usage["executions_by_status"]["skipped"].as_u64().unwrap() >= 3);

    let emails = sink.wait_for(1, Duration::from_secs(20)).await;
    let quota: Vec<_> = emails
        .iter()
        .filter(|m| m.header("subject").unwrap_or_default().contains("quota"))
        .collect();
    assert_eq!(quota.len(), 1);
    assert_eq!(
        quota[0].to,
        vec![owner.email.clone()],
        "owners hear about it when nothing is configured"
    );
    // More skipped runs do not send more emails.
    assert!(
        eventually(Duration::from_secs(10), || async {
            executions(&app).await.len() >= 9
        })
        .await
    );
    assert_eq!(
        sink.messages()
            .iter()
            .filter(|m| m.header("subject").unwrap_or_default().contains("quota"))
            .count(),
        1
    );
}

/// Engine settings holding the fixture's organization to a free plan that
/// allows `executions_per_month`.
fn with_free_plan(fixture: &EngineFixture, executions_per_month: u64) -> EngineConfig {
    let mut limits = plan(10, executions_per_month);
    limits.min_interval_seconds = 1;
    EngineConfig {
        plans: std::sync::Arc::new(std::collections::BTreeMap::from([(
            "free".to_owned(),
            limits,
        )])),
        ..fixture.config()
    }
}

async fn set_plan(fixture: &EngineFixture, plan: &str) {
    organization::Entity::update_many()
        .col_expr(organization::Column::Plan, Expr::value(plan))
        .filter(organization::Column::Id.eq(fixture.organization_id))
        .exec(fixture.database.conn())
        .await
        .unwrap();
}

/// The engine holds an organization whose plan is no longer configured (renamed
/// or removed) to the free plan's quota, as the API holds it to its limits; it
/// used to let every execution through.
#[tokio::test]
async fn an_organization_on_a_plan_no_longer_configured_gets_the_free_quota() {
    let fixture = EngineFixture::new().await;
    set_plan(&fixture, "retired").await;
    let target = answering_200().await;
    let job = fixture
        .insert_job(JobSpec::cron("* * * * * *", &target.uri()))
        .await;
    let engine = Engine::new(fixture.database.clone(), with_free_plan(&fixture, 2))
        .unwrap()
        .start(None);
    let count = |status: &'static str| {
        let fixture = &fixture;
        async move {
            fixture
                .executions(job)
                .await
                .iter()
                .filter(|e| e.status == status)
                .count()
        }
    };
    assert!(
        eventually(Duration::from_secs(20), || async {
            count("success").await >= 2 && count("skipped").await >= 2
        })
        .await
    );
    engine.shutdown().await;
    assert_eq!(count("success").await, 2);
    assert_eq!(target.received_requests().await.unwrap().len(), 2);
}

/// An occurrence claimed ahead of the first instant of a month counts in the
/// new month: a used-up quota ending with the old month does not skip it.
#[tokio::test]
async fn an_occurrence_claimed_ahead_of_a_new_month_counts_in_the_new_month() {
    let fixture = EngineFixture::new().await;
    let target = answering_200().await;
    // The engine's clock three seconds before the next month starts.
    let new_month = UsagePeriod::containing(Utc::now()).end;
    let clock = std::sync::Arc::new(OffsetClock::new());
    clock.advance(new_month - chrono::Duration::seconds(3) - Utc::now());
    let old_month = UsagePeriod::containing(clock.now()).key();
    assert_ne!(old_month, UsagePeriod::containing(new_month).key());
    quota::consume_executions(
        fixture.database.conn(),
        fixture.organization_id,
        &old_month,
        1,
        1,
    )
    .await
    .unwrap();
    let job = fixture
        .insert_job(JobSpec::once(new_month, &target.uri()))
        .await;
    let engine = Engine::new(fixture.database.clone(), with_free_plan(&fixture, 1))
        .unwrap()
        .with_clock(clock.clone())
        .start(None);
    assert!(fixture.one_finishes(job, Duration::from_secs(15)).await);
    engine.shutdown().await;
    let executions = fixture.executions(job).await;
    assert_eq!(executions[0].status, "success", "{:?}", executions[0].error);
    assert!(
        executions[0].started_at.unwrap() >= new_month,
        "it started in the new month"
    );
    assert_eq!(target.received_requests().await.unwrap().len(), 1);
}

/// An occurrence claimed ahead is counted against the quota as it is claimed;
/// given back before its time (its job changed, paused or deleted, or the node
/// stopped) it hands that back. So one that is claimed again is counted once,
/// and one that never runs is not counted at all.
#[tokio::test]
async fn claims_given_back_before_their_time_are_not_counted() {
    let fixture = EngineFixture::new().await;
    let target = answering_200().await;
    let due = Utc::now() + chrono::Duration::seconds(3);
    let period = UsagePeriod::containing(due).key();
    let changed = fixture.insert_job(JobSpec::once(due, &target.uri())).await;
    let paused = fixture.insert_job(JobSpec::once(due, &target.uri())).await;
    let stopped = fixture.insert_job(JobSpec::once(due, &target.uri())).await;
    let deleted = fixture.insert_job(JobSpec::once(due, &target.uri())).await;
    let config = EngineConfig {
        lookahead: Duration::from_secs(4),
        ..with_free_plan(&fixture, 100)
    };
    let used = || quota::executions_used(fixture.database.conn(), fixture.organization_id, &period);
    let status_of = |job| {
        let fixture = &fixture;
        async move {
            let executions = fixture.executions(job).await;
            executions.first().map(|e| e.status.clone())
        }
    };

    // One node claims all four ahead; before their time one job changes, one
    // is paused, one is deleted (its claim with it), and the node stops.
    let first = Engine::new(fixture.database.clone(), config.clone())
        .unwrap()
        .start(None);
    assert!(
        eventually(Duration::from_secs(2), || async {
            for job in [changed, paused, stopped, deleted] {
                if status_of(job).await.as_deref() != Some("running") {
                    return false;
                }
            }
            true
        })
        .await
    );
    assert_eq!(used().await.unwrap(), 4, "counted as they were claimed");
    fixture
        .change_job(changed, |job| job.name = Set("renamed".to_owned()))
        .await;
    fixture
        .change_job(paused, |job| job.enabled = Set(false))
        .await;
    assert!(punctual_persistence::jobs::delete_job(
        fixture.database.conn(),
        fixture.organization_id,
        deleted
    )
    .await
    .unwrap());
    first.wake();
    assert!(
        eventually(Duration::from_secs(2), || async {
            status_of(changed).await.as_deref() == Some("pending")
                && status_of(paused).await.is_none()
        })
        .await,
        "the changed job's claim handed back, the paused one's given up"
    );
    first.shutdown().await;
    assert!(Utc::now() < due, "all of that before their time");
    // The stopping node's claim is undone: its job is due at it again.
    assert_eq!(status_of(stopped).await, None);
    assert!(fixture
        .job(stopped)
        .await
        .next_run_at
        .is_some_and(|next| (next - due).num_milliseconds().abs() < 1));
    assert!(target.received_requests().await.unwrap().is_empty());
    assert_eq!(used().await.unwrap(), 0, "all four handed back");

    // Another node runs the two still due, when due.
    let second = Engine::new(fixture.database.clone(), config)
        .unwrap()
        .start(None);
    assert!(fixture.one_finishes(changed, Duration::from_secs(10)).await);
    assert!(fixture.one_finishes(stopped, Duration::from_secs(10)).await);
    second.shutdown().await;
    assert!(fixture.executions(paused).await.is_empty(), "never ran");
    assert_eq!(target.received_requests().await.unwrap().len(), 2);
    assert_eq!(
        used().await.unwrap(),
        2,
        "the two that ran, once each; the paused one not at all"
    );
}

/// A once-job whose occurrence is skipped for the quota is complete, not left
/// enabled with no next run.
#[tokio::test]
async fn a_once_job_skipped_for_the_quota_is_complete() {
    let fixture = EngineFixture::new().await;
    let target = answering_200().await;
    let job = fixture
        .insert_job(JobSpec::once(Utc::now(), &target.uri()))
        .await;
    let engine = Engine::new(fixture.database.clone(), with_free_plan(&fixture, 0))
        .unwrap()
        .start(None);
    assert!(fixture.one_finishes(job, Duration::from_secs(10)).await);
    engine.shutdown().await;
    let executions = fixture.executions(job).await;
    assert_eq!(executions[0].status, "skipped");
    let job = fixture.job(job).await;
    assert!(job.completed_at.is_some(), "{job:?}");
    assert!(target.received_requests().await.unwrap().is_empty());
}

/// A due occurrence still waiting for a slot when the shutdown grace ends was
/// never sent: it goes back to pending as it is, uncounted, while the one
/// being sent is a failed attempt followed by a retry.
#[tokio::test]
async fn a_run_still_waiting_for_a_slot_when_the_grace_ends_is_handed_back_uncounted() {
    let fixture = EngineFixture::new().await;
    let slow = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&slow)
        .await;
    let now = Utc::now();
    let period = UsagePeriod::containing(now).key();
    let jobs = [
        fixture.insert_job(JobSpec::once(now, &slow.uri())).await,
        fixture.insert_job(JobSpec::once(now, &slow.uri())).await,
    ];
    let engine = Engine::new(
        fixture.database.clone(),
        EngineConfig {
            max_in_flight: 1,
            shutdown_grace: Duration::from_millis(300),
            ..with_free_plan(&fixture, 100)
        },
    )
    .unwrap()
    .start(None);
    assert!(
        eventually(Duration::from_secs(10), || async {
            let mut claimed = 0;
            for job in jobs {
                if fixture
                    .executions(job)
                    .await
                    .first()
                    .map(|e| e.status.as_str())
                    == Some("running")
                {
                    claimed += 1;
                }
            }
            claimed == 2 && slow.received_requests().await.unwrap().len() == 1
        })
        .await,
        "both claimed, one sending and one waiting for the only slot"
    );
    engine.shutdown().await;

    let mut histories = Vec::new();
    for job in jobs {
        let executions = fixture.executions(job).await;
        histories.push(
            executions
                .iter()
                .map(|e| (e.attempt, e.status.clone()))
                .collect::<Vec<_>>(),
        );
    }
    histories.sort();
    assert_eq!(
        histories,
        vec![
            vec![(1, "failed".to_owned()), (2, "pending".to_owned())],
            vec![(1, "pending".to_owned())],
        ],
        "the one sent interrupted and retried, the other back as it was"
    );
    assert_eq!(slow.received_requests().await.unwrap().len(), 1);
    assert_eq!(
        quota::executions_used(fixture.database.conn(), fixture.organization_id, &period)
            .await
            .unwrap(),
        1,
        "only the attempt that was sent is counted"
    );
}

fn verify_signature(secret: &str, headers: &wiremock::http::HeaderMap, body: &[u8]) -> bool {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", get("webhook-id"), get("webhook-timestamp")).as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    get("webhook-signature").split(' ').any(|s| s == expected)
}

#[tokio::test]
async fn failures_notify_by_email_and_signed_webhook_once_per_window_and_recovery_too() {
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let app = spawn_app_with(move |s| s.email.smtp_url = smtp).await;
    let (owner, org) = owner_and_org(&app).await;
    let hooks = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(204))
        .mount(&hooks)
        .await;
    let settings = json!({
        "emails": ["ops@example.com"],
        "webhook_url": format!("{}/notify", hooks.uri()),
        "events": {"failure": true, "auto_disable": true, "recovery": true}
    });
    let saved = app
        .authed(
            Method::PUT,
            &format!("/api/v1/orgs/{}/notifications", org.slug),
            &owner.access_token,
        )
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);

    let target = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .mount(&target)
        .await;
    let created = create_job(
        &app,
        &owner,
        &org,
        &job("flaky", &target.uri(), "* * * * * *"),
    )
    .await;
    assert_eq!(created.status(), 201);

    // Several failed occurrences in a row: one email and one webhook.
    assert!(
        eventually(Duration::from_secs(20), || async {
            target.received_requests().await.unwrap().len() >= 4
        })
        .await
    );
    let failure_emails = sink.wait_for(1, Duration::from_secs(20)).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            !hooks.received_requests().await.unwrap().is_empty()
        })
        .await,
        "a webhook notification arrived"
    );
    assert_eq!(failure_emails.len(), 1);
    assert_eq!(failure_emails[0].to, vec!["ops@example.com".to_owned()]);
    assert!(failure_emails[0]
        .header("subject")
        .unwrap()
        .contains("failed"));
    let webhooks = hooks.received_requests().await.unwrap();
    assert_eq!(webhooks.len(), 1, "coalesced: one webhook for the burst");
    let payload: Value = serde_json::from_slice(&webhooks[0].body).unwrap();
    assert_eq!(payload["type"], "job.failed");
    assert!(
        verify_signature(&org.signing_secret, &webhooks[0].headers, &webhooks[0].body),
        "signed like job requests"
    );

    // The target recovers: one recovery notification each way.
    target.reset().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&target)
        .await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            hooks.received_requests().await.unwrap().iter().any(|r| {
                serde_json::from_slice::<Value>(&r.body)
                    .map(|p| p["type"] == "job.recovered")
                    .unwrap_or(false)
            })
        })
        .await
    );
    let emails = sink.wait_for(2, Duration::from_secs(20)).await;
    assert!(emails
        .iter()
        .any(|m| m.header("subject").unwrap().contains("recovered")));
    assert_eq!(
        emails
            .iter()
            .filter(|m| m.header("subject").unwrap().contains("failed"))
            .count(),
        1
    );
}

#[tokio::test]
async fn notification_settings_are_validated_and_admin_only() {
    let app = spawn_app_with(|s| s.outbound.allow_private_networks = false).await;
    let (owner, org) = owner_and_org(&app).await;
    let member = app.register_user().await;
    app.add_member(&org, &member, "member").await;
    let path = format!("/api/v1/orgs/{}/notifications", org.slug);
    let defaults = app.get_json(&path, &owner.access_token).await;
    assert_eq!(defaults["emails"], json!([owner.email]));
    let refused = app
        .authed(Method::GET, &path, &member.access_token)
        .send()
        .await
        .unwrap();
    problem(refused, 403).await;
    let bad = json!({
        "emails": ["not-an-email"],
        "webhook_url": "http://127.0.0.1/hook",
        "events": {"failure": true, "auto_disable": true, "recovery": true}
    });
    let response = app
        .authed(Method::PUT, &path, &owner.access_token)
        .json(&bad)
        .send()
        .await
        .unwrap();
    let body = problem(response, 422).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["emails[0]", "webhook_url"]);
}

/// An execution of `job` created `age_days` before `now`. Pending ones wait a
/// day, so that an engine leaves them alone during a test.
fn aged_execution(
    fixture: &EngineFixture,
    job: uuid::Uuid,
    now: chrono::DateTime<Utc>,
    age_days: i64,
    status: &str,
) -> execution::ActiveModel {
    execution::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        organization_id: Set(fixture.organization_id),
        job_id: Set(job),
        scheduled_for: Set(now
            - chrono::Duration::days(age_days)
            - chrono::Duration::seconds(age_days)),
        attempt: Set(1),
        trigger: Set("schedule".to_owned()),
        status: Set(status.to_owned()),
        run_after: Set(now + chrono::Duration::days(1)),
        started_at: Set(None),
        finished_at: Set(None),
        duration_ms: Set(None),
        lag_ms: Set(None),
        status_code: Set(None),
        response_body: Set(None),
        error: Set(None),
        node_id: Set(None),
        lease_expires_at: Set(None),
        created_at: Set(now - chrono::Duration::days(age_days)),
    }
}

/// An organization whose plan is no longer configured keeps what the free plan
/// keeps; its history was never pruned.
#[tokio::test]
async fn an_organization_on_a_plan_no_longer_configured_keeps_the_free_retention() {
    let fixture = EngineFixture::new().await;
    set_plan(&fixture, "retired").await;
    let job = fixture
        .insert_job(JobSpec::cron("0 0 1 1 *", "http://127.0.0.1:9/"))
        .await;
    let now = Utc::now();
    let db = fixture.database.conn();
    let expired = aged_execution(&fixture, job, now, 30, "success")
        .insert(db)
        .await
        .unwrap()
        .id;
    let recent = aged_execution(&fixture, job, now, 6, "failed")
        .insert(db)
        .await
        .unwrap()
        .id;
    let config = EngineConfig {
        retention_interval: Duration::from_millis(200),
        ..with_free_plan(&fixture, 1_000)
    };
    let engine = Engine::new(fixture.database.clone(), config)
        .unwrap()
        .start(None);
    let pruned = || async {
        execution::Entity::find_by_id(expired)
            .one(db)
            .await
            .unwrap()
            .is_none()
    };
    assert!(eventually(Duration::from_secs(10), pruned).await);
    engine.shutdown().await;
    assert!(execution::Entity::find_by_id(recent)
        .one(db)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn pruning_removes_only_what_is_past_retention() {
    let fixture = EngineFixture::new().await;
    let server = MockServer::start().await;
    let job = fixture
        .insert_job(JobSpec::cron("0 0 1 1 *", &server.uri()))
        .await;
    let now = Utc::now();
    let row = |age_days: i64, status: &str| aged_execution(&fixture, job, now, age_days, status);
    let mut expired = Vec::new();
    for age in [8, 9, 30] {
        expired.push(
            row(age, "success")
                .insert(fixture.database.conn())
                .await
                .unwrap()
                .id,
        );
    }
    let kept_recent = row(6, "failed")
        .insert(fixture.database.conn())
        .await
        .unwrap()
        .id;
    let kept_pending = row(40, "pending")
        .insert(fixture.database.conn())
        .await
        .unwrap()
        .id;
    // Audit events a year and a day old (of the organization, and of none), and
    // ten days old.
    let audit = |age_days: i64, organization_id: Option<uuid::Uuid>| audit_event::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        organization_id: Set(organization_id),
        actor_type: Set("system".to_owned()),
        actor_id: Set(None),
        action: Set("test.event".to_owned()),
        target_type: Set(None),
        target_id: Set(None),
        ip: Set(None),
        user_agent: Set(None),
        metadata: Set("{}".to_owned()),
        created_at: Set(now - chrono::Duration::days(age_days)),
    };
    let mut old_audit = Vec::new();
    for organization in [Some(fixture.organization_id), None, None] {
        let event = audit(366, organization);
        old_audit.push(event.insert(fixture.database.conn()).await.unwrap().id);
    }
    let recent_audit = audit(10, Some(fixture.organization_id))
        .insert(fixture.database.conn())
        .await
        .unwrap()
        .id;
    let audit_ids = || async {
        audit_event::Entity::find()
            .all(fixture.database.conn())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect::<Vec<_>>()
    };
    let mut plans = std::collections::BTreeMap::new();
    plans.insert("free".to_owned(), plan(10, 1_000));
    let config = punctual_scheduler::EngineConfig {
        plans: std::sync::Arc::new(plans),
        retention_interval: Duration::from_millis(200),
        retention_batch: 2,
        audit_retention: None,
        ..fixture.config()
    };
    let engine = punctual_scheduler::Engine::new(fixture.database.clone(), config.clone())
        .unwrap()
        .start(None);
    let ids = || async {
        execution::Entity::find()
            .filter(execution::Column::JobId.eq(job))
            .all(fixture.database.conn())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(10), || async {
            let left = ids().await;
            expired.iter().all(|id| !left.contains(id))
        })
        .await,
        "executions past retention were pruned"
    );
    engine.shutdown().await;
    let left = ids().await;
    assert!(left.contains(&kept_recent), "within retention: kept");
    assert!(
        left.contains(&kept_pending),
        "pending rows are never pruned, however old"
    );
    let left = audit_ids().await;
    assert!(
        old_audit.iter().all(|id| left.contains(id)),
        "without an audit retention, pruning rounds keep every audit event"
    );

    let config = punctual_scheduler::EngineConfig {
        audit_retention: Some(Duration::from_secs(365 * 86_400)),
        ..config
    };
    let engine = punctual_scheduler::Engine::new(fixture.database.clone(), config)
        .unwrap()
        .start(None);
    assert!(
        eventually(Duration::from_secs(10), || async {
            let left = audit_ids().await;
            old_audit.iter().all(|id| !left.contains(id))
        })
        .await,
        "audit events past the audit retention were pruned, with or without an organization"
    );
    engine.shutdown().await;
    assert!(
        audit_ids().await.contains(&recent_audit),
        "within retention: kept"
    );
}
