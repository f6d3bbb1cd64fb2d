//! The foundation's contract: operational endpoints, problem+json for every
//! error, request ids, metrics and the OpenAPI document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jobs_support;

use punctual_tests::{problem, spawn_app};
use reqwest::Method;

#[tokio::test]
async fn health_answers_ok() {
    let app = spawn_app().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn ready_turns_503_when_the_database_goes_away() {
    let app = spawn_app().await;
    assert_eq!(app.get("/ready").await.status(), 200);
    app.database.close().await;
    let body = problem(app.get("/ready").await, 503).await;
    assert!(body["detail"].as_str().unwrap().contains("database"));
    // Liveness is about the process, not its dependencies.
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    let body = problem(app.get("/no/such/route").await, 404).await;
    assert!(body["detail"].as_str().unwrap().contains("/no/such/route"));
}

#[tokio::test]
async fn wrong_method_is_a_405_problem_with_allow() {
    let app = spawn_app().await;
    let response = app.request(Method::DELETE, "/health").send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET");
    problem(response, 405).await;
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = spawn_app().await;
    let response = app
        .request(Method::GET, "/health")
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let generated = app.get("/health").await;
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a uuid is generated: {id}");
    // A hostile id is replaced, not echoed.
    let hostile = app
        .request(Method::GET, "/health")
        .header("x-request-id", "<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(hostile.headers()["x-request-id"], "<script>");
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_with_request_counts_and_latency() {
    let app = spawn_app().await;
    app.get("/health").await;
    app.get("/does-not-exist").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let samples = parse_prometheus(&text);
    let health_count = samples
        .iter()
        .find(|s| {
            s.name == "http_requests_total"
                && s.labels.contains("route=\"/health\"")
                && s.labels.contains("status=\"200\"")
        })
        .expect("a request counter for /health");
    assert!(health_count.value >= 1.0);
    assert!(samples
        .iter()
        .any(|s| s.name == "http_requests_total" && s.labels.contains("status=\"404\"")));
    assert!(samples
        .iter()
        .any(|s| s.name == "http_request_duration_seconds_bucket"
            && s.labels.contains("route=\"/health\"")
            && s.labels.contains("le=\"+Inf\"")));
    assert!(text.contains("# TYPE http_request_duration_seconds histogram"));
}

struct Sample {
    name: String,
    labels: String,
    value: f64,
}

/// A strict reader of the text exposition format: every non-comment line must be
/// `name{labels} value`, or the test fails.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start();
            assert!(
                comment.starts_with("TYPE ") || comment.starts_with("HELP "),
                "unexpected comment line {line:?}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                assert!(rest.ends_with('}'), "unterminated labels in {line:?}");
                (name, rest.trim_end_matches('}'))
            }
            None => (series, ""),
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels: labels.to_owned(),
            value,
        });
    }
    assert!(!samples.is_empty());
    samples
}

