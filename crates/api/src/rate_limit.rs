//! API rate limiting: GCRA buckets (the `governor` crate) per API key, per user and
//! per client address, held in this node's memory.
//!
//! Every request under `/api/` (except the OpenAPI document) is charged to exactly
//! one bucket:
//! - an API key whose secret matches: the key's bucket, at its organization's plan
//!   `api_requests_per_second`;
//! - a user access token that verifies: the user's bucket, at
//!   `[rate_limit] user_requests_per_second`;
//! - anything else (no credential, an unknown or revoked key, a bad token, the admin
//!   service token): the client address's bucket, at `ip_requests_per_second`.
//!
//! Authenticated callers are not also charged to their address: a large plan's keys
//! behind one NAT would otherwise be capped at the address rate.
//!
//! The limiter only identifies the caller; authentication stays in the
//! [`Caller`](crate::caller::Caller) extractor. It never fails a request: when it
//! cannot tell who is calling (a database error included) it falls back to the
//! address's bucket.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, ResponseError};
use chrono::Utc;
use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use punctual_auth::{looks_like_api_key, parse_api_key, TokenHash};
use punctual_domain::PlanLimits;
use punctual_persistence::{organizations, PersistenceError};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// `RateLimit-Limit`: the bucket's burst, equal to its requests per second.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests that may follow at once without waiting.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the bucket is full again (after a 429: until
/// the next request can pass).
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// How long an API key's organization plan (or the key's absence) is remembered:
/// a plan change or a revocation reaches the limiter within this time (the
/// extractor refuses a revoked key at once regardless).
const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
/// Entries in the key cache before it is pruned; bounds memory against callers
/// sending made-up key ids.
const KEY_CACHE_CAPACITY: usize = 65_536;
/// How often idle buckets and stale cache entries are dropped.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

type Limiter<K> = DefaultKeyedRateLimiter<K, StateInformationMiddleware>;

/// `[rate_limit]` as configured.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    /// Whether requests under `/api/` are limited at all.
    pub enabled: bool,
    /// Requests per second (and burst) per signed-in user.
    pub user_requests_per_second: NonZeroU32,
    /// Requests per second (and burst) per client address, for requests without
    /// a recognized API key or user token.
    pub ip_requests_per_second: NonZeroU32,
}

/// This node's rate-limiting state: the buckets and the API key cache.
pub struct RateLimits {
    config: RateLimitConfig,
    /// Each plan's rate; a plan that is not configured gets the free plan's, as
    /// everywhere else.
    plan_rates: BTreeMap<String, NonZeroU32>,
    /// One keyed limiter per distinct plan rate (governor's keyed limiters share
    /// one quota), keyed by API key id.
    keys: BTreeMap<NonZeroU32, Limiter<Uuid>>,
    users: Limiter<Uuid>,
    addresses: Limiter<IpAddr>,
    key_cache: Mutex<HashMap<String, CachedKey>>,
    last_purge: Mutex<Instant>,
}

/// What the key cache knows about a public key id.
#[derive(Clone)]
struct CachedKey {
    fetched: Instant,
    /// `None`: no live key has this id.
    key: Option<KnownKey>,
}

#[derive(Clone)]
struct KnownKey {
    id: Uuid,
    /// Checked before the key's bucket is charged, so that someone who only knows
    /// a key's public id cannot drain its owner's bucket.
    secret_hash: TokenHash,
    rate: NonZeroU32,
}

/// Which bucket a request is charged to.
#[derive(Debug, Clone, Copy)]
enum Bucket {
    ApiKey { id: Uuid, rate: NonZeroU32 },
    User(Uuid),
    Address(IpAddr),
}

impl Bucket {
    fn kind(&self) -> &'static str {
        match self {
            Self::ApiKey { .. } => "api_key",
            Self::User(_) => "user",
            Self::Address(_) => "ip",
        }
    }

    fn description(&self) -> &'static str {
        match self {
            Self::ApiKey { .. } => "this API key",
            Self::User(_) => "this user",
            Self::Address(_) => "this client address",
        }
    }
}

