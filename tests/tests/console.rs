//! The web console over HTTP, request by request: every route answers its page,
//! its redirect, or an HTML error page (never a 500 on bad input); forms need the
//! CSRF token; sessions renew themselves; tenancy and roles hold as in the API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use punctual_tests::console::{first_link, wait_until, ConsoleClient};
use punctual_tests::{spawn_app, unique, TestApp};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

const PASSWORD: &str = "correct horse battery staple";

fn email() -> String {
    format!("{}@example.com", unique("person"))
}

/// The standard job form, with `overrides` replacing fields by name.
fn job_fields<'a>(url: &'a str, overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("name", "nightly report"),
        ("key", ""),
        ("url", url),
        ("method", "POST"),
        ("headers", "X-Token: abc\nContent-Type: text/plain"),
        ("body", "hello"),
        ("timeout_ms", "5000"),
        ("schedule_type", "cron"),
        ("cron", "0 3 * * *"),
        ("timezone", "Europe/Oslo"),
        ("at", ""),
        ("max_attempts", "1"),
        ("min_backoff_ms", "1000"),
        ("max_backoff_ms", "60000"),
        ("concurrency", "allow"),
        ("missed_runs", "skip"),
        ("catch_up_grace_seconds", "3600"),
        ("enabled", "on"),
    ];
    for (name, value) in overrides {
        fields.retain(|(n, _)| n != name);
        if !value.is_empty() || *name != "enabled" {
            fields.push((name, value));
        }
    }
    fields
}

/// Creates a job through the form; returns its id.
async fn create_job(console: &ConsoleClient, slug: &str, fields: &[(&str, &str)]) -> String {
    let page = console
        .post(&format!("/orgs/{slug}/jobs"), fields)
        .await
        .redirects_to(&format!("/orgs/{slug}/jobs/"));
    let location = page.location.unwrap();
    location
        .trim_start_matches(&format!("/orgs/{slug}/jobs/"))
        .split('?')
        .next()
        .unwrap()
        .to_owned()
}

async fn signed_up(app: &TestApp) -> (ConsoleClient, String, String) {
    let console = ConsoleClient::new(app);
    let email = email();
    let slug = console.register(&email).await;
    (console, email, slug)
}

