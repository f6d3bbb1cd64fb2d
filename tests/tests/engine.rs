//! The engine, driven directly (no HTTP API): a real database (SQLite, or
//! PostgreSQL with TEST_DATABASE_URL), a real local HTTP target, the real engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::Utc;
use hmac::{Hmac, Mac};
use punctual_scheduler::signing::occurrence_message_id;
use punctual_scheduler::{Clock as _, Engine, EngineConfig, OffsetClock};
use punctual_tests::engine::{eventually, EngineFixture, JobSpec};
use sea_orm::EntityTrait as _;
use sha2::Sha256;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn target(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

fn start(fixture: &EngineFixture, config: EngineConfig) -> punctual_scheduler::EngineHandle {
    Engine::new(fixture.database.clone(), config)
        .expect("engine")
        .start(None)
}

/// Standard Webhooks verification written from the specification, independent
/// of the engine's signing code: HMAC-SHA256 over `id.timestamp.body` keyed with
/// the base64-decoded part of `whsec_...`, compared with each `v1,` signature.
fn verify_standard_webhook(secret: &str, headers: &wiremock::http::HeaderMap, body: &[u8]) -> bool {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = get("webhook-id");
    let timestamp = get("webhook-timestamp");
    let signatures = get("webhook-signature");
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    !id.is_empty()
        && timestamp.parse::<i64>().is_ok()
        && signatures
            .split(' ')
            .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

#[tokio::test]
async fn a_per_second_job_fires_every_second_with_signed_requests() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200).set_body_string("ok")).await;
    let job = fixture
        .insert_job(JobSpec::cron("* * * * * *", &server.uri()))
        .await;
    let engine = start(&fixture, fixture.config());
    assert!(
        eventually(Duration::from_secs(15), || async {
            fixture
                .executions(job)
                .await
                .iter()
                .filter(|e| e.status == "success")
                .count()
                >= 4
        })
        .await,
        "four successful runs"
    );
    engine.shutdown().await;

    let executions = fixture.executions(job).await;
    let successes: Vec<_> = executions
        .iter()
        .filter(|e| e.status == "success")
        .collect();
    for pair in successes.windows(2) {
        assert_eq!(
            pair[1].scheduled_for - pair[0].scheduled_for,
            chrono::Duration::seconds(1),
            "occurrences one second apart"
        );
    }
    for execution in &successes {
        assert_eq!(execution.status_code, Some(200));
        assert_eq!(execution.response_body.as_deref(), Some("ok"));
        assert!(execution.lag_ms.is_some() && execution.duration_ms.is_some());
    }
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests.len(),
        executions.iter().filter(|e| e.started_at.is_some()).count()
    );
    for request in &requests {
        assert_eq!(request.method.as_str(), "POST");
        assert_eq!(request.body, br#"{"hello":"world"}"#);
        assert!(
            verify_standard_webhook(&fixture.signing_secret, &request.headers, &request.body),
            "signature verifies"
        );
        let id = request.headers.get("webhook-id").unwrap().to_str().unwrap();
        assert!(
            executions
                .iter()
                .any(|e| occurrence_message_id(e.job_id, e.scheduled_for) == id),
            "webhook-id names an occurrence"
        );
        assert!(request
            .headers
            .get("user-agent")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("punctual/"));
    }
    // A signature made with another secret does not verify: the check can fail.
    let other = punctual_auth::generate_signing_secret();
    assert!(!verify_standard_webhook(
        &other,
        &requests[0].headers,
        &requests[0].body
    ));
}

/// A once-job due now calling `server`, with `attempts` and backoff bounds.
fn once_now_with_retries(server: &MockServer, attempts: i32, min_ms: i64, max_ms: i64) -> JobSpec {
    JobSpec {
        max_attempts: attempts,
        min_backoff_ms: min_ms,
        max_backoff_ms: max_ms,
        ..JobSpec::once(Utc::now(), &server.uri())
    }
}

#[tokio::test]
async fn failed_attempts_are_retried_with_backoff_within_bounds() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(500)).await;
    let job = fixture
        .insert_job(once_now_with_retries(&server, 3, 200, 800))
        .await;
    let engine = start(&fixture, fixture.config());
    assert!(
        eventually(Duration::from_secs(15), || async {
            fixture
                .executions(job)
                .await
                .iter()
                .filter(|e| e.status == "failed")
                .count()
                == 3
        })
        .await
    );
    engine.shutdown().await;
    let executions = fixture.executions(job).await;
    assert_eq!(executions.len(), 3);
    assert_eq!(
        executions.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(executions[0].trigger, "schedule");
    assert!(executions[1..].iter().all(|e| e.trigger == "retry"));
    assert!(
        executions
            .iter()
            .all(|e| e.scheduled_for == executions[0].scheduled_for),
        "one occurrence"
    );
    for (n, pair) in executions.windows(2).enumerate() {
        let delay = pair[1].run_after - pair[0].finished_at.unwrap();
        let cap = (200i64 << (n + 1)).min(800);
        assert!(
            delay >= chrono::Duration::milliseconds(200)
                && delay <= chrono::Duration::milliseconds(cap),
            "backoff after attempt {} was {delay}, expected 200..={cap} ms",
            n + 1
        );
    }
    let job = fixture.job(job).await;
    assert!(
        job.completed_at.is_some(),
        "a once-job completes after its final attempt"
    );
    assert_eq!(job.consecutive_failures, 1);
}

/// Redirects are not followed: a 3xx is the answer (a redirect to another
/// address, even one the checks would refuse, is never requested).
#[tokio::test]
async fn redirects_are_not_followed() {
    let fixture = EngineFixture::new().await;
    let elsewhere = target(ResponseTemplate::new(200)).await;
    let redirecting = target(
        ResponseTemplate::new(302).insert_header("location", format!("{}/moved", elsewhere.uri())),
    )
    .await;
    let job = fixture
        .insert_job(JobSpec::once(Utc::now(), &redirecting.uri()))
        .await;
    let engine = start(&fixture, fixture.config());
    assert!(fixture.one_finishes(job, Duration::from_secs(10)).await);
    engine.shutdown().await;
    let executions = fixture.executions(job).await;
    assert_eq!(
        (executions[0].status.as_str(), executions[0].status_code),
        ("failed", Some(302))
    );
    assert_eq!(redirecting.received_requests().await.unwrap().len(), 1);
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

/// Every attempt at an occurrence carries the same `webhook-id` (Standard
/// Webhooks: a message keeps its id when it is sent again), so a receiver can
/// tell a message delivered twice; each attempt is signed anew.
#[tokio::test]
async fn retries_of_an_occurrence_keep_its_webhook_id() {
    let fixture = EngineFixture::new().await;
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let job = fixture
        .insert_job(once_now_with_retries(&server, 2, 100, 100))
        .await;
    let engine = start(&fixture, fixture.config());
    assert!(
        eventually(Duration::from_secs(10), || async {
            fixture
                .executions(job)
                .await
                .iter()
                .any(|e| e.status == "success")
        })
        .await
    );
    engine.shutdown().await;
    let executions = fixture.executions(job).await;
    assert_eq!(executions.len(), 2);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let ids: Vec<&str> = requests
        .iter()
        .map(|r| r.headers.get("webhook-id").unwrap().to_str().unwrap())
        .collect();
    let expected = occurrence_message_id(job, executions[0].scheduled_for);
    assert_eq!(ids, vec![expected.as_str(); 2]);
    for request in &requests {
        assert!(verify_standard_webhook(
            &fixture.signing_secret,
            &request.headers,
            &request.body
        ));
    }
}

#[tokio::test]
async fn retry_after_is_honoured_and_capped() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(503).insert_header("Retry-After", "2")).await;
    let mut honoured = JobSpec::once(Utc::now(), &server.uri());
    honoured.max_attempts = 2;
    honoured.min_backoff_ms = 100;
    honoured.max_backoff_ms = 60_000;
    let mut capped = honoured.clone();
    capped.max_backoff_ms = 1_000;
    let honoured = fixture.insert_job(honoured).await;
    let capped = fixture.insert_job(capped).await;
    let engine = start(&fixture, fixture.config());
    for job in [honoured, capped] {
        assert!(
            eventually(Duration::from_secs(15), || async {
                fixture.executions(job).await.len() == 2
            })
            .await
        );
    }
    engine.shutdown().await;
    let delay = |e: &[punctual_persistence::entities::execution::Model]| {
        e[1].run_after - e[0].finished_at.unwrap()
    };
    assert_eq!(
        delay(&fixture.executions(honoured).await),
        chrono::Duration::seconds(2)
    );
    assert_eq!(
        delay(&fixture.executions(capped).await),
        chrono::Duration::seconds(1)
    );
}