/// A client generated from the document must know every status it can get: each
/// operation lists, as problem+json, the errors its shape allows (credentials,
/// a path naming something, a body, query parameters, the rate limit).
#[tokio::test]
async fn every_operation_documents_the_problems_it_can_answer() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let has = |key: &str| operation.get(key).is_some_and(|v| !v.is_null());
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            let has_query = operation["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
            let mut expected: Vec<&str> = Vec::new();
            if secured {
                expected.extend(["401", "403"]);
            }
            if path.contains('{') {
                expected.push("404");
            }
            if has("requestBody") {
                expected.extend(["400", "413", "415", "422"]);
            }
            if has_query {
                expected.extend(["400", "422"]);
            }
            if path.starts_with("/api/") && path != "/api/v1/openapi.json" {
                expected.push("429");
            }
            for status in expected {
                let response = &operation["responses"][status];
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} does not document its {status}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} operations");

    // Query parameters say what they accept.
    let parameter = |path: &str, name: &str| -> serde_json::Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no {name}"))["schema"]
            .clone()
    };
    let limit = parameter("/api/v1/orgs/{org}/jobs", "limit");
    assert_eq!(
        (limit["minimum"].as_u64(), limit["maximum"].as_u64()),
        (Some(1), Some(200))
    );
    let enabled = parameter("/api/v1/orgs/{org}/jobs", "enabled");
    assert!(enabled["type"].to_string().contains("boolean"), "{enabled}");
    let status = parameter("/api/v1/orgs/{org}/jobs/{id}/executions", "status");
    let statuses: Vec<&str> = status["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        statuses,
        ["pending", "running", "success", "failed", "timeout", "skipped", "canceled"]
    );

    // Bodies say what they accept, and a merge patch requires nothing.
    let schemas = &doc["components"]["schemas"];
    let enum_of = |schema: &serde_json::Value| -> Vec<String> {
        schema["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("no enum in {schema}"))
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        enum_of(&schemas["UpdateMember"]["properties"]["role"]),
        ["owner", "admin", "member"]
    );
    // Optional, so null (the default role) is accepted too.
    let api_key_role = &schemas["CreateApiKey"]["properties"]["role"];
    assert!(api_key_role["description"].is_string(), "{api_key_role}");
    assert_eq!(
        api_key_role["enum"],
        serde_json::json!(["admin", "member", null])
    );
    let password = &schemas["RegisterRequest"]["properties"]["password"];
    assert_eq!(
        (
            password["minLength"].as_u64(),
            password["maxLength"].as_u64()
        ),
        (Some(8), Some(128))
    );
    let schedule = &schemas["ScheduleInput"];
    assert_eq!(
        schedule["properties"]["type"]["enum"],
        serde_json::json!(["cron", "once"])
    );
    assert_eq!(
        schedule["required"],
        serde_json::json!(["type"]),
        "{schedule}"
    );

    // The job's enums are the domain's, and null (the default) is allowed.
    for (schema, field, values) in [
        (
            "JobInput",
            "concurrency",
            serde_json::json!(["allow", "forbid", "replace", null]),
        ),
        (
            "JobInput",
            "missed_runs",
            serde_json::json!(["skip", "run_once", null]),
        ),
        (
            "RequestInput",
            "method",
            serde_json::json!(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", null]),
        ),
    ] {
        let field_schema = &schemas[schema]["properties"][field];
        assert_eq!(field_schema["enum"], values, "{schema}.{field}");
        assert!(field_schema["description"].is_string(), "{schema}.{field}");
    }

    // Numeric ranges are the domain's.
    let range = |schema: &str, field: &str| {
        let field_schema = &schemas[schema]["properties"][field];
        (
            field_schema["minimum"].as_u64(),
            field_schema["maximum"].as_u64(),
        )
    };
    use punctual_domain::{CatchUpGrace, RetryPolicy, MAX_TIMEOUT_MS};
    assert_eq!(
        range("RequestInput", "timeout_ms"),
        (Some(1), Some(MAX_TIMEOUT_MS))
    );
    assert_eq!(
        range("RetryInput", "max_attempts"),
        (Some(1), Some(u64::from(RetryPolicy::MAX_ATTEMPTS)))
    );
    for field in ["min_backoff_ms", "max_backoff_ms"] {
        assert_eq!(
            range("RetryInput", field),
            (
                Some(RetryPolicy::MIN_BACKOFF_FLOOR_MS),
                Some(RetryPolicy::MAX_BACKOFF_CEILING_MS)
            ),
            "{field}"
        );
    }
    assert_eq!(
        range("JobInput", "catch_up_grace_seconds"),
        (Some(1), Some(CatchUpGrace::MAX_SECONDS))
    );

    // The patterns accept exactly what the domain's parsers accept.
    let long = |n: usize| "a".repeat(n);
    let samples = [
        "acme",
        "acme-eu-2",
        "ab",
        "abc",
        "-abc",
        "abc-",
        "a--b",
        "Acme",
        "a_b",
        "a.b",
        "x",
        "",
        "é",
        "a b",
        "report-nightly",
        "Report.Nightly_2",
    ]
    .map(str::to_owned)
    .into_iter()
    .chain([long(48), long(49), long(128), long(129)]);
    let pattern = |schema: &str, field: &str| {
        let source = schemas[schema]["properties"][field]["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{schema}.{field} has no pattern"));
        regex::Regex::new(source).unwrap()
    };
    let slugs = [
        pattern("NewOrganization", "slug"),
        pattern("CreateOrganization", "slug"),
    ];
    let key = pattern("JobInput", "key");
    for sample in samples {
        for slug in &slugs {
            assert_eq!(
                slug.is_match(&sample),
                punctual_domain::Slug::parse(&sample).is_ok(),
                "slug {sample:?}"
            );
        }
        assert_eq!(
            key.is_match(&sample),
            punctual_domain::JobKey::parse(&sample).is_ok(),
            "key {sample:?}"
        );
    }
    let patch = &doc["paths"]["/api/v1/orgs/{org}/jobs/{id}"]["patch"]["requestBody"]["content"]
        ["application/json"]["schema"];
    assert_eq!(patch["type"], "object", "{patch}");
    assert!(
        patch.get("required").is_none() && patch.get("$ref").is_none(),
        "{patch}"
    );
}

