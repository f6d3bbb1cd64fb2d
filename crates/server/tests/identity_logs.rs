//! SECURITY.md: "No secret, token, password or hash appears in logs". Runs the
//! real `punctual serve` at debug level, goes through every identity flow that
//! handles a secret (register, login, a failed login, refresh and its reuse,
//! API keys, signing-secret rotation, invitations, password reset, magic link
//! with the emails delivered over SMTP, the admin service token), then greps everything the process wrote to stdout
//! and stderr for each secret, token, password and stored hash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use punctual_persistence::entities::{
    api_key, email_outbox, email_token, invitation, refresh_token, signing_secret, user,
};
use punctual_persistence::sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use punctual_persistence::{Database, DatabaseOptions};
use serde_json::{json, Value};

const PASSWORD: &str = "log-test password 7f3a9c51";
const NEW_PASSWORD: &str = "log-test new password 0b6e2d84";
const WRONG_PASSWORD: &str = "log-test wrong password 91c4e7aa";
const FRIEND_PASSWORD: &str = "log-test friend password 3d5f0c12";
const JWT_SECRET: &str = "log-test-jwt-secret-5a0f3e9b8c7d6e5f4a3b2c1d";
const SERVICE_TOKEN: &str = "log-test-service-token-c0ffee-1234567890abcdef";

/// The server under test, with everything it writes collected.
struct Server {
    child: Child,
    address: String,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Server {
    fn start(dir: &std::path::Path, database_url: &str, smtp_url: &str) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_punctual"));
        for (key, _) in std::env::vars() {
            if key.starts_with("PUNCTUAL")
                || key == "DATABASE_URL"
                || key == "PORT"
                || key == "BIND"
                || key == "RUST_LOG"
            {
                command.env_remove(key);
            }
        }
        let mut child = command
            .arg("serve")
            .current_dir(dir)
            .env("PORT", "0")
            .env("DATABASE_URL", database_url)
            .env("PUNCTUAL__LOG__LEVEL", "debug")
            .env("PUNCTUAL__AUTH__JWT_SECRET", JWT_SECRET)
            .env("PUNCTUAL__ADMIN__SERVICE_TOKEN", SERVICE_TOKEN)
            .env("PUNCTUAL__EMAIL__SMTP_URL", smtp_url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        let mut readers = Vec::new();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for (stream, forward) in [
            (Box::new(stdout) as Box<dyn Read + Send>, Some(lines_tx)),
            (Box::new(stderr) as Box<dyn Read + Send>, None),
        ] {
            let output = Arc::clone(&output);
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    {
                        let mut all = output.lock().unwrap();
                        all.push_str(&line);
                        all.push('\n');
                    }
                    if let Some(forward) = &forward {
                        let _ = forward.send(line);
                    }
                }
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let line = lines_rx
                .recv_timeout(remaining)
                .unwrap_or_else(|_| panic!("serve printed no address: {}", output.lock().unwrap()));
            if let Some(rest) = line.strip_prefix("punctual listening on http://") {
                break rest.trim().to_owned();
            }
        };
        Self {
            child,
            address,
            output,
            readers,
        }
    }

    /// Stops the process (SIGTERM, then SIGKILL) and returns all it wrote.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let output = self.output.lock().unwrap().clone();
        output
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        http(&self.address, method, path, token, body)
    }
}

/// One HTTP/1.1 request over a fresh connection; the status and the JSON body (or null).
fn http(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let payload = body.map(Value::to_string).unwrap_or_default();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if body.is_some() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!(
        "Content-Length: {}\r\n\r\n{payload}",
        payload.len()
    ));
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

fn text(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
        .to_owned()
}

fn expect(status: u16, (actual, body): (u16, Value)) -> Value {
    assert_eq!(actual, status, "{body}");
    body
}

/// Reads what the server stored: the latest email token for `recipient`, and
/// every stored hash and secret.
struct Store {
    runtime: tokio::runtime::Runtime,
    database: Database,
}

impl Store {
    fn open(url: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let database = runtime
            .block_on(Database::connect(&DatabaseOptions::new(url)))
            .unwrap();
        Self { runtime, database }
    }

