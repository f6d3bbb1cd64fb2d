//! The jobs API over HTTP: the job document and its defaults, validation (every rule
//! names its field, and one 422 lists them all), the SSRF refusals at save time, the
//! idempotent upsert by key, pagination under concurrent inserts, partial updates,
//! pause / resume / trigger, deletion with the execution history, and the executions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jobs_support;

use std::collections::HashSet;

use chrono::{Duration, Utc};
use jobs_support::*;
use punctual_domain::Schedule;
use punctual_persistence::entities::job;
use punctual_persistence::sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use punctual_tests::{problem, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{json, Value};

fn next_yearly_run_after(now: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    Schedule::parse_cron(YEARLY, "Europe/Oslo")
        .unwrap()
        .next_after(now)
        .unwrap()
}

#[tokio::test]
async fn a_minimal_job_gets_every_default() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let before = Utc::now();
    let body = json!({
        "name": "  ping  ",
        "request": {"url": "http://127.0.0.1:9/ping"},
        "schedule": {"type": "cron", "cron": "0 0 1 1 *"},
    });
    let job = create_job(&app, &owner.access_token, &org, &body).await;
    assert_eq!(job["name"], "ping");
    assert_eq!(job["key"], Value::Null);
    assert_eq!(
        job["request"],
        json!({"url": "http://127.0.0.1:9/ping", "method": "GET", "headers": {},
               "body": null, "timeout_ms": 30000})
    );
    assert_eq!(
        job["schedule"],
        json!({"type": "cron", "cron": "0 0 1 1 *", "timezone": "UTC"})
    );
    assert_eq!(
        job["retry"],
        json!({"max_attempts": 3, "min_backoff_ms": 5000, "max_backoff_ms": 3600000})
    );
    assert_eq!(job["concurrency"], "allow");
    assert_eq!(job["missed_runs"], "skip");
    assert_eq!(job["catch_up_grace_seconds"], 3600);
    assert_eq!(job["enabled"], true);
    assert_eq!(job["last_execution"], Value::Null);
    assert_eq!(job["consecutive_failures"], 0);
    assert_eq!(job["disabled_reason"], Value::Null);
    assert_eq!(job["created_at"], job["updated_at"]);
    let expected = Schedule::parse_cron("0 0 1 1 *", "UTC")
        .unwrap()
        .next_after(before)
        .unwrap();
    assert_eq!(instant(&job["next_run_at"]), expected);

    let id = job["id"].as_str().unwrap();
    let fetched = call_ok(
        &app,
        Method::GET,
        &job_path(&org, id),
        &owner.access_token,
        None,
        200,
    )
    .await;
    assert_eq!(fetched, job);
}

#[tokio::test]
async fn the_documented_job_round_trips() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let document = json!({
        "name": "nightly report", "key": "report-nightly",
        "request": {"url": "https://example.com/hook", "method": "post",
                    "headers": {"content-type": "application/json"}, "body": "{}",
                    "timeout_ms": 30000},
        "schedule": {"type": "cron", "cron": "0 3 * * *", "timezone": "Europe/Oslo"},
        "retry": {"max_attempts": 3, "min_backoff_ms": 5000, "max_backoff_ms": 3600000},
        "concurrency": "forbid",
        "missed_runs": "run_once",
        "catch_up_grace_seconds": 600,
        "enabled": true
    });
    let before = Utc::now();
    let job = create_job(&app, &owner.access_token, &org, &document).await;
    assert_eq!(job["key"], "report-nightly");
    assert_eq!(job["request"]["method"], "POST");
    assert_eq!(job["request"]["headers"], document["request"]["headers"]);
    assert_eq!(job["request"]["body"], "{}");
    assert_eq!(job["schedule"], document["schedule"]);
    assert_eq!(job["retry"], document["retry"]);
    assert_eq!(job["concurrency"], "forbid");
    assert_eq!(job["missed_runs"], "run_once");
    assert_eq!(job["catch_up_grace_seconds"], 600);
    let next = Schedule::parse_cron("0 3 * * *", "Europe/Oslo")
        .unwrap()
        .next_after(before)
        .unwrap();
    assert_eq!(instant(&job["next_run_at"]), next);

    // What is stored is what the engine reads.
    let id: uuid::Uuid = job["id"].as_str().unwrap().parse().unwrap();
    let row = job::Entity::find_by_id(id)
        .one(app.database.conn())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.catch_up_grace_ms, 600_000);
    assert_eq!(row.headers, r#"{"content-type":"application/json"}"#);
    assert_eq!(row.schedule_kind, "cron");
    assert_eq!(row.next_run_at, Some(next));

    // A one-off job: next_run_at is its moment; disabled jobs have none.
    let at = (Utc::now() + Duration::days(30)).to_rfc3339();
    let mut once = job_doc("once");
    once["schedule"] = json!({"type": "once", "at": at});
    let created = create_job(&app, &owner.access_token, &org, &once).await;
    assert_eq!(created["schedule"]["type"], "once");
    assert_eq!(
        instant(&created["next_run_at"]),
        instant(&created["schedule"]["at"])
    );
    let mut disabled = job_doc("disabled");
    disabled["enabled"] = json!(false);
    let created = create_job(&app, &owner.access_token, &org, &disabled).await;
    assert_eq!(created["enabled"], false);
    assert_eq!(created["next_run_at"], Value::Null);
}

fn job_doc(name: &str) -> Value {
    job(name)
}

/// Sets `pointer` in a copy of a valid job document (`null` removes the field).
fn with(pointer: &str, value: Value) -> Value {
    let mut document = job("valid");
    let (parent, leaf) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut document
    } else {
        document.pointer_mut(parent).unwrap()
    };
    let object = target.as_object_mut().unwrap();
    if value.is_null() {
        object.remove(leaf);
    } else {
        object.insert(leaf.to_owned(), value);
    }
    document
}