#[tokio::test]
async fn a_slow_target_times_out_and_a_large_body_is_truncated() {
    let fixture = EngineFixture::new().await;
    let slow = target(ResponseTemplate::new(200).set_delay(Duration::from_secs(3))).await;
    let large = target(ResponseTemplate::new(200).set_body_string("x".repeat(100_000))).await;
    let mut slow_spec = JobSpec::once(Utc::now(), &slow.uri());
    slow_spec.timeout_ms = 300;
    let slow_job = fixture.insert_job(slow_spec).await;
    let large_job = fixture
        .insert_job(JobSpec::once(Utc::now(), &large.uri()))
        .await;
    let engine = start(&fixture, fixture.config());
    for job in [slow_job, large_job] {
        assert!(fixture.one_finishes(job, Duration::from_secs(15)).await);
    }
    engine.shutdown().await;
    let timed_out = &fixture.executions(slow_job).await[0];
    assert_eq!(timed_out.status, "timeout");
    assert!(timed_out.error.as_deref().unwrap().contains("300"));
    let truncated = &fixture.executions(large_job).await[0];
    assert_eq!(truncated.status, "success");
    assert_eq!(truncated.response_body.as_ref().unwrap().len(), 16 * 1024);
}

/// PostgreSQL's `text` refuses NUL characters: a binary answer must still be
/// recorded (it used to leave the execution running, its outcome unwritable).
#[tokio::test]
async fn a_binary_response_body_is_recorded_readably() {
    let fixture = EngineFixture::new().await;
    let binary =
        target(ResponseTemplate::new(200).set_body_bytes(b"ok\0\xff\x00end".to_vec())).await;
    let job = run_a_once_job(&fixture, &binary).await;
    let recorded = &fixture.executions(job).await[0];
    assert_eq!(recorded.status, "success");
    assert_eq!(
        recorded.response_body.as_deref(),
        Some("ok\u{FFFD}\u{FFFD}\u{FFFD}end")
    );
}

#[tokio::test]
async fn forbid_skips_while_a_run_is_in_progress_and_replace_cancels_it() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200).set_delay(Duration::from_millis(2500))).await;
    let mut forbid = JobSpec::cron("* * * * * *", &server.uri());
    forbid.concurrency = "forbid".to_owned();
    let mut replace = forbid.clone();
    replace.concurrency = "replace".to_owned();
    let forbid = fixture.insert_job(forbid).await;
    let replace = fixture.insert_job(replace).await;
    let engine = start(&fixture, fixture.config());
    assert!(
        eventually(Duration::from_secs(20), || async {
            let skipped = fixture
                .executions(forbid)
                .await
                .iter()
                .filter(|e| e.status == "skipped")
                .count();
            let canceled = fixture
                .executions(replace)
                .await
                .iter()
                .filter(|e| e.status == "canceled")
                .count();
            skipped >= 2 && canceled >= 2
        })
        .await
    );
    engine.shutdown().await;
    let forbid_runs = fixture.executions(forbid).await;
    assert!(forbid_runs
        .iter()
        .filter(|e| e.status == "skipped")
        .all(|e| e.error.as_deref().unwrap().contains("still in progress")));
    // Never two running at once under forbid: no two started runs overlap.
    let mut started: Vec<_> = forbid_runs
        .iter()
        .filter(|e| e.started_at.is_some() && e.finished_at.is_some())
        .collect();
    started.sort_by_key(|e| e.started_at);
    for pair in started.windows(2) {
        assert!(
            pair[1].started_at.unwrap() >= pair[0].finished_at.unwrap(),
            "forbid let two runs overlap"
        );
    }
    assert!(fixture
        .executions(replace)
        .await
        .iter()
        .filter(|e| e.status == "canceled")
        .all(|e| e.error.as_deref().unwrap().contains("replaced")));
}

#[tokio::test]
async fn after_downtime_skip_records_one_skipped_run_and_run_once_catches_up_once() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200)).await;
    // A minute boundary during the test would add the jobs' next regular
    // occurrence (claimed up to 2 s ahead) to the counts below: start clear of one.
    let into_minute = Utc::now().timestamp().rem_euclid(60);
    if into_minute > 40 {
        tokio::time::sleep(Duration::from_secs(61 - into_minute as u64)).await;
    }
    // Simulated downtime: the jobs were due an hour ago, every minute since.
    // Whole seconds: PostgreSQL keeps microseconds, SQLite nanoseconds.
    let an_hour_ago = chrono::DateTime::from_timestamp(Utc::now().timestamp() - 3600, 0).unwrap();
    let mut skip = JobSpec::cron("* * * * *", &server.uri());
    skip.next_run_at = an_hour_ago;
    let mut run_once = skip.clone();
    run_once.missed_runs = "run_once".to_owned();
    run_once.catch_up_grace_ms = 10 * 60 * 1000;
    let mut too_late = skip.clone();
    too_late.missed_runs = "run_once".to_owned();
    too_late.cron = None;
    too_late.run_at = Some(an_hour_ago);
    too_late.catch_up_grace_ms = 60 * 1000;
    let skip = fixture.insert_job(skip).await;
    let run_once = fixture.insert_job(run_once).await;
    let too_late = fixture.insert_job(too_late).await;
    let engine = start(&fixture, fixture.config());
    assert!(
        eventually(Duration::from_secs(15), || async {
            !fixture.executions(skip).await.is_empty()
                && fixture
                    .executions(run_once)
                    .await
                    .iter()
                    .any(|e| e.status == "success")
                && !fixture.executions(too_late).await.is_empty()
        })
        .await
    );
    engine.shutdown().await;
    let now = Utc::now();

    let skipped = fixture.executions(skip).await;
    assert_eq!(skipped.len(), 1, "one skipped occurrence, not sixty");
    assert_eq!(skipped[0].status, "skipped");
    assert_eq!(skipped[0].scheduled_for, an_hour_ago);
    assert!(fixture.job(skip).await.next_run_at.unwrap() > now - chrono::Duration::minutes(1));

    let caught_up = fixture.executions(run_once).await;
    assert_eq!(caught_up.len(), 1, "one catch-up run");
    assert_eq!(caught_up[0].trigger, "catch_up");
    assert!(caught_up[0].scheduled_for > now - chrono::Duration::minutes(11));

    let missed = fixture.executions(too_late).await;
    assert_eq!(missed.len(), 1);
    assert_eq!(
        missed[0].status, "skipped",
        "outside the grace window nothing runs"
    );
    assert!(fixture.job(too_late).await.completed_at.is_some());
    assert!(
        server.received_requests().await.unwrap().len() == 1,
        "only the catch-up reached the target"
    );
}