/// The outcome of charging a bucket.
#[derive(Debug, Clone, Copy)]
enum Verdict {
    Allowed {
        limit: u32,
        remaining: u32,
        /// Seconds until the bucket is full again.
        reset: u64,
    },
    Denied {
        limit: u32,
        /// Seconds until one request can pass, at least 1.
        retry_after: u64,
    },
}

impl RateLimits {
    /// Buckets for `config` and each plan of `plans` (a plan's
    /// `api_requests_per_second` of 0 counts as 1).
    pub fn new(config: RateLimitConfig, plans: &BTreeMap<String, PlanLimits>) -> Self {
        let plan_rates: BTreeMap<String, NonZeroU32> = plans
            .iter()
            .map(|(name, limits)| (name.clone(), at_least_one(limits.api_requests_per_second)))
            .collect();
        let keys = plan_rates
            .values()
            .map(|rate| (*rate, limiter(*rate)))
            .collect();
        Self {
            config,
            plan_rates,
            keys,
            users: limiter(config.user_requests_per_second),
            addresses: limiter(config.ip_requests_per_second),
            key_cache: Mutex::new(HashMap::new()),
            last_purge: Mutex::new(Instant::now()),
        }
    }

    /// Whether a request for `path` is limited: everything under `/api/` except
    /// the OpenAPI document, while limiting is enabled. Health, readiness, metrics
    /// and the docs live outside `/api/`.
    pub fn applies_to(&self, path: &str) -> bool {
        self.config.enabled && path.starts_with("/api/") && path != "/api/v1/openapi.json"
    }

    fn plan_rate(&self, plan: &str) -> Option<NonZeroU32> {
        self.plan_rates
            .get(plan)
            .or_else(|| self.plan_rates.get(punctual_domain::FALLBACK_PLAN))
            .copied()
    }

    fn charge(&self, bucket: Bucket) -> Verdict {
        match bucket {
            Bucket::ApiKey { id, rate } => match self.keys.get(&rate) {
                Some(limiter) => charge(limiter, &id),
                // Every plan rate got a limiter at start; this is unreachable, but
                // a missing one must not let the request through unlimited.
                None => charge(&self.users, &id),
            },
            Bucket::User(id) => charge(&self.users, &id),
            Bucket::Address(ip) => charge(&self.addresses, &ip),
        }
    }

    /// A fresh cache entry for `public_id`: `Some(None)` when it is known not to
    /// exist, `None` when it must be looked up.
    fn cached_key(&self, public_id: &str) -> Option<Option<KnownKey>> {
        let cache = lock(&self.key_cache);
        cache
            .get(public_id)
            .filter(|entry| entry.fetched.elapsed() < KEY_CACHE_TTL)
            .map(|entry| entry.key.clone())
    }

    fn remember_key(&self, public_id: &str, key: Option<KnownKey>) {
        let mut cache = lock(&self.key_cache);
        if cache.len() >= KEY_CACHE_CAPACITY {
            cache.retain(|_, entry| entry.fetched.elapsed() < KEY_CACHE_TTL);
            if cache.len() >= KEY_CACHE_CAPACITY {
                // Everything is fresh: someone is sending many made-up ids. Starting
                // over costs only lookups.
                cache.clear();
            }
        }
        cache.insert(
            public_id.to_owned(),
            CachedKey {
                fetched: Instant::now(),
                key,
            },
        );
    }

    /// Drops idle buckets and stale cache entries, at most once per
    /// [`PURGE_INTERVAL`]; done inline by whichever request notices, so there is
    /// no background task to own.
    fn purge_if_due(&self) {
        {
            let mut last = lock(&self.last_purge);
            if last.elapsed() < PURGE_INTERVAL {
                return;
            }
            *last = Instant::now();
        }
        for limiter in self.keys.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.users.retain_recent();
        self.users.shrink_to_fit();
        self.addresses.retain_recent();
        self.addresses.shrink_to_fit();
        lock(&self.key_cache).retain(|_, entry| entry.fetched.elapsed() < KEY_CACHE_TTL);
    }
}

fn at_least_one(rate: u32) -> NonZeroU32 {
    NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN)
}

/// `rate` requests per second with a burst of the same size.
fn limiter<K: Hash + Eq + Clone>(rate: NonZeroU32) -> Limiter<K> {
    RateLimiter::dashmap(Quota::per_second(rate)).with_middleware::<StateInformationMiddleware>()
}