#[tokio::test]
async fn every_validation_rule_names_its_field() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let past = (Utc::now() - Duration::minutes(1)).to_rfc3339();
    let cases: Vec<(Value, &str)> = vec![
        (with("/schedule/cron", json!("0 3 * *")), "schedule.cron"),
        (with("/schedule/cron", json!("61 * * * *")), "schedule.cron"),
        (
            with("/schedule/cron", json!("@fortnightly")),
            "schedule.cron",
        ),
        (
            with("/schedule/timezone", json!("Europe/Olso")),
            "schedule.timezone",
        ),
        (
            with("/schedule/timezone", json!("CEST")),
            "schedule.timezone",
        ),
        (with("/schedule/type", json!("weekly")), "schedule.type"),
        (with("/schedule/type", Value::Null), "schedule.type"),
        (with("/schedule/cron", Value::Null), "schedule.cron"),
        (
            with("/schedule", json!({"type": "once", "at": past})),
            "schedule.at",
        ),
        (
            with("/schedule", json!({"type": "once", "at": "tomorrow"})),
            "schedule.at",
        ),
        (with("/schedule", json!({"type": "once"})), "schedule.at"),
        (
            with("/request/url", json!("ftp://example.com/x")),
            "request.url",
        ),
        (
            with("/request/url", json!("file:///etc/passwd")),
            "request.url",
        ),
        (
            with("/request/url", json!("https://user:pw@example.com/")),
            "request.url",
        ),
        (with("/request/url", json!("/relative")), "request.url"),
        (with("/request/url", Value::Null), "request.url"),
        (with("/request/method", json!("TRACE")), "request.method"),
        (
            with("/request/headers", json!({"Host": "evil.example"})),
            "request.headers.Host",
        ),
        (
            with("/request/headers", json!({"connection": "close"})),
            "request.headers.connection",
        ),
        (
            with("/request/headers", json!({"Transfer-Encoding": "chunked"})),
            "request.headers.Transfer-Encoding",
        ),
        (
            with("/request/headers", json!({"X-Foo": "a\r\nX-Bar: 1"})),
            "request.headers.X-Foo",
        ),
        (
            with("/request/headers", json!({"X Foo": "1"})),
            "request.headers.X Foo",
        ),
        (
            with("/request/body", json!("x".repeat(64 * 1024 + 1))),
            "request.body",
        ),
        (with("/request/timeout_ms", json!(0)), "request.timeout_ms"),
        (
            with("/request/timeout_ms", json!(300_001)),
            "request.timeout_ms",
        ),
        (
            with("/retry", json!({"max_attempts": 0})),
            "retry.max_attempts",
        ),
        (
            with("/retry", json!({"max_attempts": 21})),
            "retry.max_attempts",
        ),
        (
            with("/retry", json!({"min_backoff_ms": 99})),
            "retry.min_backoff_ms",
        ),
        (
            with(
                "/retry",
                json!({"min_backoff_ms": 10000, "max_backoff_ms": 9999}),
            ),
            "retry.max_backoff_ms",
        ),
        (
            with("/retry", json!({"max_backoff_ms": 86_400_001})),
            "retry.max_backoff_ms",
        ),
        (with("/name", json!("")), "name"),
        (with("/name", json!("   ")), "name"),
        (with("/name", json!("n".repeat(201))), "name"),
        (with("/name", json!("two\nlines")), "name"),
        (with("/name", Value::Null), "name"),
        (with("/key", json!("")), "key"),
        (with("/key", json!("a/b")), "key"),
        (with("/key", json!("k".repeat(129))), "key"),
        (with("/key", json!("clé")), "key"),
        (with("/concurrency", json!("sometimes")), "concurrency"),
        (with("/missed_runs", json!("always")), "missed_runs"),
        (
            with("/catch_up_grace_seconds", json!(0)),
            "catch_up_grace_seconds",
        ),
        (
            with("/catch_up_grace_seconds", json!(604_801)),
            "catch_up_grace_seconds",
        ),
        (with("/request", Value::Null), "request"),
        (with("/schedule", Value::Null), "schedule"),
        // Wrong JSON types are named too (by the extractor).
        (
            with("/request/timeout_ms", json!("soon")),
            "request.timeout_ms",
        ),
        (with("/enabled", json!("yes")), "enabled"),
    ];
    for (body, field) in cases {
        let response = call(
            &app,
            Method::POST,
            &jobs_path(&org),
            &owner.access_token,
            Some(&body),
        )
        .await;
        let fields = invalid_fields(response).await;
        assert_eq!(fields, [field], "{body}");
    }
    // The limits themselves are fine.
    for body in [
        with("/request/body", json!("x".repeat(64 * 1024))),
        with("/request/timeout_ms", json!(300_000)),
        with("/name", json!("n".repeat(200))),
        with("/key", json!("k".repeat(128))),
        with(
            "/retry",
            json!({"max_attempts": 20, "min_backoff_ms": 100, "max_backoff_ms": 86_400_000}),
        ),
    ] {
        create_job(&app, &owner.access_token, &org, &body).await;
    }
    // Nothing invalid was stored.
    let page = call_ok(
        &app,
        Method::GET,
        &jobs_path(&org),
        &owner.access_token,
        None,
        200,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn one_422_lists_every_bad_field() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let body = json!({
        "name": "",
        "key": "no spaces",
        "request": {"url": "gopher://example.com/", "method": "BREW",
                    "headers": {"Host": "x", "Upgrade": "h2c", "X-Ok": "fine"},
                    "body": "x".repeat(70_000), "timeout_ms": 0},
        "schedule": {"type": "cron", "cron": "* * *", "timezone": "Nowhere/City"},
        "retry": {"max_attempts": 99, "min_backoff_ms": 1},
        "concurrency": "maybe",
        "missed_runs": "all",
        "catch_up_grace_seconds": 0
    });
    let response = call(
        &app,
        Method::POST,
        &jobs_path(&org),
        &owner.access_token,
        Some(&body),
    )
    .await;
    let mut fields = invalid_fields(response).await;
    fields.sort();
    let mut expected = vec![
        "name",
        "key",
        "request.url",
        "request.method",
        "request.headers.Host",
        "request.headers.Upgrade",
        "request.body",
        "request.timeout_ms",
        "schedule.cron",
        "schedule.timezone",
        "retry.max_attempts",
        "retry.min_backoff_ms",
        "concurrency",
        "missed_runs",
        "catch_up_grace_seconds",
    ];
    expected.sort_unstable();
    assert_eq!(fields, expected);
}

