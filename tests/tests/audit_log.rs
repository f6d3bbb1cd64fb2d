//! The audit log (issue 6): every mutation and security event is recorded with its
//! actor, address, user agent and target, in the same transaction as the change,
//! and without secrets; organization admins read their organization's log,
//! platform admins read everything; filters and cursor pagination.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use punctual_auth::TokenHash;
use punctual_persistence::entities::{
    api_key, audit_event, email_token, invitation, refresh_token, signing_secret, user,
};
use punctual_tests::{spawn_app_with, unique, TestApp};
use reqwest::Method;
use sea_orm::EntityTrait;
use serde_json::{json, Value};

/// Sent with every request of these tests, to find it in the log.
const USER_AGENT: &str = "punctual-audit-test/1.0 (+https://example.invalid)";
/// The address the test server sees.
const LOCALHOST: &str = "127.0.0.1";

fn service_token() -> String {
    "s".repeat(48)
}

async fn app() -> TestApp {
    spawn_app_with(|s| s.admin.service_token = service_token()).await
}

/// Talks to the app with a custom `User-Agent`.
struct Client<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
}

impl<'a> Client<'a> {
    fn new(app: &'a TestApp) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { app, http }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.app.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    /// Sends and expects `status`; returns the JSON answer (null when empty).
    async fn expect(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let response = self.send(method.clone(), path, token, body.as_ref()).await;
        let got = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    /// Every event of an audit log (`path` with its filters), walking the pages
    /// `limit` at a time; checks that no page is larger than asked.
    async fn walk(
        &self,
        path: &str,
        token: &str,
        filters: &[(&str, &str)],
        limit: u64,
    ) -> Vec<Value> {
        let mut events = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut query: Vec<(String, String)> = filters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            query.push(("limit".to_owned(), limit.to_string()));
            if let Some(cursor) = &cursor {
                query.push(("cursor".to_owned(), cursor.clone()));
            }
            let response = self
                .http
                .get(format!("{}{path}", self.app.address))
                .bearer_auth(token)
                .query(&query)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            assert_eq!(status, 200, "GET {path} {query:?}: {text}");
            let page: Value = serde_json::from_str(&text).unwrap();
            let data = page["data"].as_array().unwrap();
            assert!(data.len() as u64 <= limit, "a page is at most `limit` long");
            events.extend(data.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => {
                    assert_eq!(data.len() as u64, limit, "only full pages have a next one");
                    cursor = Some(next.to_owned());
                }
                None => return events,
            }
        }
        panic!("the audit log did not end");
    }

    /// One page of an audit log, raw.
    async fn audit_page(
        &self,
        path: &str,
        token: &str,
        query: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.app.address))
            .bearer_auth(token)
            .query(query)
            .send()
            .await
            .unwrap()
    }
}

fn org_log(slug: &str) -> String {
    format!("/api/v1/orgs/{slug}/audit-log")
}

const PLATFORM_LOG: &str = "/api/v1/admin/audit-log";

fn str_of<'v>(value: &'v Value, field: &str) -> &'v str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string in {value}"))
}

/// The one event matching `action` and `matches`.
fn the_event<'e>(events: &'e [Value], action: &str, matches: impl Fn(&Value) -> bool) -> &'e Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == action && matches(e))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one `{action}` event matching, found {}: {found:#?}",
        found.len()
    );
    found[0]
}

/// What an event must say.
struct Expect<'a> {
    action: &'a str,
    actor_type: &'a str,
    actor_id: Option<&'a str>,
    target_type: Option<&'a str>,
    target_id: Option<&'a str>,
    organization_id: Option<&'a str>,
}

impl Expect<'_> {
    /// Finds the event (by action, actor and target) and checks everything else,
    /// including the address and user agent of the request that caused it.
    fn check<'e>(&self, events: &'e [Value]) -> &'e Value {
        let event = the_event(events, self.action, |e| {
            e["actor_type"] == self.actor_type
                && e["actor_id"].as_str() == self.actor_id
                && e["target_id"].as_str() == self.target_id
        });
        let what = self.action;
        assert_eq!(
            event["target_type"].as_str(),
            self.target_type,
            "{what}: {event}"
        );
        assert_eq!(
            event["organization_id"].as_str(),
            self.organization_id,
            "{what}: {event}"
        );
        assert_eq!(event["ip"], LOCALHOST, "{what}: {event}");
        assert_eq!(event["user_agent"], USER_AGENT, "{what}: {event}");
        assert!(event["metadata"].is_object(), "{what}: {event}");
        assert!(event["created_at"].is_string() && event["id"].is_string());
        event
    }
}

/// A user registered through [`Client`], with what the test must never see logged.
struct Account {
    id: String,
    email: String,
    password: String,
    access_token: String,
}

async fn register(client: &Client<'_>, secrets: &mut Vec<String>) -> Account {
    let email = format!("{}@example.com", unique("audit"));
    let password = format!("pw-{}", unique("secret"));
    let body = client
        .expect(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"email": email, "password": password})),
            201,
        )
        .await;
    let account = Account {
        id: str_of(&body["user"], "id").to_owned(),
        email,
        password,
        access_token: str_of(&body, "access_token").to_owned(),
    };
    remember_tokens(&body, secrets);
    secrets.push(account.password.clone());
    account
}

/// Adds the tokens of an answer (and their SHA-256, as stored) to `secrets`.
fn remember_tokens(body: &Value, secrets: &mut Vec<String>) {
    for field in [
        "access_token",
        "refresh_token",
        "signing_secret",
        "previous_secret",
        "api_key",
    ] {
        if let Some(value) = body[field].as_str() {
            remember(value, secrets);
        }
    }
}