/// A poisoned lock only means another request panicked mid-update of a cache;
/// the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn charge<K: Hash + Eq + Clone>(limiter: &Limiter<K>, key: &K) -> Verdict {
    match limiter.check_key(key) {
        Ok(snapshot) => {
            let quota = snapshot.quota();
            let limit = quota.burst_size().get();
            let remaining = snapshot.remaining_burst_capacity().min(limit);
            let refill = quota
                .replenish_interval()
                .checked_mul(limit - remaining)
                .unwrap_or(Duration::MAX);
            Verdict::Allowed {
                limit,
                remaining,
                reset: ceil_seconds(refill),
            }
        }
        Err(not_until) => Verdict::Denied {
            limit: not_until.quota().burst_size().get(),
            retry_after: ceil_seconds(not_until.wait_time_from(limiter.clock().now())).max(1),
        },
    }
}

fn ceil_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// The address a bucket is kept for: IPv4 as is (IPv4-mapped IPv6 included), IPv6
/// by its /64, since one client usually holds a whole /64 and could otherwise
/// rotate through it.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The bearer token, if the request carries one.
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// The live key with `public_id` and its organization's plan rate.
async fn look_up_key(
    state: &AppState,
    public_id: &str,
) -> Result<Option<KnownKey>, PersistenceError> {
    let conn = state.database.conn();
    let Some(key) = organizations::find_api_key_by_public_id(conn, public_id)
        .await?
        .filter(|key| key.revoked_at.is_none())
    else {
        return Ok(None);
    };
    let Ok(secret_hash) = TokenHash::from_hex(&key.secret_hash) else {
        return Ok(None);
    };
    let Some(organization) = organizations::find_organization(conn, key.organization_id).await?
    else {
        return Ok(None);
    };
    Ok(state
        .rate_limits
        .plan_rate(&organization.plan)
        .map(|rate| KnownKey {
            id: key.id,
            secret_hash,
            rate,
        }))
}

/// Picks the bucket for a request and charges it.
async fn decide(state: &AppState, token: Option<String>, peer: IpAddr) -> (Bucket, Verdict) {
    let limits = &state.rate_limits;
    limits.purge_if_due();
    let by_address = Bucket::Address(address_key(peer));
    let Some(token) = token else {
        return (by_address, limits.charge(by_address));
    };
    if looks_like_api_key(&token) {
        let Ok(parsed) = parse_api_key(&token) else {
            return (by_address, limits.charge(by_address));
        };
        let (known, charged_address) = match limits.cached_key(&parsed.public_id) {
            Some(known) => (known, None),
            None => {
                // A lookup is paid for by the address's bucket first, so made-up
                // key ids cannot drive database queries past the address's limit.
                let verdict = limits.charge(by_address);
                if matches!(verdict, Verdict::Denied { .. }) {
                    return (by_address, verdict);
                }
                match look_up_key(state, &parsed.public_id).await {
                    Ok(known) => {
                        limits.remember_key(&parsed.public_id, known.clone());
                        (known, Some(verdict))
                    }
                    Err(error) => {
                        tracing::warn!(%error, "rate limit: API key lookup failed; limiting by address");
                        return (by_address, verdict);
                    }
                }
            }
        };
        return match known {
            Some(key) if key.secret_hash.matches(&parsed.secret) => {
                let bucket = Bucket::ApiKey {
                    id: key.id,
                    rate: key.rate,
                };
                (bucket, limits.charge(bucket))
            }
            _ => (
                by_address,
                charged_address.unwrap_or_else(|| limits.charge(by_address)),
            ),
        };
    }
    // Verifying the signature is a cheap HMAC; an unverified `sub` would let anyone
    // drain another user's bucket.
    match state.identity.jwt.verify(&token, Utc::now()) {
        Ok(claims) => {
            let bucket = Bucket::User(claims.sub);
            (bucket, limits.charge(bucket))
        }
        Err(_) => (by_address, limits.charge(by_address)),
    }
}

fn insert_number(headers: &mut HeaderMap, name: HeaderName, value: u64) {
    headers.insert(name, HeaderValue::from(value));
}

