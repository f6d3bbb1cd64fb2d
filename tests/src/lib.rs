//! The end-to-end harness: [`spawn_app`] starts the real server on port 0 with a
//! fresh database (a temporary SQLite file, or a new PostgreSQL database when
//! `TEST_DATABASE_URL` is set, dropped afterwards) and talks to it over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod console;
pub mod engine;
pub mod smtp;

use std::net::SocketAddr;

use punctual_persistence::{Backend, Database, DatabaseOptions};
use punctual_server::{Application, Settings};
use sqlx::{Connection, Executor};

/// A fresh, empty database for one test.
pub struct TestDatabase {
    /// What to hand to the application.
    pub url: String,
    _sqlite_dir: Option<tempfile::TempDir>,
    postgres: Option<PostgresScratch>,
}

struct PostgresScratch {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// SQLite in a temporary directory, or a new PostgreSQL database named after a
    /// random id when `TEST_DATABASE_URL` is set.
    pub async fn create() -> Self {
        match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(server_url) => Self::create_postgres(&server_url).await,
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("punctual.db").display()
                );
                Self {
                    url,
                    _sqlite_dir: Some(dir),
                    postgres: None,
                }
            }
        }
    }

    async fn create_postgres(server_url: &str) -> Self {
        let admin_url = with_database(server_url, "postgres");
        let name = format!("punctual_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
            });
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        Self {
            url: with_database(server_url, &name),
            _sqlite_dir: None,
            postgres: Some(PostgresScratch { admin_url, name }),
        }
    }

    /// Which engine the tests run on.
    pub fn backend() -> Backend {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// A migrated connection to this database (for engine tests without HTTP).
    pub async fn connect(&self) -> Database {
        let mut options = DatabaseOptions::new(self.url.clone());
        options.max_connections = 5;
        let database = Database::connect(&options)
            .await
            .expect("connect test database");
        use punctual_migration::MigratorTrait;
        punctual_migration::Migrator::up(database.conn(), None)
            .await
            .expect("migrate test database");
        database
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(scratch) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on itself: use a
        // short-lived runtime on another thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut admin = sqlx::PgConnection::connect(&scratch.admin_url)
                    .await
                    .map_err(std::io::Error::other)?;
                admin
                    .execute(
                        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", scratch.name).as_str(),
                    )
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop a test database: {error}");
        }
    }
}

fn with_database(server_url: &str, database: &str) -> String {
    let mut url = url_parts(server_url);
    url.set_path(&format!("/{database}"));
    url.to_string()
}

fn url_parts(server_url: &str) -> reqwest::Url {
    reqwest::Url::parse(server_url).expect("TEST_DATABASE_URL must be a postgres:// url")
}

/// The settings tests start from: the built-in `test` configuration.
pub fn test_settings() -> Settings {
    let mut settings = Settings::built_in("test").expect("built-in test settings");
    settings.server.port = 0;
    settings.server.workers = 2;
    settings.database.max_connections = 5;
    settings
}

/// A running server and the means to call it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The bound socket.
    pub socket: SocketAddr,
    /// A client that does not follow redirects.
    pub client: reqwest::Client,
    /// The application's own pool (the same one its handlers use).
    pub database: Database,
    /// Wakes the application's engine (after inserting rows directly).
    pub engine_wakeup: std::sync::Arc<tokio::sync::Notify>,
    server: actix_web::dev::ServerHandle,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Kept last so the database outlives the server.
    pub test_database: TestDatabase,
}

/// Starts the real application with [`test_settings`] and a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], letting the test adjust the settings first.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let test_database = TestDatabase::create().await;
    let mut settings = test_settings();
    settings.database.url = test_database.url.clone();
    adjust(&mut settings);
    let application = Application::build(settings)
        .await
        .expect("application starts");
    let socket = application.address();
    let database = application.database().clone();
    let engine_wakeup = application.engine_wakeup();
    let server = application.server_handle();
    let running = Some(tokio::spawn(application.run_until_stopped()));
    TestApp {
        address: format!("http://{socket}"),
        socket,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        database,
        engine_wakeup,
        server,
        running,
        test_database,
    }
}

impl TestApp {
    /// `GET {address}{path}`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    /// A request builder for `method {address}{path}`.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
    }
}

impl TestApp {
    /// Stops the server gracefully (as SIGTERM would) and waits for it to end.
    pub async fn stop(mut self) -> std::io::Result<()> {
        let stopping = self.server.stop(true);
        stopping.await;
        match self.running.take() {
            Some(running) => running.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The stop command is sent synchronously; the workers wind down on their own.
        drop(self.server.stop(false));
    }
}

/// Reads a problem+json answer, checking its media type and status field.
pub async fn problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/problem+json"),
        "expected problem+json, got {content_type:?}"
    );
    let body: serde_json::Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string() && body["type"].is_string() && body["detail"].is_string());
    body
}

/// A signed-up user with the tokens of one session.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// User id.
    pub id: String,
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
    /// Access token (JWT).
    pub access_token: String,
    /// Refresh token.
    pub refresh_token: String,
}

/// An organization created by a test.
#[derive(Debug, Clone)]
pub struct TestOrg {
    /// Slug.
    pub slug: String,
    /// Id.
    pub id: String,
    /// Webhook signing secret `whsec_...`.
    pub signing_secret: String,
}

/// A random suffix for unique names in one test database.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