#[tokio::test]
async fn a_controllable_clock_drives_missed_runs() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200)).await;
    // Yearly: an hourly job would have its next occurrence claimed ahead (and
    // run) when the test runs in the seconds before an hour.
    let mut spec = JobSpec::cron("0 0 1 1 *", &server.uri());
    spec.next_run_at = Utc::now() + chrono::Duration::minutes(30);
    let job = fixture.insert_job(spec).await;
    // The node "comes back" three hours later.
    let clock = Arc::new(OffsetClock::new());
    clock.advance(chrono::Duration::hours(3));
    let engine = Engine::new(fixture.database.clone(), fixture.config())
        .unwrap()
        .with_clock(clock.clone())
        .start(None);
    assert!(
        eventually(Duration::from_secs(10), || async {
            !fixture.executions(job).await.is_empty()
        })
        .await
    );
    engine.shutdown().await;
    let executions = fixture.executions(job).await;
    assert_eq!(
        executions.len(),
        1,
        "{:?}",
        executions
            .iter()
            .map(|e| (
                e.scheduled_for,
                e.trigger.as_str(),
                e.status.as_str(),
                e.error.as_deref()
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(executions[0].status, "skipped");
    assert!(server.received_requests().await.unwrap().is_empty());
    let next = fixture.job(job).await.next_run_at.unwrap();
    assert!(
        next > Utc::now() + chrono::Duration::hours(2),
        "next run computed from the clock's now"
    );
}

/// A receiver that takes the engines' clock nearly two minutes ahead as a
/// batch of notifications arrives (as a slow receiver would, batch after
/// batch; requests arriving together count once) and answers two seconds later.
struct SlowReceiver {
    clock: Arc<OffsetClock>,
    last_burst: std::sync::Mutex<Option<std::time::Instant>>,
}

impl wiremock::Respond for SlowReceiver {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let mut last = self.last_burst.lock().unwrap();
        let arrived = std::time::Instant::now();
        if last.is_none_or(|at| arrived.duration_since(at) > Duration::from_secs(1)) {
            self.clock.advance(chrono::Duration::seconds(115));
            *last = Some(arrived);
        }
        ResponseTemplate::new(200).set_delay(Duration::from_secs(2))
    }
}

/// A webhook notification is never sent by a node whose claim on it could
/// expire before the receiver answers: another node would claim it and send it
/// again.
#[tokio::test]
async fn two_nodes_never_send_one_webhook_notification_twice() {
    let fixture = EngineFixture::new().await;
    let clock = Arc::new(OffsetClock::new());
    let receiver = MockServer::start().await;
    Mock::given(any())
        .respond_with(SlowReceiver {
            clock: clock.clone(),
            last_burst: std::sync::Mutex::new(None),
        })
        .mount(&receiver)
        .await;
    let url = format!("{}/hook", receiver.uri());
    for n in 0..2 {
        punctual_persistence::notifications::enqueue_webhook(
            fixture.database.conn(),
            fixture.organization_id,
            &url,
            &format!("{{\"n\": {n}}}"),
            clock.now(),
        )
        .await
        .unwrap();
    }
    let nodes: Vec<_> = (0..2)
        .map(|_| {
            Engine::new(fixture.database.clone(), fixture.config())
                .unwrap()
                .with_clock(clock.clone())
                .start(None)
        })
        .collect();
    let sent = || async {
        let rows = punctual_persistence::entities::webhook_outbox::Entity::find()
            .all(fixture.database.conn())
            .await
            .unwrap();
        rows.iter().all(|row| row.sent_at.is_some())
    };
    assert!(eventually(Duration::from_secs(30), sent).await);
    for node in nodes {
        node.shutdown().await;
    }
    let mut ids: Vec<String> = receiver
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!((before, ids.len()), (2, 2), "each notification sent once");
}

/// Notifications claimed together are sent together: a receiver that takes
/// its time (an organization's dead endpoint) does not hold up the
/// notifications queued behind it.
#[tokio::test]
async fn a_slow_webhook_receiver_does_not_hold_up_other_notifications() {
    let fixture = EngineFixture::new().await;
    let slow = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(8)))
        .mount(&slow)
        .await;
    let fast = target(ResponseTemplate::new(200)).await;
    let now = Utc::now();
    // The slow one is oldest, so it is first in line.
    let queued = [
        (slow.uri(), now - chrono::Duration::seconds(1)),
        (fast.uri(), now),
        (fast.uri(), now),
        (fast.uri(), now),
    ];
    for (url, at) in &queued {
        punctual_persistence::notifications::enqueue_webhook(
            fixture.database.conn(),
            fixture.organization_id,
            url,
            "{}",
            *at,
        )
        .await
        .unwrap();
    }
    let engine = start(&fixture, fixture.config());
    // (slow ones sent, fast ones sent)
    let sent = || async {
        let rows = punctual_persistence::entities::webhook_outbox::Entity::find()
            .all(fixture.database.conn())
            .await
            .unwrap();
        let count = |uri: String| {
            rows.iter()
                .filter(|row| row.url == uri && row.sent_at.is_some())
                .count()
        };
        (count(slow.uri()), count(fast.uri()))
    };
    assert!(
        eventually(Duration::from_secs(6), || async { sent().await == (0, 3) }).await,
        "the others are delivered while the slow receiver still has its request"
    );
    assert!(
        eventually(Duration::from_secs(15), || async { sent().await == (1, 3) }).await,
        "and the slow one once it answers"
    );
    engine.shutdown().await;
    assert_eq!(fast.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn consecutive_failed_occurrences_auto_disable_the_job() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(500)).await;
    let job = fixture
        .insert_job(JobSpec::cron("* * * * * *", &server.uri()))
        .await;
    let config = EngineConfig {
        auto_disable_after: 3,
        ..fixture.config()
    };
    let engine = start(&fixture, config);
    assert!(
        eventually(Duration::from_secs(15), || async {
            !fixture.job(job).await.enabled
        })
        .await
    );
    // Past the instants it had claimed ahead when it was disabled.
    tokio::time::sleep(Duration::from_secs(3)).await;
    engine.shutdown().await;
    let disabled = fixture.job(job).await;
    assert!(disabled.disabled_reason.unwrap().contains("3 consecutive"));
    assert_eq!(disabled.next_run_at, None);
    let executions = fixture.executions(job).await;
    assert!(executions.iter().filter(|e| e.status == "failed").count() >= 3);
    // The occurrence of the next second may have started while the disabling
    // transaction committed; the one after was claimed ahead and must not run.
    let settled = disabled.updated_at + chrono::Duration::seconds(1);
    assert!(
        executions.iter().all(|e| e.scheduled_for <= settled),
        "nothing ran once it was disabled: {:?}",
        executions
            .iter()
            .map(|e| (e.scheduled_for, e.started_at, e.status.as_str()))
            .collect::<Vec<_>>()
    );

    // The organization's audit log says so, once, as the system's doing.
    let events = punctual_persistence::audit::list(
        fixture.database.conn(),
        &punctual_persistence::audit::AuditFilter {
            organization_id: Some(fixture.organization_id),
            action: Some("job.auto_disabled".to_owned()),
            ..Default::default()
        },
        10,
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.actor_type, "system");
    assert_eq!(event.target_id.as_deref(), Some(job.to_string().as_str()));
    let metadata: serde_json::Value = serde_json::from_str(&event.metadata).unwrap();
    assert_eq!(metadata["consecutive_failed_occurrences"], 3);
    let last = metadata["last_execution_id"].as_str().unwrap();
    assert!(executions
        .iter()
        .any(|e| e.id.to_string() == last && e.status == "failed"));
}

/// Two nodes recording failed occurrences of one job at once both count, and only
/// one of them disables it. (On PostgreSQL the second write waits for the first
/// transaction; a count read and written back would lose one.)
#[tokio::test]
async fn failures_recorded_at_once_by_two_nodes_both_count() {
    use punctual_persistence::engine::record_occurrence_failure;
    let fixture = EngineFixture::new().await;
    let job = fixture
        .insert_job(JobSpec::cron("0 0 * * * *", "http://127.0.0.1:9/"))
        .await;
    let now = Utc::now();
    let first = fixture.database.begin_write().await.unwrap();
    let first_disabled = record_occurrence_failure(&first, job, 2, now)
        .await
        .unwrap();
    let database = fixture.database.clone();
    let second = tokio::spawn(async move {
        let second = database.begin_write().await.unwrap();
        let disabled = record_occurrence_failure(&second, job, 2, now)
            .await
            .unwrap();
        second.commit().await.unwrap();
        disabled
    });
    // Let the second node's write reach the row before the first commits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.commit().await.unwrap();
    let second_disabled = second.await.unwrap();
    let stored = fixture.job(job).await;
    assert_eq!(stored.consecutive_failures, 2);
    assert!(!stored.enabled);
    assert_eq!((first_disabled, second_disabled), (false, true));
}