#[tokio::test]
async fn the_stylesheet_is_embedded_and_anonymous_visitors_are_sent_to_sign_in() {
    let app = spawn_app().await;
    let visitor = ConsoleClient::new(&app);
    let css = visitor.get("/assets/console.css").await.expect(200);
    assert!(css.content_type.starts_with("text/css"));
    assert!(css.body.contains("--accent"));

    visitor.get("/").await.redirects_to("/login?next=%2F");
    visitor
        .get("/orgs")
        .await
        .redirects_to("/login?next=%2Forgs");
    let fresh = ConsoleClient::new(&app);
    let login = fresh.get("/login?next=/orgs").await.expect(200).html();
    let login = login
        .contains("name=\"_csrf\"")
        .contains("<label for=\"email\">")
        .contains("value=\"/orgs\"");
    assert!(login
        .set_cookies
        .iter()
        .any(|c| c.starts_with("punctual_csrf=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Lax")));
    // The API keeps its own answers.
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn register_validates_next_to_the_fields_then_signs_in() {
    let app = spawn_app().await;
    let visitor = ConsoleClient::new(&app);
    visitor.get("/register").await.expect(200).html();
    let refused = visitor
        .post(
            "/register",
            &[
                ("email", "not-an-email"),
                ("password", "short"),
                ("org_name", "Acme"),
                ("org_slug", "Not A Slug"),
            ],
        )
        .await
        .expect(422)
        .html()
        .contains("id=\"email-error\"")
        .contains("id=\"password-error\"")
        .contains("id=\"org_slug-error\"")
        .contains("aria-invalid=\"true\"");
    assert!(refused
        .set_cookies
        .iter()
        .all(|c| !c.starts_with("punctual_access=")));

    let email = email();
    let slug = visitor.register(&email).await;
    let session = visitor.cookie("punctual_refresh").unwrap();
    assert!(!session.is_empty());
    visitor
        .get(&format!("/orgs/{slug}/jobs"))
        .await
        .expect(200)
        .contains(&email)
        .contains("Console Org");
    visitor
        .get("/")
        .await
        .redirects_to(&format!("/orgs/{slug}/jobs"));

    // The same email again is a conflict shown on the form.
    let other = ConsoleClient::new(&app);
    other
        .post(
            "/register",
            &[
                ("email", &email),
                ("password", PASSWORD),
                ("org_name", "B"),
                ("org_slug", &unique("b")),
            ],
        )
        .await
        .expect(409)
        .html()
        .contains("role=\"alert\"");
}

#[tokio::test]
async fn sign_in_sign_out_and_a_safe_next() {
    let app = spawn_app().await;
    let user = app.register_user().await;
    let visitor = ConsoleClient::new(&app);
    visitor
        .post(
            "/login",
            &[("email", &user.email), ("password", "wrong password!")],
        )
        .await
        .expect(401)
        .html()
        .contains("Invalid email or password");
    visitor
        .post(
            "/login",
            &[
                ("email", &user.email),
                ("password", &user.password),
                ("next", "//evil.example/x"),
            ],
        )
        .await
        .redirects_to("/")
        .expect(303);
    let page = visitor.get("/").await;
    assert_eq!(
        page.location.as_deref(),
        Some("/orgs"),
        "no organization yet"
    );
    visitor
        .get("/orgs")
        .await
        .expect(200)
        .contains("not a member of any organization");

    let refresh = visitor.cookie("punctual_refresh").unwrap();
    let signed_out = visitor.post("/logout", &[]).await.redirects_to("/login");
    assert!(signed_out
        .set_cookies
        .iter()
        .any(|c| c.starts_with("punctual_refresh=;")));
    visitor.get("/orgs").await.redirects_to("/login");
    // Signing out ended the API session too.
    assert_eq!(app.refresh(&refresh).await.status(), 401);

    let next = ConsoleClient::new(&app);
    next.post(
        "/login",
        &[
            ("email", &user.email),
            ("password", &user.password),
            ("next", "/orgs"),
        ],
    )
    .await
    .redirects_to("/orgs");
}

#[tokio::test]
async fn an_expired_access_cookie_is_renewed_transparently_even_twice_at_once() {
    let app = spawn_app().await;
    let (console, _, slug) = signed_up(&app).await;
    let first_refresh = console.cookie("punctual_refresh").unwrap();
    console.forget_cookie("punctual_access");
    // Two requests race with the same refresh token: both succeed, one rotation.
    let path = format!("/orgs/{slug}/jobs");
    let (a, b) = tokio::join!(console.get(&path), console.get(&path));
    assert_eq!((a.status, b.status), (200, 200));
    assert!(a
        .set_cookies
        .iter()
        .any(|c| c.starts_with("punctual_access=")));
    let renewed = console.cookie("punctual_refresh").unwrap();
    assert_ne!(renewed, first_refresh);
    console.get(&path).await.expect(200);
    // A garbage session is a sign-in redirect that clears the cookies.
    let stranger = ConsoleClient::new(&app);
    stranger.set_cookie("punctual_access", "garbage");
    stranger.set_cookie("punctual_refresh", "garbage");
    let page = stranger.get(&path).await.redirects_to("/login");
    assert!(page
        .set_cookies
        .iter()
        .any(|c| c.starts_with("punctual_access=;")));
}

/// The grace that lets a browser race itself with one refresh token does not
/// cover another browser: a rotated refresh cookie presented from elsewhere is
/// theft, answered with a sign-in and the end of the session it came from.
#[tokio::test]
async fn a_rotated_refresh_cookie_replayed_by_another_browser_ends_the_session() {
    let app = spawn_app().await;
    let (console, _, slug) = signed_up(&app).await;
    let stolen = console.cookie("punctual_refresh").unwrap();
    console.forget_cookie("punctual_access");
    let path = format!("/orgs/{slug}/jobs");
    console.get(&path).await.expect(200);
    assert_ne!(
        console.cookie("punctual_refresh").unwrap(),
        stolen,
        "rotated"
    );

    let thief = ConsoleClient::new(&app);
    thief.set_cookie("punctual_refresh", &stolen);
    let page = thief
        .send(
            thief
                .request(reqwest::Method::GET, &path)
                .header("user-agent", "another-browser/1.0"),
        )
        .await
        .redirects_to("/login");
    assert!(
        !page
            .set_cookies
            .iter()
            .any(|c| c.starts_with("punctual_refresh=") && !c.starts_with("punctual_refresh=;")),
        "no session for the thief: {:?}",
        page.set_cookies
    );
    // Reuse was detected: the victim's session ended too.
    console.forget_cookie("punctual_access");
    console.get(&path).await.redirects_to("/login");
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let app = spawn_app().await;
    let (console, _, slug) = signed_up(&app).await;
    let target = format!("/orgs/{slug}/jobs");
    let fields = job_fields("http://127.0.0.1:9/hook", &[]);
    console
        .post_raw(&target, &fields)
        .await
        .expect(403)
        .html()
        .contains("security token");
    let mut wrong = fields.clone();
    wrong.push(("_csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    console.post_raw(&target, &wrong).await.expect(403).html();
    // The right token from another site is refused by its Origin.
    let token = console.cookie("punctual_csrf").unwrap();
    let mut with_token = fields.clone();
    with_token.push(("_csrf", &token));
    let page = console
        .send(
            console
                .request(reqwest::Method::POST, &target)
                .header("origin", "https://evil.example")
                .form(&with_token),
        )
        .await;
    page.expect(403).html();
    // Not a form at all.
    let page = console
        .send(
            console
                .request(reqwest::Method::POST, &target)
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
    page.expect(415).html();
    // Nothing was created.
    console
        .get(&target)
        .await
        .expect(200)
        .contains("No jobs here yet");
    // Logging in needs the token too.
    let visitor = ConsoleClient::new(&app);
    visitor
        .post_raw(
            "/login",
            &[("email", "a@example.com"), ("password", PASSWORD)],
        )
        .await
        .expect(403);
}

#[tokio::test]
async fn jobs_are_created_listed_shown_edited_paused_run_and_deleted() {
    let app = spawn_app().await;
    let target = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("pong from the target"))
        .mount(&target)
        .await;
    let url = format!("{}/hook", target.uri());
    let (console, _, slug) = signed_up(&app).await;

    console
        .get(&format!("/orgs/{slug}/jobs/new"))
        .await
        .expect(200)
        .html()
        .contains("name=\"cron\"");

    // Validation: every problem next to its field, the form kept.
    let bad = job_fields(
        "ftp://example.com",
        &[
            ("cron", "61 * * * *"),
            ("timeout_ms", "soon"),
            ("name", "kept name"),
        ],
    );
    console
        .post(&format!("/orgs/{slug}/jobs"), &bad)
        .await
        .expect(422)
        .html()
        .contains("id=\"timeout_ms-error\"")
        .contains("value=\"kept name\"");
    let bad = job_fields(
        "ftp://example.com",
        &[("cron", "61 * * * *"), ("timezone", "Mars/Base")],
    );
    console
        .post(&format!("/orgs/{slug}/jobs"), &bad)
        .await
        .expect(422)
        .contains("id=\"url-error\"")
        .contains("id=\"cron-error\"")
        .contains("id=\"timezone-error\"");
    let bad = job_fields(&url, &[("headers", "no colon here")]);
    console
        .post(&format!("/orgs/{slug}/jobs"), &bad)
        .await
        .expect(422)
        .contains("id=\"headers-error\"");
    let bad = job_fields(&url, &[("schedule_type", "once"), ("at", "yesterday-ish")]);
    console
        .post(&format!("/orgs/{slug}/jobs"), &bad)
        .await
        .expect(422)
        .contains("id=\"at-error\"");

    let id = create_job(&console, &slug, &job_fields(&url, &[])).await;
    let job_page = format!("/orgs/{slug}/jobs/{id}");
    let page = console
        .get(&format!("{job_page}?done=created"))
        .await
        .expect(200)
        .contains("Job created")
        .contains("Next runs")
        .contains("POST ")
        .contains("Europe/Oslo");
    assert_eq!(
        page.body.matches("job&#39;s zone: ").count() + page.body.matches("job's zone: ").count(),
        5,
        "next 5 runs"
    );
    console
        .get(&format!("/orgs/{slug}/jobs"))
        .await
        .expect(200)
        .contains("nightly report")
        .contains("every day at 03:00")
        .contains("0 3 * * *")
        .contains("never ran");

    // Edit: rename, drop a header.
    console
        .get(&format!("{job_page}/edit"))
        .await
        .expect(200)
        .contains("value=\"nightly report\"")
        .contains("X-Token: abc");
    console
        .post(
            &format!("{job_page}/edit"),
            &job_fields(
                &url,
                &[("name", "renamed"), ("headers", "Content-Type: text/plain")],
            ),
        )
        .await
        .redirects_to(&format!("{job_page}?done=saved"));
    console
        .get(&job_page)
        .await
        .expect(200)
        .contains("renamed")
        .lacks("X-Token");
    console
        .post(
            &format!("{job_page}/edit"),
            &job_fields(&url, &[("cron", "nope")]),
        )
        .await
        .expect(422)
        .contains("id=\"cron-error\"");

    // Pause and resume.
    console
        .post(&format!("{job_page}/pause"), &[])
        .await
        .redirects_to(&format!("{job_page}?done=paused"));
    console
        .get(&job_page)
        .await
        .contains("paused")
        .contains(">Resume<");
    console
        .get(&format!("/orgs/{slug}/jobs?enabled=false"))
        .await
        .expect(200)
        .contains("renamed");
    console
        .get(&format!("/orgs/{slug}/jobs?enabled=true"))
        .await
        .expect(200)
        .lacks("renamed");
    console
        .post(&format!("{job_page}/resume"), &[])
        .await
        .redirects_to(&format!("{job_page}?done=resumed"));

    // Run now: the execution appears with its response, and the chart draws it.
    console
        .post(&format!("{job_page}/run"), &[])
        .await
        .redirects_to(&format!("{job_page}?done=triggered"));
    wait_until(
        Duration::from_secs(20),
        "the manual run to finish",
        || async {
            console
                .get(&job_page)
                .await
                .body
                .contains("badge success\">success")
        },
    )
    .await;
    let page = console
        .get(&job_page)
        .await
        .expect(200)
        .contains("<svg")
        .contains("polyline");
    assert!(!page.body.contains("http-equiv=\"refresh\""));
    console
        .get(&format!("{job_page}?live=1"))
        .await
        .expect(200)
        .contains("<meta http-equiv=\"refresh\" content=\"5\">")
        .contains("Stop live refresh");
    let execution =
        first_link(&page.body, &format!("/orgs/{slug}/executions/")).expect("an execution link");
    console
        .get(&execution)
        .await
        .expect(200)
        .contains("pong from the target")
        .contains("Content-Type: text/plain")
        .contains("200");

    // Delete, with a confirmation step.
    console
        .get(&format!("{job_page}/delete"))
        .await
        .expect(200)
        .contains("cannot be undone");
    console
        .post(&format!("{job_page}/delete"), &[])
        .await
        .redirects_to(&format!("/orgs/{slug}/jobs?done=deleted"));
    console.get(&job_page).await.expect(404).html();
    console.get(&execution).await.expect(404).html();
}

#[tokio::test]
async fn job_lists_and_histories_page_and_bad_queries_are_4xx_pages() {
    let app = spawn_app().await;
    let (console, _, slug) = signed_up(&app).await;
    for name in ["one", "two", "three"] {
        create_job(
            &console,
            &slug,
            &job_fields("http://127.0.0.1:9/x", &[("name", name)]),
        )
        .await;
    }
    let first = console
        .get(&format!("/orgs/{slug}/jobs?limit=2"))
        .await
        .expect(200);
    let next = first_link(&first.body, &format!("/orgs/{slug}/jobs?")).expect("a next page link");
    assert!(next.contains("cursor="));
    let second = console
        .get(&next)
        .await
        .expect(200)
        .contains("three")
        .lacks(">one<");
    assert!(second.body.contains("First page"));

    console
        .get(&format!("/orgs/{slug}/jobs?limit=0"))
        .await
        .expect(400)
        .html();
    console
        .get(&format!("/orgs/{slug}/jobs?limit=abc"))
        .await
        .expect(400)
        .html();
    console
        .get(&format!("/orgs/{slug}/jobs?cursor=garbage"))
        .await
        .expect(422)
        .html();
    console
        .get(&format!("/orgs/{slug}/jobs?enabled=maybe"))
        .await
        .expect(422)
        .html();
    console
        .get(&format!("/orgs/{slug}/jobs/not-a-uuid"))
        .await
        .expect(404)
        .html();
    console
        .get(&format!("/orgs/{slug}/jobs/{}", uuid::Uuid::now_v7()))
        .await
        .expect(404)
        .html();
    console
        .get(&format!("/orgs/{slug}/executions/nope"))
        .await
        .expect(404)
        .html();
    let id = create_job(&console, &slug, &job_fields("http://127.0.0.1:9/x", &[])).await;
    console
        .get(&format!("/orgs/{slug}/jobs/{id}?cursor=garbage"))
        .await
        .expect(422)
        .html();
    // Bodies that are not forms of ours.
    let page = console
        .send(
            console
                .request(reqwest::Method::POST, &format!("/orgs/{slug}/jobs"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "_csrf={}&%%%",
                    console.cookie("punctual_csrf").unwrap()
                )),
        )
        .await;
    assert!((400..500).contains(&page.status), "{}", page.status);
    assert!(page.content_type.starts_with("text/html"));
    let huge = "x".repeat(70 * 1024);
    console
        .post(
            &format!("/orgs/{slug}/jobs"),
            &job_fields("http://127.0.0.1:9/x", &[("body", &huge)]),
        )
        .await
        .expect(422)
        .contains("id=\"body-error\"");
    // No stored text may hold a NUL character (PostgreSQL refuses it).
    console
        .post(
            &format!("/orgs/{slug}/jobs"),
            &job_fields("http://127.0.0.1:9/x", &[("name", "a\u{0}b")]),
        )
        .await
        .expect(400)
        .contains("NUL");
    let many = "9".repeat(40);
    console
        .post(
            &format!("/orgs/{slug}/jobs"),
            &job_fields("http://127.0.0.1:9/x", &[("timeout_ms", &many)]),
        )
        .await
        .expect(422);
}

#[tokio::test]
async fn another_organizations_job_is_a_404_page() {
    let app = spawn_app().await;
    let (alice, _, alice_org) = signed_up(&app).await;
    let (bob, _, bob_org) = signed_up(&app).await;
    let id = create_job(&alice, &alice_org, &job_fields("http://127.0.0.1:9/x", &[])).await;
    alice
        .get(&format!("/orgs/{alice_org}/jobs/{id}"))
        .await
        .expect(200);
    // Under Alice's slug, and under Bob's own slug: not found either way.
    bob.get(&format!("/orgs/{alice_org}/jobs/{id}"))
        .await
        .expect(404)
        .html()
        .contains("not found");
    bob.get(&format!("/orgs/{bob_org}/jobs/{id}"))
        .await
        .expect(404)
        .html();
    bob.get(&format!("/orgs/{bob_org}/jobs/{id}/edit"))
        .await
        .expect(404)
        .html();
    bob.post(&format!("/orgs/{bob_org}/jobs/{id}/pause"), &[])
        .await
        .expect(404)
        .html();
    bob.post(&format!("/orgs/{bob_org}/jobs/{id}/delete"), &[])
        .await
        .expect(404)
        .html();
    bob.get(&format!("/orgs/{alice_org}/usage"))
        .await
        .expect(404)
        .html();
    alice
        .get(&format!("/orgs/{alice_org}/jobs/{id}"))
        .await
        .expect(200)
        .contains("nightly report");
}

#[tokio::test]
async fn members_see_what_their_role_allows() {
    let app = spawn_app().await;
    let (owner, _, slug) = signed_up(&app).await;
    let member_user = app.register_user().await;
    let org = punctual_tests::TestOrg {
        slug: slug.clone(),
        id: org_id_of(&app, &slug).await,
        signing_secret: String::new(),
    };
    app.add_member(&org, &member_user, "member").await;
    let member = ConsoleClient::new(&app);
    member
        .sign_in(&member_user.email, &member_user.password)
        .await;

    let jobs = member.get(&format!("/orgs/{slug}/jobs")).await.expect(200);
    jobs.lacks("/api-keys")
        .lacks("/invitations")
        .lacks("/notifications")
        .lacks("/signing-secret")
        .contains("/usage")
        .contains("New job");
    for page in ["api-keys", "invitations", "notifications", "signing-secret"] {
        member
            .get(&format!("/orgs/{slug}/{page}"))
            .await
            .expect(403)
            .html();
    }
    member
        .post(
            &format!("/orgs/{slug}/api-keys"),
            &[("name", "mine"), ("role", "member")],
        )
        .await
        .expect(403)
        .html();
    member
        .post(&format!("/orgs/{slug}/signing-secret"), &[])
        .await
        .expect(403);
    member
        .get(&format!("/orgs/{slug}/members"))
        .await
        .expect(200)
        .contains("Leave this organization");
    member.get("/admin").await.expect(403).html();

    // The owner sees and manages.
    owner
        .get(&format!("/orgs/{slug}/jobs"))
        .await
        .contains("/api-keys")
        .contains("/invitations");
    owner
        .post(
            &format!("/orgs/{slug}/members/{}/role", member_user.id),
            &[("role", "admin")],
        )
        .await
        .redirects_to(&format!("/orgs/{slug}/members?done=role"));
    owner
        .post(
            &format!("/orgs/{slug}/members/{}/role", member_user.id),
            &[("role", "emperor")],
        )
        .await
        .expect(422)
        .html();
    member
        .get(&format!("/orgs/{slug}/api-keys"))
        .await
        .expect(200);
    owner
        .post(
            &format!("/orgs/{slug}/members/{}/remove", member_user.id),
            &[],
        )
        .await
        .redirects_to(&format!("/orgs/{slug}/members?done=removed"));
    member.get(&format!("/orgs/{slug}/jobs")).await.expect(404);
    owner
        .post(&format!("/orgs/{slug}/members/not-a-uuid/remove"), &[])
        .await
        .expect(404);
}

async fn org_id_of(app: &TestApp, slug: &str) -> String {
    punctual_persistence::organizations::find_organization_by_slug(app.database.conn(), slug)
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string()
}

#[tokio::test]
async fn invitations_are_sent_accepted_and_revoked() {
    let app = spawn_app().await;
    let (owner, _, slug) = signed_up(&app).await;
    let invitations = format!("/orgs/{slug}/invitations");
    owner
        .get(&invitations)
        .await
        .expect(200)
        .contains("No open invitations");
    owner
        .post(&invitations, &[("email", "nope"), ("role", "member")])
        .await
        .expect(422)
        .contains("id=\"email-error\"");
    let guest_email = email();
    owner
        .post(&invitations, &[("email", &guest_email), ("role", "member")])
        .await
        .redirects_to(&format!("{invitations}?done=invited"));
    owner.get(&invitations).await.contains(&guest_email);
    let token = app.latest_email_token(&guest_email).await;

    // The guest follows the link: sign in first, then accept.
    let guest = ConsoleClient::new(&app);
    let link = format!("/invitations/accept?token={token}");
    guest.get(&link).await.redirects_to("/login?next=");
    app.register_user_with_email(&guest_email).await;
    guest.sign_in(&guest_email, PASSWORD).await;
    guest
        .get(&link)
        .await
        .expect(200)
        .contains("Accept the invitation");
    guest
        .post("/invitations/accept", &[("token", &token)])
        .await
        .redirects_to(&format!("/orgs/{slug}/jobs"));
    guest
        .post("/invitations/accept", &[("token", &token)])
        .await
        .expect(404)
        .html();

    // Revoke another one.
    let other = email();
    owner
        .post(&invitations, &[("email", &other), ("role", "admin")])
        .await
        .expect(303);
    let page = owner.get(&invitations).await;
    let start = page.body.find("/invitations/").unwrap();
    let revoke = page.body[start..].split('"').next().unwrap().to_owned();
    let id = revoke
        .trim_start_matches("/invitations/")
        .trim_end_matches("/revoke");
    owner
        .post(&format!("{invitations}/{id}/revoke"), &[])
        .await
        .redirects_to(&format!("{invitations}?done=revoked"));
    owner
        .post(&format!("{invitations}/{id}/revoke"), &[])
        .await
        .expect(404);
    owner
        .post(&format!("{invitations}/zzz/revoke"), &[])
        .await
        .expect(404);
}

#[tokio::test]
async fn api_keys_are_shown_once_and_revoked() {
    let app = spawn_app().await;
    let (owner, _, slug) = signed_up(&app).await;
    let keys = format!("/orgs/{slug}/api-keys");
    owner.get(&keys).await.expect(200).contains("No API keys");
    owner
        .post(&keys, &[("name", ""), ("role", "member")])
        .await
        .expect(422)
        .contains("id=\"name-error\"");
    owner
        .post(&keys, &[("name", "ci"), ("role", "owner")])
        .await
        .expect(422);
    let created = owner
        .post(&keys, &[("name", "ci"), ("role", "member")])
        .await
        .expect(201);
    let start = created.body.find("pk_live_").unwrap();
    let key: String = created.body[start..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    assert!(key.contains(".sk_live_"));
    // The key works against the API, and the list never shows it again.
    let listed = app
        .authed(
            reqwest::Method::GET,
            &format!("/api/v1/orgs/{slug}/jobs"),
            &key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let page = owner.get(&keys).await.expect(200).contains("ci");
    assert!(!page.body.contains(".sk_live_"));
    let id_start = page.body.find(&format!("{keys}/")).unwrap() + keys.len() + 1;
    let id: String = page.body[id_start..]
        .chars()
        .take_while(|c| *c != '/')
        .collect();
    owner
        .post(&format!("{keys}/{id}/revoke"), &[])
        .await
        .redirects_to(&format!("{keys}?done=revoked"));
    let refused = app
        .authed(
            reqwest::Method::GET,
            &format!("/api/v1/orgs/{slug}/jobs"),
            &key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    owner
        .post(&format!("{keys}/bad/revoke"), &[])
        .await
        .expect(404);
}

#[tokio::test]
async fn usage_notifications_and_the_signing_secret() {
    let app = spawn_app().await;
    let (owner, _, slug) = signed_up(&app).await;
    create_job(&owner, &slug, &job_fields("http://127.0.0.1:9/x", &[])).await;
    owner
        .get(&format!("/orgs/{slug}/usage"))
        .await
        .expect(200)
        .contains("<meter")
        .contains("Executions this period")
        .contains("<strong class=\"used\">1</strong>");

    let notifications = format!("/orgs/{slug}/notifications");
    owner
        .get(&notifications)
        .await
        .expect(200)
        .contains("Nothing saved yet");
    owner
        .post(
            &notifications,
            &[
                ("emails", "ops@example.com\nnot-an-email"),
                ("failure", "on"),
            ],
        )
        .await
        .expect(422)
        .contains("id=\"emails-error\"");
    owner
        .post(
            &notifications,
            &[("webhook_url", "ftp://x"), ("failure", "on")],
        )
        .await
        .expect(422)
        .contains("id=\"webhook_url-error\"");
    owner
        .post(
            &notifications,
            &[("emails", "ops@example.com"), ("recovery", "on")],
        )
        .await
        .redirects_to(&format!("{notifications}?done=saved"));
    let page = owner
        .get(&notifications)
        .await
        .expect(200)
        .contains("ops@example.com");
    assert!(page
        .body
        .contains("id=\"recovery\" name=\"recovery\" type=\"checkbox\" checked"));
    assert!(!page
        .body
        .contains("id=\"failure\" name=\"failure\" type=\"checkbox\" checked"));

    let secret_page = format!("/orgs/{slug}/signing-secret");
    let before = owner.get(&secret_page).await.expect(200);
    let start = before.body.find("whsec_").unwrap();
    let old: String = before.body[start..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    owner
        .post(&secret_page, &[])
        .await
        .redirects_to(&format!("{secret_page}?done=saved"));
    let after = owner
        .get(&secret_page)
        .await
        .expect(200)
        .contains("previous secret still signs");
    let start = after.body.find("whsec_").unwrap();
    let new: String = after.body[start..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    assert_ne!(old, new);
}

#[tokio::test]
async fn organizations_can_be_created_and_switched() {
    let app = spawn_app().await;
    let (console, _, first) = signed_up(&app).await;
    console
        .post("/orgs", &[("name", ""), ("slug", "Bad Slug")])
        .await
        .expect(422)
        .contains("id=\"slug-error\"");
    console
        .post("/orgs", &[("name", "Again"), ("slug", &first)])
        .await
        .expect(409);
    let second = unique("second");
    console
        .post("/orgs", &[("name", "Second org"), ("slug", &second)])
        .await
        .redirects_to(&format!("/orgs/{second}/jobs"));
    let page = console
        .get(&format!("/orgs/{first}/jobs"))
        .await
        .expect(200);
    // The switcher lists both.
    page.contains(&format!("/orgs/{second}/jobs"))
        .contains("Second org");
    console
        .get("/orgs")
        .await
        .expect(200)
        .contains(&second)
        .contains(&first);
}

/// Editing a once-job without touching its time keeps its time, even in the
/// hour a clock change repeats: the form shows local time, which there names
/// two instants, and reading it back took the first.
#[tokio::test]
async fn editing_a_once_job_keeps_its_time_when_the_field_is_untouched() {
    use punctual_persistence::entities::job;
    use punctual_persistence::sea_orm::EntityTrait;
    let app = spawn_app().await;
    let (console, _email, slug) = signed_up(&app).await;
    console
        .post(
            "/preferences/timezone",
            &[("tz", "Europe/Oslo"), ("next", "/orgs")],
        )
        .await
        .expect(303);
    let url = "http://127.0.0.1:9/x";
    // 01:30 UTC on the day Oslo's clocks go back: 02:30 local, for the second time.
    let once = [
        ("schedule_type", "once"),
        ("at", "2030-10-27T01:30:00Z"),
        ("cron", ""),
        ("timezone", ""),
    ];
    let id = create_job(&console, &slug, &job_fields(url, &once)).await;
    let job_page = format!("/orgs/{slug}/jobs/{id}");
    console
        .get(&format!("{job_page}/edit"))
        .await
        .expect(200)
        .contains("value=\"2030-10-27T02:30:00\"");
    let edited = [
        ("schedule_type", "once"),
        ("at", "2030-10-27T02:30:00"),
        ("cron", ""),
        ("timezone", ""),
        ("name", "renamed"),
    ];
    console
        .post(&format!("{job_page}/edit"), &job_fields(url, &edited))
        .await
        .redirects_to(&format!("{job_page}?done=saved"));
    let row = job::Entity::find_by_id(id.parse::<uuid::Uuid>().unwrap())
        .one(app.database.conn())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.name, "renamed");
    assert_eq!(
        row.run_at.map(|at| at.to_rfc3339()),
        Some("2030-10-27T01:30:00+00:00".to_owned()),
        "the time it had"
    );
}

#[tokio::test]
async fn the_time_zone_preference_and_magic_links() {
    let app = spawn_app().await;
    let (console, email, slug) = signed_up(&app).await;
    console
        .post(
            "/preferences/timezone",
            &[("tz", "Mars/Base"), ("next", "/orgs")],
        )
        .await
        .expect(422)
        .html();
    console
        .post(
            "/preferences/timezone",
            &[("tz", "Asia/Tokyo"), ("next", "https://evil.example/")],
        )
        .await
        .redirects_to("/")
        .expect(303);
    assert_eq!(console.cookie("punctual_tz").as_deref(), Some("Asia/Tokyo"));
    create_job(&console, &slug, &job_fields("http://127.0.0.1:9/x", &[])).await;
    console
        .get(&format!("/orgs/{slug}/jobs"))
        .await
        .contains("JST")
        .contains("value=\"Asia/Tokyo\"");

    let visitor = ConsoleClient::new(&app);
    visitor.get("/login/magic-link").await.expect(200);
    visitor
        .post("/login/magic-link", &[("email", &email)])
        .await
        .expect(200)
        .contains("Check your email");
    let token = app.latest_email_token(&email).await;
    visitor
        .get(&format!("/login/magic?token={token}"))
        .await
        .expect(200)
        .contains("name=\"token\"");
    visitor
        .post("/login/magic", &[("token", &token)])
        .await
        .redirects_to("/");
    visitor.get(&format!("/orgs/{slug}/jobs")).await.expect(200);
    ConsoleClient::new(&app)
        .post("/login/magic", &[("token", &token)])
        .await
        .expect(401)
        .html();
}

#[tokio::test]
async fn platform_admins_manage_organizations_and_users() {
    let app = spawn_app().await;
    let (admin, admin_email, _) = signed_up(&app).await;
    let (_, _, other_org) = signed_up(&app).await;
    let victim = app.register_user().await;
    admin.get("/admin").await.expect(403).html();
    punctual_api::service::admin::grant_platform_admin(&app.database, &admin_email)
        .await
        .unwrap();
    admin
        .get("/admin")
        .await
        .expect(200)
        .contains("Organizations")
        .contains("Users");
    admin
        .get("/admin/orgs")
        .await
        .expect(200)
        .contains(&other_org);
    admin
        .post(
            &format!("/admin/orgs/{other_org}"),
            &[("plan", "pro"), ("suspended", "on")],
        )
        .await
        .redirects_to("/admin/orgs");
    let org = punctual_persistence::organizations::find_organization_by_slug(
        app.database.conn(),
        &other_org,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(org.plan, "pro");
    assert!(org.suspended_at.is_some());
    admin
        .post(&format!("/admin/orgs/{other_org}"), &[("plan", "platinum")])
        .await
        .expect(422)
        .html();
    admin
        .post("/admin/orgs/no-such-org", &[("plan", "pro")])
        .await
        .expect(404)
        .html();
    admin.get("/admin/orgs?cursor=bad").await.expect(400).html();

    admin
        .get("/admin/users")
        .await
        .expect(200)
        .contains(&victim.email);
    admin
        .post(
            &format!("/admin/users/{}", victim.id),
            &[("disabled", "true")],
        )
        .await
        .redirects_to("/admin/users");
    assert_eq!(
        app.login(&victim.email, &victim.password).await.status(),
        401
    );
    admin
        .post(
            &format!("/admin/users/{}", victim.id),
            &[("disabled", "maybe")],
        )
        .await
        .expect(400);
    admin
        .post("/admin/users/nope", &[("disabled", "true")])
        .await
        .expect(404);
    admin
        .post(
            &format!("/admin/users/{}", victim.id),
            &[("disabled", "false")],
        )
        .await
        .redirects_to("/admin/users");
    assert_eq!(
        app.login(&victim.email, &victim.password).await.status(),
        200
    );
}

#[tokio::test]
async fn admins_read_the_audit_log_with_filters_and_members_cannot() {
    let app = spawn_app().await;
    let (owner, owner_email, slug) = signed_up(&app).await;
    let id = create_job(&owner, &slug, &job_fields("http://127.0.0.1:9/x", &[])).await;
    owner
        .post(&format!("/orgs/{slug}/jobs/{id}/pause"), &[])
        .await
        .expect(303);
    let log = format!("/orgs/{slug}/audit");
    owner
        .get(&format!("/orgs/{slug}/jobs"))
        .await
        .contains(&format!("href=\"{log}\""));
    owner
        .get(&log)
        .await
        .expect(200)
        .html()
        .contains("job.created")
        .contains("job.paused");
    owner
        .get(&format!("{log}?action=job.paused"))
        .await
        .expect(200)
        .contains("job.paused")
        .lacks("<code>job.created</code>");
    owner
        .get(&format!("{log}?since=yesterday"))
        .await
        .expect(422)
        .html()
        .contains("id=\"since-error\"");
    let first = owner.get(&format!("{log}?limit=1")).await.expect(200);
    let older = first_link(&first.body, &format!("{log}?")).expect("an older page");
    owner.get(&older).await.expect(200).contains("Newest");
    owner
        .get(&format!("{log}?cursor=garbage"))
        .await
        .expect(422);

    // A member has neither the link nor the page.
    let member_user = app.register_user().await;
    let org = punctual_tests::TestOrg {
        slug: slug.clone(),
        id: org_id_of(&app, &slug).await,
        signing_secret: String::new(),
    };
    app.add_member(&org, &member_user, "member").await;
    let member = ConsoleClient::new(&app);
    member
        .sign_in(&member_user.email, &member_user.password)
        .await;
    member
        .get(&format!("/orgs/{slug}/jobs"))
        .await
        .expect(200)
        .lacks("/audit");
    member.get(&log).await.expect(403).html();

    // The platform log: platform admins only, narrowed by organization.
    owner.get("/admin/audit").await.expect(403).html();
    punctual_api::service::admin::grant_platform_admin(&app.database, &owner_email)
        .await
        .unwrap();
    owner
        .get(&format!("/admin/audit?org={slug}"))
        .await
        .expect(200)
        .contains("job.created");
    owner
        .get("/admin/audit?org=no-such-org")
        .await
        .expect(200)
        .contains("No events match");
    owner.get("/admin/audit?until=never").await.expect(422);
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_emailed_link() {
    let app = spawn_app().await;
    let (console, email, slug) = signed_up(&app).await;
    let visitor = ConsoleClient::new(&app);
    visitor
        .get("/login")
        .await
        .contains("href=\"/password-reset\"");
    visitor
        .get("/password-reset")
        .await
        .expect(200)
        .contains("action=\"/password-reset/request\"");
    visitor
        .post("/password-reset/request", &[("email", &email)])
        .await
        .expect(200)
        .contains("Check your email");
    let token = app.latest_email_token(&email).await;
    visitor
        .get(&format!("/password-reset?token={token}"))
        .await
        .expect(200)
        .contains("New password");
    visitor
        .post(
            "/password-reset",
            &[("token", &token), ("password", "short")],
        )
        .await
        .expect(422)
        .contains("id=\"password-error\"");
    visitor
        .post(
            "/password-reset",
            &[("token", &token), ("password", "a brand new passphrase")],
        )
        .await
        .redirects_to("/login");
    // The old session ended; the new password signs in.
    console.forget_cookie("punctual_access");
    console
        .get(&format!("/orgs/{slug}/jobs"))
        .await
        .redirects_to("/login");
    visitor.sign_in(&email, "a brand new passphrase").await;
    visitor
        .post(
            "/password-reset",
            &[("token", &token), ("password", "another new passphrase")],
        )
        .await
        .expect(401)
        .html();
}
