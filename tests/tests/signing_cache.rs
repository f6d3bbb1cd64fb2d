//! Requests starting together read their organization's signing secrets once:
//! the first to miss the engine's cache reads them, the others wait for that
//! read and take its keys, instead of one read each. A test binary of its own:
//! the statements are counted by a process-wide tracing subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use punctual_scheduler::Engine;
use punctual_tests::engine::{eventually, EngineFixture, JobSpec};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Counts the statements sqlx runs (its `sqlx::query` events) that name the
/// signing secrets' table.
struct SecretStatements(Arc<AtomicUsize>);

#[derive(Default)]
struct NamesSecrets(bool);

impl Visit for NamesSecrets {
    fn record_str(&mut self, _: &Field, value: &str) {
        self.0 |= value.contains("signing_secrets");
    }

    fn record_debug(&mut self, _: &Field, value: &dyn std::fmt::Debug) {
        self.0 |= format!("{value:?}").contains("signing_secrets");
    }
}

impl<S: tracing::Subscriber> Layer<S> for SecretStatements {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut names = NamesSecrets::default();
        event.record(&mut names);
        if names.0 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn requests_starting_together_read_their_organizations_secrets_once() {
    let statements = Arc::new(AtomicUsize::new(0));
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(SecretStatements(statements.clone())),
    )
    .expect("the only subscriber of this test binary");

    let fixture = EngineFixture::new().await;
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    const JOBS: usize = 40;
    let due = Utc::now();
    let mut jobs = Vec::with_capacity(JOBS);
    for _ in 0..JOBS {
        jobs.push(fixture.insert_job(JobSpec::once(due, &server.uri())).await);
    }
    // The counter sees the fixture's own statements too (the organization's
    // secret was inserted): only what the engine runs from here counts.
    let before = statements.load(Ordering::SeqCst);
    assert!(before > 0, "the counter sees sqlx's statements");

    let engine = Engine::new(fixture.database.clone(), fixture.config())
        .expect("engine")
        .start(None);
    assert!(
        eventually(Duration::from_secs(20), || async {
            let mut done = 0;
            for job in &jobs {
                if fixture.job(*job).await.completed_at.is_some() {
                    done += 1;
                }
            }
            done == JOBS
        })
        .await,
        "every job ran"
    );
    engine.shutdown().await;

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), JOBS);
    assert!(
        requests
            .iter()
            .all(|request| request.headers.contains_key("webhook-signature")),
        "every request is signed"
    );
    assert_eq!(
        statements.load(Ordering::SeqCst) - before,
        1,
        "{JOBS} requests starting together read the secrets once"
    );
}