impl TestApp {
    /// A request with `Authorization: Bearer {token}`.
    pub fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.request(method, path).bearer_auth(token)
    }

    /// `GET path` with a bearer token, answered with JSON (any status).
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        self.authed(reqwest::Method::GET, path, token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST path` with a JSON body and a bearer token.
    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        let mut request = self.request(reqwest::Method::POST, path).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    /// Registers a user (no organization) and returns its session.
    pub async fn register_user(&self) -> TestUser {
        let email = format!("{}@example.com", unique("user"));
        self.register_user_with_email(&email).await
    }

    /// Registers `email` with a fixed password.
    pub async fn register_user_with_email(&self, email: &str) -> TestUser {
        let password = "correct horse battery staple".to_owned();
        let response = self
            .post_json(
                "/api/v1/auth/register",
                None,
                &serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status(), 201, "register {email}");
        let body: serde_json::Value = response.json().await.expect("json");
        TestUser {
            id: body["user"]["id"].as_str().expect("id").to_owned(),
            email: email.to_owned(),
            password,
            access_token: body["access_token"].as_str().expect("access").to_owned(),
            refresh_token: body["refresh_token"].as_str().expect("refresh").to_owned(),
        }
    }

    /// Creates an organization owned by `owner`.
    pub async fn create_org(&self, owner: &TestUser) -> TestOrg {
        let slug = unique("org");
        let response = self
            .post_json(
                "/api/v1/orgs",
                Some(&owner.access_token),
                &serde_json::json!({"name": "Test org", "slug": slug}),
            )
            .await;
        assert_eq!(response.status(), 201, "create org");
        let body: serde_json::Value = response.json().await.expect("json");
        TestOrg {
            slug,
            id: body["id"].as_str().expect("id").to_owned(),
            signing_secret: body["signing_secret"].as_str().expect("secret").to_owned(),
        }
    }

    /// Creates an API key with `role` in `org` as `admin` and returns the full key.
    pub async fn create_api_key(&self, admin: &TestUser, org: &TestOrg, role: &str) -> String {
        let response = self
            .post_json(
                &format!("/api/v1/orgs/{}/api-keys", org.slug),
                Some(&admin.access_token),
                &serde_json::json!({"name": "test key", "role": role}),
            )
            .await;
        assert_eq!(response.status(), 201, "create api key");
        let body: serde_json::Value = response.json().await.expect("json");
        body["api_key"].as_str().expect("key").to_owned()
    }

    /// Adds `user` to `org` with `role` directly in the store (tests of other
    /// features need members without going through email invitations).
    pub async fn add_member(&self, org: &TestOrg, user: &TestUser, role: &str) {
        let org_id: uuid::Uuid = org.id.parse().expect("org id");
        let user_id: uuid::Uuid = user.id.parse().expect("user id");
        punctual_persistence::organizations::insert_membership(
            self.database.conn(),
            org_id,
            user_id,
            role,
            chrono::Utc::now(),
        )
        .await
        .expect("insert membership");
    }
}

// ---------------------------------------------------------------------------
// Identity helpers: sessions, arbitrary requests, the email outbox.

impl TestApp {
    /// `method path` with an optional bearer token and an optional JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self.request(method, path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    /// `POST /api/v1/auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            None,
            &serde_json::json!({"email": email, "password": password}),
        )
        .await
    }

    /// `POST /api/v1/auth/refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/refresh",
            None,
            &serde_json::json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// `GET /api/v1/me` with `token`.
    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.authed(reqwest::Method::GET, "/api/v1/me", token)
            .send()
            .await
            .expect("request")
    }

    /// Every email queued for `recipient`, oldest first.
    pub async fn emails_to(
        &self,
        recipient: &str,
    ) -> Vec<punctual_persistence::entities::email_outbox::Model> {
        use punctual_persistence::entities::email_outbox;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        email_outbox::Entity::find()
            .filter(email_outbox::Column::Recipient.eq(recipient.to_lowercase()))
            .order_by_asc(email_outbox::Column::CreatedAt)
            .order_by_asc(email_outbox::Column::Id)
            .all(self.database.conn())
            .await
            .expect("read email_outbox")
    }

    /// The single-use token of the latest email queued for `recipient` (its
    /// `Token: ...` line). Panics when there is none.
    pub async fn latest_email_token(&self, recipient: &str) -> String {
        let emails = self.emails_to(recipient).await;
        let email = emails
            .last()
            .unwrap_or_else(|| panic!("no email was queued for {recipient}"));
        token_in_email(&email.body)
    }
}

/// The value of the `Token: ...` line of an email body.
pub fn token_in_email(body: &str) -> String {
    body.lines()
        .find_map(|line| line.trim().strip_prefix("Token:"))
        .map(|token| token.trim().to_owned())
        .filter(|token| !token.is_empty())
        .unwrap_or_else(|| panic!("no `Token:` line in the email body:\n{body}"))
}

/// The claims of a JWT, decoded without checking anything (to craft variants).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Asserts a 401 problem carrying `WWW-Authenticate: Bearer`; returns the body.
pub async fn unauthorized(response: reqwest::Response) -> serde_json::Value {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = problem(response, 401).await;
    assert!(
        challenge
            .as_deref()
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("bearer")),
        "a 401 must carry WWW-Authenticate: Bearer, got {challenge:?}"
    );
    body
}

/// The field names of a 422 problem's `errors`.
pub async fn invalid_fields(response: reqwest::Response) -> Vec<String> {
    let body = problem(response, 422).await;
    body["errors"]
        .as_array()
        .expect("a 422 lists its errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect()
}