/// Adds a secret, its hash as stored, and for API keys the secret half alone.
fn remember(secret: &str, secrets: &mut Vec<String>) {
    secrets.push(secret.to_owned());
    secrets.push(TokenHash::from_plaintext(secret).to_hex());
    if let Some((_, half)) = secret.split_once(".sk_live_") {
        secrets.push(half.to_owned());
        secrets.push(format!("sk_live_{half}"));
    }
}

/// Every stored audit row, as JSON text: what must never hold a secret.
async fn stored_rows(app: &TestApp) -> Vec<String> {
    audit_event::Entity::find()
        .all(app.database.conn())
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            json!({
                "id": row.id, "organization_id": row.organization_id,
                "actor_type": row.actor_type, "actor_id": row.actor_id,
                "action": row.action, "target_type": row.target_type,
                "target_id": row.target_id, "ip": row.ip,
                "user_agent": row.user_agent, "metadata": row.metadata,
                "created_at": row.created_at,
            })
            .to_string()
        })
        .collect()
}

async fn audit_count(app: &TestApp) -> usize {
    audit_event::Entity::find()
        .all(app.database.conn())
        .await
        .unwrap()
        .len()
}

fn job_document(name: &str, key: &str, authorization: &str) -> Value {
    json!({
        "name": name,
        "key": key,
        "request": {"url": "http://127.0.0.1:9/hook", "method": "POST",
                    "headers": {"authorization": authorization}, "body": "{}",
                    "timeout_ms": 5000},
        "schedule": {"type": "cron", "cron": "0 0 1 1 *", "timezone": "UTC"},
        "retry": {"max_attempts": 1},
    })
}

/// A password typed into the email field of a sign-in is no email: the failed
/// attempt is on record, without what was typed.
#[tokio::test]
async fn a_password_typed_as_the_email_is_not_kept() {
    let app = app().await;
    let client = Client::new(&app);
    let typed = format!("Typed-{}", unique("password"));
    for (path, body, status) in [
        (
            "/api/v1/auth/login",
            json!({"email": typed, "password": "a-password-of-sorts"}),
            401,
        ),
        ("/api/v1/auth/magic-link", json!({"email": typed}), 202),
    ] {
        client
            .expect(Method::POST, path, None, Some(body), status)
            .await;
    }
    let events = client.walk(PLATFORM_LOG, &service_token(), &[], 50).await;
    let failed = the_event(&events, "auth.login_failed", |_| true);
    assert!(failed["metadata"]["email"].is_null(), "{failed}");
    let asked = the_event(&events, "auth.magic_link_requested", |_| true);
    assert!(asked["metadata"]["email"].is_null(), "{asked}");
    for row in stored_rows(&app).await {
        assert!(!row.to_lowercase().contains(&typed.to_lowercase()), "{row}");
    }
}