#[tokio::test]
async fn openapi_document_is_3_1_and_lists_every_route() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/health",
        "/ready",
        "/metrics",
        "/api/v1/openapi.json",
        "/docs",
    ] {
        assert!(
            paths.contains_key(expected),
            "{expected} missing from the document"
        );
    }
    // Every documented operation exists on the server: calling it never answers
    // the router's "no such route" 404 or a 405.
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = concrete_path(path);
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let response = app.request(method.clone(), &concrete).send().await.unwrap();
            let status = response.status().as_u16();
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            if status == 404 {
                let body: serde_json::Value = response.json().await.unwrap();
                assert!(
                    !body["detail"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with("no route matches"),
                    "{method} {path} is documented but not routed"
                );
            }
        }
    }
}

fn concrete_path(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "00000000-0000-0000-0000-000000000000"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn docs_page_is_html() {
    let app = spawn_app().await;
    let response = app.get("/docs").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("<html") || html.contains("<!doctype") || html.contains("<!DOCTYPE"));
}

#[tokio::test]
async fn graceful_stop_finishes_and_returns_ok() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health").await.status(), 200);
    let socket = app.socket;
    app.stop().await.expect("server stops cleanly");
    assert!(
        std::net::TcpStream::connect(socket).is_err(),
        "no longer accepting"
    );
}

/// Reads of a job through the API report how many reads each statement answered.
#[tokio::test]
async fn job_read_batch_sizes_are_exported() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let job = jobs_support::create_job(
        &app,
        &owner.access_token,
        &org,
        &jobs_support::job("read me"),
    )
    .await;
    let id = job["id"].as_str().expect("the job's id");
    let read = jobs_support::job_path(&org, id);
    assert_eq!(app.get_json(&read, &owner.access_token).await["id"], id);
    let text = app.get("/metrics").await.text().await.unwrap();
    let count = text
        .lines()
        .find(|line| line.starts_with("punctual_job_reads_batch_size_count"))
        .unwrap_or_else(|| panic!("no batch size among the metrics:\n{text}"));
    let count: f64 = count.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0, "{count}");
}

#[tokio::test]
async fn engine_metrics_are_exported() {
    let app = punctual_tests::spawn_app_with(|s| s.engine.rescue_interval_seconds = 1).await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let target = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&target)
        .await;
    let spec = punctual_tests::engine::JobSpec::once(chrono::Utc::now(), &target.uri());
    punctual_tests::engine::insert_job_row(&app.database, org.id.parse().unwrap(), spec).await;
    app.engine_wakeup.notify_one();
    let exported =
        punctual_tests::engine::eventually(std::time::Duration::from_secs(15), || async {
            let text = app.get("/metrics").await.text().await.unwrap();
            [
                "punctual_executions_total{status=\"success\"}",
                "punctual_execution_lag_seconds_bucket",
                "punctual_executions_in_flight",
                "punctual_dispatch_batch_size",
                "punctual_queue_depth",
            ]
            .iter()
            .all(|name| text.contains(name))
        })
        .await;
    if !exported {
        let text = app.get("/metrics").await.text().await.unwrap();
        let executions = <punctual_persistence::entities::execution::Entity as punctual_persistence::sea_orm::EntityTrait>::find()
            .all(app.database.conn())
            .await
            .unwrap();
        panic!("engine metrics missing from /metrics:\n{text}\nexecutions: {executions:?}");
    }
    parse_prometheus(&app.get("/metrics").await.text().await.unwrap());
}

