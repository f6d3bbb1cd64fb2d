//! A `punctual serve` process killed with SIGKILL in the middle of slow
//! executions, then restarted: every occurrence is still delivered, the lost
//! attempts recorded as failed ("node lost") and followed by a later attempt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use punctual_tests::engine::{eventually, EngineFixture, JobSpec};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn serve(database_url: &str, dir: &std::path::Path) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_punctual"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PUNCTUAL") || key == "DATABASE_URL" || key == "PORT" || key == "BIND" {
            command.env_remove(key);
        }
    }
    command
        .arg("serve")
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("PORT", "0")
        .env("PUNCTUAL__LOG__LEVEL", "warn")
        .env("PUNCTUAL__OUTBOUND__ALLOW_PRIVATE_NETWORKS", "true")
        .env("PUNCTUAL__ENGINE__LEASE_SECONDS", "2")
        .env("PUNCTUAL__ENGINE__RESCUE_INTERVAL_SECONDS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("punctual serve starts")
}

#[tokio::test]
async fn a_killed_node_loses_no_occurrence() {
    let fixture = EngineFixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let target = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&target)
        .await;
    let mut jobs = Vec::new();
    for _ in 0..5 {
        let mut spec = JobSpec::once(Utc::now(), &target.uri());
        spec.max_attempts = 3;
        spec.timeout_ms = 10_000;
        jobs.push(fixture.insert_job(spec).await);
    }

    let mut first = serve(&fixture.test_database.url, dir.path());
    let all_running = eventually(Duration::from_secs(30), || async {
        let mut running = 0;
        for job in &jobs {
            running += fixture
                .executions(*job)
                .await
                .iter()
                .filter(|e| e.status == "running")
                .count();
        }
        // "running" is recorded before the request leaves: wait until the
        // target has seen every first attempt too, so the kill lands mid-request.
        let received = target.received_requests().await.map_or(0, |r| r.len());
        running == jobs.len() && received >= jobs.len()
    })
    .await;
    assert!(
        all_running,
        "the first node took every execution and sent its request"
    );
    first.kill().unwrap(); // SIGKILL: no drain, no hand-back
    first.wait().unwrap();

    let mut second = serve(&fixture.test_database.url, dir.path());
    let delivered = eventually(Duration::from_secs(60), || async {
        let mut done = 0;
        for job in &jobs {
            if fixture
                .executions(*job)
                .await
                .iter()
                .any(|e| e.status == "success")
            {
                done += 1;
            }
        }
        done == jobs.len()
    })
    .await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert!(delivered, "every occurrence delivered after the restart");

    for job in &jobs {
        let executions = fixture.executions(*job).await;
        assert!(
            executions
                .iter()
                .all(|e| e.scheduled_for == executions[0].scheduled_for),
            "one occurrence"
        );
        assert_eq!(executions[0].attempt, 1);
        assert_eq!(executions[0].status, "failed");
        assert!(executions[0]
            .error
            .as_deref()
            .unwrap()
            .contains("node lost"));
        let success = executions.iter().find(|e| e.status == "success").unwrap();
        assert!(success.attempt >= 2, "the duplicate is a later attempt");
    }
    let requests = target.received_requests().await.unwrap();
    assert!(
        requests.len() >= 2 * jobs.len(),
        "at least once: the lost attempts reached the target too"
    );
}
