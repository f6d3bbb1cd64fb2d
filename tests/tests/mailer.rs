//! The email outbox sender against a real SMTP server (the test sink) and a real
//! database: SQLite by default, PostgreSQL with `TEST_DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use punctual_persistence::entities::email_outbox;
use punctual_persistence::{outbox, Database};
use punctual_scheduler::{Mailer, MailerConfig, MailerError};
use punctual_tests::smtp::{free_port, SmtpSink};
use punctual_tests::TestDatabase;
use sea_orm::EntityTrait;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(15);

/// Settings where only a wake-up, the first pass or a due retry sends anything:
/// the poll is far beyond the test's deadlines.
fn config(smtp_url: Option<String>) -> MailerConfig {
    MailerConfig {
        smtp_url,
        poll_interval: Duration::from_secs(3600),
        ..MailerConfig::default()
    }
}

async fn enqueue(database: &Database, recipient: &str, subject: &str, body: &str) -> Uuid {
    outbox::enqueue_email(database.conn(), recipient, subject, body, Utc::now())
        .await
        .expect("enqueue email")
}

async fn row(database: &Database, id: Uuid) -> email_outbox::Model {
    email_outbox::Entity::find_by_id(id)
        .one(database.conn())
        .await
        .expect("read outbox")
        .expect("outbox row exists")
}

async fn pending(database: &Database) -> u64 {
    outbox::pending_email_count(database.conn())
        .await
        .expect("count pending emails")
}

/// Waits until `check` holds, failing with `what` at the deadline.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_enqueued_email_arrives_once_with_its_recipient_subject_and_body() {
    let test_database = TestDatabase::create().await;
    let database = test_database.connect().await;
    let sink = SmtpSink::start().await;
    // A leading dot (dot-stuffing) and a non-ASCII word (a transfer encoding).
    let body = "Hello,\n\nReset your password: http://127.0.0.1:8080/reset?token=tok_4f9a1c\n\
                .this line starts with a dot\nGrüße\n";
    let id = enqueue(&database, "alice@example.com", "Reset your password", body).await;

    let mailer = Mailer::new(database.clone(), config(Some(sink.url())))
        .expect("mailer")
        .start();
    mailer.wake();

    let received = sink.wait_for(1, WAIT).await;
    eventually("the outbox is empty", || async {
        pending(&database).await == 0
    })
    .await;
    mailer.shutdown().await;

    assert_eq!(received.len(), 1);
    assert_eq!(sink.messages().len(), 1, "sent exactly once");
    let email = &received[0];
    assert_eq!(email.from, "no-reply@punctual.localhost");
    assert_eq!(email.to, vec!["alice@example.com".to_owned()]);
    assert_eq!(
        email.header("Subject").as_deref(),
        Some("Reset your password")
    );
    assert_eq!(email.header("To").as_deref(), Some("alice@example.com"));
    assert!(email
        .header("From")
        .is_some_and(|from| from.contains("no-reply@punctual.localhost")));
    assert!(email
        .header("Message-ID")
        .is_some_and(|message_id| message_id.contains(&id.to_string())));
    assert_eq!(email.body_text().trim_end(), body.trim_end());

    let sent = row(&database, id).await;
    assert!(sent.sent_at.is_some());
    assert_eq!(sent.attempts, 0);
    assert_eq!(sent.locked_until, None);
}

#[tokio::test]
async fn a_down_smtp_server_loses_nothing() {
    let test_database = TestDatabase::create().await;
    let database = test_database.connect().await;
    let port = free_port();
    let id = enqueue(
        &database,
        "bob@example.com",
        "Your invitation",
        "Join us: tok_b0b",
    )
    .await;

    let mailer = Mailer::new(
        database.clone(),
        MailerConfig {
            retry_base: Duration::from_millis(50),
            retry_cap: Duration::from_millis(200),
            ..config(Some(format!("smtp://127.0.0.1:{port}")))
        },
    )
    .expect("mailer")
    .start();

    eventually("a failed attempt is recorded", || async {
        row(&database, id).await.attempts > 0
    })
    .await;
    let failed = row(&database, id).await;
    assert_eq!(pending(&database).await, 1);
    assert_eq!(failed.sent_at, None);
    let error = failed.last_error.expect("the failure is recorded");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");

    let sink = SmtpSink::start_on(port).await;
    mailer.wake();
    let received = sink.wait_for(1, WAIT).await;
    eventually("the outbox is empty", || async {
        pending(&database).await == 0
    })
    .await;
    mailer.shutdown().await;

    assert_eq!(received.len(), 1);
    assert_eq!(sink.messages().len(), 1, "sent exactly once");
    assert_eq!(received[0].to, vec!["bob@example.com".to_owned()]);
    assert_eq!(received[0].body_text().trim_end(), "Join us: tok_b0b");
    let sent = row(&database, id).await;
    assert!(sent.sent_at.is_some());
    assert!(sent.attempts > 0, "the failures stay on record");
}