#[tokio::test]
async fn every_action_is_recorded_with_its_actor_address_target_and_no_secret() {
    let app = app().await;
    let client = Client::new(&app);
    let mut secrets: Vec<String> = vec![service_token()];
    let service = service_token();

    // --- Accounts and sessions -------------------------------------------------
    let owner_email = format!("{}@example.com", unique("owner"));
    let owner_password = format!("pw-{}", unique("owner-secret"));
    let first_slug = unique("first");
    let registered = client
        .expect(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({
                "email": owner_email, "password": owner_password,
                "organization": {"name": "First", "slug": first_slug},
            })),
            201,
        )
        .await;
    remember_tokens(&registered, &mut secrets);
    secrets.push(owner_password.clone());
    let owner_id = str_of(&registered["user"], "id").to_owned();
    let first_org_id = str_of(&registered["organization"], "id").to_owned();

    let login = client
        .expect(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": owner_email, "password": owner_password})),
            200,
        )
        .await;
    remember_tokens(&login, &mut secrets);
    let owner_token = str_of(&login, "access_token").to_owned();

    let wrong_password = format!("wrong-{}", unique("guess"));
    secrets.push(wrong_password.clone());
    client
        .expect(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": owner_email, "password": wrong_password})),
            401,
        )
        .await;
    let stranger_email = format!("{}@example.com", unique("nobody"));
    let stranger_password = format!("stranger-{}", unique("guess"));
    secrets.push(stranger_password.clone());
    client
        .expect(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": stranger_email, "password": stranger_password})),
            401,
        )
        .await;

    // A session whose refresh token is replayed: the family is revoked.
    let stolen = client
        .expect(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": owner_email, "password": owner_password})),
            200,
        )
        .await;
    remember_tokens(&stolen, &mut secrets);
    let stolen_refresh = str_of(&stolen, "refresh_token").to_owned();
    let rotated = client
        .expect(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": stolen_refresh})),
            200,
        )
        .await;
    remember_tokens(&rotated, &mut secrets);
    client
        .expect(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": stolen_refresh})),
            401,
        )
        .await;
    let stolen_session = punctual_tests::jwt_claims(str_of(&stolen, "access_token"))["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    // A session that logs out.
    let leaving = client
        .expect(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": owner_email, "password": owner_password})),
            200,
        )
        .await;
    remember_tokens(&leaving, &mut secrets);
    client
        .expect(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(json!({"refresh_token": str_of(&leaving, "refresh_token")})),
            204,
        )
        .await;
    let logged_out_session = punctual_tests::jwt_claims(str_of(&leaving, "access_token"))["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    // A password reset (on another account, so the owner keeps its sessions).
    let resetter = register(&client, &mut secrets).await;
    client
        .expect(
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            Some(json!({"email": resetter.email})),
            202,
        )
        .await;
    let reset_token = app.latest_email_token(&resetter.email).await;
    remember(&reset_token, &mut secrets);
    let new_password = format!("new-{}", unique("password"));
    secrets.push(new_password.clone());
    client
        .expect(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            None,
            Some(json!({"token": reset_token, "password": new_password})),
            204,
        )
        .await;

    // A magic link.
    client
        .expect(
            Method::POST,
            "/api/v1/auth/magic-link",
            None,
            Some(json!({"email": owner_email})),
            202,
        )
        .await;
    let magic_token = app.latest_email_token(&owner_email).await;
    remember(&magic_token, &mut secrets);
    let magic = client
        .expect(
            Method::POST,
            "/api/v1/auth/magic-link/verify",
            None,
            Some(json!({"token": magic_token})),
            200,
        )
        .await;
    remember_tokens(&magic, &mut secrets);

    // --- Organizations, members, invitations, keys, secrets ---------------------
    let slug = unique("audited");
    let created = client
        .expect(
            Method::POST,
            "/api/v1/orgs",
            Some(&owner_token),
            Some(json!({"name": "Audited", "slug": slug})),
            201,
        )
        .await;
    remember_tokens(&created, &mut secrets);
    let org_id = str_of(&created, "id").to_owned();
    let org_path = format!("/api/v1/orgs/{slug}");
    client
        .expect(
            Method::PATCH,
            &org_path,
            Some(&owner_token),
            Some(json!({"name": "Audited, renamed"})),
            200,
        )
        .await;

    let invitee = register(&client, &mut secrets).await;
    let invitation = client
        .expect(
            Method::POST,
            &format!("{org_path}/invitations"),
            Some(&owner_token),
            Some(json!({"email": invitee.email, "role": "member"})),
            201,
        )
        .await;
    let invitation_id = str_of(&invitation, "id").to_owned();
    let invitation_token = app.latest_email_token(&invitee.email).await;
    remember(&invitation_token, &mut secrets);
    client
        .expect(
            Method::POST,
            "/api/v1/invitations/accept",
            Some(&invitee.access_token),
            Some(json!({"token": invitation_token})),
            200,
        )
        .await;
    let revoked_invitation = client
        .expect(
            Method::POST,
            &format!("{org_path}/invitations"),
            Some(&owner_token),
            Some(json!({"email": format!("{}@example.com", unique("never")), "role": "admin"})),
            201,
        )
        .await;
    let revoked_invitation_id = str_of(&revoked_invitation, "id").to_owned();
    client
        .expect(
            Method::DELETE,
            &format!("{org_path}/invitations/{revoked_invitation_id}"),
            Some(&owner_token),
            None,
            204,
        )
        .await;
    client
        .expect(
            Method::PATCH,
            &format!("{org_path}/members/{}", invitee.id),
            Some(&owner_token),
            Some(json!({"role": "admin"})),
            200,
        )
        .await;

    let removed = register(&client, &mut secrets).await;
    client
        .expect(
            Method::POST,
            &format!("{org_path}/invitations"),
            Some(&owner_token),
            Some(json!({"email": removed.email, "role": "member"})),
            201,
        )
        .await;
    let removed_token = app.latest_email_token(&removed.email).await;
    remember(&removed_token, &mut secrets);
    client
        .expect(
            Method::POST,
            "/api/v1/invitations/accept",
            Some(&removed.access_token),
            Some(json!({"token": removed_token})),
            200,
        )
        .await;
    client
        .expect(
            Method::DELETE,
            &format!("{org_path}/members/{}", removed.id),
            Some(&owner_token),
            None,
            204,
        )
        .await;

    let key = client
        .expect(
            Method::POST,
            &format!("{org_path}/api-keys"),
            Some(&owner_token),
            Some(json!({"name": "deploys", "role": "admin"})),
            201,
        )
        .await;
    remember_tokens(&key, &mut secrets);
    let key_id = str_of(&key, "id").to_owned();
    let api_key = str_of(&key, "api_key").to_owned();
    let doomed_key = client
        .expect(
            Method::POST,
            &format!("{org_path}/api-keys"),
            Some(&api_key),
            Some(json!({"name": "short-lived", "role": "member"})),
            201,
        )
        .await;
    remember_tokens(&doomed_key, &mut secrets);
    let doomed_key_id = str_of(&doomed_key, "id").to_owned();
    client
        .expect(
            Method::DELETE,
            &format!("{org_path}/api-keys/{doomed_key_id}"),
            Some(&owner_token),
            None,
            204,
        )
        .await;

    let rotated_secret = client
        .expect(
            Method::POST,
            &format!("{org_path}/signing-secret/rotate"),
            Some(&api_key),
            None,
            200,
        )
        .await;
    remember_tokens(&rotated_secret, &mut secrets);

    // A webhook URL with a token in it (as Slack's have): only its host is logged.
    let webhook_token = unique("hooktoken");
    secrets.push(webhook_token.clone());
    client
        .expect(
            Method::PUT,
            &format!("{org_path}/notifications"),
            Some(&owner_token),
            Some(json!({
                "emails": ["ops@example.com"],
                "webhook_url": format!("http://127.0.0.1:9/hooks/{webhook_token}?token={webhook_token}"),
                "events": {"failure": true, "auto_disable": true, "recovery": false},
            })),
            200,
        )
        .await;

    // --- Jobs: by an API key and by a user -------------------------------------
    let job_secret = format!("Bearer {}", unique("target-credential"));
    secrets.push(job_secret.clone());
    let job = client
        .expect(
            Method::POST,
            &format!("{org_path}/jobs"),
            Some(&api_key),
            Some(job_document("nightly", "nightly", &job_secret)),
            201,
        )
        .await;
    let job_id = str_of(&job, "id").to_owned();
    let job_path = format!("{org_path}/jobs/{job_id}");
    let patched_secret = format!("Bearer {}", unique("rotated-credential"));
    secrets.push(patched_secret.clone());
    client
        .expect(
            Method::PATCH,
            &job_path,
            Some(&owner_token),
            Some(json!({"request": {"headers": {"authorization": patched_secret}}, "name": "nightly v2"})),
            200,
        )
        .await;
    client
        .expect(
            Method::POST,
            &format!("{job_path}/pause"),
            Some(&owner_token),
            None,
            200,
        )
        .await;
    client
        .expect(
            Method::POST,
            &format!("{job_path}/resume"),
            Some(&api_key),
            None,
            200,
        )
        .await;
    let run = client
        .expect(
            Method::POST,
            &format!("{job_path}/trigger"),
            Some(&api_key),
            None,
            202,
        )
        .await;
    let deleted_job = client
        .expect(
            Method::POST,
            &format!("{org_path}/jobs"),
            Some(&owner_token),
            Some(job_document("temporary", "temporary", &job_secret)),
            201,
        )
        .await;
    let deleted_job_id = str_of(&deleted_job, "id").to_owned();
    client
        .expect(
            Method::DELETE,
            &format!("{org_path}/jobs/{deleted_job_id}"),
            Some(&owner_token),
            None,
            204,
        )
        .await;

    // --- Members leave, admins administer, an organization goes ----------------
    client
        .expect(
            Method::DELETE,
            &format!("{org_path}/members/{}", invitee.id),
            Some(&invitee.access_token),
            None,
            204,
        )
        .await;

    client
        .expect(
            Method::PATCH,
            &format!("/api/v1/admin/orgs/{slug}"),
            Some(&service),
            Some(json!({"plan": "pro", "suspended": true})),
            200,
        )
        .await;
    let staff = register(&client, &mut secrets).await;
    punctual_api::service::admin::grant_platform_admin(&app.database, &staff.email)
        .await
        .unwrap();
    client
        .expect(
            Method::PATCH,
            &format!("/api/v1/admin/users/{}", removed.id),
            Some(&staff.access_token),
            Some(json!({"disabled": true})),
            200,
        )
        .await;

    let doomed_slug = unique("doomed");
    let doomed = client
        .expect(
            Method::POST,
            "/api/v1/orgs",
            Some(&owner_token),
            Some(json!({"name": "Doomed", "slug": doomed_slug})),
            201,
        )
        .await;
    remember_tokens(&doomed, &mut secrets);
    let doomed_id = str_of(&doomed, "id").to_owned();
    client
        .expect(
            Method::DELETE,
            &format!("/api/v1/orgs/{doomed_slug}"),
            Some(&owner_token),
            None,
            204,
        )
        .await;

    // --- What the log says -----------------------------------------------------
    let events = client.walk(PLATFORM_LOG, &service, &[], 200).await;
    let owner = Some(owner_id.as_str());
    let org = Some(org_id.as_str());
    let key_actor = Some(key_id.as_str());

    let registration = Expect {
        action: "user.registered",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("user"),
        target_id: owner,
        organization_id: None,
    }
    .check(&events);
    assert_eq!(
        registration["metadata"]["email"],
        owner_email.to_lowercase()
    );
    Expect {
        action: "org.created",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("organization"),
        target_id: Some(&first_org_id),
        organization_id: Some(&first_org_id),
    }
    .check(&events);
    let logins: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "auth.login_succeeded" && e["actor_id"] == owner_id.as_str())
        .collect();
    assert_eq!(logins.len(), 3, "three password logins: {logins:#?}");
    for login in logins {
        assert_eq!(login["actor_type"], "user");
        assert_eq!(login["target_id"], owner_id.as_str());
        assert_eq!(login["ip"], LOCALHOST);
        assert_eq!(login["user_agent"], USER_AGENT);
        assert!(login["organization_id"].is_null());
    }
    let failed = Expect {
        action: "auth.login_failed",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("user"),
        target_id: owner,
        organization_id: None,
    }
    .check(&events);
    assert_eq!(failed["metadata"]["email"], owner_email.to_lowercase());
    let unknown = Expect {
        action: "auth.login_failed",
        actor_type: "anonymous",
        actor_id: None,
        target_type: None,
        target_id: None,
        organization_id: None,
    }
    .check(&events);
    assert_eq!(unknown["metadata"]["email"], stranger_email.to_lowercase());
    let reuse = Expect {
        action: "auth.session_revoked",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("session"),
        target_id: Some(&stolen_session),
        organization_id: None,
    }
    .check(&events);
    assert_eq!(reuse["metadata"]["reason"], "refresh_token_reused");
    Expect {
        action: "auth.logout",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("session"),
        target_id: Some(&logged_out_session),
        organization_id: None,
    }
    .check(&events);
    Expect {
        action: "auth.password_reset_requested",
        actor_type: "user",
        actor_id: Some(&resetter.id),
        target_type: Some("user"),
        target_id: Some(&resetter.id),
        organization_id: None,
    }
    .check(&events);
    let reset = Expect {
        action: "auth.password_reset",
        actor_type: "user",
        actor_id: Some(&resetter.id),
        target_type: Some("user"),
        target_id: Some(&resetter.id),
        organization_id: None,
    }
    .check(&events);
    assert_eq!(reset["metadata"]["revoked_sessions"], 1);
    Expect {
        action: "auth.magic_link_requested",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("user"),
        target_id: owner,
        organization_id: None,
    }
    .check(&events);
    Expect {
        action: "auth.magic_link_used",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("user"),
        target_id: owner,
        organization_id: None,
    }
    .check(&events);

    let org_created = Expect {
        action: "org.created",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("organization"),
        target_id: org,
        organization_id: org,
    }
    .check(&events);
    assert_eq!(org_created["metadata"]["slug"], slug.as_str());
    let renamed = Expect {
        action: "org.updated",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("organization"),
        target_id: org,
        organization_id: org,
    }
    .check(&events);
    assert_eq!(renamed["metadata"]["old_name"], "Audited");
    assert_eq!(renamed["metadata"]["name"], "Audited, renamed");
    let invited = Expect {
        action: "invitation.created",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("invitation"),
        target_id: Some(&invitation_id),
        organization_id: org,
    }
    .check(&events);
    assert_eq!(invited["metadata"]["email"], invitee.email.to_lowercase());
    assert_eq!(invited["metadata"]["role"], "member");
    Expect {
        action: "invitation.accepted",
        actor_type: "user",
        actor_id: Some(&invitee.id),
        target_type: Some("invitation"),
        target_id: Some(&invitation_id),
        organization_id: org,
    }
    .check(&events);
    Expect {
        action: "invitation.revoked",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("invitation"),
        target_id: Some(&revoked_invitation_id),
        organization_id: org,
    }
    .check(&events);
    let role = Expect {
        action: "member.role_changed",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("user"),
        target_id: Some(&invitee.id),
        organization_id: org,
    }
    .check(&events);
    assert_eq!(role["metadata"]["old_role"], "member");
    assert_eq!(role["metadata"]["role"], "admin");
    Expect {
        action: "member.removed",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("user"),
        target_id: Some(&removed.id),
        organization_id: org,
    }
    .check(&events);
    let left = Expect {
        action: "member.left",
        actor_type: "user",
        actor_id: Some(&invitee.id),
        target_type: Some("user"),
        target_id: Some(&invitee.id),
        organization_id: org,
    }
    .check(&events);
    assert_eq!(left["metadata"]["role"], "admin");
    let key_created = Expect {
        action: "api_key.created",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("api_key"),
        target_id: Some(&key_id),
        organization_id: org,
    }
    .check(&events);
    assert_eq!(key_created["metadata"]["name"], "deploys");
    assert_eq!(key_created["metadata"]["role"], "admin");
    Expect {
        action: "api_key.created",
        actor_type: "api_key",
        actor_id: key_actor,
        target_type: Some("api_key"),
        target_id: Some(&doomed_key_id),
        organization_id: org,
    }
    .check(&events);
    Expect {
        action: "api_key.revoked",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("api_key"),
        target_id: Some(&doomed_key_id),
        organization_id: org,
    }
    .check(&events);
    Expect {
        action: "signing_secret.rotated",
        actor_type: "api_key",
        actor_id: key_actor,
        target_type: Some("organization"),
        target_id: org,
        organization_id: org,
    }
    .check(&events);
    let notifications = Expect {
        action: "notifications.updated",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("organization"),
        target_id: org,
        organization_id: org,
    }
    .check(&events);
    assert_eq!(
        notifications["metadata"]["emails"],
        json!(["ops@example.com"])
    );
    assert_eq!(notifications["metadata"]["webhook_host"], "127.0.0.1");

    let job_created = Expect {
        action: "job.created",
        actor_type: "api_key",
        actor_id: key_actor,
        target_type: Some("job"),
        target_id: Some(&job_id),
        organization_id: org,
    }
    .check(&events);
    assert_eq!(job_created["metadata"]["name"], "nightly");
    assert_eq!(job_created["metadata"]["key"], "nightly");
    let job_updated = Expect {
        action: "job.updated",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("job"),
        target_id: Some(&job_id),
        organization_id: org,
    }
    .check(&events);
    assert_eq!(
        job_updated["metadata"]["changed"],
        json!(["name", "request.headers"]),
        "names of what changed, not values"
    );
    Expect {
        action: "job.paused",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("job"),
        target_id: Some(&job_id),
        organization_id: org,
    }
    .check(&events);
    Expect {
        action: "job.resumed",
        actor_type: "api_key",
        actor_id: key_actor,
        target_type: Some("job"),
        target_id: Some(&job_id),
        organization_id: org,
    }
    .check(&events);
    let triggered = Expect {
        action: "job.triggered",
        actor_type: "api_key",
        actor_id: key_actor,
        target_type: Some("job"),
        target_id: Some(&job_id),
        organization_id: org,
    }
    .check(&events);
    assert_eq!(triggered["metadata"]["execution_id"], run["id"]);
    let job_deleted = Expect {
        action: "job.deleted",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("job"),
        target_id: Some(&deleted_job_id),
        organization_id: org,
    }
    .check(&events);
    assert_eq!(job_deleted["metadata"]["name"], "temporary");

    let plan = Expect {
        action: "admin.org_updated",
        actor_type: "admin",
        actor_id: None,
        target_type: Some("organization"),
        target_id: org,
        organization_id: org,
    }
    .check(&events);
    assert_eq!(plan["metadata"]["old_plan"], "free");
    assert_eq!(plan["metadata"]["plan"], "pro");
    assert_eq!(plan["metadata"]["old_suspended"], false);
    assert_eq!(plan["metadata"]["suspended"], true);
    let disabled = Expect {
        action: "admin.user_updated",
        actor_type: "user",
        actor_id: Some(&staff.id),
        target_type: Some("user"),
        target_id: Some(&removed.id),
        organization_id: None,
    }
    .check(&events);
    assert_eq!(disabled["metadata"]["disabled"], true);
    assert_eq!(disabled["metadata"]["old_disabled"], false);
    let granted = the_event(&events, "admin.user_updated", |e| {
        e["target_id"] == staff.id.as_str()
    });
    assert_eq!(
        granted["actor_type"], "system",
        "the command line grants admin"
    );

    let deleted = Expect {
        action: "org.deleted",
        actor_type: "user",
        actor_id: owner,
        target_type: Some("organization"),
        target_id: Some(&doomed_id),
        organization_id: Some(&doomed_id),
    }
    .check(&events);
    assert_eq!(deleted["metadata"]["organization_id"], doomed_id.as_str());
    assert_eq!(deleted["metadata"]["slug"], doomed_slug.as_str());

    // Every request came from the test: every event with a requester has its address.
    for event in &events {
        if event["actor_type"] != "system" {
            assert_eq!(event["ip"], LOCALHOST, "{event}");
        }
    }

    // No secret anywhere: not in the rows as stored, not in what the API shows.
    secrets.extend(stored_secrets(&app).await);
    let rows = stored_rows(&app).await;
    assert_eq!(rows.len(), events.len(), "the API shows every stored row");
    let shown = serde_json::to_string(&events).unwrap();
    for secret in &secrets {
        assert!(secret.len() >= 16, "a weak test secret: {secret}");
        for row in &rows {
            assert!(
                !row.contains(secret.as_str()),
                "a secret in an audit row: {row}"
            );
        }
        assert!(
            !shown.contains(secret.as_str()),
            "a secret in the audit log"
        );
    }
    for event in &events {
        let mut keys = Vec::new();
        metadata_keys(&event["metadata"], &mut keys);
        for key in keys {
            let key = key.to_lowercase();
            assert!(
                !["password", "token", "secret", "hash"]
                    .iter()
                    .any(|word| key.contains(word)),
                "no `{key}` in audit metadata: {event}"
            );
        }
    }
}

