//! Tenancy and roles on every job route: another organization's user, API key or ids
//! get 404 (never 403, never data); members and member API keys manage jobs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jobs_support;

use jobs_support::*;
use punctual_tests::{problem, spawn_app, TestApp, TestOrg};
use reqwest::Method;
use serde_json::{json, Value};

/// Every job route of `org`, about job `job_id` and execution `execution_id`.
fn routes(org: &TestOrg, job_id: &str, execution_id: &str) -> Vec<(Method, String, Option<Value>)> {
    let jobs = jobs_path(org);
    let job = job_path(org, job_id);
    vec![
        (Method::POST, jobs.clone(), Some(job_doc())),
        (Method::GET, jobs.clone(), None),
        (
            Method::PUT,
            format!("{jobs}/by-key/victim"),
            Some(job_doc()),
        ),
        (Method::GET, job.clone(), None),
        (Method::PATCH, job.clone(), Some(json!({"name": "owned"}))),
        (Method::POST, format!("{job}/pause"), None),
        (Method::POST, format!("{job}/resume"), None),
        (Method::POST, format!("{job}/trigger"), None),
        (Method::GET, format!("{job}/executions"), None),
        (
            Method::GET,
            format!("/api/v1/orgs/{}/executions/{execution_id}", org.slug),
            None,
        ),
        (Method::DELETE, job, None),
    ]
}

fn job_doc() -> Value {
    job("tenant job")
}

struct Victim {
    org: TestOrg,
    token: String,
    job: Value,
    execution_id: String,
}

async fn victim(app: &TestApp) -> Victim {
    let (owner, org) = owner_with_org(app).await;
    let mut document = job_doc();
    document["key"] = json!("victim");
    let job = create_job(app, &owner.access_token, &org, &document).await;
    let execution_id = insert_execution(
        app,
        &org,
        job["id"].as_str().unwrap(),
        "success",
        chrono::Utc::now(),
    )
    .await
    .to_string();
    Victim {
        org,
        token: owner.access_token,
        job,
        execution_id,
    }
}

async fn assert_untouched(app: &TestApp, victim: &Victim) {
    let path = job_path(&victim.org, victim.job["id"].as_str().unwrap());
    let now = call_ok(app, Method::GET, &path, &victim.token, None, 200).await;
    let mut expected = victim.job.clone();
    expected["last_execution"] = now["last_execution"].clone();
    assert_eq!(now, expected, "another tenant changed the job");
    assert_eq!(now["last_execution"]["id"], victim.execution_id.as_str());
    let page = call_ok(
        app,
        Method::GET,
        &jobs_path(&victim.org),
        &victim.token,
        None,
        200,
    )
    .await;
    assert_eq!(
        page["data"].as_array().unwrap().len(),
        1,
        "another tenant added a job"
    );
    let page = call_ok(
        app,
        Method::GET,
        &format!("{path}/executions"),
        &victim.token,
        None,
        200,
    )
    .await;
    assert_eq!(
        page["data"].as_array().unwrap().len(),
        1,
        "another tenant ran the job"
    );
}

#[tokio::test]
async fn another_organizations_user_and_api_key_get_404_everywhere() {
    let app = spawn_app().await;
    let victim = victim(&app).await;
    let (intruder, intruder_org) = owner_with_org(&app).await;
    let intruder_key = app.create_api_key(&intruder, &intruder_org, "admin").await;
    let job_id = victim.job["id"].as_str().unwrap();

    for token in [&intruder.access_token, &intruder_key] {
        // The victim's organization, with the victim's ids.
        for (method, path, body) in routes(&victim.org, job_id, &victim.execution_id) {
            let response = call(&app, method.clone(), &path, token, body.as_ref()).await;
            problem(response, 404).await;
        }
        // The intruder's own organization, with the victim's ids.
        for (method, path, body) in routes(&intruder_org, job_id, &victim.execution_id) {
            if body.is_some()
                && matches!(method, Method::POST | Method::PUT)
                && !path.contains(job_id)
            {
                continue; // creating in one's own organization is fine
            }
            if method == Method::GET && !path.contains(job_id) && !path.contains("/executions/") {
                continue; // listing one's own (empty) jobs is fine
            }
            let response = call(&app, method.clone(), &path, token, body.as_ref()).await;
            problem(response, 404).await;
        }
    }
    assert_untouched(&app, &victim).await;
}

#[tokio::test]
async fn a_user_without_membership_and_anonymous_callers_are_refused() {
    let app = spawn_app().await;
    let victim = victim(&app).await;
    let stranger = app.register_user().await;
    let job_id = victim.job["id"].as_str().unwrap();
    for (method, path, body) in routes(&victim.org, job_id, &victim.execution_id) {
        let response = call(
            &app,
            method.clone(),
            &path,
            &stranger.access_token,
            body.as_ref(),
        )
        .await;
        problem(response, 404).await;
        let mut anonymous = app.request(method.clone(), &path);
        if let Some(body) = &body {
            anonymous = anonymous.json(body);
        }
        let response = anonymous.send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        problem(response, 401).await;
    }
    assert_untouched(&app, &victim).await;
}

#[tokio::test]
async fn members_and_member_api_keys_manage_jobs() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let member = app.register_user().await;
    app.add_member(&org, &member, "member").await;
    let member_key = app.create_api_key(&owner, &org, "member").await;

    for (i, token) in [member.access_token.clone(), member_key].iter().enumerate() {
        let created = create_job(&app, token, &org, &job(&format!("by member {i}"))).await;
        let id = created["id"].as_str().unwrap();
        let path = job_path(&org, id);
        call_ok(&app, Method::GET, &jobs_path(&org), token, None, 200).await;
        call_ok(&app, Method::GET, &path, token, None, 200).await;
        let patched = call_ok(
            &app,
            Method::PATCH,
            &path,
            token,
            Some(&json!({"name": "renamed"})),
            200,
        )
        .await;
        assert_eq!(patched["name"], "renamed");
        call_ok(
            &app,
            Method::PUT,
            &format!("{}/by-key/member-{i}", jobs_path(&org)),
            token,
            Some(&job("upserted")),
            201,
        )
        .await;
        call_ok(
            &app,
            Method::POST,
            &format!("{path}/pause"),
            token,
            None,
            200,
        )
        .await;
        call_ok(
            &app,
            Method::POST,
            &format!("{path}/resume"),
            token,
            None,
            200,
        )
        .await;
        let run = call_ok(
            &app,
            Method::POST,
            &format!("{path}/trigger"),
            token,
            None,
            202,
        )
        .await;
        call_ok(
            &app,
            Method::GET,
            &format!("{path}/executions"),
            token,
            None,
            200,
        )
        .await;
        call_ok(
            &app,
            Method::GET,
            &format!(
                "/api/v1/orgs/{}/executions/{}",
                org.slug,
                run["id"].as_str().unwrap()
            ),
            token,
            None,
            200,
        )
        .await;
        let response = call(&app, Method::DELETE, &path, token, None).await;
        assert_eq!(response.status(), 204);
    }
    // The owner sees what members made.
    let page = call_ok(
        &app,
        Method::GET,
        &jobs_path(&org),
        &owner.access_token,
        None,
        200,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
}
