//! The console in a real browser (headless Chromium through chromedriver): a
//! person registers, creates a job against a local HTTP server, sees it fire and
//! its execution appear, pauses it and sees the usage meter move; a member is not
//! offered the admin pages; another organization's job is a 404 page. Screenshots
//! of the main pages at desktop and phone width go to `docs/screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use fantoccini::Locator;
use punctual_tests::browser::{Browser, DESKTOP, PHONE};
use punctual_tests::{spawn_app, spawn_app_with, TestOrg};
use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The executions-this-period figure on the usage page.
fn executions_used(usage_page: &str) -> u64 {
    let start = usage_page
        .find("<strong class=\"used\">")
        .expect("a usage meter")
        + "<strong class=\"used\">".len();
    usage_page[start..]
        .split('<')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .expect("a number")
}

#[tokio::test]
async fn register_create_a_job_see_it_fire_pause_it_and_see_usage_move() {
    // A small plan, so the meters show something.
    let app = spawn_app_with(|settings| {
        if let Some(free) = settings.plans.get_mut("free") {
            free.executions_per_month = 100;
            free.max_jobs = 10;
        }
    })
    .await;
    let target = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"ok\":true}"))
        .mount(&target)
        .await;
    let browser = Browser::start().await;
    let base = &app.address;

    // Register with an organization.
    browser.goto(&format!("{base}/register")).await;
    browser.fill("email", "ada@example.com").await;
    browser
        .fill("password", "correct horse battery staple")
        .await;
    browser.fill("name", "Ada").await;
    browser.fill("org_name", "Acme Analytics").await;
    browser.fill("org_slug", "acme").await;
    browser.screenshot("register-desktop", DESKTOP).await;
    browser.screenshot("register-phone", PHONE).await;
    browser.set_viewport(DESKTOP).await;
    browser.click("form button[type=submit]").await;
    browser
        .wait_for_text("No jobs here yet", Duration::from_secs(10), false)
        .await;

    // The usage meter before anything ran.
    browser.goto(&format!("{base}/orgs/acme/usage")).await;
    assert_eq!(executions_used(&browser.source().await), 0);

    // A job that runs every second against the local server.
    browser.goto(&format!("{base}/orgs/acme/jobs")).await;
    browser.click("a.button[href='/orgs/acme/jobs/new']").await;
    browser.fill("name", "heartbeat").await;
    browser
        .fill("url", &format!("{}/heartbeat", target.uri()))
        .await;
    browser.choose("method", "POST").await;
    browser
        .fill("headers", "Content-Type: application/json")
        .await;
    browser.fill("body", "{\"ping\":1}").await;
    browser.fill("cron", "* * * * * *").await;
    browser.fill("timezone", "Europe/Oslo").await;
    browser.fill("max_attempts", "1").await;
    browser.screenshot("job-form-desktop", DESKTOP).await;
    browser.screenshot("job-form-phone", PHONE).await;
    browser.set_viewport(DESKTOP).await;
    browser.click("form.job button[type=submit]").await;
    browser
        .wait_for_text("Job created", Duration::from_secs(10), false)
        .await;
    let job_url = browser.client.current_url().await.unwrap();
    let job_url = job_url.as_str().split('?').next().unwrap().to_owned();

    // It fires: an execution appears on the job's page, with the chart.
    browser.goto(&job_url).await;
    browser
        .wait_for_text("badge success\">success", Duration::from_secs(30), true)
        .await;
    assert!(!target.received_requests().await.unwrap().is_empty());
    // A few more runs make the chart worth a look.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while target.received_requests().await.unwrap().len() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job stopped firing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.goto(&job_url).await;
    let page = browser.source().await;
    assert!(page.contains("<svg") && page.contains("polyline"));
    browser.screenshot("job-desktop", DESKTOP).await;
    browser.screenshot("job-phone", PHONE).await;
    browser.set_viewport(DESKTOP).await;

    // The jobs list while it runs.
    browser.goto(&format!("{base}/orgs/acme/jobs")).await;
    browser
        .wait_for_text("every second", Duration::from_secs(5), false)
        .await;
    browser.screenshot("jobs-desktop", DESKTOP).await;
    browser.screenshot("jobs-phone", PHONE).await;
    browser.set_viewport(DESKTOP).await;
    browser.goto(&job_url).await;

    // The execution's page: the request sent and the response kept.
    // The newest row may be the next run, claimed ahead and not started yet.
    browser
        .click("table.executions tbody tr:has(.badge.success) a")
        .await;
    let execution = browser
        .wait_for_text("Response kept", Duration::from_secs(10), false)
        .await;
    assert!(execution.contains("{\"ok\":true}") || execution.contains("{&quot;ok&quot;:true}"));
    browser.screenshot("execution-desktop", DESKTOP).await;
    browser.screenshot("execution-phone", PHONE).await;
    browser.set_viewport(DESKTOP).await;

    // Pause it.
    browser.goto(&job_url).await;
    browser.click("form[action$='/pause'] button").await;
    browser
        .wait_for_text("Job paused.", Duration::from_secs(10), false)
        .await;
    assert!(browser
        .client
        .find(Locator::Css("form[action$='/resume'] button"))
        .await
        .is_ok());
    let paused = app.get("/health").await.status();
    assert_eq!(paused, 200);

    // The jobs list shows it paused.
    browser.goto(&format!("{base}/orgs/acme/jobs")).await;
    browser
        .wait_for_text("Paused", Duration::from_secs(5), false)
        .await;

    // The usage meter moved.
    browser.goto(&format!("{base}/orgs/acme/usage")).await;
    let used = executions_used(&browser.source().await);
    assert!(used >= 1, "executions used: {used}");
    browser.screenshot("usage-desktop", DESKTOP).await;
    browser.screenshot("usage-phone", PHONE).await;
    browser.set_viewport(DESKTOP).await;

    // What happened, in the audit log.
    browser.goto(&format!("{base}/orgs/acme/audit")).await;
    browser
        .wait_for_text("job.paused", Duration::from_secs(5), false)
        .await;
    browser.screenshot("audit-desktop", DESKTOP).await;
    browser.close().await;
}