/// Every key of a JSON value's objects, at any depth.
fn metadata_keys(value: &Value, keys: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                keys.push(key.clone());
                metadata_keys(inner, keys);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| metadata_keys(item, keys)),
        _ => {}
    }
}

/// Every hash and secret the database holds: password hashes, token and key
/// hashes, signing secrets.
async fn stored_secrets(app: &TestApp) -> Vec<String> {
    let db = app.database.conn();
    let mut found = Vec::new();
    for row in user::Entity::find().all(db).await.unwrap() {
        found.extend(row.password_hash);
    }
    for row in api_key::Entity::find().all(db).await.unwrap() {
        found.push(row.secret_hash);
    }
    for row in refresh_token::Entity::find().all(db).await.unwrap() {
        found.push(row.token_hash);
    }
    for row in email_token::Entity::find().all(db).await.unwrap() {
        found.push(row.token_hash);
    }
    for row in invitation::Entity::find().all(db).await.unwrap() {
        found.push(row.token_hash);
    }
    for row in signing_secret::Entity::find().all(db).await.unwrap() {
        found.push(row.secret);
    }
    assert!(found.len() > 20, "the test made plenty of secrets");
    found
}

#[tokio::test]
async fn only_admins_and_owners_read_their_organizations_log() {
    let app = app().await;
    let client = Client::new(&app);
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let admin = app.register_user().await;
    app.add_member(&org, &admin, "admin").await;
    let member = app.register_user().await;
    app.add_member(&org, &member, "member").await;
    let admin_key = app.create_api_key(&owner, &org, "admin").await;
    let member_key = app.create_api_key(&owner, &org, "member").await;
    let other_owner = app.register_user().await;
    let other = app.create_org(&other_owner).await;
    let path = org_log(&org.slug);

    for (who, token) in [
        ("owner", owner.access_token.as_str()),
        ("admin", admin.access_token.as_str()),
        ("admin key", admin_key.as_str()),
    ] {
        let events = client.walk(&path, token, &[], 50).await;
        assert!(!events.is_empty(), "{who}");
        assert!(
            events
                .iter()
                .all(|e| e["organization_id"] == org.id.as_str()),
            "{who} sees this organization's events only: {events:#?}"
        );
        assert!(
            events.iter().any(|e| e["action"] == "api_key.created"),
            "{who}"
        );
    }
    for token in [member.access_token.as_str(), member_key.as_str()] {
        punctual_tests::problem(client.audit_page(&path, token, &[]).await, 403).await;
    }
    // Another organization's owner or admin key: not found, as any of its things.
    punctual_tests::problem(
        client
            .audit_page(&path, &other_owner.access_token, &[])
            .await,
        404,
    )
    .await;
    let other_key = app.create_api_key(&other_owner, &other, "admin").await;
    punctual_tests::problem(client.audit_page(&path, &other_key, &[]).await, 404).await;
    // Unauthenticated: 401. Not a platform admin: 403 on the platform log.
    let response = client
        .http
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    punctual_tests::unauthorized(response).await;
    for token in [owner.access_token.as_str(), admin_key.as_str()] {
        punctual_tests::problem(client.audit_page(PLATFORM_LOG, token, &[]).await, 403).await;
    }
}

