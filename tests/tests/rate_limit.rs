//! API rate limiting (issue 6): GCRA buckets per API key (the plan's rate), per
//! user and per client address; `RateLimit-*` headers on what passes, 429
//! problem+json with `Retry-After` on what does not; operational paths exempt.
//!
//! Each test starts its own server, so buckets start full. Bursts are sent one
//! request after another until the first 429: GCRA lets exactly the burst through
//! when the requests come faster than the rate, and the assertions only rely on
//! what holds however slowly they come (the first request sees a full bucket, the
//! last one let through before a 429 sees it empty).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use punctual_tests::{problem, spawn_app_with, TestApp};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::json;

/// Most requests sent while waiting for a 429; far more than any burst here.
const MAX_BURST: usize = 20;

fn service_token() -> String {
    "s".repeat(40)
}

fn header(response: &Response, name: &str) -> Option<u64> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

/// The `RateLimit-Limit` and `RateLimit-Remaining` of a response that passed.
fn passed(response: &Response) -> (u64, u64) {
    let limit = header(response, "ratelimit-limit").expect("RateLimit-Limit");
    let remaining = header(response, "ratelimit-remaining").expect("RateLimit-Remaining");
    assert!(
        header(response, "ratelimit-reset").is_some(),
        "RateLimit-Reset"
    );
    assert!(remaining < limit);
    (limit, remaining)
}

/// Sends `request()` until the first 429; returns the statuses and
/// `RateLimit-Remaining` of the requests let through, and the 429.
async fn burst_until_limited(request: impl Fn() -> RequestBuilder) -> (Vec<(u16, u64)>, Response) {
    let mut allowed = Vec::new();
    for _ in 0..MAX_BURST {
        let response = request().send().await.unwrap();
        if response.status() == 429 {
            return (allowed, response);
        }
        let (_, remaining) = passed(&response);
        allowed.push((response.status().as_u16(), remaining));
    }
    panic!("no 429 after {MAX_BURST} requests: {allowed:?}");
}

/// Checks a burst against a bucket of `limit`: the first request saw the bucket
/// full, the remaining count went down to 0, then a 429 problem with
/// `Retry-After` and the headers. Returns `Retry-After`.
async fn assert_limited(
    allowed: &[(u16, u64)],
    denied: Response,
    status: u16,
    limit: u64,
    who: &str,
) -> u64 {
    assert!(allowed.len() >= 2, "a burst of {limit} passes: {allowed:?}");
    assert!(allowed.iter().all(|(s, _)| *s == status), "{allowed:?}");
    assert_eq!(
        allowed[0].1,
        limit - 1,
        "the first request sees a full bucket"
    );
    assert_eq!(
        allowed.last().unwrap().1,
        0,
        "the last one let through empties it"
    );
    assert!(
        allowed.windows(2).all(|w| w[1].1 <= w[0].1),
        "RateLimit-Remaining goes down: {allowed:?}"
    );
    let retry_after = header(&denied, "retry-after").expect("Retry-After");
    assert!(retry_after >= 1);
    assert_eq!(header(&denied, "ratelimit-limit"), Some(limit));
    assert_eq!(header(&denied, "ratelimit-remaining"), Some(0));
    assert!(header(&denied, "ratelimit-reset").expect("RateLimit-Reset") >= 1);
    let body = problem(denied, 429).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(who), "{detail}");
    assert!(
        body.get("limit").is_none(),
        "limit/current are for plan quotas"
    );
    retry_after
}

async fn spawn(adjust: impl FnOnce(&mut punctual_server::Settings)) -> TestApp {
    spawn_app_with(|s| {
        s.admin.service_token = service_token();
        adjust(s);
    })
    .await
}