/// Host names in /etc/hosts that resolve only to blocked addresses (and are not
/// `localhost` names, which are refused without a lookup).
async fn names_resolving_to_private_addresses() -> Vec<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut found = Vec::new();
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or_default();
        for name in line.split_whitespace().skip(1) {
            if name.to_ascii_lowercase().contains("localhost") || found.contains(&name.to_owned()) {
                continue;
            }
            let Ok(addresses) = tokio::net::lookup_host((name, 80)).await else {
                continue;
            };
            let addresses: Vec<_> = addresses.collect();
            if !addresses.is_empty()
                && addresses
                    .iter()
                    .all(|a| punctual_domain::is_blocked_ip(a.ip()))
            {
                found.push(name.to_owned());
            }
        }
    }
    found
}

#[tokio::test]
async fn private_targets_are_refused_when_not_allowed() {
    let app = spawn_app_with(|s| s.outbound.allow_private_networks = false).await;
    let (owner, org) = owner_with_org(&app).await;
    for url in [
        "http://127.0.0.1/",
        "http://127.1:8080/",
        "http://2130706433/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[64:ff9b:1::a00:1]/",
        "http://localhost:3000/",
        "http://api.localhost/",
    ] {
        let body = with("/request/url", json!(url));
        let response = call(
            &app,
            Method::POST,
            &jobs_path(&org),
            &owner.access_token,
            Some(&body),
        )
        .await;
        assert_eq!(invalid_fields(response).await, ["request.url"], "{url}");
    }
    // A host name is checked after resolution.
    let names = names_resolving_to_private_addresses().await;
    if names.is_empty() {
        eprintln!("no /etc/hosts name resolves to a private address here; DNS check not exercised");
    }
    for name in names {
        let body = with("/request/url", json!(format!("http://{name}:8080/hook")));
        let response = call(
            &app,
            Method::POST,
            &jobs_path(&org),
            &owner.access_token,
            Some(&body),
        )
        .await;
        let body = problem(response, 422).await;
        assert_eq!(body["errors"][0]["field"], "request.url", "{name}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("resolves to"),
            "{body}"
        );
    }
    // Public literals are fine; so is a name that does not resolve now (every request
    // is checked again before it connects).
    for url in [
        "http://93.184.216.34/hook",
        "https://name-that-does-not-exist.invalid/",
    ] {
        let body = with("/request/url", json!(url));
        create_job(&app, &owner.access_token, &org, &body).await;
    }
    // PATCH and PUT are checked the same way.
    let job = create_job(
        &app,
        &owner.access_token,
        &org,
        &with("/request/url", json!("http://93.184.216.34/")),
    )
    .await;
    let response = call(
        &app,
        Method::PATCH,
        &job_path(&org, job["id"].as_str().unwrap()),
        &owner.access_token,
        Some(&json!({"request": {"url": "http://10.1.2.3/"}})),
    )
    .await;
    assert_eq!(invalid_fields(response).await, ["request.url"]);
    let response = call(
        &app,
        Method::PUT,
        &format!("{}/by-key/ssrf", jobs_path(&org)),
        &owner.access_token,
        Some(&with("/request/url", json!("http://[::1]:8080/"))),
    )
    .await;
    assert_eq!(invalid_fields(response).await, ["request.url"]);
}

#[tokio::test]
async fn upsert_by_key_is_idempotent() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let path = format!("{}/by-key/report-nightly", jobs_path(&org));
    let document = job("nightly report");

    let created = call_ok(&app, Method::PUT, &path, token, Some(&document), 201).await;
    assert_eq!(created["key"], "report-nightly");
    let again = call_ok(&app, Method::PUT, &path, token, Some(&document), 200).await;
    assert_eq!(again, created, "the same body twice changes nothing");
    // The answer is itself a valid document that changes nothing.
    let echoed = call_ok(&app, Method::PUT, &path, token, Some(&created), 200).await;
    assert_eq!(echoed, created);
    let row = job::Entity::find_by_id(
        created["id"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .unwrap(),
    )
    .one(app.database.conn())
    .await
    .unwrap()
    .unwrap();
    assert_eq!(row.updated_at, instant(&created["updated_at"]));

    // A change replaces the job in place; a schedule kept keeps its next run.
    let mut renamed = document.clone();
    renamed["name"] = json!("nightly report v2");
    let replaced = call_ok(&app, Method::PUT, &path, token, Some(&renamed), 200).await;
    assert_eq!(replaced["id"], created["id"]);
    assert_eq!(replaced["name"], "nightly report v2");
    assert_eq!(replaced["created_at"], created["created_at"]);
    assert!(instant(&replaced["updated_at"]) > instant(&created["updated_at"]));
    assert_eq!(replaced["next_run_at"], created["next_run_at"]);

    // A new schedule gets a new next run.
    let mut rescheduled = renamed.clone();
    rescheduled["schedule"] = json!({"type": "cron", "cron": "0 0 1 6 *", "timezone": "UTC"});
    let before = Utc::now();
    let replaced = call_ok(&app, Method::PUT, &path, token, Some(&rescheduled), 200).await;
    let expected = Schedule::parse_cron("0 0 1 6 *", "UTC")
        .unwrap()
        .next_after(before)
        .unwrap();
    assert_eq!(instant(&replaced["next_run_at"]), expected);

    // Omitted fields are reset to their defaults: PUT replaces the whole document.
    let mut minimal = rescheduled.clone();
    minimal["request"]
        .as_object_mut()
        .unwrap()
        .remove("headers");
    let replaced = call_ok(&app, Method::PUT, &path, token, Some(&minimal), 200).await;
    assert_eq!(replaced["request"]["headers"], json!({}));

    // One key, one job.
    let page = call_ok(
        &app,
        Method::GET,
        &format!("{}?key=report-nightly", jobs_path(&org)),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["id"], created["id"]);

    // The body's key must agree with the path's; the path's key must be valid.
    let mut other_key = document.clone();
    other_key["key"] = json!("something-else");
    let response = call(&app, Method::PUT, &path, token, Some(&other_key)).await;
    assert_eq!(invalid_fields(response).await, ["key"]);
    let response = call(
        &app,
        Method::PUT,
        &format!("{}/by-key/bad%20key", jobs_path(&org)),
        token,
        Some(&document),
    )
    .await;
    assert_eq!(invalid_fields(response).await, ["key"]);

    // POST with a taken key is a conflict.
    let mut keyed = document.clone();
    keyed["key"] = json!("report-nightly");
    problem(
        call(&app, Method::POST, &jobs_path(&org), token, Some(&keyed)).await,
        409,
    )
    .await;
}