/// A pool over a scratch PostgreSQL database with one connection, and that
/// connection's backend killed from outside (as a database restart would):
/// `None` on SQLite, which has no server to restart.
async fn pool_with_a_killed_connection(
    check_idle_after: std::time::Duration,
) -> Option<(punctual_tests::TestDatabase, punctual_persistence::Database)> {
    use punctual_persistence::sea_orm::ConnectionTrait;
    use sqlx::{Connection, Executor};
    if punctual_tests::TestDatabase::backend() != punctual_persistence::Backend::Postgres {
        return None;
    }
    let scratch = punctual_tests::TestDatabase::create().await;
    let mut options = punctual_persistence::DatabaseOptions::new(scratch.url.clone());
    options.max_connections = 1;
    options.check_idle_after = check_idle_after;
    let database = punctual_persistence::Database::connect(&options)
        .await
        .unwrap();
    let row = database
        .conn()
        .query_one(punctual_persistence::sea_orm::Statement::from_string(
            database.conn().get_database_backend(),
            "SELECT pg_backend_pid() AS pid",
        ))
        .await
        .unwrap()
        .unwrap();
    let pid: i32 = row.try_get("", "pid").unwrap();
    let mut outside = sqlx::PgConnection::connect(&scratch.url).await.unwrap();
    outside
        .execute(format!("SELECT pg_terminate_backend({pid})").as_str())
        .await
        .unwrap();
    outside.close().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    Some((scratch, database))
}

#[tokio::test]
async fn a_pooled_connection_idle_past_the_check_is_replaced_when_dead() {
    use punctual_persistence::sea_orm::ConnectionTrait;
    let Some((_scratch, database)) =
        pool_with_a_killed_connection(std::time::Duration::from_millis(100)).await
    else {
        return;
    };
    database
        .conn()
        .execute_unprepared("SELECT 1")
        .await
        .expect("the dead connection was found by the ping and replaced");
    database.close().await;
}

#[tokio::test]
async fn a_recently_used_connection_is_handed_out_without_a_ping() {
    use punctual_persistence::sea_orm::ConnectionTrait;
    let Some((_scratch, database)) =
        pool_with_a_killed_connection(std::time::Duration::from_secs(3600)).await
    else {
        return;
    };
    // No round trip before the query: the query itself meets the dead socket.
    assert!(database
        .conn()
        .execute_unprepared("SELECT 1")
        .await
        .is_err());
    database.close().await;
}

/// Bodies over 1 MiB are refused with 413 by the app as served: on a JSON route
/// (problem+json) and on a console form alike; a body of exactly 1 MiB is read.
#[tokio::test]
async fn bodies_over_one_mib_are_413_on_api_and_console_routes() {
    const MIB: usize = 1024 * 1024;
    let app = spawn_app().await;
    let login_of_size = |size: usize| {
        let (head, tail) = (r#"{"email":""#, r#"@example.com","password":"password1"}"#);
        format!("{head}{}{tail}", "a".repeat(size - head.len() - tail.len()))
    };
    let login = |body: String| {
        app.request(Method::POST, "/api/v1/auth/login")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    problem(login(login_of_size(MIB + 1)).await.unwrap(), 413).await;
    let read = login(login_of_size(MIB)).await.unwrap();
    assert_eq!(read.status(), 401, "read, and an unknown email");

    let form = app
        .request(Method::POST, "/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("password=x&email={}", "a".repeat(MIB)))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 413);
}