/// Collects what the `fmt` subscriber writes.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs the mailer without SMTP until the outbox is empty and returns its logs.
/// The test runtime is single-threaded, so the thread-local subscriber also sees
/// the mailer's task.
async fn logged_delivery(log_bodies: bool, body: &str) -> String {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let test_database = TestDatabase::create().await;
    let database = test_database.connect().await;
    let id = enqueue(&database, "carol@example.com", "Sign in to Punctual", body).await;
    let mailer = Mailer::new(
        database.clone(),
        MailerConfig {
            log_bodies,
            ..config(None)
        },
    )
    .expect("mailer")
    .start();
    mailer.wake();
    eventually("the outbox is empty", || async {
        pending(&database).await == 0
    })
    .await;
    mailer.shutdown().await;
    assert!(row(&database, id).await.sent_at.is_some());
    logs.text()
}

#[tokio::test(flavor = "current_thread")]
async fn without_smtp_emails_are_logged_without_their_bodies() {
    let logs = logged_delivery(false, "Your link: /magic?token=tok_secret_9d2e").await;
    assert!(logs.contains("carol@example.com"), "{logs}");
    assert!(logs.contains("Sign in to Punctual"), "{logs}");
    assert!(logs.contains("withheld"), "{logs}");
    assert!(!logs.contains("tok_secret_9d2e"), "the body leaked: {logs}");
}

#[tokio::test(flavor = "current_thread")]
async fn without_smtp_bodies_are_logged_when_asked() {
    let logs = logged_delivery(true, "Your link: /magic?token=tok_dev_only_77").await;
    assert!(logs.contains("tok_dev_only_77"), "{logs}");
}

#[tokio::test]
async fn bad_settings_name_their_key_and_hide_credentials() {
    let test_database = TestDatabase::create().await;
    let database = test_database.connect().await;
    let build = |smtp_url: &str, from: &str| {
        Mailer::new(
            database.clone(),
            MailerConfig {
                smtp_url: Some(smtp_url.to_owned()),
                from: from.to_owned(),
                ..MailerConfig::default()
            },
        )
    };

    let wrong_scheme = build("https://user:hunter2@mail.example.com", "a@example.com");
    let Err(error @ MailerError::InvalidSmtpUrl { .. }) = wrong_scheme else {
        panic!("an https URL was accepted");
    };
    let message = error.to_string();
    assert!(message.contains("email.smtp_url"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    let Err(error @ MailerError::InvalidSmtpUrl { .. }) = build("not a url", "a@example.com")
    else {
        panic!("garbage was accepted as smtp_url");
    };
    assert!(error.to_string().contains("email.smtp_url"));

    let Err(error @ MailerError::InvalidFrom { .. }) =
        build("smtp://127.0.0.1:2525", "Punctual <not an address>")
    else {
        panic!("an invalid From was accepted");
    };
    assert!(error.to_string().contains("email.from"));

    assert!(build("smtp://127.0.0.1:2525", "Punctual <no-reply@example.com>").is_ok());
    assert!(build(
        "smtps://user:hunter2@mail.example.com",
        "no-reply@example.com"
    )
    .is_ok());
}

#[tokio::test]
async fn a_backlog_larger_than_a_batch_goes_out_in_full_and_once() {
    let test_database = TestDatabase::create().await;
    let database = test_database.connect().await;
    let sink = SmtpSink::start().await;
    for n in 0..7 {
        enqueue(&database, &format!("user{n}@example.com"), "Hello", "Hi").await;
    }
    // Two senders on one outbox, as two nodes would run: claims keep them apart.
    let start = || {
        Mailer::new(
            database.clone(),
            MailerConfig {
                batch_size: 2,
                ..config(Some(sink.url()))
            },
        )
        .expect("mailer")
        .start()
    };
    let (first, second) = (start(), start());

    sink.wait_for(7, WAIT).await;
    eventually("the outbox is empty", || async {
        pending(&database).await == 0
    })
    .await;
    first.shutdown().await;
    second.shutdown().await;

    let mut recipients: Vec<String> = sink
        .messages()
        .into_iter()
        .flat_map(|email| email.to)
        .collect();
    recipients.sort();
    let expected: Vec<String> = (0..7).map(|n| format!("user{n}@example.com")).collect();
    assert_eq!(recipients, expected, "each email exactly once");
}