#[tokio::test]
async fn concurrent_upserts_of_one_key_make_one_job() {
    let app = std::sync::Arc::new(spawn_app().await);
    let (owner, org) = owner_with_org(&app).await;
    let path = format!("{}/by-key/racy", jobs_path(&org));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let app = app.clone();
        let path = path.clone();
        let token = owner.access_token.clone();
        tasks.push(tokio::spawn(async move {
            let response = call(&app, Method::PUT, &path, &token, Some(&job("racy"))).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body["id"].as_str().map(str::to_owned))
        }));
    }
    let mut created = 0;
    let mut ids = HashSet::new();
    for task in tasks {
        let (status, id) = task.await.unwrap();
        assert!(status == 200 || status == 201, "status {status}");
        created += usize::from(status == 201);
        ids.insert(id.unwrap());
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn pagination_walks_every_job_exactly_once_under_concurrent_inserts() {
    let app = std::sync::Arc::new(spawn_app().await);
    let (owner, org) = owner_with_org(&app).await;
    let mut existing = HashSet::new();
    for i in 0..30 {
        let job = create_job(&app, &owner.access_token, &org, &job(&format!("job {i}"))).await;
        existing.insert(job["id"].as_str().unwrap().to_owned());
    }
    // Another client keeps adding jobs while we walk.
    let inserter = {
        let app = app.clone();
        let org = org.clone();
        let token = owner.access_token.clone();
        tokio::spawn(async move {
            let mut added = HashSet::new();
            for i in 0..30 {
                let job = create_job(&app, &token, &org, &job(&format!("late {i}"))).await;
                added.insert(job["id"].as_str().unwrap().to_owned());
            }
            added
        })
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("{}?limit=4&cursor={cursor}", jobs_path(&org)),
            None => format!("{}?limit=4", jobs_path(&org)),
        };
        let page = call_ok(&app, Method::GET, &path, &owner.access_token, None, 200).await;
        pages += 1;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 4);
        seen.extend(data.iter().map(|j| j["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 100, "the walk does not end");
    }
    let added = inserter.await.unwrap();
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a job was listed twice");
    assert!(
        existing.is_subset(&unique),
        "a job that existed was skipped"
    );
    assert!(unique.is_subset(&existing.union(&added).cloned().collect()));

    // The order is creation order, and a second walk after the inserts sees them all.
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("{}?limit=7&cursor={cursor}", jobs_path(&org)),
            None => format!("{}?limit=7", jobs_path(&org)),
        };
        let page = call_ok(&app, Method::GET, &path, &owner.access_token, None, 200).await;
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(all.len(), 60);
    let created: Vec<_> = all.iter().map(|j| instant(&j["created_at"])).collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]));

    // Bad paging input is a 422 naming it.
    for (query, field) in [
        ("cursor=garbage", "cursor"),
        // A time chrono holds and PostgreSQL cannot bind.
        (
            "cursor=-8000000000000.0.00000000000000000000000000000000",
            "cursor",
        ),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("limit=null", "limit"),
        ("enabled=maybe", "enabled"),
    ] {
        let response = call(
            &app,
            Method::GET,
            &format!("{}?{query}", jobs_path(&org)),
            &owner.access_token,
            None,
        )
        .await;
        assert_eq!(invalid_fields(response).await, [field], "{query}");
    }
    // A query string the parameters cannot be read from is a 400 saying why.
    let response = call(
        &app,
        Method::GET,
        &format!("{}?limit=5&limit=6", jobs_path(&org)),
        &owner.access_token,
        None,
    )
    .await;
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("duplicate field `limit`"), "{detail}");
}