/// The middleware: charges the caller's bucket, answers 429 problem+json with
/// `Retry-After` when it is empty, and adds the `RateLimit-*` headers otherwise.
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .filter(|state| state.rate_limits.applies_to(req.path()))
        .cloned();
    let Some(state) = state else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let token = bearer_token(req.headers());
    let peer = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| addr.ip());
    let (bucket, verdict) = decide(&state, token, peer).await;
    match verdict {
        Verdict::Allowed {
            limit,
            remaining,
            reset,
        } => {
            let mut response = next.call(req).await?.map_into_boxed_body();
            let headers = response.headers_mut();
            insert_number(headers, RATELIMIT_LIMIT, u64::from(limit));
            insert_number(headers, RATELIMIT_REMAINING, u64::from(remaining));
            insert_number(headers, RATELIMIT_RESET, reset);
            Ok(response)
        }
        Verdict::Denied { limit, retry_after } => {
            metrics::counter!("http_rate_limited_total", "bucket" => bucket.kind()).increment(1);
            let mut response = ApiError::TooManyRequests {
                detail: format!(
                    "rate limit exceeded: {limit} requests per second for {}; retry in {retry_after} s",
                    bucket.description()
                ),
                limit: None,
                current: None,
                retry_after: Some(retry_after),
            }
            .error_response();
            let headers = response.headers_mut();
            insert_number(headers, RATELIMIT_LIMIT, u64::from(limit));
            insert_number(headers, RATELIMIT_REMAINING, 0);
            insert_number(headers, RATELIMIT_RESET, retry_after);
            Ok(req.into_response(response))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(user: u32, ip: u32) -> RateLimitConfig {
        RateLimitConfig {
            enabled: true,
            user_requests_per_second: NonZeroU32::new(user).unwrap(),
            ip_requests_per_second: NonZeroU32::new(ip).unwrap(),
        }
    }

    #[test]
    fn only_api_paths_but_the_document_are_limited() {
        let limits = RateLimits::new(config(1, 1), &BTreeMap::new());
        assert!(limits.applies_to("/api/v1/me"));
        assert!(limits.applies_to("/api/v1/auth/login"));
        for exempt in [
            "/health",
            "/ready",
            "/metrics",
            "/docs",
            "/api/v1/openapi.json",
        ] {
            assert!(!limits.applies_to(exempt), "{exempt}");
        }
        let disabled = RateLimits::new(
            RateLimitConfig {
                enabled: false,
                ..config(1, 1)
            },
            &BTreeMap::new(),
        );
        assert!(!disabled.applies_to("/api/v1/me"));
    }

    #[test]
    fn a_bucket_counts_down_then_refuses_with_a_retry_time() {
        let limits = RateLimits::new(config(2, 1), &BTreeMap::new());
        let user = Bucket::User(Uuid::new_v4());
        assert!(matches!(
            limits.charge(user),
            Verdict::Allowed {
                limit: 2,
                remaining: 1,
                reset: 1
            }
        ));
        assert!(matches!(
            limits.charge(user),
            Verdict::Allowed {
                limit: 2,
                remaining: 0,
                reset: 1
            }
        ));
        assert!(matches!(
            limits.charge(user),
            Verdict::Denied {
                limit: 2,
                retry_after: 1
            }
        ));
        // Another user has a bucket of its own.
        assert!(matches!(
            limits.charge(Bucket::User(Uuid::new_v4())),
            Verdict::Allowed { remaining: 1, .. }
        ));
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_plan_rate_of_zero_counts_as_one_and_unknown_plans_get_free() {
        let plan = |rate| PlanLimits {
            max_jobs: 1,
            min_interval_seconds: 60,
            max_timeout_ms: 1000,
            max_retry_attempts: 1,
            executions_per_month: 1,
            retention_days: 1,
            api_requests_per_second: rate,
            max_request_body_bytes: 1_024,
        };
        let plans = BTreeMap::from([("free".to_owned(), plan(0)), ("pro".to_owned(), plan(7))]);
        let limits = RateLimits::new(config(1, 1), &plans);
        assert_eq!(limits.plan_rate("free").unwrap().get(), 1);
        assert_eq!(limits.plan_rate("pro").unwrap().get(), 7);
        assert_eq!(limits.plan_rate("gone").unwrap().get(), 1);
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer_token(&headers).as_deref(), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
    }
}