    fn latest_token_to(&self, recipient: &str) -> String {
        let emails = self
            .runtime
            .block_on(
                email_outbox::Entity::find()
                    .filter(email_outbox::Column::Recipient.eq(recipient))
                    .order_by_desc(email_outbox::Column::CreatedAt)
                    .order_by_desc(email_outbox::Column::Id)
                    .all(self.database.conn()),
            )
            .unwrap();
        let body = &emails.first().expect("an email was queued").body;
        body.lines()
            .find_map(|l| l.trim().strip_prefix("Token:"))
            .map(|t| t.trim().to_owned())
            .unwrap_or_else(|| panic!("no token in {body}"))
    }

    fn stored_secrets(&self) -> Vec<(String, String)> {
        let conn = self.database.conn();
        let mut found = Vec::new();
        self.runtime.block_on(async {
            for u in user::Entity::find().all(conn).await.unwrap() {
                if let Some(hash) = u.password_hash {
                    found.push(("password hash".to_owned(), hash));
                }
            }
            for t in refresh_token::Entity::find().all(conn).await.unwrap() {
                found.push(("refresh token hash".to_owned(), t.token_hash));
            }
            for t in email_token::Entity::find().all(conn).await.unwrap() {
                found.push(("email token hash".to_owned(), t.token_hash));
            }
            for i in invitation::Entity::find().all(conn).await.unwrap() {
                found.push(("invitation token hash".to_owned(), i.token_hash));
            }
            for k in api_key::Entity::find().all(conn).await.unwrap() {
                found.push(("api key secret hash".to_owned(), k.secret_hash));
            }
            for s in signing_secret::Entity::find().all(conn).await.unwrap() {
                found.push(("stored signing secret".to_owned(), s.secret));
            }
        });
        found
    }
}