/// A once-job due shortly, run by an engine until it completes; the engine is
/// stopped again.
async fn run_a_once_job(fixture: &EngineFixture, server: &MockServer) -> uuid::Uuid {
    let job = fixture
        .insert_job(JobSpec::once(
            Utc::now() + chrono::Duration::milliseconds(300),
            &server.uri(),
        ))
        .await;
    let engine = start(fixture, fixture.config());
    assert!(
        eventually(Duration::from_secs(10), || async {
            fixture.job(job).await.completed_at.is_some()
        })
        .await
    );
    engine.shutdown().await;
    job
}

/// A manual run of a once-job shifts nothing: whether it succeeds or fails for
/// good, the job still runs at its time (its end used to complete the job).
#[tokio::test]
async fn a_manual_run_of_a_once_job_leaves_its_time_in_place() {
    use punctual_persistence::engine::{insert_execution, NewExecution};
    let fixture = EngineFixture::new().await;
    let ok = target(ResponseTemplate::new(200)).await;
    let broken = target(ResponseTemplate::new(500)).await;
    let at = Utc::now() + chrono::Duration::hours(1);
    let mut jobs = Vec::new();
    for server in [&ok, &broken] {
        let job = fixture.insert_job(JobSpec::once(at, &server.uri())).await;
        let now = Utc::now();
        insert_execution(
            fixture.database.conn(),
            NewExecution {
                job_id: job,
                organization_id: fixture.organization_id,
                scheduled_for: now,
                attempt: 1,
                trigger: "manual",
                status: "pending",
                run_after: now,
                error: None,
            },
            now,
        )
        .await
        .unwrap();
        jobs.push(job);
    }
    let engine = start(&fixture, fixture.config());
    for job in &jobs {
        assert!(fixture.one_finishes(*job, Duration::from_secs(10)).await);
    }
    engine.shutdown().await;
    for (job, status) in jobs.iter().zip(["success", "failed"]) {
        assert_eq!(fixture.executions(*job).await[0].status, status);
        let stored = fixture.job(*job).await;
        assert_eq!(stored.completed_at, None, "{status}");
        let next = stored.next_run_at.expect("still scheduled");
        assert!((next - at).num_milliseconds().abs() < 1, "{status}: {next}");
    }
}

#[tokio::test]
async fn a_once_job_runs_once_and_completes() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(204)).await;
    let job = run_a_once_job(&fixture, &server).await;
    let executions = fixture.executions(job).await;
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0].status, "success");
    assert_eq!(fixture.job(job).await.next_run_at, None);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

/// The organization's secrets cannot be read (their table is renamed away): the
/// attempt fails without sending an unsigned request, the failure is not cached,
/// and the retry, once the secrets can be read again, goes out signed.
#[tokio::test]
async fn a_request_is_never_sent_unsigned_when_its_secrets_cannot_be_read() {
    use punctual_persistence::sea_orm::ConnectionTrait;
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(204)).await;
    let job = fixture
        .insert_job(once_now_with_retries(&server, 2, 2_000, 2_000))
        .await;
    let conn = fixture.database.conn();
    conn.execute_unprepared("ALTER TABLE signing_secrets RENAME TO signing_secrets_away")
        .await
        .unwrap();
    let engine = start(&fixture, fixture.config());
    assert!(
        eventually(Duration::from_secs(10), || async {
            fixture
                .executions(job)
                .await
                .iter()
                .any(|e| e.status == "failed")
        })
        .await,
        "the first attempt fails"
    );
    conn.execute_unprepared("ALTER TABLE signing_secrets_away RENAME TO signing_secrets")
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            fixture.job(job).await.completed_at.is_some()
        })
        .await,
        "the retry completes the job"
    );
    engine.shutdown().await;

    let executions = fixture.executions(job).await;
    assert_eq!(
        executions
            .iter()
            .map(|e| (e.attempt, e.status.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "failed"), (2, "success")]
    );
    assert!(executions[0]
        .error
        .as_deref()
        .is_some_and(|error| error.contains("signing secrets could not be read")));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "only the retry was sent");
    assert!(verify_standard_webhook(
        &fixture.signing_secret,
        &requests[0].headers,
        &requests[0].body
    ));
}

/// Executions go with their organization through their job: on PostgreSQL they
/// hold no key of their own to the organization (migration 7), so this cascade
/// is the one that must remove them.
#[tokio::test]
async fn deleting_an_organization_removes_its_executions() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(204)).await;
    let job = run_a_once_job(&fixture, &server).await;
    assert_eq!(fixture.executions(job).await.len(), 1);
    punctual_persistence::organizations::delete_organization(
        fixture.database.conn(),
        fixture.organization_id,
    )
    .await
    .unwrap();
    assert!(fixture.executions(job).await.is_empty());
}

/// The unique (job, scheduled_for, attempt) is the last guard against a double
/// dispatch: an occurrence already on record is neither inserted again nor run,
/// although dispatch sends new occurrences straight to running.
#[tokio::test]
async fn an_occurrence_already_on_record_is_not_run_again() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200)).await;
    let at = Utc::now() - chrono::Duration::milliseconds(100);
    let recorded = fixture.insert_job(JobSpec::once(at, &server.uri())).await;
    let fresh = fixture.insert_job(JobSpec::once(at, &server.uri())).await;
    let inserted = punctual_persistence::engine::insert_execution(
        fixture.database.conn(),
        punctual_persistence::engine::NewExecution {
            job_id: recorded,
            organization_id: fixture.organization_id,
            scheduled_for: at,
            attempt: 1,
            trigger: "schedule",
            status: "skipped",
            run_after: at,
            error: Some("recorded by an earlier dispatch".to_owned()),
        },
        Utc::now(),
    )
    .await
    .unwrap();
    assert!(inserted);

    let engine = start(&fixture, fixture.config());
    let both_dispatched = eventually(Duration::from_secs(10), || async {
        fixture.job(recorded).await.next_run_at.is_none()
            && fixture.job(fresh).await.completed_at.is_some()
    })
    .await;
    engine.shutdown().await;
    assert!(both_dispatched);
    let executions = fixture.executions(recorded).await;
    assert_eq!(executions.len(), 1, "no second row for the same occurrence");
    assert_eq!(executions[0].status, "skipped");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "only the fresh job's occurrence ran");
    let fresh_execution = fixture.executions(fresh).await;
    assert_eq!(
        requests[0]
            .headers
            .get("webhook-id")
            .unwrap()
            .to_str()
            .unwrap(),
        occurrence_message_id(fresh_execution[0].job_id, fresh_execution[0].scheduled_for)
    );
}

/// A pause stops a job's traffic, its pending retries included (canceled
/// when they come due); a run asked for by hand runs, retries and all, paused
/// or not.
#[tokio::test]
async fn a_paused_job_is_not_retried_but_a_manual_run_of_it_is() {
    use punctual_persistence::sea_orm::ActiveValue::Set;
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(500)).await;
    let job = fixture
        .insert_job(once_now_with_retries(&server, 3, 3_000, 3_000))
        .await;
    let engine = start(&fixture, fixture.config());
    let history = || async {
        fixture
            .executions(job)
            .await
            .into_iter()
            .map(|e| (e.trigger, e.attempt, e.status))
            .collect::<Vec<_>>()
    };
    let retry_waiting = vec![
        ("schedule".to_owned(), 1, "failed".to_owned()),
        ("retry".to_owned(), 2, "pending".to_owned()),
    ];
    assert!(
        eventually(Duration::from_secs(10), || async {
            history().await == retry_waiting
        })
        .await
    );
    fixture
        .change_job(job, |job| {
            job.enabled = Set(false);
            job.next_run_at = Set(None);
        })
        .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            history().await.get(1).map(|e| e.2.as_str()) == Some("canceled")
        })
        .await,
        "{:?}",
        history().await
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let executions = fixture.executions(job).await;
    assert_eq!(executions.len(), 2, "no retry after the canceled one");
    assert_eq!(executions[1].error.as_deref(), Some("the job was paused"));
    assert!(
        fixture.job(job).await.completed_at.is_some(),
        "its only occurrence ended: the once-job is complete"
    );

    punctual_persistence::jobs::insert_manual_execution(
        fixture.database.conn(),
        fixture.organization_id,
        job,
        Utc::now(),
    )
    .await
    .unwrap();
    engine.wake();
    assert!(
        eventually(Duration::from_secs(20), || async {
            fixture
                .executions(job)
                .await
                .iter()
                .filter(|e| e.trigger != "schedule" && e.status == "failed")
                .count()
                == 3
        })
        .await,
        "the manual run and both its retries: {:?}",
        history().await
    );
    engine.shutdown().await;
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