#[tokio::test]
async fn filters_and_cursor_pagination() {
    let app = app().await;
    let client = Client::new(&app);
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let key = app.create_api_key(&owner, &org, "admin").await;
    let jobs_path = format!("/api/v1/orgs/{}/jobs", org.slug);
    for n in 0..5 {
        client
            .expect(
                Method::POST,
                &jobs_path,
                Some(&key),
                Some(job_document(
                    &format!("job {n}"),
                    &format!("job-{n}"),
                    "Bearer x",
                )),
                201,
            )
            .await;
        client
            .expect(
                Method::POST,
                &jobs_path,
                Some(&owner.access_token),
                Some(job_document(
                    &format!("user job {n}"),
                    &format!("user-job-{n}"),
                    "Bearer x",
                )),
                201,
            )
            .await;
    }
    let path = org_log(&org.slug);
    let token = owner.access_token.as_str();
    let everything = client.walk(&path, token, &[], 200).await;
    assert_eq!(
        everything.len(),
        12,
        "org.created, api_key.created, 10 jobs: {everything:#?}"
    );

    // Newest first; a walk in pages of any size sees each event once, in order.
    let times: Vec<(String, String)> = everything
        .iter()
        .map(|e| {
            (
                str_of(e, "created_at").to_owned(),
                str_of(e, "id").to_owned(),
            )
        })
        .collect();
    for pair in everything.windows(2) {
        let newer = chrono::DateTime::parse_from_rfc3339(str_of(&pair[0], "created_at")).unwrap();
        let older = chrono::DateTime::parse_from_rfc3339(str_of(&pair[1], "created_at")).unwrap();
        assert!(newer >= older, "newest first");
    }
    assert_eq!(everything[0]["action"], "job.created");
    assert_eq!(everything.last().unwrap()["action"], "org.created");
    for limit in [1, 2, 5, 12, 13] {
        let walked = client.walk(&path, token, &[], limit).await;
        let ids: Vec<&str> = walked.iter().map(|e| str_of(e, "id")).collect();
        let unique_ids: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(
            unique_ids.len(),
            ids.len(),
            "limit {limit}: each event once"
        );
        assert_eq!(
            ids,
            times.iter().map(|(_, id)| id.as_str()).collect::<Vec<_>>(),
            "limit {limit}: the same order"
        );
    }

    // Filters.
    let created = client
        .walk(&path, token, &[("action", "job.created")], 3)
        .await;
    assert_eq!(created.len(), 10);
    assert!(created.iter().all(|e| e["action"] == "job.created"));
    let key_id = everything
        .iter()
        .find(|e| e["action"] == "api_key.created")
        .map(|e| str_of(e, "target_id").to_owned())
        .unwrap();
    let by_key = client.walk(&path, token, &[("actor", &key_id)], 2).await;
    assert_eq!(by_key.len(), 5);
    assert!(by_key
        .iter()
        .all(|e| e["actor_type"] == "api_key" && e["actor_id"] == key_id.as_str()));
    let by_owner = client
        .walk(
            &path,
            token,
            &[("actor", &owner.id), ("action", "job.created")],
            50,
        )
        .await;
    assert_eq!(by_owner.len(), 5);
    assert!(client
        .walk(&path, token, &[("action", "job.deleted")], 50)
        .await
        .is_empty());

    // since (inclusive) and until (exclusive) split the log at one event.
    let pivot = str_of(&everything[4], "created_at").to_owned();
    let since = client.walk(&path, token, &[("since", &pivot)], 2).await;
    let until = client.walk(&path, token, &[("until", &pivot)], 2).await;
    assert_eq!(since.len() + until.len(), everything.len());
    assert!(since.iter().any(|e| e["id"] == everything[4]["id"]));
    assert!(until.iter().all(|e| e["id"] != everything[4]["id"]));
    let window = client
        .walk(
            &path,
            token,
            &[
                ("since", str_of(&everything[8], "created_at")),
                ("until", &pivot),
                ("action", "job.created"),
            ],
            50,
        )
        .await;
    assert_eq!(window.len(), 4, "{window:#?}");
    assert!(window.iter().all(|e| e["action"] == "job.created"));
    // An offset other than Z is understood.
    let offset = chrono::DateTime::parse_from_rfc3339(&pivot)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339();
    assert_eq!(
        client
            .walk(&path, token, &[("since", &offset)], 50)
            .await
            .len(),
        since.len()
    );

    // Bad filters: 422 naming the field.
    for (field, value) in [
        ("since", "yesterday"),
        ("until", "2026-13-01T00:00:00Z"),
        ("cursor", "not-a-cursor"),
        ("limit", "0"),
        ("limit", "201"),
    ] {
        let response = client.audit_page(&path, token, &[(field, value)]).await;
        let body = punctual_tests::problem(response, 422).await;
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }
    let response = client
        .audit_page(
            &path,
            token,
            &[
                ("since", "2026-02-01T00:00:00Z"),
                ("until", "2026-01-01T00:00:00Z"),
            ],
        )
        .await;
    let body = punctual_tests::problem(response, 422).await;
    assert_eq!(body["errors"][0]["field"], "until");
}

