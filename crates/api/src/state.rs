//! What every handler and service function can reach.

use std::sync::Arc;

use chrono::Duration;
use metrics_exporter_prometheus::PrometheusHandle;
use punctual_auth::{JwtKeys, PasswordHasher};
use punctual_persistence::job_reads::JobReads;
use punctual_persistence::Database;
use tokio::sync::Notify;

/// Shared application state, cloned into each worker.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub database: Database,
    /// Renders `/metrics`.
    pub prometheus: PrometheusHandle,
    /// Credentials and their limits.
    pub identity: Arc<IdentityConfig>,
    /// Wakes the email sender after something was queued.
    pub mail_wakeup: Arc<Notify>,
    /// Wakes this node's dispatcher after a job was created or changed.
    pub engine_wakeup: Arc<Notify>,
    /// Whether jobs may target loopback and private networks.
    pub allow_private_networks: bool,
    /// Base URL for links in emails.
    pub public_url: String,
    /// The configured plans, by name.
    pub plans: Arc<std::collections::BTreeMap<String, punctual_domain::PlanLimits>>,
    /// This node's API rate-limit buckets.
    pub rate_limits: Arc<crate::rate_limit::RateLimits>,
    /// API keys authenticated recently on this node.
    pub api_keys: Arc<crate::auth_cache::ApiKeyCache>,
    /// Reads of one job, batched with the reads that arrive meanwhile.
    /// [`crate::app`] gives each worker its own, on the worker's thread.
    pub job_reads: JobReads,
}

/// Keys, hashing parameters and brute-force limits.
pub struct IdentityConfig {
    /// Signs and verifies access tokens.
    pub jwt: JwtKeys,
    /// argon2id with the configured parameters.
    pub hasher: PasswordHasher,
    /// Lifetime of a session (refresh token family).
    pub refresh_ttl: Duration,
    /// The admin service token, if configured.
    pub service_token: Option<String>,
    /// Failed logins per email within `failure_window` before 429.
    pub max_failed_logins_per_email: u64,
    /// Failed logins per IP within `failure_window` before 429.
    pub max_failed_logins_per_ip: u64,
    /// Window for failed logins and email requests.
    pub failure_window: Duration,
    /// Reset / magic-link requests per email within the window.
    pub max_email_requests_per_email: u64,
}