/// An occurrence of a paused once-job still pending its first attempt (due
/// while its node was busy, or handed back) is not run and does not end the
/// job: resumed, the job runs as its schedule says.
#[tokio::test]
async fn a_paused_once_job_keeps_its_occurrence_for_when_it_is_resumed() {
    use punctual_persistence::engine::{insert_execution, NewExecution};
    use punctual_persistence::sea_orm::ActiveValue::Set;
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200)).await;
    let at = Utc::now();
    let job = fixture.insert_job(JobSpec::once(at, &server.uri())).await;
    fixture
        .change_job(job, |job| {
            job.enabled = Set(false);
            job.next_run_at = Set(None);
        })
        .await;
    insert_execution(
        fixture.database.conn(),
        NewExecution {
            job_id: job,
            organization_id: fixture.organization_id,
            scheduled_for: at,
            attempt: 1,
            trigger: "schedule",
            status: "pending",
            run_after: at,
            error: None,
        },
        at,
    )
    .await
    .unwrap();
    let engine = start(&fixture, fixture.config());
    assert!(
        eventually(Duration::from_secs(5), || async {
            fixture.executions(job).await.is_empty()
        })
        .await,
        "not run while paused"
    );
    assert!(fixture.job(job).await.completed_at.is_none());
    // Resumed as the API does: a once-job not complete is due at its time.
    fixture
        .change_job(job, |job| {
            job.enabled = Set(true);
            job.next_run_at = Set(Some(at));
        })
        .await;
    engine.wake();
    assert!(fixture.one_finishes(job, Duration::from_secs(10)).await);
    engine.shutdown().await;
    assert_eq!(fixture.executions(job).await[0].status, "success");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert!(fixture.job(job).await.completed_at.is_some());
}

/// Receivers verify signatures: with no signing secret in force (its
/// organization being deleted) a request is not sent unsigned.
#[tokio::test]
async fn no_request_goes_out_unsigned() {
    use punctual_persistence::entities::signing_secret;
    use punctual_persistence::sea_orm::{ColumnTrait, QueryFilter};
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200)).await;
    signing_secret::Entity::delete_many()
        .filter(signing_secret::Column::OrganizationId.eq(fixture.organization_id))
        .exec(fixture.database.conn())
        .await
        .unwrap();
    let job = fixture
        .insert_job(JobSpec::once(Utc::now(), &server.uri()))
        .await;
    let engine = start(&fixture, fixture.config());
    assert!(fixture.one_finishes(job, Duration::from_secs(10)).await);
    engine.shutdown().await;
    let executions = fixture.executions(job).await;
    assert_eq!(executions[0].status, "failed");
    assert_eq!(
        executions[0].error.as_deref(),
        Some("the organization has no signing secret; the request was not sent")
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// Waits until the job's occurrence is claimed ahead: running on a node while
/// nothing reached the target and the due time has not come.
async fn claimed_ahead(
    fixture: &EngineFixture,
    job: uuid::Uuid,
    due: chrono::DateTime<Utc>,
    server: &MockServer,
) -> bool {
    eventually(Duration::from_secs(5), || async {
        let executions = fixture.executions(job).await;
        let claimed = executions.len() == 1 && executions[0].status == "running";
        claimed && server.received_requests().await.unwrap().is_empty() && Utc::now() < due
    })
    .await
}

/// A once-job calling `server` due in 1.5 s, and an engine with a 2 s look-ahead
/// that has claimed its occurrence.
async fn a_job_claimed_ahead(
    fixture: &EngineFixture,
    server: &MockServer,
) -> (
    uuid::Uuid,
    chrono::DateTime<Utc>,
    punctual_scheduler::EngineHandle,
) {
    a_job_claimed_ahead_by(fixture, server, fixture.config()).await
}

/// As [`a_job_claimed_ahead`], by an engine with these settings.
async fn a_job_claimed_ahead_by(
    fixture: &EngineFixture,
    server: &MockServer,
    config: EngineConfig,
) -> (
    uuid::Uuid,
    chrono::DateTime<Utc>,
    punctual_scheduler::EngineHandle,
) {
    let due = Utc::now() + chrono::Duration::milliseconds(1500);
    let job = fixture.insert_job(JobSpec::once(due, &server.uri())).await;
    let config = EngineConfig {
        lookahead: Duration::from_secs(2),
        ..config
    };
    let engine = start(fixture, config);
    assert!(
        claimed_ahead(fixture, job, due, server).await,
        "claimed before it was due"
    );
    (job, due, engine)
}

#[tokio::test]
async fn occurrences_are_claimed_ahead_and_start_on_their_instant_never_before() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200)).await;
    let (job, due, engine) = a_job_claimed_ahead(&fixture, &server).await;
    let claimed = &fixture.executions(job).await[0];
    assert_eq!(claimed.started_at, None, "not started yet");
    assert_eq!(
        punctual_api::service::jobs::ExecutionSummary::from(claimed).status,
        "pending",
        "shown as waiting for its time"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            fixture.job(job).await.completed_at.is_some()
        })
        .await
    );
    engine.shutdown().await;
    let executions = fixture.executions(job).await;
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0].status, "success");
    let started = executions[0].started_at.unwrap();
    assert!(
        started >= due,
        "started at {started}, due at {due}: never early"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_job_paused_after_its_occurrence_was_claimed_ahead_does_not_run() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200)).await;
    let (job, due, engine) = a_job_claimed_ahead(&fixture, &server).await;
    fixture
        .change_job(job, |model| {
            model.enabled = punctual_persistence::sea_orm::ActiveValue::Set(false);
        })
        .await;
    engine.wake();
    let given_up = eventually(Duration::from_secs(5), || async {
        fixture.executions(job).await.is_empty()
    })
    .await;
    tokio::time::sleep(
        (due - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(500),
    )
    .await;
    engine.shutdown().await;
    assert!(given_up, "the claim is given up");
    assert!(fixture.executions(job).await.is_empty());
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing sent"
    );
}

/// A pause made on another node reaches this one by a notification; one that
/// is lost (the listener down, the notify failed) must not let the claim run:
/// the claims ahead are checked on a timer too. Here nothing tells the engine.
#[tokio::test]
async fn a_job_paused_untold_after_its_occurrence_was_claimed_ahead_does_not_run() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200)).await;
    // A period well inside the time left before the due instant.
    let config = EngineConfig {
        recheck_ahead_every: Duration::from_millis(100),
        ..fixture.config()
    };
    let (job, due, engine) = a_job_claimed_ahead_by(&fixture, &server, config).await;
    assert!(
        due - Utc::now() > chrono::Duration::milliseconds(400),
        "time left to notice the pause"
    );
    fixture
        .change_job(job, |model| {
            model.enabled = punctual_persistence::sea_orm::ActiveValue::Set(false);
        })
        .await;
    tokio::time::sleep(
        (due - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(500),
    )
    .await;
    engine.shutdown().await;
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing sent"
    );
    assert!(
        fixture.executions(job).await.is_empty(),
        "the claim is given up"
    );
}