#[tokio::test]
async fn platform_admins_see_every_organization() {
    let app = app().await;
    let client = Client::new(&app);
    let staff = app.register_user().await;
    punctual_api::service::admin::grant_platform_admin(&app.database, &staff.email)
        .await
        .unwrap();
    let first_owner = app.register_user().await;
    let first = app.create_org(&first_owner).await;
    let second_owner = app.register_user().await;
    let second = app.create_org(&second_owner).await;
    client
        .expect(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": first_owner.email, "password": first_owner.password})),
            200,
        )
        .await;

    for token in [service_token(), staff.access_token.clone()] {
        let all = client.walk(PLATFORM_LOG, &token, &[], 3).await;
        for org in [&first, &second] {
            assert!(
                all.iter().any(
                    |e| e["action"] == "org.created" && e["organization_id"] == org.id.as_str()
                ),
                "{all:#?}"
            );
        }
        assert!(all
            .iter()
            .any(|e| e["action"] == "auth.login_succeeded" && e["organization_id"].is_null()));
        assert!(all.iter().any(|e| e["action"] == "user.registered"));

        let only_first = client
            .walk(PLATFORM_LOG, &token, &[("org", &first.slug)], 50)
            .await;
        assert!(!only_first.is_empty());
        assert!(only_first
            .iter()
            .all(|e| e["organization_id"] == first.id.as_str()));
        let by_id = client
            .walk(PLATFORM_LOG, &token, &[("org_id", &second.id)], 50)
            .await;
        assert!(!by_id.is_empty());
        assert!(by_id
            .iter()
            .all(|e| e["organization_id"] == second.id.as_str()));
        assert!(client
            .walk(PLATFORM_LOG, &token, &[("org", "no-such-org")], 50)
            .await
            .is_empty());
        let logins = client
            .walk(
                PLATFORM_LOG,
                &token,
                &[
                    ("action", "auth.login_succeeded"),
                    ("actor", &first_owner.id),
                ],
                50,
            )
            .await;
        assert_eq!(logins.len(), 1);
        let body = punctual_tests::problem(
            client
                .audit_page(PLATFORM_LOG, &token, &[("org_id", "not-an-id")])
                .await,
            422,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], "org_id");
    }

    // An organization's log outlives it, for platform admins.
    client
        .expect(
            Method::DELETE,
            &format!("/api/v1/orgs/{}", second.slug),
            Some(&second_owner.access_token),
            None,
            204,
        )
        .await;
    let history = client
        .walk(
            PLATFORM_LOG,
            &service_token(),
            &[("org_id", &second.id)],
            50,
        )
        .await;
    assert_eq!(history[0]["action"], "org.deleted");
    assert!(history.iter().any(|e| e["action"] == "org.created"));
    // The service token acts as `admin`; it can be filtered on.
    client
        .expect(
            Method::PATCH,
            &format!("/api/v1/admin/orgs/{}", first.slug),
            Some(&service_token()),
            Some(json!({"suspended": true})),
            200,
        )
        .await;
    let by_admin = client
        .walk(PLATFORM_LOG, &staff.access_token, &[("actor", "admin")], 50)
        .await;
    assert_eq!(by_admin.len(), 1);
    assert_eq!(by_admin[0]["action"], "admin.org_updated");
    assert_eq!(by_admin[0]["metadata"]["suspended"], true);
    assert_eq!(by_admin[0]["metadata"]["plan"], "free");
}

