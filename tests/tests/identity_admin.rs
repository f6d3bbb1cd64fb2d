//! The internal admin endpoints (issue 3): the service token and platform admins
//! list organizations and users, set plans, suspend organizations, disable users
//! and read platform counts; nobody else can.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jobs_support;

use punctual_tests::{invalid_fields, problem, spawn_app_with, unauthorized, TestApp, TestUser};
use reqwest::Method;
use serde_json::{json, Value};

fn service_token() -> String {
    "x".repeat(40)
}

async fn app() -> TestApp {
    spawn_app_with(|s| s.admin.service_token = service_token()).await
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// `GET path` with an optional bearer token, expecting 200 and JSON.
async fn get_json(app: &TestApp, path: &str, token: Option<&str>) -> Value {
    json_of(app.call(Method::GET, path, token, None).await, 200).await
}

async fn platform_admin(app: &TestApp) -> TestUser {
    let staff = app.register_user().await;
    punctual_api::service::admin::grant_platform_admin(&app.database, &staff.email)
        .await
        .unwrap();
    staff
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_service_token_and_platform_admins_administer_the_platform() {
    let app = app().await;
    let staff = platform_admin(&app).await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let tokens = [
        ("service token", service_token()),
        ("platform admin", staff.access_token.clone()),
    ];
    for (who, token) in &tokens {
        let token = Some(token.as_str());
        let orgs = get_json(&app, "/api/v1/admin/orgs", token).await;
        assert!(ids(&orgs).contains(&org.id), "{who}: {orgs}");
        let listed = orgs["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == org.id.as_str())
            .unwrap();
        assert_eq!(listed["slug"], org.slug.as_str());
        assert_eq!(listed["jobs"], 0, "{who}: usage is included");
        assert!(listed["executions_this_period"].is_number());
        assert!(!orgs.to_string().contains(&org.signing_secret));

        let one = get_json(&app, &format!("/api/v1/admin/orgs/{}", org.slug), token).await;
        assert_eq!(one["id"], org.id.as_str());
        problem(
            app.call(Method::GET, "/api/v1/admin/orgs/no-such-org", token, None)
                .await,
            404,
        )
        .await;

        let users = get_json(&app, "/api/v1/admin/users", token).await;
        assert!(ids(&users).contains(&owner.id), "{who}");
        assert!(ids(&users).contains(&staff.id), "{who}");
        let text = users.to_string();
        assert!(!text.contains("argon2") && !text.contains(&owner.password));

        let stats = get_json(&app, "/api/v1/admin/stats", token).await;
        assert_eq!(stats["organizations"], 1, "{who}: {stats}");
        assert_eq!(stats["users"], 2, "{who}: {stats}");
        assert_eq!(stats["jobs"], 0, "{who}: {stats}");
        assert!(stats["executions_last_24h"].is_object(), "{who}: {stats}");
    }
}

/// The overview reports how late the engine runs: the most overdue job and the
/// lag of the attempts started in the last five minutes.
#[tokio::test]
async fn stats_report_the_engine_lag() {
    use punctual_persistence::entities::execution;
    use punctual_persistence::sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
    let app = app().await;
    let staff = platform_admin(&app).await;
    let (owner, org) = jobs_support::owner_with_org(&app).await;
    let created = jobs_support::create_job(
        &app,
        &owner.access_token,
        &org,
        &jobs_support::job("lagging"),
    )
    .await;
    let job_id = created["id"].as_str().unwrap();
    let now = chrono::Utc::now();
    // Two attempts within the window (lags 10 and 30 ms), one before it.
    for (seconds_ago, lag) in [(60, 10), (30, 30), (600, 5_000)] {
        let at = now - chrono::Duration::seconds(seconds_ago);
        let id = jobs_support::insert_execution(&app, &org, job_id, "success", at).await;
        execution::Entity::update_many()
            .col_expr(execution::Column::LagMs, Expr::value(lag))
            .filter(execution::Column::Id.eq(id))
            .exec(app.database.conn())
            .await
            .unwrap();
    }
    let stats = get_json(&app, "/api/v1/admin/stats", Some(&staff.access_token)).await;
    let lag = &stats["engine_lag"];
    assert_eq!(lag["overdue_ms"], 0, "{stats}");
    assert_eq!(lag["last_5_minutes"]["executions"], 2, "{stats}");
    assert_eq!(lag["last_5_minutes"]["mean_ms"], 20, "{stats}");
    assert_eq!(lag["last_5_minutes"]["max_ms"], 30, "{stats}");
}

/// The service token calls the internal admin endpoints only: to an
/// organization's own routes it is a stranger (404), so a leaked token does not
/// read tenants' secrets, mint their keys or delete them.
#[tokio::test]
async fn the_service_token_is_a_stranger_to_organizations() {
    let app = app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let base = format!("/api/v1/orgs/{}", org.slug);
    let token = service_token();
    for (method, path, body) in [
        (Method::GET, base.clone(), None),
        (Method::GET, format!("{base}/signing-secret"), None),
        (Method::GET, format!("{base}/jobs"), None),
        (
            Method::POST,
            format!("{base}/api-keys"),
            Some(json!({"name": "x", "role": "admin"})),
        ),
        (Method::DELETE, base.clone(), None),
    ] {
        let response = app
            .call(method.clone(), &path, Some(&token), body.as_ref())
            .await;
        assert_eq!(response.status(), 404, "{method} {path}");
    }
    get_json(
        &app,
        &format!("/api/v1/admin/orgs/{}", org.slug),
        Some(&token),
    )
    .await;
    get_json(&app, &base, Some(&owner.access_token)).await;
}

#[tokio::test]
async fn plans_are_set_from_the_configured_ones() {
    let app = app().await;
    let staff = platform_admin(&app).await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let path = format!("/api/v1/admin/orgs/{}", org.slug);
    for (token, plan) in [
        (service_token(), "pro"),
        (staff.access_token.clone(), "free"),
    ] {
        let updated = json_of(
            app.call(
                Method::PATCH,
                &path,
                Some(&token),
                Some(&json!({"plan": plan})),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(updated["plan"], plan);
        let seen = get_json(
            &app,
            &format!("/api/v1/orgs/{}", org.slug),
            Some(&owner.access_token),
        )
        .await;
        assert_eq!(seen["plan"], plan, "the organization's members see it");
    }
    let response = app
        .call(
            Method::PATCH,
            &path,
            Some(&service_token()),
            Some(&json!({"plan": "platinum"})),
        )
        .await;
    assert_eq!(invalid_fields(response).await, ["plan"]);
    let seen = json_of(
        app.call(Method::GET, &path, Some(&service_token()), None)
            .await,
        200,
    )
    .await;
    assert_eq!(seen["plan"], "free", "an unknown plan changes nothing");
}

#[tokio::test]
async fn a_disabled_user_can_neither_sign_in_nor_use_their_sessions() {
    let app = app().await;
    let staff = platform_admin(&app).await;
    let user = app.register_user().await;
    let org = app.create_org(&user).await;
    let key = app.create_api_key(&user, &org, "member").await;
    let path = format!("/api/v1/admin/users/{}", user.id);

    let disabled = json_of(
        app.call(
            Method::PATCH,
            &path,
            Some(&staff.access_token),
            Some(&json!({"disabled": true})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(disabled["disabled"], true);

    // Their login looks like any failed login.
    let refused = unauthorized(app.login(&user.email, &user.password).await).await;
    let wrong = unauthorized(app.login(&user.email, "wrong password").await).await;
    assert_eq!(refused, wrong);
    unauthorized(app.me(&user.access_token).await).await;
    unauthorized(app.refresh(&user.refresh_token).await).await;
    // No magic link or reset for a disabled account either.
    let response = app
        .post_json(
            "/api/v1/auth/magic-link",
            None,
            &json!({"email": user.email}),
        )
        .await;
    assert_eq!(response.status(), 202);
    assert!(app.emails_to(&user.email).await.is_empty());
    // The organization's keys are the organization's, not the user's.
    assert_eq!(
        app.call(
            Method::GET,
            &format!("/api/v1/orgs/{}", org.slug),
            Some(&key),
            None
        )
        .await
        .status(),
        200
    );

    // Enabled again: they can sign in, but the old sessions stay revoked.
    let enabled = json_of(
        app.call(
            Method::PATCH,
            &path,
            Some(&service_token()),
            Some(&json!({"disabled": false})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(enabled["disabled"], false);
    assert_eq!(app.login(&user.email, &user.password).await.status(), 200);
    unauthorized(app.me(&user.access_token).await).await;
}

#[tokio::test]
async fn platform_admin_can_be_granted_and_withdrawn_over_the_api() {
    let app = app().await;
    let user = app.register_user().await;
    let path = format!("/api/v1/admin/users/{}", user.id);
    problem(
        app.call(
            Method::GET,
            "/api/v1/admin/stats",
            Some(&user.access_token),
            None,
        )
        .await,
        403,
    )
    .await;
    let granted = json_of(
        app.call(
            Method::PATCH,
            &path,
            Some(&service_token()),
            Some(&json!({"is_platform_admin": true})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(granted["is_platform_admin"], true);
    // Checked per request: the existing token gains the right at once...
    assert_eq!(
        app.call(
            Method::GET,
            "/api/v1/admin/stats",
            Some(&user.access_token),
            None
        )
        .await
        .status(),
        200
    );
    app.call(
        Method::PATCH,
        &path,
        Some(&service_token()),
        Some(&json!({"is_platform_admin": false})),
    )
    .await;
    // ...and loses it at once.
    problem(
        app.call(
            Method::GET,
            "/api/v1/admin/stats",
            Some(&user.access_token),
            None,
        )
        .await,
        403,
    )
    .await;
    problem(
        app.call(
            Method::PATCH,
            "/api/v1/admin/users/00000000-0000-0000-0000-000000000000",
            Some(&service_token()),
            Some(&json!({"disabled": true})),
        )
        .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn everyone_else_is_refused() {
    let app = app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let key = app.create_api_key(&owner, &org, "admin").await;
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/admin/orgs".to_owned(), None),
        (
            Method::GET,
            format!("/api/v1/admin/orgs/{}", org.slug),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/orgs/{}", org.slug),
            Some(json!({"plan": "pro", "suspended": true})),
        ),
        (Method::GET, "/api/v1/admin/users".to_owned(), None),
        (
            Method::PATCH,
            format!("/api/v1/admin/users/{}", owner.id),
            Some(json!({"is_platform_admin": true})),
        ),
        (Method::GET, "/api/v1/admin/stats".to_owned(), None),
    ];
    let wrong_service_token = "y".repeat(40);
    let almost = format!("{}y", "x".repeat(39));
    for (method, path, body) in &routes {
        // An organization owner is not a platform admin; neither is an admin key.
        for (who, token) in [
            ("owner", owner.access_token.as_str()),
            ("admin key", key.as_str()),
        ] {
            let response = app
                .call(method.clone(), path, Some(token), body.as_ref())
                .await;
            assert_eq!(response.status(), 403, "{who}: {method} {path}");
            problem(response, 403).await;
        }
        for token in [wrong_service_token.as_str(), almost.as_str()] {
            let response = app
                .call(method.clone(), path, Some(token), body.as_ref())
                .await;
            unauthorized(response).await;
        }
        unauthorized(app.call(method.clone(), path, None, body.as_ref()).await).await;
    }
    // Nothing was changed by the refused calls.
    let seen = get_json(
        &app,
        &format!("/api/v1/orgs/{}", org.slug),
        Some(&owner.access_token),
    )
    .await;
    assert_eq!(seen["plan"], "free");
    assert_eq!(seen["suspended"], false);
}

#[tokio::test]
async fn without_a_configured_service_token_no_token_is_the_service_token() {
    let app = spawn_app_with(|_| {}).await;
    for token in ["", " "] {
        let response = app
            .request(Method::GET, "/api/v1/admin/stats")
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        unauthorized(response).await;
    }
}

#[tokio::test]
async fn admin_lists_are_paginated() {
    let app = app().await;
    let owner = app.register_user().await;
    let mut created = Vec::new();
    for _ in 0..3 {
        created.push(app.create_org(&owner).await.id);
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/admin/orgs?limit=2".to_owned();
    loop {
        let page = json_of(
            app.call(Method::GET, &path, Some(&service_token()), None)
                .await,
            200,
        )
        .await;
        assert!(page["data"].as_array().unwrap().len() <= 2);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/admin/orgs?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    seen.sort();
    created.sort();
    assert_eq!(seen, created);
}

#[tokio::test]
async fn job_counts_follow_creations_and_deletions_in_every_organization() {
    let app = app().await;
    let token = service_token();
    let token = Some(token.as_str());
    let job = json!({
        "name": "counted",
        "request": {"url": "http://127.0.0.1:9/hook", "method": "GET"},
        "schedule": {"type": "cron", "cron": "0 0 1 1 *", "timezone": "UTC"},
    });
    let mut orgs = Vec::new();
    for jobs in [3, 1] {
        let owner = app.register_user().await;
        let org = app.create_org(&owner).await;
        let mut ids = Vec::new();
        for _ in 0..jobs {
            let path = format!("/api/v1/orgs/{}/jobs", org.slug);
            let created = json_of(
                app.call(Method::POST, &path, Some(&owner.access_token), Some(&job))
                    .await,
                201,
            )
            .await;
            ids.push(created["id"].as_str().unwrap().to_owned());
        }
        orgs.push((owner, org, ids));
    }
    let (owner, org, ids) = &orgs[0];
    let path = format!("/api/v1/orgs/{}/jobs/{}", org.slug, ids[0]);
    let deleted = app
        .call(Method::DELETE, &path, Some(&owner.access_token), None)
        .await;
    assert_eq!(deleted.status().as_u16(), 204);

    let stats = get_json(&app, "/api/v1/admin/stats", token).await;
    assert_eq!(stats["jobs"], 3, "{stats}");
    for ((owner, org, _), jobs) in orgs.iter().zip([2, 1]) {
        let one = get_json(&app, &format!("/api/v1/admin/orgs/{}", org.slug), token).await;
        assert_eq!(one["jobs"], jobs, "{one}");
        let usage = get_json(
            &app,
            &format!("/api/v1/orgs/{}/usage", org.slug),
            Some(&owner.access_token),
        )
        .await;
        assert_eq!(usage["jobs"]["used"], jobs, "{usage}");
    }
}

/// An organization suspended just before one of its jobs' time (the occurrence
/// already claimed ahead by the engine) sends nothing: suspending wakes the
/// engine, which gives up the claims of suspended organizations.
#[tokio::test]
async fn a_suspension_gives_up_runs_claimed_ahead() {
    let app = app().await;
    let staff = platform_admin(&app).await;
    let (owner, org) = jobs_support::owner_with_org(&app).await;
    let target = wiremock::MockServer::start().await;
    let mut body = jobs_support::job("suspended soon");
    body["request"]["url"] = json!(target.uri());
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    body["schedule"] = json!({"type": "once", "at": at.to_rfc3339()});
    jobs_support::create_job(&app, &owner.access_token, &org, &body).await;
    let suspended = app
        .call(
            Method::PATCH,
            &format!("/api/v1/admin/orgs/{}", org.slug),
            Some(&staff.access_token),
            Some(&json!({"suspended": true})),
        )
        .await;
    assert_eq!(suspended.status(), 200);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(target.received_requests().await.unwrap().is_empty());
}