#[tokio::test]
async fn list_filters_by_enabled_and_key() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let mut keyed = job("keyed");
    keyed["key"] = json!("the-key");
    let keyed = create_job(&app, token, &org, &keyed).await;
    let mut paused = job("paused");
    paused["enabled"] = json!(false);
    let paused = create_job(&app, token, &org, &paused).await;
    create_job(&app, token, &org, &job("plain")).await;

    let names = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let path = jobs_path(&org);
    let page = call_ok(
        &app,
        Method::GET,
        &format!("{path}?enabled=false"),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(names(&page), ["paused"]);
    assert_eq!(page["data"][0]["id"], paused["id"]);
    assert_eq!(page["next_cursor"], Value::Null);
    let page = call_ok(
        &app,
        Method::GET,
        &format!("{path}?enabled=true"),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(names(&page), ["keyed", "plain"]);
    let page = call_ok(
        &app,
        Method::GET,
        &format!("{path}?key=the-key"),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(names(&page), ["keyed"]);
    assert_eq!(page["data"][0]["id"], keyed["id"]);
    let page = call_ok(
        &app,
        Method::GET,
        &format!("{path}?key=the-key&enabled=false"),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(names(&page), Vec::<String>::new());
    let page = call_ok(
        &app,
        Method::GET,
        &format!("{path}?key=nope"),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(page["data"], json!([]));
}

#[tokio::test]
async fn patch_changes_only_what_it_names() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let mut document = job("patched");
    document["request"]["headers"] = json!({"X-One": "1", "X-Two": "2"});
    let created = create_job(&app, token, &org, &document).await;
    let path = job_path(&org, created["id"].as_str().unwrap());

    // A rename keeps the schedule and its next run.
    let renamed = call_ok(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!({"name": "renamed"})),
        200,
    )
    .await;
    assert_eq!(renamed["name"], "renamed");
    assert_eq!(renamed["next_run_at"], created["next_run_at"]);
    assert_eq!(renamed["request"], created["request"]);
    assert!(instant(&renamed["updated_at"]) > instant(&created["updated_at"]));

    // Nested merge: one header removed, one added, the timeout changed.
    let patched = call_ok(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!({"request": {"headers": {"X-One": null, "X-Three": "3"}, "timeout_ms": 1000}})),
        200,
    )
    .await;
    assert_eq!(
        patched["request"]["headers"],
        json!({"X-Three": "3", "X-Two": "2"})
    );
    assert_eq!(patched["request"]["timeout_ms"], 1000);
    assert_eq!(patched["request"]["url"], created["request"]["url"]);

    // `null` removes an optional field.
    let patched = call_ok(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!({"request": {"body": null}})),
        200,
    )
    .await;
    assert_eq!(patched["request"]["body"], Value::Null);

    // Nothing to change: nothing written.
    let same = call_ok(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!({"name": "renamed"})),
        200,
    )
    .await;
    assert_eq!(same["updated_at"], patched["updated_at"]);
    let empty = call_ok(&app, Method::PATCH, &path, token, Some(&json!({})), 200).await;
    assert_eq!(empty, same);

    // A new cron (merged into the schedule) recomputes the next run.
    let before = Utc::now();
    let rescheduled = call_ok(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!({"schedule": {"cron": "0 0 1 7 *"}})),
        200,
    )
    .await;
    assert_eq!(rescheduled["schedule"]["timezone"], "Europe/Oslo");
    let expected = Schedule::parse_cron("0 0 1 7 *", "Europe/Oslo")
        .unwrap()
        .next_after(before)
        .unwrap();
    assert_eq!(instant(&rescheduled["next_run_at"]), expected);

    // Another type replaces the schedule.
    let at = (Utc::now() + Duration::days(3)).to_rfc3339();
    let once = call_ok(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!({"schedule": {"type": "once", "at": at}})),
        200,
    )
    .await;
    assert_eq!(
        once["schedule"],
        json!({"type": "once", "at": once["schedule"]["at"]})
    );
    assert_eq!(once["next_run_at"], once["schedule"]["at"]);

    // Disabling clears the next run; enabling computes it again.
    let disabled = call_ok(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!({"enabled": false})),
        200,
    )
    .await;
    assert_eq!(disabled["next_run_at"], Value::Null);
    let enabled = call_ok(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!({"enabled": true})),
        200,
    )
    .await;
    assert_eq!(enabled["next_run_at"], once["schedule"]["at"]);

    // Validation is the create's: every bad field, nothing changed.
    let response = call(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!({"name": "", "request": {"method": "TRACE"}, "retry": {"max_attempts": 0}})),
    )
    .await;
    let mut fields = invalid_fields(response).await;
    fields.sort();
    assert_eq!(fields, ["name", "request.method", "retry.max_attempts"]);
    let response = call(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!({"schedule": {"at": "2001-01-01T00:00:00Z"}})),
    )
    .await;
    assert_eq!(invalid_fields(response).await, ["schedule.at"]);
    let response = call(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!(["not", "an", "object"])),
    )
    .await;
    assert_eq!(invalid_fields(response).await, ["body"]);
    let now = call_ok(&app, Method::GET, &path, token, None, 200).await;
    assert_eq!(now, enabled);

    // A key another job has is a conflict.
    let mut other = job("other");
    other["key"] = json!("taken");
    create_job(&app, token, &org, &other).await;
    problem(
        call(
            &app,
            Method::PATCH,
            &path,
            token,
            Some(&json!({"key": "taken"})),
        )
        .await,
        409,
    )
    .await;
}

#[tokio::test]
async fn a_once_job_in_the_past_may_be_renamed() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let created = create_job(&app, token, &org, &job("soon")).await;
    let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    // Make it a one-off whose moment has passed (as after its run).
    let past = Utc::now() - Duration::hours(1);
    let row = job::Entity::find_by_id(id)
        .one(app.database.conn())
        .await
        .unwrap()
        .unwrap();
    let mut row: job::ActiveModel = row.into();
    row.schedule_kind = Set("once".to_owned());
    row.cron = Set(None);
    row.timezone = Set(None);
    row.run_at = Set(Some(past));
    row.next_run_at = Set(None);
    row.update(app.database.conn()).await.unwrap();

    let path = job_path(&org, &id.to_string());
    let renamed = call_ok(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!({"name": "done"})),
        200,
    )
    .await;
    assert_eq!(renamed["name"], "done");
    assert_eq!(renamed["next_run_at"], Value::Null);
}

/// A once-job paused just before its time (already claimed ahead by the engine)
/// does not run while paused; resumed after its time, it runs then (late by
/// less than the missed-run tolerance) and completes. Pausing did not wake the
/// engine, so the claim ran anyway; and the resumed job stayed enabled with no
/// next run, for ever.
#[tokio::test]
async fn a_once_job_paused_over_its_time_runs_when_resumed() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let mut body = job("soon");
    let at = Utc::now() + Duration::seconds(2);
    body["schedule"] = json!({"type": "once", "at": at.to_rfc3339()});
    let created = create_job(&app, token, &org, &body).await;
    let path = job_path(&org, created["id"].as_str().unwrap());
    job_action(&app, &path, "pause", token, 200).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let history = || async {
        call_ok(
            &app,
            Method::GET,
            &format!("{path}/executions"),
            token,
            None,
            200,
        )
        .await["data"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(
        history().await.iter().all(|e| e["started_at"].is_null()),
        "nothing ran while paused: {:?}",
        history().await
    );
    let resumed = job_action(&app, &path, "resume", token, 200).await;
    assert_eq!(resumed["next_run_at"], created["next_run_at"], "{resumed}");
    let mut finished = Value::Null;
    for _ in 0..100 {
        finished = call_ok(&app, Method::GET, &path, token, None, 200).await;
        if !finished["completed_at"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!finished["completed_at"].is_null(), "{finished}");
    assert!(finished["next_run_at"].is_null(), "{finished}");
    let runs = history().await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["trigger"], "schedule");
    assert_eq!(runs[0]["scheduled_for"], created["next_run_at"]);
    assert!(!runs[0]["finished_at"].is_null(), "{runs:?}");
}

/// A job deleted just before its time (its occurrence already claimed ahead by
/// the engine) sends no request: deleting wakes the engine, which gives the
/// claim up.
#[tokio::test]
async fn a_job_deleted_just_before_its_time_sends_nothing() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let target = wiremock::MockServer::start().await;
    let mut body = job("doomed");
    body["request"]["url"] = json!(target.uri());
    body["schedule"] =
        json!({"type": "once", "at": (Utc::now() + Duration::seconds(2)).to_rfc3339()});
    let created = create_job(&app, token, &org, &body).await;
    let path = job_path(&org, created["id"].as_str().unwrap());
    call_ok(&app, Method::DELETE, &path, token, None, 204).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(target.received_requests().await.unwrap().is_empty());
}