#[tokio::test]
async fn a_refused_or_failed_change_writes_no_entry() {
    let app = app().await;
    let client = Client::new(&app);
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let jobs_path = format!("/api/v1/orgs/{}/jobs", org.slug);
    client
        .expect(
            Method::POST,
            &jobs_path,
            Some(&owner.access_token),
            Some(job_document("once", "unique-key", "Bearer x")),
            201,
        )
        .await;
    let before = audit_count(&app).await;

    // Refused before anything is written: a taken key, an invalid job, the last
    // owner's demotion, a member's attempt at an admin's job.
    client
        .expect(
            Method::POST,
            &jobs_path,
            Some(&owner.access_token),
            Some(job_document("twice", "unique-key", "Bearer x")),
            409,
        )
        .await;
    client
        .expect(
            Method::POST,
            &jobs_path,
            Some(&owner.access_token),
            Some(json!({"name": "broken", "request": {"url": "ftp://x"}})),
            422,
        )
        .await;
    client
        .expect(
            Method::PATCH,
            &format!("/api/v1/orgs/{}/members/{}", org.slug, owner.id),
            Some(&owner.access_token),
            Some(json!({"role": "member"})),
            409,
        )
        .await;
    let member = app.register_user().await;
    app.add_member(&org, &member, "member").await;
    let before = before + 1; // the member's registration
    client
        .expect(
            Method::POST,
            &format!("/api/v1/orgs/{}/api-keys", org.slug),
            Some(&member.access_token),
            Some(json!({"name": "nope", "role": "member"})),
            403,
        )
        .await;
    assert_eq!(
        audit_count(&app).await,
        before,
        "refused changes leave no entry"
    );

    // Failed after the entry was written, in the same transaction: a registration
    // whose organization slug is taken. The `user.registered` entry was written
    // before the slug was found taken; it went with the rollback, as did the user.
    let email = format!("{}@example.com", unique("late"));
    client
        .expect(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({
                "email": email, "password": "correct horse battery staple",
                "organization": {"name": "Taken", "slug": org.slug},
            })),
            409,
        )
        .await;
    assert_eq!(
        audit_count(&app).await,
        before,
        "no entry of a rolled-back change"
    );
    client
        .expect(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": "correct horse battery staple"})),
            401,
        )
        .await;
    let events = client
        .walk(
            PLATFORM_LOG,
            &service_token(),
            &[("action", "user.registered")],
            50,
        )
        .await;
    assert!(
        events
            .iter()
            .all(|e| e["metadata"]["email"] != email.as_str()),
        "the user was never registered"
    );
    let failed = client
        .walk(
            PLATFORM_LOG,
            &service_token(),
            &[("action", "auth.login_failed")],
            50,
        )
        .await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["actor_type"], "anonymous");
}