#[tokio::test]
async fn a_job_changed_after_its_occurrence_was_claimed_ahead_runs_as_changed() {
    let fixture = EngineFixture::new().await;
    let old_target = target(ResponseTemplate::new(200)).await;
    let new_target = target(ResponseTemplate::new(200)).await;
    let (job, due, engine) = a_job_claimed_ahead(&fixture, &old_target).await;
    let url = new_target.uri();
    fixture
        .change_job(job, |model| {
            model.url = punctual_persistence::sea_orm::ActiveValue::Set(url);
        })
        .await;
    engine.wake();
    let delivered = eventually(Duration::from_secs(10), || async {
        fixture.job(job).await.completed_at.is_some()
    })
    .await;
    engine.shutdown().await;
    assert!(delivered);
    let executions = fixture.executions(job).await;
    assert_eq!(executions.len(), 1, "the same occurrence, claimed again");
    assert_eq!(executions[0].status, "success");
    assert!(executions[0].started_at.unwrap() >= due);
    assert!(old_target.received_requests().await.unwrap().is_empty());
    assert_eq!(new_target.received_requests().await.unwrap().len(), 1);
}

/// A node stopping with an occurrence claimed ahead undoes the claim: the job
/// is due at it again, so whoever dispatches it applies the missed-run policy
/// if that comes late (here an hour: skipped, not sent an hour late).
#[tokio::test]
async fn a_claim_ahead_undone_at_shutdown_obeys_the_missed_run_policy() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200)).await;
    let (job, due, engine) = a_job_claimed_ahead(&fixture, &server).await;
    engine.shutdown().await;
    assert!(Utc::now() < due);
    assert!(
        fixture.executions(job).await.is_empty(),
        "the claim is undone"
    );
    assert!(fixture
        .job(job)
        .await
        .next_run_at
        .is_some_and(|next| (next - due).num_milliseconds().abs() < 1));

    let clock = Arc::new(OffsetClock::new());
    clock.advance(chrono::Duration::hours(1));
    let later = Engine::new(fixture.database.clone(), fixture.config())
        .unwrap()
        .with_clock(clock)
        .start(None);
    assert!(fixture.one_finishes(job, Duration::from_secs(10)).await);
    later.shutdown().await;
    let executions = fixture.executions(job).await;
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0].status, "skipped", "missed by an hour");
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// A once-job moved to a new time after its occurrence was claimed ahead runs
/// at the new time only: the claim of the old one is given up, not run.
#[tokio::test]
async fn a_job_rescheduled_after_its_occurrence_was_claimed_ahead_runs_only_at_its_new_time() {
    use punctual_persistence::sea_orm::ActiveValue::Set;
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200)).await;
    let (job, due, engine) = a_job_claimed_ahead(&fixture, &server).await;
    let later = due + chrono::Duration::hours(1);
    fixture
        .change_job(job, |model| {
            model.run_at = Set(Some(later));
            model.next_run_at = Set(Some(later));
        })
        .await;
    engine.wake();
    tokio::time::sleep((due - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1))
        .await;
    engine.shutdown().await;
    assert!(server.received_requests().await.unwrap().is_empty());
    assert!(
        fixture.executions(job).await.is_empty(),
        "the old occurrence's claim is gone"
    );
    let job = fixture.job(job).await;
    assert!(job.enabled && job.completed_at.is_none());
    assert!(
        job.next_run_at
            .is_some_and(|next| (next - later).num_milliseconds().abs() < 1),
        "still due at its new time: {:?}",
        job.next_run_at
    );
}

/// A once-job due now calling `server` (which answers slowly), and an engine
/// whose request to it has arrived.
async fn a_once_job_in_flight(
    fixture: &EngineFixture,
    server: &MockServer,
) -> (uuid::Uuid, punctual_scheduler::EngineHandle) {
    let job = fixture
        .insert_job(JobSpec::once(Utc::now(), &server.uri()))
        .await;
    let engine = start(fixture, fixture.config());
    assert!(
        eventually(Duration::from_secs(5), || async {
            server.received_requests().await.unwrap().len() == 1
        })
        .await
    );
    (job, engine)
}

/// A graceful shutdown waits for the requests in flight, and keeps their leases
/// meanwhile: another node must not take them for lost and send them again.
#[tokio::test]
async fn a_run_finishing_within_the_shutdown_grace_keeps_its_lease() {
    let fixture = EngineFixture::new().await;
    // Longer than the test lease (2 s), within the shutdown grace (5 s).
    let server = target(ResponseTemplate::new(200).set_delay(Duration::from_secs(4))).await;
    let (job, first) = a_once_job_in_flight(&fixture, &server).await;
    let second = start(&fixture, fixture.config());
    first.shutdown().await;
    // Time for the second node's rescuer to look again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    second.shutdown().await;
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "sent once"
    );
    let executions = fixture.executions(job).await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    assert_eq!(executions[0].status, "success");
}

/// A once-job rescheduled while its run is in flight keeps its new time: the
/// old occurrence's end does not complete it.
#[tokio::test]
async fn a_once_job_rescheduled_during_its_run_keeps_its_new_time() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200).set_delay(Duration::from_secs(1))).await;
    let (job, engine) = a_once_job_in_flight(&fixture, &server).await;
    let later = chrono::DateTime::from_timestamp(Utc::now().timestamp() + 3_600, 0).unwrap();
    fixture
        .change_job(job, |model| {
            use punctual_persistence::sea_orm::ActiveValue::Set;
            model.run_at = Set(Some(later));
            model.next_run_at = Set(Some(later));
            model.completed_at = Set(None);
        })
        .await;
    assert!(fixture.one_finishes(job, Duration::from_secs(10)).await);
    engine.shutdown().await;
    let row = fixture.job(job).await;
    assert_eq!(row.completed_at, None, "not completed by the old run");
    assert_eq!(row.next_run_at, Some(later), "still due at its new time");
    assert_eq!(fixture.executions(job).await[0].status, "success");
}

/// A name (not an IP literal) that the system resolver maps to loopback.
fn loopback_name() -> String {
    let hostname = std::fs::read_to_string("/etc/hostname")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let resolves_to_loopback = !hostname.is_empty()
        && std::net::ToSocketAddrs::to_socket_addrs(&(hostname.as_str(), 80))
            .map(|mut addrs| addrs.all(|a| a.ip().is_loopback()))
            .unwrap_or(false);
    if resolves_to_loopback {
        hostname
    } else {
        "localhost".to_owned()
    }
}

#[tokio::test]
async fn a_target_resolving_to_loopback_is_refused_at_execution_time() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200)).await;
    let url = format!(
        "http://{}:{}/hook",
        loopback_name(),
        server.address().port()
    );
    let job = fixture.insert_job(JobSpec::once(Utc::now(), &url)).await;
    let config = EngineConfig {
        allow_private_networks: false,
        ..fixture.config()
    };
    let engine = start(&fixture, config);
    assert!(
        eventually(Duration::from_secs(10), || async {
            fixture.job(job).await.completed_at.is_some()
        })
        .await
    );
    engine.shutdown().await;
    let execution = &fixture.executions(job).await[0];
    assert_eq!(execution.status, "failed");
    let error = execution.error.as_deref().unwrap();
    assert!(
        error.contains("private") || error.contains("refused"),
        "{error}"
    );
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing reached the target"
    );
}

#[tokio::test]
async fn an_execution_of_a_dead_node_is_rescued_as_the_next_attempt() {
    rescued_after_its_node_died(2).await;
}

/// Even the last attempt a job allows is handed on when its node dies: the
/// request may never have been sent, and a crash must not lose the occurrence.
#[tokio::test]
async fn a_dead_nodes_last_allowed_attempt_is_handed_on_all_the_same() {
    rescued_after_its_node_died(1).await;
}