/// An execution claimed ahead of its time and not started is shown `pending`;
/// the status filter and the usage counts go by the status shown, not by the
/// `running` it is stored as.
#[tokio::test]
async fn a_run_claimed_ahead_is_pending_to_filters_and_counts_too() {
    use punctual_persistence::entities::execution;
    use punctual_persistence::sea_orm::{sea_query::Expr, ColumnTrait, QueryFilter};
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let created = create_job(&app, token, &org, &job("ahead")).await;
    let id = created["id"].as_str().unwrap();
    let now = Utc::now();
    let mut rows = Vec::new();
    for (n, started) in [(1, false), (2, true)] {
        let row = insert_execution(&app, &org, id, "running", now - Duration::seconds(n)).await;
        let started_at = started.then_some(now);
        execution::Entity::update_many()
            .col_expr(execution::Column::StartedAt, Expr::value(started_at))
            .col_expr(
                execution::Column::FinishedAt,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            )
            .filter(execution::Column::Id.eq(row))
            .exec(app.database.conn())
            .await
            .unwrap();
        rows.push(row.to_string());
    }
    let path = format!("{}/executions", job_path(&org, id));
    for (status, expected) in [("pending", &rows[0]), ("running", &rows[1])] {
        let page = call_ok(
            &app,
            Method::GET,
            &format!("{path}?status={status}"),
            token,
            None,
            200,
        )
        .await;
        let listed: Vec<&str> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, [expected.as_str()], "{status}");
        assert_eq!(page["data"][0]["status"], status);
    }
    let usage = call_ok(
        &app,
        Method::GET,
        &format!("/api/v1/orgs/{}/usage", org.slug),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(usage["executions_by_status"]["pending"], 1, "{usage}");
    assert_eq!(usage["executions_by_status"]["running"], 1, "{usage}");
}