#[tokio::test]
async fn api_keys_are_limited_at_their_plans_rate_each_in_its_own_bucket() {
    let app = spawn(|s| {
        s.plans.get_mut("free").unwrap().api_requests_per_second = 2;
        s.plans.get_mut("pro").unwrap().api_requests_per_second = 5;
    })
    .await;
    let owner_a = app.register_user().await;
    let org_a = app.create_org(&owner_a).await;
    let key_a = app.create_api_key(&owner_a, &org_a, "member").await;
    let owner_b = app.register_user().await;
    let org_b = app.create_org(&owner_b).await;
    let key_b = app.create_api_key(&owner_b, &org_b, "member").await;
    let upgraded = app
        .call(
            Method::PATCH,
            &format!("/api/v1/admin/orgs/{}", org_b.slug),
            Some(&service_token()),
            Some(&json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(upgraded.status(), 200);
    let jobs_a = format!("/api/v1/orgs/{}/jobs", org_a.slug);
    let jobs_b = format!("/api/v1/orgs/{}/jobs", org_b.slug);

    // Knowing a key's public id is not enough to drain its bucket: a wrong secret
    // is charged to the address (and refused by authentication).
    let public_half = key_a.split_once(".sk_live_").unwrap().0;
    let other_secret = punctual_auth::ApiKeyMaterial::generate().full_key;
    let forged = format!(
        "{public_half}.sk_live_{}",
        other_secret.split_once(".sk_live_").unwrap().1
    );
    for _ in 0..5 {
        let response = app
            .authed(Method::GET, &jobs_a, &forged)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(header(&response, "ratelimit-limit"), Some(100_000));
    }

    let (allowed, denied) = burst_until_limited(|| app.authed(Method::GET, &jobs_a, &key_a)).await;
    let retry_after = assert_limited(&allowed, denied, 200, 2, "API key").await;

    // Another organization's key has its own bucket, at its own plan's rate.
    let other = app
        .authed(Method::GET, &jobs_b, &key_b)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(passed(&other), (5, 4));
    // So does the user who owns the limited key's organization.
    let owner = app
        .authed(Method::GET, &jobs_a, &owner_a.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(owner.status(), 200);

    // After Retry-After the key is let through again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app
            .authed(Method::GET, &jobs_a, &key_a)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            assert_eq!(passed(&response).0, 2);
            break;
        }
        assert_eq!(response.status(), 429);
        assert!(
            Instant::now() < deadline,
            "the key is still limited 10 s after Retry-After"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn users_are_limited_by_the_user_limit() {
    let app = spawn(|s| s.rate_limit.user_requests_per_second = 2).await;
    let first = app.register_user().await;
    let second = app.register_user().await;

    let (allowed, denied) =
        burst_until_limited(|| app.authed(Method::GET, "/api/v1/me", &first.access_token)).await;
    assert_limited(&allowed, denied, 200, 2, "user").await;

    let other = app.me(&second.access_token).await;
    assert_eq!(other.status(), 200);
    assert_eq!(passed(&other), (2, 1));
}

#[tokio::test]
async fn requests_without_a_recognized_credential_are_limited_per_address() {
    let app = spawn(|s| s.rate_limit.ip_requests_per_second = 2).await;

    let (allowed, denied) = burst_until_limited(|| app.request(Method::GET, "/api/v1/me")).await;
    assert_limited(&allowed, denied, 401, 2, "client address").await;

    // A made-up token or API key does not escape the address's bucket.
    let unknown_key = punctual_auth::ApiKeyMaterial::generate().full_key;
    for token in ["not-a-jwt", unknown_key.as_str()] {
        let response = app
            .authed(Method::GET, "/api/v1/me", token)
            .send()
            .await
            .unwrap();
        assert!(response.headers().contains_key("retry-after"));
        problem(response, 429).await;
    }
    let login = app.login("nobody@example.com", "whatever password").await;
    problem(login, 429).await;
}

#[tokio::test]
async fn operational_paths_are_never_limited() {
    let app = spawn(|s| {
        s.rate_limit.ip_requests_per_second = 1;
        s.rate_limit.user_requests_per_second = 1;
    })
    .await;
    for _ in 0..5 {
        for path in [
            "/health",
            "/ready",
            "/metrics",
            "/docs",
            "/api/v1/openapi.json",
        ] {
            let response = app.get(path).await;
            assert_eq!(response.status(), 200, "{path}");
            assert!(
                !response.headers().contains_key("ratelimit-limit"),
                "{path} is exempt"
            );
        }
    }
    // The limiter is on for the API itself.
    let api = app.get("/api/v1/me").await;
    assert_eq!(api.status(), 401);
    assert_eq!(passed(&api), (1, 0));
    problem(app.get("/api/v1/me").await, 429).await;
}

#[tokio::test]
async fn limiting_can_be_turned_off() {
    let app = spawn(|s| {
        s.rate_limit.enabled = false;
        s.rate_limit.ip_requests_per_second = 1;
    })
    .await;
    for _ in 0..5 {
        let response = app.get("/api/v1/me").await;
        assert_eq!(response.status(), 401);
        assert!(!response.headers().contains_key("ratelimit-limit"));
    }
}