/// A once-job whose first attempt is running when its engine is killed; another
/// engine rescues it as attempt 2, which succeeds.
async fn rescued_after_its_node_died(max_attempts: i32) {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200).set_delay(Duration::from_secs(1))).await;
    let mut spec = JobSpec::once(Utc::now(), &server.uri());
    spec.max_attempts = max_attempts;
    let job = fixture.insert_job(spec).await;
    let doomed = start(&fixture, fixture.config());
    assert!(
        eventually(Duration::from_secs(10), || async {
            fixture
                .executions(job)
                .await
                .iter()
                .any(|e| e.status == "running")
        })
        .await
    );
    doomed.abort();
    let survivor = start(&fixture, fixture.config());
    assert!(
        eventually(Duration::from_secs(20), || async {
            fixture
                .executions(job)
                .await
                .iter()
                .any(|e| e.status == "success")
        })
        .await
    );
    survivor.shutdown().await;
    let executions = fixture.executions(job).await;
    assert_eq!(executions.len(), 2);
    assert_eq!(executions[0].status, "failed");
    assert!(executions[0]
        .error
        .as_deref()
        .unwrap()
        .contains("node lost"));
    assert_eq!(
        (executions[1].attempt, executions[1].status.as_str()),
        (2, "success")
    );
    assert_eq!(
        executions[1].scheduled_for, executions[0].scheduled_for,
        "the same occurrence"
    );
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_work_or_hands_it_back() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200).set_delay(Duration::from_millis(800))).await;
    let finishes = fixture
        .insert_job(JobSpec::once(Utc::now(), &server.uri()))
        .await;
    let engine = start(&fixture, fixture.config());
    assert!(
        eventually(Duration::from_secs(10), || async {
            fixture
                .executions(finishes)
                .await
                .iter()
                .any(|e| e.status == "running")
        })
        .await
    );
    engine.shutdown().await;
    assert_eq!(
        fixture.executions(finishes).await[0].status,
        "success",
        "in-flight work finished within the grace"
    );

    let slow = target(ResponseTemplate::new(200).set_delay(Duration::from_secs(10))).await;
    let handed_back = fixture
        .insert_job(JobSpec::once(Utc::now(), &slow.uri()))
        .await;
    let engine = start(
        &fixture,
        EngineConfig {
            shutdown_grace: Duration::from_millis(200),
            ..fixture.config()
        },
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            fixture
                .executions(handed_back)
                .await
                .iter()
                .any(|e| e.status == "running")
        })
        .await
    );
    engine.shutdown().await;
    let executions = fixture.executions(handed_back).await;
    assert_eq!(executions[0].status, "failed");
    assert!(executions[0]
        .error
        .as_deref()
        .unwrap()
        .contains("shut down"));
    assert_eq!(
        (executions[1].attempt, executions[1].status.as_str()),
        (2, "pending"),
        "handed back as the next attempt"
    );
}

#[tokio::test]
async fn three_engines_deliver_every_occurrence_exactly_once() {
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200)).await;
    let mut jobs = Vec::new();
    for _ in 0..100 {
        jobs.push(
            fixture
                .insert_job(JobSpec::cron("* * * * * *", &server.uri()))
                .await,
        );
    }
    let seconds = match punctual_tests::TestDatabase::backend() {
        punctual_persistence::Backend::Postgres => 20,
        punctual_persistence::Backend::Sqlite => 8,
    };
    let engines: Vec<_> = (0..3).map(|_| start(&fixture, fixture.config())).collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let stopping = Utc::now();
    for engine in engines {
        engine.shutdown().await;
    }
    let mut per_occurrence: HashMap<(uuid::Uuid, chrono::DateTime<Utc>), usize> = HashMap::new();
    let mut all = Vec::new();
    for job in &jobs {
        let executions = fixture.executions(*job).await;
        assert!(
            executions.len() >= (seconds as usize) - 3,
            "job ran about every second: {}",
            executions.len()
        );
        for pair in executions.windows(2) {
            assert_eq!(
                pair[1].scheduled_for - pair[0].scheduled_for,
                chrono::Duration::seconds(1),
                "no occurrence missing"
            );
        }
        // Nor at the end: what the stopping nodes had claimed ahead and undid,
        // the job is due at again.
        let last = executions.last().map(|e| e.scheduled_for).unwrap();
        let next = fixture.job(*job).await.next_run_at.unwrap();
        assert!(
            next <= last + chrono::Duration::seconds(1),
            "next run {next} after the last occurrence {last}: a claim lost"
        );
        for execution in &executions {
            *per_occurrence
                .entry((execution.job_id, execution.scheduled_for))
                .or_default() += 1;
            if execution.status == "pending" {
                // Claimed ahead and handed back at shutdown, before it was due.
                assert!(execution.scheduled_for > stopping, "{execution:?}");
                assert_eq!(execution.node_id, None);
                continue;
            }
            assert_eq!(execution.status, "success", "{:?}", execution.error);
        }
        all.extend(executions.into_iter().filter(|e| e.status == "success"));
    }
    assert!(
        per_occurrence.values().all(|count| *count == 1),
        "each occurrence dispatched once"
    );
    let requests = server.received_requests().await.unwrap();
    let mut deliveries: HashMap<String, usize> = HashMap::new();
    for request in &requests {
        *deliveries
            .entry(
                request
                    .headers
                    .get("webhook-id")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned(),
            )
            .or_default() += 1;
    }
    assert_eq!(requests.len(), all.len(), "one request per execution");
    assert!(
        deliveries.values().all(|count| *count == 1),
        "no execution delivered twice"
    );
    let nodes: std::collections::HashSet<_> =
        all.iter().filter_map(|e| e.node_id.clone()).collect();
    assert!(nodes.len() >= 2, "the work was shared: {nodes:?}");
}

/// Holds the lock every outcome record needs (SQLite's write lock; PostgreSQL's
/// EXCLUSIVE lock on `executions`, which still lets reads through) until the
/// returned transaction ends.
async fn stall_recording(
    fixture: &EngineFixture,
) -> punctual_persistence::sea_orm::DatabaseTransaction {
    use punctual_persistence::sea_orm::ConnectionTrait;
    let transaction = fixture.database.begin_write().await.unwrap();
    if fixture.database.backend() == punctual_persistence::Backend::Postgres {
        transaction
            .execute_unprepared("LOCK TABLE executions IN EXCLUSIVE MODE")
            .await
            .unwrap();
    }
    transaction
}