/// A minimal SMTP server on loopback that accepts every message, so that the
/// mailer's real delivery path (not only its log fallback) runs during the test.
struct SmtpSink {
    address: std::net::SocketAddr,
    delivered: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&delivered);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || {
                    let _ = Self::session(stream, &sink);
                });
            }
        });
        Self { address, delivered }
    }

    fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    fn session(stream: TcpStream, delivered: &Mutex<Vec<String>>) -> std::io::Result<()> {
        let mut writer = stream.try_clone()?;
        let mut lines = BufReader::new(stream).lines();
        writer.write_all(b"220 sink ESMTP\r\n")?;
        while let Some(line) = lines.next() {
            let line = line?;
            let verb = line
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" => writer.write_all(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")?,
                "DATA" => {
                    writer.write_all(b"354 go ahead\r\n")?;
                    let mut message = String::new();
                    for line in lines.by_ref() {
                        let line = line?;
                        if line == "." {
                            break;
                        }
                        message.push_str(&line);
                        message.push('\n');
                    }
                    delivered.lock().unwrap().push(message);
                    writer.write_all(b"250 queued\r\n")?;
                }
                "QUIT" => {
                    writer.write_all(b"221 bye\r\n")?;
                    return Ok(());
                }
                _ => writer.write_all(b"250 ok\r\n")?,
            }
        }
        Ok(())
    }

    /// Waits (up to 30 s) until `count` messages arrived.
    fn wait_for(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.delivered.lock().unwrap().len() < count {
            assert!(
                Instant::now() < deadline,
                "expected {count} email(s) delivered by SMTP"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A fresh database for the server: SQLite in `dir`, or a new PostgreSQL
/// database (dropped afterwards) when `TEST_DATABASE_URL` is set.
struct ScratchDatabase {
    url: String,
    postgres: Option<(String, String)>,
}

impl ScratchDatabase {
    fn create(dir: &std::path::Path) -> Self {
        let Some(server_url) = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            return Self {
                url: format!("sqlite://{}?mode=rwc", dir.join("punctual.db").display()),
                postgres: None,
            };
        };
        let server_url = server_url.trim_end_matches('/').to_owned();
        let name = format!("punctual_logs_{}", std::process::id());
        let admin_url = format!("{server_url}/postgres");
        Self::admin(
            &admin_url,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        Self::admin(&admin_url, &format!("CREATE DATABASE {name}"));
        Self {
            url: format!("{server_url}/{name}"),
            postgres: Some((admin_url, name)),
        }
    }

    fn admin(admin_url: &str, statement: &str) {
        use punctual_persistence::sea_orm::ConnectionTrait;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let conn = punctual_persistence::sea_orm::Database::connect(admin_url)
                .await
                .expect("TEST_DATABASE_URL is reachable");
            conn.execute_unprepared(statement).await.unwrap();
            conn.close().await.unwrap();
        });
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            Self::admin(
                &admin_url,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

#[test]
fn no_password_token_secret_or_hash_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = ScratchDatabase::create(dir.path());
    let database_url = scratch.url.clone();
    let smtp = SmtpSink::start();
    let server = Server::start(dir.path(), &database_url, &smtp.url());
    let mut secrets: Vec<(String, String)> = vec![
        ("password".into(), PASSWORD.into()),
        ("new password".into(), NEW_PASSWORD.into()),
        ("wrong password".into(), WRONG_PASSWORD.into()),
        ("friend's password".into(), FRIEND_PASSWORD.into()),
        ("JWT secret".into(), JWT_SECRET.into()),
        ("service token".into(), SERVICE_TOKEN.into()),
    ];
    let email = "logs-owner@example.com";
    let friend = "logs-friend@example.com";

    // Register with an organization, log in, fail a login.
    let registered = expect(
        201,
        server.call(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(&json!({"email": email, "password": PASSWORD,
                         "organization": {"name": "Logs", "slug": "logs-org"}})),
        ),
    );
    let access = text(&registered, "access_token");
    secrets.push(("access token (register)".into(), access.clone()));
    secrets.push((
        "refresh token (register)".into(),
        text(&registered, "refresh_token"),
    ));
    secrets.push(("signing secret".into(), text(&registered, "signing_secret")));
    let (status, _) = server.call(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({"email": email, "password": WRONG_PASSWORD})),
    );
    assert_eq!(status, 401);
    let login = expect(
        200,
        server.call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": email, "password": PASSWORD})),
        ),
    );
    let spent = text(&login, "refresh_token");
    secrets.push(("access token (login)".into(), text(&login, "access_token")));
    secrets.push(("refresh token (login)".into(), spent.clone()));

    // Refresh, then reuse the spent token (a warning is logged).
    let refreshed = expect(
        200,
        server.call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": spent})),
        ),
    );
    secrets.push((
        "access token (refresh)".into(),
        text(&refreshed, "access_token"),
    ));
    secrets.push((
        "refresh token (refresh)".into(),
        text(&refreshed, "refresh_token"),
    ));
    expect(
        401,
        server.call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": spent})),
        ),
    );
    expect(
        401,
        server.call(
            "GET",
            "/api/v1/me",
            Some(&text(&refreshed, "access_token")),
            None,
        ),
    );
    expect(200, server.call("GET", "/api/v1/me", Some(&access), None));

    // API keys: create, use, misuse.
    let key = expect(
        201,
        server.call(
            "POST",
            "/api/v1/orgs/logs-org/api-keys",
            Some(&access),
            Some(&json!({"name": "ci", "role": "admin"})),
        ),
    );
    let full_key = text(&key, "api_key");
    let (public, secret) = full_key.split_once('.').unwrap();
    secrets.push(("API key secret".into(), secret.to_owned()));
    secrets.push((
        "API key secret body".into(),
        secret.trim_start_matches("sk_live_").to_owned(),
    ));
    expect(
        200,
        server.call("GET", "/api/v1/orgs/logs-org", Some(&full_key), None),
    );
    let forged = format!("{public}.sk_live_{}", "Z".repeat(43));
    secrets.push(("forged API key secret".into(), "Z".repeat(43)));
    expect(
        401,
        server.call("GET", "/api/v1/orgs/logs-org", Some(&forged), None),
    );

    // Signing secret rotation.
    let rotated = expect(
        200,
        server.call(
            "POST",
            "/api/v1/orgs/logs-org/signing-secret/rotate",
            Some(&full_key),
            None,
        ),
    );
    secrets.push((
        "rotated signing secret".into(),
        text(&rotated, "signing_secret"),
    ));

    let store = Store::open(&database_url);

    // An invitation, accepted.
    expect(
        201,
        server.call(
            "POST",
            "/api/v1/orgs/logs-org/invitations",
            Some(&access),
            Some(&json!({"email": friend, "role": "member"})),
        ),
    );
    let invitation_token = store.latest_token_to(friend);
    secrets.push(("invitation token".into(), invitation_token.clone()));
    let friend_session = expect(
        201,
        server.call(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(&json!({"email": friend, "password": FRIEND_PASSWORD})),
        ),
    );
    secrets.push((
        "friend's access token".into(),
        text(&friend_session, "access_token"),
    ));
    expect(
        200,
        server.call(
            "POST",
            "/api/v1/invitations/accept",
            Some(&text(&friend_session, "access_token")),
            Some(&json!({"token": invitation_token})),
        ),
    );

    // Password reset and magic link.
    expect(
        202,
        server.call(
            "POST",
            "/api/v1/auth/password-reset",
            None,
            Some(&json!({"email": email})),
        ),
    );
    let reset_token = store.latest_token_to(email);
    secrets.push(("reset token".into(), reset_token.clone()));
    expect(
        204,
        server.call(
            "POST",
            "/api/v1/auth/password-reset/confirm",
            None,
            Some(&json!({"token": reset_token, "password": NEW_PASSWORD})),
        ),
    );
    expect(
        202,
        server.call(
            "POST",
            "/api/v1/auth/magic-link",
            None,
            Some(&json!({"email": email})),
        ),
    );
    let magic_token = store.latest_token_to(email);
    secrets.push(("magic-link token".into(), magic_token.clone()));
    let magic = expect(
        200,
        server.call(
            "POST",
            "/api/v1/auth/magic-link/verify",
            None,
            Some(&json!({"token": magic_token})),
        ),
    );
    secrets.push((
        "access token (magic link)".into(),
        text(&magic, "access_token"),
    ));
    secrets.push((
        "refresh token (magic link)".into(),
        text(&magic, "refresh_token"),
    ));
    expect(
        204,
        server.call(
            "POST",
            "/api/v1/auth/logout",
            None,
            Some(&json!({"refresh_token": text(&magic, "refresh_token")})),
        ),
    );

    // The admin service token; a rejected registration carrying a password.
    expect(
        200,
        server.call("GET", "/api/v1/admin/stats", Some(SERVICE_TOKEN), None),
    );
    let rejected_password = format!("rejected-{}", "q".repeat(130));
    expect(
        422,
        server.call(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(&json!({"email": "x@example.com", "password": rejected_password})),
        ),
    );
    secrets.push(("rejected password".into(), rejected_password));

    // The invitation, the reset and the magic link went out by SMTP.
    smtp.wait_for(3);
    secrets.extend(store.stored_secrets());
    let logs = server.stop();

    // The run was logged at debug level, flows included: an empty or quiet log
    // would pass the greps below for the wrong reason.
    assert!(logs.contains("DEBUG"), "debug logging was on:\n{logs}");
    for event in [
        "login failed",
        "refresh token reused",
        "api key created",
        "signing secret rotated",
        "password reset",
        "email sent",
        "request finished",
    ] {
        assert!(logs.contains(event), "{event:?} was logged:\n{logs}");
    }
    let mut leaks = Vec::new();
    for (what, secret) in &secrets {
        assert!(secret.len() >= 16, "{what} is long enough to grep for");
        if logs.contains(secret.as_str()) {
            leaks.push(what.clone());
        }
    }
    assert!(logs.len() > 1000, "the logs are not trivially small");
    assert!(
        leaks.is_empty(),
        "found in the logs: {leaks:?}\n--- logs ---\n{logs}"
    );
    assert!(!logs.contains("$argon2"), "an argon2 hash was logged");
}