#[tokio::test]
async fn pause_and_resume() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let created = create_job(&app, token, &org, &job("pausable")).await;
    let path = job_path(&org, created["id"].as_str().unwrap());

    let paused = call_ok(
        &app,
        Method::POST,
        &format!("{path}/pause"),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(paused["enabled"], false);
    assert_eq!(paused["next_run_at"], Value::Null);
    let again = call_ok(
        &app,
        Method::POST,
        &format!("{path}/pause"),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(again, paused, "pausing a paused job changes nothing");

    // As if the engine had disabled it after failures.
    let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let row = job::Entity::find_by_id(id)
        .one(app.database.conn())
        .await
        .unwrap()
        .unwrap();
    let mut row: job::ActiveModel = row.into();
    row.consecutive_failures = Set(15);
    row.disabled_reason = Set(Some("15 failures in a row".to_owned()));
    row.update(app.database.conn()).await.unwrap();

    let before = Utc::now();
    let resumed = call_ok(
        &app,
        Method::POST,
        &format!("{path}/resume"),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(resumed["enabled"], true);
    assert_eq!(resumed["consecutive_failures"], 0);
    assert_eq!(resumed["disabled_reason"], Value::Null);
    assert_eq!(
        instant(&resumed["next_run_at"]),
        next_yearly_run_after(before)
    );
    let fetched = call_ok(&app, Method::GET, &path, token, None, 200).await;
    assert_eq!(fetched, resumed);

    // Resuming an enabled job keeps its next run.
    let again = call_ok(
        &app,
        Method::POST,
        &format!("{path}/resume"),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(again, resumed);
}

#[tokio::test]
async fn trigger_runs_now_without_shifting_the_schedule() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let created = create_job(&app, token, &org, &job("triggered")).await;
    let id = created["id"].as_str().unwrap();
    let path = job_path(&org, id);

    let before = Utc::now();
    let run = call_ok(
        &app,
        Method::POST,
        &format!("{path}/trigger"),
        token,
        None,
        202,
    )
    .await;
    assert_eq!(run["job_id"], id);
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["status"], "pending");
    assert_eq!(run["attempt"], 1);
    let scheduled_for = instant(&run["scheduled_for"]);
    assert!(scheduled_for >= before - Duration::seconds(1) && scheduled_for <= Utc::now());
    for field in [
        "started_at",
        "finished_at",
        "status_code",
        "response_body",
        "error",
        "duration_ms",
    ] {
        assert_eq!(run[field], Value::Null, "{field}");
    }

    let after = call_ok(&app, Method::GET, &path, token, None, 200).await;
    assert_eq!(
        after["next_run_at"], created["next_run_at"],
        "the schedule is untouched"
    );
    assert_eq!(after["last_execution"]["id"], run["id"]);
    let one = call_ok(
        &app,
        Method::GET,
        &format!(
            "/api/v1/orgs/{}/executions/{}",
            org.slug,
            run["id"].as_str().unwrap()
        ),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(one["id"], run["id"]);
    assert_eq!(one["trigger"], "manual");
    let page = call_ok(
        &app,
        Method::GET,
        &format!("{path}/executions"),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(page["data"][0]["id"], run["id"]);

    // A paused job can be run by hand too, and stays paused.
    call_ok(
        &app,
        Method::POST,
        &format!("{path}/pause"),
        token,
        None,
        200,
    )
    .await;
    let second = call_ok(
        &app,
        Method::POST,
        &format!("{path}/trigger"),
        token,
        None,
        202,
    )
    .await;
    assert_ne!(second["id"], run["id"]);
    let after = call_ok(&app, Method::GET, &path, token, None, 200).await;
    assert_eq!(after["enabled"], false);
    assert_eq!(after["next_run_at"], Value::Null);
}

#[tokio::test]
async fn delete_removes_the_job_and_its_executions() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let created = create_job(&app, token, &org, &job("doomed")).await;
    let keep = create_job(&app, token, &org, &job("kept")).await;
    let id = created["id"].as_str().unwrap();
    let now = Utc::now();
    let mut executions = Vec::new();
    for (i, status) in ["success", "failed", "timeout"].iter().enumerate() {
        executions.push(
            insert_execution(&app, &org, id, status, now - Duration::minutes(i as i64)).await,
        );
    }
    let kept_execution =
        insert_execution(&app, &org, keep["id"].as_str().unwrap(), "success", now).await;
    let job_id: uuid::Uuid = id.parse().unwrap();
    assert_eq!(
        punctual_persistence::jobs::count_executions(app.database.conn(), job_id)
            .await
            .unwrap(),
        3
    );

    let path = job_path(&org, id);
    let response = call(&app, Method::DELETE, &path, token, None).await;
    assert_eq!(response.status(), 204);
    problem(call(&app, Method::GET, &path, token, None).await, 404).await;
    problem(call(&app, Method::DELETE, &path, token, None).await, 404).await;
    assert_eq!(
        punctual_persistence::jobs::count_executions(app.database.conn(), job_id)
            .await
            .unwrap(),
        0,
        "the history goes with the job"
    );
    for execution in executions {
        let path = format!("/api/v1/orgs/{}/executions/{execution}", org.slug);
        problem(call(&app, Method::GET, &path, token, None).await, 404).await;
    }
    // Other jobs keep theirs.
    let path = format!("/api/v1/orgs/{}/executions/{kept_execution}", org.slug);
    call_ok(&app, Method::GET, &path, token, None, 200).await;
}

#[tokio::test]
async fn executions_are_newest_first_with_a_status_filter_and_a_cursor() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let created = create_job(&app, token, &org, &job("history")).await;
    let id = created["id"].as_str().unwrap();
    let start = Utc::now() - Duration::hours(1);
    let statuses = [
        "success", "failed", "success", "timeout", "success", "skipped", "canceled",
    ];
    let mut ids = Vec::new();
    for (i, status) in statuses.iter().enumerate() {
        ids.push(
            insert_execution(&app, &org, id, status, start + Duration::seconds(i as i64)).await,
        );
    }
    // Two executions created in the same instant are ordered by id.
    let same_instant = start + Duration::seconds(100);
    for minutes in [1, 2] {
        let scheduled_for = same_instant - Duration::minutes(minutes);
        ids.push(insert_execution_for(&app, &org, id, "failed", same_instant, scheduled_for).await);
    }
    let mut expected: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    expected.reverse();

    let path = job_path(&org, id);
    let walk = |query: String| {
        let app = &app;
        let path = path.clone();
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let url = match &cursor {
                    Some(c) => format!("{path}/executions?{query}&cursor={c}"),
                    None => format!("{path}/executions?{query}"),
                };
                let page = call_ok(app, Method::GET, &url, token, None, 200).await;
                let data = page["data"].as_array().unwrap().clone();
                seen.extend(data);
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            seen
        }
    };
    let all = walk("limit=2".to_owned()).await;
    let got: Vec<String> = all
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, expected);
    // The list leaves the response body out; one execution has it.
    assert!(all[0].get("response_body").is_none());
    let one = call_ok(
        &app,
        Method::GET,
        &format!("/api/v1/orgs/{}/executions/{}", org.slug, ids[0]),
        token,
        None,
        200,
    )
    .await;
    assert_eq!(one["response_body"], "body of success");
    assert_eq!(one["status_code"], 200);
    assert_eq!(one["duration_ms"], 120);
    assert_eq!(one["lag_ms"], 3);
    for field in ["scheduled_for", "started_at", "finished_at", "created_at"] {
        instant(&one[field]);
    }

    let failed = walk("status=failed&limit=1".to_owned()).await;
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|e| e["status"] == "failed"));
    let success = walk("status=success".to_owned()).await;
    assert_eq!(success.len(), 3);

    // The job shows its newest execution.
    let fetched = call_ok(&app, Method::GET, &path, token, None, 200).await;
    assert_eq!(fetched["last_execution"]["id"], expected[0]);
    let list = call_ok(&app, Method::GET, &jobs_path(&org), token, None, 200).await;
    assert_eq!(list["data"][0]["last_execution"]["id"], expected[0]);

    for (query, field) in [("status=exploded", "status"), ("cursor=nope", "cursor")] {
        let response = call(
            &app,
            Method::GET,
            &format!("{path}/executions?{query}"),
            token,
            None,
        )
        .await;
        assert_eq!(invalid_fields(response).await, [field]);
    }
}

#[tokio::test]
async fn ids_that_are_not_uuids_are_404() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let base = jobs_path(&org);
    for (method, path) in [
        (Method::GET, format!("{base}/not-a-uuid")),
        (Method::PATCH, format!("{base}/not-a-uuid")),
        (Method::DELETE, format!("{base}/not-a-uuid")),
        (Method::POST, format!("{base}/42/pause")),
        (Method::POST, format!("{base}/42/resume")),
        (Method::POST, format!("{base}/42/trigger")),
        (Method::GET, format!("{base}/42/executions")),
        (
            Method::GET,
            format!("/api/v1/orgs/{}/executions/xyz", org.slug),
        ),
        (Method::GET, format!("{base}/{}", uuid::Uuid::now_v7())),
        (
            Method::GET,
            format!(
                "/api/v1/orgs/{}/executions/{}",
                org.slug,
                uuid::Uuid::now_v7()
            ),
        ),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"name": "x"}));
        let response = call(&app, method.clone(), &path, token, body.as_ref()).await;
        problem(response, 404).await;
    }
}