/// A request that is over when the shutdown grace ends, its outcome waiting
/// behind a slow database, is recorded as it went: not interrupted and sent
/// again.
#[tokio::test]
async fn a_run_finished_but_not_yet_recorded_when_the_grace_ends_keeps_its_outcome() {
    let fixture = EngineFixture::new().await;
    let after = |seconds| async move {
        target(ResponseTemplate::new(200).set_delay(Duration::from_secs(seconds))).await
    };
    let (first, second, slow) = (after(1).await, after(2).await, after(30).await);
    let now = Utc::now();
    let mut jobs = Vec::new();
    for server in [&first, &second, &slow] {
        jobs.push(fixture.insert_job(JobSpec::once(now, &server.uri())).await);
    }
    let engine = start(
        &fixture,
        EngineConfig {
            shutdown_grace: Duration::from_millis(300),
            // Longer than the stall: no lease may lapse.
            lease: Duration::from_secs(30),
            ..fixture.config()
        },
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            let mut sent = 0;
            for server in [&first, &second, &slow] {
                sent += server.received_requests().await.unwrap().len();
            }
            sent == 3
        })
        .await,
        "all three sent"
    );
    // The first outcome's record waits on the database; the second queues
    // behind it; the slow request outlives the grace. On PostgreSQL only the
    // first's row is held, so that the end of the grace writes at once, before
    // the recorder reaches the second (on SQLite every write waits alike).
    let first_run = fixture.executions(jobs[0]).await[0].id;
    let stall = if fixture.database.backend() == punctual_persistence::Backend::Postgres {
        use punctual_persistence::sea_orm::ConnectionTrait;
        let transaction = fixture.database.begin_write().await.unwrap();
        transaction
            .execute_unprepared(&format!(
                "SELECT id FROM executions WHERE id = '{first_run}' FOR UPDATE"
            ))
            .await
            .unwrap();
        transaction
    } else {
        stall_recording(&fixture).await
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stopping = tokio::spawn(engine.shutdown());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stall.rollback().await.unwrap();
    stopping.await.unwrap();

    for (job, server) in jobs[..2].iter().zip([&first, &second]) {
        let executions = fixture.executions(*job).await;
        assert_eq!(
            executions
                .iter()
                .map(|e| (e.attempt, e.status.as_str()))
                .collect::<Vec<_>>(),
            vec![(1, "success")],
            "{:?}",
            executions[0].error
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }
    let slow_run = fixture.executions(jobs[2]).await;
    assert_eq!(
        slow_run[0].status, "failed",
        "the one under way is interrupted"
    );
}

/// Ten once-jobs calling `server`, due 2.5 s from now and claimed ahead by an
/// engine with one slot and `record_queue`, whose leases outlast a stall.
async fn ten_jobs_claimed_ahead(
    fixture: &EngineFixture,
    server: &MockServer,
    record_queue: usize,
) -> (
    Vec<uuid::Uuid>,
    chrono::DateTime<Utc>,
    punctual_scheduler::EngineHandle,
) {
    let due = Utc::now() + chrono::Duration::milliseconds(2500);
    let mut jobs = Vec::new();
    for _ in 0..10 {
        jobs.push(fixture.insert_job(JobSpec::once(due, &server.uri())).await);
    }
    let config = EngineConfig {
        max_in_flight: 1,
        record_queue,
        lookahead: Duration::from_secs(3),
        // Longer than a stall: the leases must not expire and be rescued.
        lease: Duration::from_secs(30),
        ..fixture.config()
    };
    let engine = start(fixture, config);
    let all_claimed = eventually(Duration::from_secs(5), || async {
        let mut claimed = 0;
        for job in &jobs {
            claimed += fixture.executions(*job).await.len();
        }
        claimed == jobs.len()
    })
    .await;
    assert!(all_claimed && Utc::now() < due, "all claimed ahead in time");
    (jobs, due, engine)
}

/// How many of `jobs`' executions succeeded, as recorded.
async fn recorded_successes(fixture: &EngineFixture, jobs: &[uuid::Uuid]) -> usize {
    let mut succeeded = 0;
    for job in jobs {
        let executions = fixture.executions(*job).await;
        succeeded += executions.iter().filter(|e| e.status == "success").count();
    }
    succeeded
}

/// Ten once-jobs claimed ahead by an engine with one slot and `record_queue`;
/// the recorder stalls before their instant. Returns how many requests reached
/// the target while it was stalled; then checks each was recorded once.
async fn requests_while_recording_stalls(record_queue: usize) -> usize {
    const JOBS: usize = 10;
    let fixture = EngineFixture::new().await;
    let server = target(ResponseTemplate::new(200)).await;
    let (jobs, due, engine) = ten_jobs_claimed_ahead(&fixture, &server, record_queue).await;
    let stall = stall_recording(&fixture).await;
    tokio::time::sleep((due - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2))
        .await;
    let delivered = server.received_requests().await.unwrap().len();
    stall.rollback().await.unwrap();
    let all_recorded = eventually(Duration::from_secs(10), || async {
        recorded_successes(&fixture, &jobs).await == JOBS
    })
    .await;
    engine.shutdown().await;
    assert!(
        all_recorded,
        "every request recorded once the database is back"
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        JOBS,
        "each delivered once"
    );
    delivered
}

#[tokio::test]
async fn a_full_record_queue_holds_requests_back_until_outcomes_are_recorded() {
    // In the recorder's stalled batch up to three (it lets a starting herd go
    // first until the queue is full), two queued behind it, one finished and
    // holding the only slot while it waits for room.
    let delivered = requests_while_recording_stalls(2).await;
    assert!(
        (3..=6).contains(&delivered),
        "{delivered} requests reached the target while recording stalled"
    );
}

#[tokio::test]
async fn a_record_queue_with_room_lets_requests_start_on_time_while_recording_lags() {
    let delivered = requests_while_recording_stalls(64).await;
    assert_eq!(
        delivered, 10,
        "requests did not wait for their outcomes to be recorded"
    );
}

#[tokio::test]
async fn a_starting_herd_goes_before_the_records_of_its_first_requests() {
    let fixture = EngineFixture::new().await;
    // One slot and 100 ms a request: the herd of ten takes about a second to start.
    let server = target(ResponseTemplate::new(200).set_delay(Duration::from_millis(100))).await;
    let (jobs, _due, engine) = ten_jobs_claimed_ahead(&fixture, &server, 64).await;
    let half_started = eventually(Duration::from_secs(10), || async {
        server.received_requests().await.unwrap().len() >= 5
    })
    .await;
    assert!(half_started);
    assert_eq!(
        recorded_successes(&fixture, &jobs).await,
        0,
        "four requests answered, yet recorded while the rest of the herd waited"
    );
    let all_recorded = eventually(Duration::from_secs(10), || async {
        recorded_successes(&fixture, &jobs).await == jobs.len()
    })
    .await;
    engine.shutdown().await;
    assert!(all_recorded, "recorded once the herd had started");
    assert_eq!(server.received_requests().await.unwrap().len(), jobs.len());
}

/// `count` once-jobs due now, run by an engine with one slot (and so one more
/// in its queue) against a target answering after `answer_after`.
async fn due_jobs_on_one_slot(
    fixture: &EngineFixture,
    count: usize,
    answer_after: Duration,
    missed_run_tolerance: Duration,
) -> (
    Vec<uuid::Uuid>,
    MockServer,
    punctual_scheduler::EngineHandle,
) {
    let server = target(ResponseTemplate::new(200).set_delay(answer_after)).await;
    let mut jobs = Vec::new();
    for _ in 0..count {
        jobs.push(
            fixture
                .insert_job(JobSpec::once(Utc::now(), &server.uri()))
                .await,
        );
    }
    let config = EngineConfig {
        max_in_flight: 1,
        missed_run_tolerance,
        ..fixture.config()
    };
    let engine = start(fixture, config);
    (jobs, server, engine)
}

#[tokio::test]
async fn a_saturated_node_leaves_due_jobs_waiting_rather_than_queueing_them() {
    let fixture = EngineFixture::new().await;
    let (jobs, server, engine) = due_jobs_on_one_slot(
        &fixture,
        5,
        Duration::from_millis(300),
        Duration::from_secs(60),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            !server.received_requests().await.unwrap().is_empty()
        })
        .await
    );
    let mut taken = Vec::new();
    for job in &jobs {
        taken.extend(fixture.executions(*job).await);
    }
    assert!(
        taken.len() <= 2 && taken.iter().all(|e| e.status != "pending"),
        "one running and one queued, the rest left in jobs: {:?}",
        taken.iter().map(|e| &e.status).collect::<Vec<_>>()
    );
    let all_done = eventually(Duration::from_secs(15), || async {
        recorded_successes(&fixture, &jobs).await == jobs.len()
    })
    .await;
    engine.shutdown().await;
    assert!(all_done);
    assert_eq!(server.received_requests().await.unwrap().len(), jobs.len());
}

#[tokio::test]
async fn jobs_waiting_on_a_saturated_node_are_queued_before_they_count_as_missed() {
    let fixture = EngineFixture::new().await;
    // A second a request on one slot: the fourth and fifth jobs could start
    // only 2 s and 3 s late, past the tolerance of 1.5 s, had they waited.
    let (jobs, server, engine) = due_jobs_on_one_slot(
        &fixture,
        5,
        Duration::from_secs(1),
        Duration::from_millis(1500),
    )
    .await;
    let all_done = eventually(Duration::from_secs(20), || async {
        let mut finished = 0;
        for job in &jobs {
            finished += fixture
                .executions(*job)
                .await
                .iter()
                .filter(|e| e.finished_at.is_some())
                .count();
        }
        finished == jobs.len()
    })
    .await;
    engine.shutdown().await;
    assert!(all_done);
    assert_eq!(
        recorded_successes(&fixture, &jobs).await,
        jobs.len(),
        "none skipped as missed"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), jobs.len());
}