#[tokio::test]
async fn a_member_is_not_offered_admin_pages_and_other_orgs_jobs_are_404() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let member = app.register_user().await;
    app.add_member(&org, &member, "member").await;
    // Another organization with a job.
    let stranger = app.register_user().await;
    let other: TestOrg = app.create_org(&stranger).await;
    let job = app
        .post_json(
            &format!("/api/v1/orgs/{}/jobs", other.slug),
            Some(&stranger.access_token),
            &json!({"name": "theirs", "request": {"url": "http://127.0.0.1:9/x"},
                    "schedule": {"type": "cron", "cron": "0 0 1 1 *"}}),
        )
        .await;
    assert_eq!(job.status(), 201);
    let job: serde_json::Value = job.json().await.unwrap();
    let job_id = job["id"].as_str().unwrap();

    let browser = Browser::start().await;
    let base = &app.address;
    browser.goto(&format!("{base}/login")).await;
    browser.fill("email", &member.email).await;
    browser.fill("password", &member.password).await;
    browser.screenshot("sign-in-desktop", DESKTOP).await;
    browser.screenshot("sign-in-phone", PHONE).await;
    browser.set_viewport(DESKTOP).await;
    browser.click("form button[type=submit]").await;
    let jobs = browser
        .wait_for_text("No jobs here yet", Duration::from_secs(10), false)
        .await;
    for hidden in [
        "api-keys",
        "invitations",
        "notifications",
        "signing-secret",
        "audit",
    ] {
        assert!(
            !jobs.contains(&format!("/orgs/{}/{hidden}", org.slug)),
            "a member is offered {hidden}"
        );
    }
    assert!(jobs.contains(&format!("/orgs/{}/usage", org.slug)));
    browser
        .goto(&format!("{base}/orgs/{}/api-keys", org.slug))
        .await;
    let refused = browser.source().await;
    assert!(refused.contains("403 Forbidden"), "{refused}");

    // Another organization's job, under either slug: a 404 page.
    browser
        .goto(&format!("{base}/orgs/{}/jobs/{job_id}", other.slug))
        .await;
    assert!(browser.source().await.contains("404 Not Found"));
    browser
        .goto(&format!("{base}/orgs/{}/jobs/{job_id}", org.slug))
        .await;
    let page = browser.source().await;
    assert!(page.contains("404 Not Found") && !page.contains("theirs"));
    browser.screenshot("not-found-desktop", DESKTOP).await;
    browser.close().await;
}