#[tokio::test]
async fn malformed_bodies_are_problems() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let response = app
        .authed(Method::POST, &jobs_path(&org), token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    problem(response, 400).await;
    let response = app
        .authed(Method::POST, &jobs_path(&org), token)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    problem(response, 415).await;
    problem(
        app.request(Method::POST, &jobs_path(&org))
            .json(&job("x"))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
}

/// No stored text may hold a NUL character (PostgreSQL refuses one, which used
/// to surface as a 500): in a JSON body it is a 422 naming the field, in a URL a
/// 400, on either database.
#[tokio::test]
async fn nul_characters_are_refused_wherever_they_arrive() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let token = &owner.access_token;
    let mut named = job("x");
    named["name"] = json!("a\u{0}b");
    let mut with_body = job("x");
    with_body["request"]["body"] = json!("{\"a\": \"\u{0}\"}");
    for (body, field) in [(named, "name"), (with_body, "request.body")] {
        let response = call(&app, Method::POST, &jobs_path(&org), token, Some(&body)).await;
        assert_eq!(invalid_fields(response).await, [field]);
    }
    let login = app
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({"email": "a\u{0}@example.com", "password": "long enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_fields(login).await, ["email"]);
    for path in [
        format!("{}?key=%00", jobs_path(&org)),
        format!("/api/v1/orgs/{}/audit-log?action=%00", org.slug),
        format!("/api/v1/orgs/{}/audit-log?actor=a%00b", org.slug),
        "/api/v1/orgs/%00/jobs".to_owned(),
    ] {
        let response = call(&app, Method::GET, &path, token, None).await;
        let body = problem(response, 400).await;
        assert!(body["detail"].as_str().unwrap().contains("NUL"), "{path}");
    }
    // Nothing was stored on the way.
    let listed = call_ok(&app, Method::GET, &jobs_path(&org), token, None, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn the_openapi_document_describes_the_job_routes() {
    let app = spawn_app().await;
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/orgs/{org}/jobs", &["get", "post"][..]),
        ("/api/v1/orgs/{org}/jobs/by-key/{key}", &["put"][..]),
        (
            "/api/v1/orgs/{org}/jobs/{id}",
            &["get", "patch", "delete"][..],
        ),
        ("/api/v1/orgs/{org}/jobs/{id}/pause", &["post"][..]),
        ("/api/v1/orgs/{org}/jobs/{id}/resume", &["post"][..]),
        ("/api/v1/orgs/{org}/jobs/{id}/trigger", &["post"][..]),
        ("/api/v1/orgs/{org}/jobs/{id}/executions", &["get"][..]),
        ("/api/v1/orgs/{org}/executions/{id}", &["get"][..]),
        ("/api/v1/schedules/preview", &["post"][..]),
    ] {
        for method in methods {
            let operation = &paths[path][method];
            assert!(operation.is_object(), "{method} {path} is not documented");
            assert_eq!(operation["tags"][0], "jobs", "{method} {path}");
            assert!(
                operation["responses"].as_object().unwrap().len() >= 2,
                "{method} {path}"
            );
        }
    }
    // A PATCH that takes another job's key is the same 409 as a POST.
    for (path, method) in [
        ("/api/v1/orgs/{org}/jobs", "post"),
        ("/api/v1/orgs/{org}/jobs/{id}", "patch"),
    ] {
        assert!(
            paths[path][method]["responses"]["409"].is_object(),
            "{method} {path} does not document its 409"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "JobInput",
        "RequestInput",
        "ScheduleInput",
        "RetryInput",
        "JobView",
        "ExecutionSummary",
        "ExecutionView",
        "PreviewInput",
        "Preview",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    for name in [
        "JobInput",
        "JobView",
        "PreviewInput",
        "Preview",
        "ExecutionSummary",
    ] {
        assert!(
            !schemas[name]["example"].is_null(),
            "schema {name} has no example"
        );
    }
    let create = &paths["/api/v1/orgs/{org}/jobs"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/JobInput"
    );
    assert!(create["responses"]["201"].is_object());
    assert!(create["responses"]["422"].is_object());
}

/// The key index holds keyed jobs only (migration 8): keyless jobs, most of them,
/// add no entry on creation or on the engine's updates. (That a key stays unique
/// in its organization: `concurrent_upserts_of_one_key_make_one_job`.)
#[tokio::test]
async fn only_keyed_jobs_enter_the_key_index() {
    use punctual_persistence::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

    let app = spawn_app().await;
    let db = app.database.conn();
    let backend = db.get_database_backend();
    let (sql, predicate) = match backend {
        DatabaseBackend::Postgres => (
            "SELECT pg_get_indexdef(pg_index.indexrelid) AS definition FROM pg_index \
             JOIN pg_class ON pg_class.oid = pg_index.indrelid \
             WHERE pg_class.relname = 'jobs' AND pg_index.indisunique \
             AND pg_get_indexdef(pg_index.indexrelid) LIKE '%(organization_id, key)%'",
            "WHERE (key IS NOT NULL)",
        ),
        _ => (
            "SELECT sql AS definition FROM sqlite_master WHERE type = 'index' \
             AND tbl_name = 'jobs' AND sql LIKE '%UNIQUE%(\"organization_id\", \"key\")%'",
            "WHERE \"key\" IS NOT NULL",
        ),
    };
    let definitions: Vec<String> = db
        .query_all(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get("", "definition").unwrap())
        .collect();
    assert_eq!(
        definitions.len(),
        1,
        "one unique index on the key: {definitions:?}"
    );
    assert!(definitions[0].contains(predicate), "{}", definitions[0]);

    // Keyed and keyless jobs side by side, the same key in two organizations.
    let (owner, org) = owner_with_org(&app).await;
    let mut keyed = job("keyed");
    keyed["key"] = json!("the-key");
    create_job(&app, &owner.access_token, &org, &keyed).await;
    create_job(&app, &owner.access_token, &org, &job("plain one")).await;
    create_job(&app, &owner.access_token, &org, &job("plain two")).await;
    let (other_owner, other_org) = owner_with_org(&app).await;
    create_job(&app, &other_owner.access_token, &other_org, &keyed).await;
}
