//! Helpers shared by the jobs tests: a valid job document, calls of the job routes and
//! direct inserts of execution rows.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use punctual_persistence::entities::execution;
use punctual_persistence::sea_orm::{ActiveModelTrait, ActiveValue::Set};
use punctual_tests::{TestApp, TestOrg, TestUser};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// A cron that runs once a year (1 January, 00:00 UTC), so that the engine running
/// inside the test server never fires a job while a test looks at it.
pub const YEARLY: &str = "0 0 1 1 *";

/// A valid job document (private networks are allowed in tests). One attempt only, so
/// that a manual run the engine performs leaves no retry behind.
pub fn job(name: &str) -> Value {
    json!({
        "name": name,
        "request": {"url": "http://127.0.0.1:9/hook", "method": "POST",
                    "headers": {"content-type": "application/json"}, "body": "{}",
                    "timeout_ms": 5000},
        "schedule": {"type": "cron", "cron": YEARLY, "timezone": "Europe/Oslo"},
        "retry": {"max_attempts": 1},
    })
}

/// `{org}`'s jobs path.
pub fn jobs_path(org: &TestOrg) -> String {
    format!("/api/v1/orgs/{}/jobs", org.slug)
}

/// `{org}`'s path of one job.
pub fn job_path(org: &TestOrg, id: &str) -> String {
    format!("/api/v1/orgs/{}/jobs/{id}", org.slug)
}

/// A user with an organization.
pub async fn owner_with_org(app: &TestApp) -> (TestUser, TestOrg) {
    let user = app.register_user().await;
    let org = app.create_org(&user).await;
    (user, org)
}

/// Sends `method path` with a JSON body (if any) and a bearer token.
pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = app.authed(method, path, token);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("request")
}

/// Like [`call`], expecting `status` and a JSON answer.
pub async fn call_ok(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
    status: u16,
) -> Value {
    let response = call(app, method.clone(), path, token, body).await;
    let got = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(got, status, "{method} {path}: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("JSON answer")
    }
}

/// `POST {job_path}/{action}` (pause, resume, trigger), expecting `status`.
pub async fn job_action(
    app: &TestApp,
    job_path: &str,
    action: &str,
    token: &str,
    status: u16,
) -> Value {
    let path = format!("{job_path}/{action}");
    call_ok(app, Method::POST, &path, token, None, status).await
}

/// Creates a job, expecting 201.
pub async fn create_job(app: &TestApp, token: &str, org: &TestOrg, body: &Value) -> Value {
    call_ok(app, Method::POST, &jobs_path(org), token, Some(body), 201).await
}

/// The fields named by a 422 problem.
pub async fn invalid_fields(response: reqwest::Response) -> Vec<String> {
    let body = punctual_tests::problem(response, 422).await;
    body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect()
}

/// An RFC 3339 string as an instant.
pub fn instant(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a date-time string"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// Inserts a finished execution row for `job_id`, created (and scheduled) at
/// `created_at`.
pub async fn insert_execution(
    app: &TestApp,
    org: &TestOrg,
    job_id: &str,
    status: &str,
    created_at: DateTime<Utc>,
) -> Uuid {
    insert_execution_for(app, org, job_id, status, created_at, created_at).await
}

/// Like [`insert_execution`], for the occurrence `scheduled_for`.
pub async fn insert_execution_for(
    app: &TestApp,
    org: &TestOrg,
    job_id: &str,
    status: &str,
    created_at: DateTime<Utc>,
    scheduled_for: DateTime<Utc>,
) -> Uuid {
    let id = Uuid::now_v7();
    execution::ActiveModel {
        id: Set(id),
        organization_id: Set(org.id.parse().unwrap()),
        job_id: Set(job_id.parse().unwrap()),
        scheduled_for: Set(scheduled_for),
        attempt: Set(1),
        trigger: Set("schedule".to_owned()),
        status: Set(status.to_owned()),
        run_after: Set(created_at),
        started_at: Set(Some(created_at)),
        finished_at: Set(Some(created_at + Duration::milliseconds(120))),
        duration_ms: Set(Some(120)),
        lag_ms: Set(Some(3)),
        status_code: Set(Some(if status == "success" { 200 } else { 500 })),
        response_body: Set(Some(format!("body of {status}"))),
        error: Set((status != "success").then(|| "HTTP 500".to_owned())),
        node_id: Set(Some("test-node".to_owned())),
        lease_expires_at: Set(None),
        created_at: Set(created_at),
    }
    .insert(app.database.conn())
    .await
    .expect("insert execution");
    id
}
