//! Typed configuration, layered: built-in defaults (`config/default.toml`, compiled
//! in) < `config/default.toml` on disk < `config/$PUNCTUAL_ENV.toml` < environment.

use std::collections::BTreeMap;
use std::path::PathBuf;

use punctual_domain::PlanLimits;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../../config/default.toml")),
    (
        "development",
        include_str!("../../../config/development.toml"),
    ),
    (
        "production",
        include_str!("../../../config/production.toml"),
    ),
    ("test", include_str!("../../../config/test.toml")),
];

/// Why the configuration could not be loaded; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A key has a wrong type or value, or is unknown.
    #[error("{0}")]
    Invalid(String),
}

impl From<figment::Error> for SettingsError {
    fn from(error: figment::Error) -> Self {
        let messages: Vec<String> = error.into_iter().map(|e| e.to_string()).collect();
        Self::Invalid(messages.join("; "))
    }
}

/// Everything `punctual` can be told.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `[server]`
    pub server: ServerSettings,
    /// `[database]`
    pub database: DatabaseSettings,
    /// `[log]`
    pub log: LogSettings,
    /// `[outbound]`
    pub outbound: OutboundSettings,
    /// `[auth]`
    pub auth: AuthSettings,
    /// `[admin]`
    pub admin: AdminSettings,
    /// `[email]`
    pub email: EmailSettings,
    /// `[web]`
    pub web: WebSettings,
    /// `[engine]`
    pub engine: EngineSettings,
    /// `[plans.<name>]`
    pub plans: BTreeMap<String, PlanLimits>,
    /// `[rate_limit]`
    pub rate_limit: RateLimitSettings,
}

/// `[rate_limit]`: per-node API request limits (per API key from the plan).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Limit requests under /api/ at all.
    pub enabled: bool,
    /// Requests per second (and burst) per signed-in user.
    pub user_requests_per_second: u32,
    /// Requests per second (and burst) per client address, for requests without
    /// a recognized API key or user token.
    pub ip_requests_per_second: u32,
}

/// `[engine]`: the job engine of this node.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    /// Executions running at once.
    pub max_in_flight: usize,
    /// Jobs per dispatch transaction.
    pub dispatch_batch: u64,
    /// Lease length.
    pub lease_seconds: u64,
    /// Rescue period.
    pub rescue_interval_seconds: u64,
    /// Response bytes kept.
    pub response_body_limit_bytes: usize,
    /// Auto-disable threshold.
    pub auto_disable_after: i32,
    /// Missed-run tolerance.
    pub missed_run_tolerance_seconds: u64,
    /// How far ahead occurrences of `allow` jobs are claimed.
    pub lookahead_ms: u64,
    /// Occurrences claimed ahead, at most.
    pub max_claimed_ahead: usize,
    /// Finished requests waiting to be recorded, at most.
    pub record_queue: usize,
    /// Days audit events are kept (0: for ever).
    pub audit_retention_days: u32,
}

/// `[auth]`: sessions, passwords and brute-force limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 key (≥ 32 bytes); empty = random per start.
    pub jwt_secret: String,
    /// `iss` claim.
    pub jwt_issuer: String,
    /// `aud` claim.
    pub jwt_audience: String,
    /// Access token lifetime.
    pub access_ttl_seconds: i64,
    /// Refresh token lifetime.
    pub refresh_ttl_days: i64,
    /// argon2id memory (KiB).
    pub argon2_memory_kib: u32,
    /// argon2id passes.
    pub argon2_iterations: u32,
    /// argon2id lanes.
    pub argon2_parallelism: u32,
    /// Failed logins per email before 429.
    pub max_failed_logins_per_email: u64,
    /// Failed logins per IP before 429.
    pub max_failed_logins_per_ip: u64,
    /// Window of the two limits above.
    pub failed_login_window_seconds: i64,
    /// Reset / magic-link requests per email per window.
    pub max_email_requests_per_email: u64,
}

/// `[admin]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Bearer token for the admin endpoints; empty = none.
    pub service_token: String,
}

/// `[email]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// SMTP URL; empty = log.
    pub smtp_url: String,
    /// From header.
    pub from: String,
    /// Log bodies when there is no SMTP server (development only).
    pub log_bodies: bool,
}

/// `[web]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// Public base URL for links in emails.
    pub public_url: String,
}

/// `[server]`: where and how the HTTP API listens.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Bind address.
    pub bind: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    /// Grace period for in-flight work on shutdown.
    pub shutdown_grace_seconds: u64,
}

/// `[database]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// sqlite:// or postgres:// URL.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// Seconds to wait for a pooled connection.
    pub acquire_timeout_seconds: u64,
    /// A pooled connection idle longer than this many seconds is pinged
    /// before use (0: every time).
    pub check_idle_after_seconds: u64,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// EnvFilter directives.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `[outbound]`: what job requests may reach.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSettings {
    /// Allow loopback and private targets.
    pub allow_private_networks: bool,
}

impl Settings {
    /// Loads the configuration from the process environment and `config/`.
    pub fn load() -> Result<Self, SettingsError> {
        let environment = std::env::var("PUNCTUAL_ENV").ok().filter(|e| !e.is_empty());
        let directory = std::env::var("PUNCTUAL_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from("config"));
        let figment = Self::files(environment.as_deref(), Some(&directory))?
            .merge(Env::prefixed("PUNCTUAL__").split("__"))
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database.url".into()),
            )
            .merge(Env::raw().only(&["PORT"]).map(|_| "server.port".into()))
            .merge(Env::raw().only(&["BIND"]).map(|_| "server.bind".into()));
        Self::extract(figment)
    }

    /// The built-in configuration of `environment` (no files on disk, no
    /// environment variables): what tests start from.
    pub fn built_in(environment: &str) -> Result<Self, SettingsError> {
        Self::extract(Self::files(Some(environment), None)?)
    }

    fn files(
        environment: Option<&str>,
        directory: Option<&PathBuf>,
    ) -> Result<Figment, SettingsError> {
        let mut figment = Figment::from(Toml::string(built_in_file("default").unwrap_or_default()));
        if let Some(directory) = directory {
            figment = figment.merge(Toml::file(directory.join("default.toml")));
        }
        if let Some(environment) = environment {
            let on_disk = directory.map(|d| d.join(format!("{environment}.toml")));
            let found_on_disk = on_disk.as_ref().is_some_and(|path| path.is_file());
            match (built_in_file(environment), on_disk) {
                (_, Some(path)) if found_on_disk => {
                    if let Some(text) = built_in_file(environment) {
                        figment = figment.merge(Toml::string(text));
                    }
                    figment = figment.merge(Toml::file(path));
                }
                (Some(text), _) => figment = figment.merge(Toml::string(text)),
                (None, _) => {
                    return Err(SettingsError::Invalid(format!(
                        "PUNCTUAL_ENV: no configuration named `{environment}` (expected config/{environment}.toml)"
                    )))
                }
            }
        }
        Ok(figment)
    }

    fn extract(figment: Figment) -> Result<Self, SettingsError> {
        let settings: Settings = figment.extract()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let url = self.database.url.trim();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(SettingsError::Invalid(
                "database.url: expected a sqlite:// or postgres:// url".to_owned(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(SettingsError::Invalid(
                "database.max_connections: must be at least 1".to_owned(),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(SettingsError::Invalid(format!(
                "log.level: `{}` is not a valid filter",
                self.log.level
            )));
        }
        if self.server.bind.parse::<std::net::IpAddr>().is_err() && self.server.bind != "localhost"
        {
            return Err(SettingsError::Invalid(format!(
                "server.bind: `{}` is not an IP address",
                self.server.bind
            )));
        }
        if !self.auth.jwt_secret.is_empty() && self.auth.jwt_secret.len() < 32 {
            return Err(SettingsError::Invalid(
                "auth.jwt_secret: must be at least 32 bytes".to_owned(),
            ));
        }
        if !(1..=900).contains(&self.auth.access_ttl_seconds) {
            return Err(SettingsError::Invalid(
                "auth.access_ttl_seconds: must be between 1 and 900".to_owned(),
            ));
        }
        if self.auth.refresh_ttl_days < 1 {
            return Err(SettingsError::Invalid(
                "auth.refresh_ttl_days: must be at least 1".to_owned(),
            ));
        }
        if self.auth.failed_login_window_seconds < 1 {
            return Err(SettingsError::Invalid(
                "auth.failed_login_window_seconds: must be at least 1".to_owned(),
            ));
        }
        if !self.plans.contains_key("free") {
            return Err(SettingsError::Invalid(
                "plans.free: the free plan must exist (new organizations start on it)".to_owned(),
            ));
        }
        let body_ceiling =
            u64::try_from(punctual_domain::RequestBody::MAX_BYTES).unwrap_or(u64::MAX);
        if let Some((name, _)) = self
            .plans
            .iter()
            .find(|(_, limits)| limits.max_request_body_bytes > body_ceiling)
        {
            return Err(SettingsError::Invalid(format!(
                "plans.{name}.max_request_body_bytes: must be at most {body_ceiling}"
            )));
        }
        if self.engine.max_in_flight == 0 || self.engine.dispatch_batch == 0 {
            return Err(SettingsError::Invalid(
                "engine.max_in_flight / engine.dispatch_batch: must be at least 1".to_owned(),
            ));
        }
        if self.engine.lease_seconds < 2 {
            return Err(SettingsError::Invalid(
                "engine.lease_seconds: must be at least 2".to_owned(),
            ));
        }
        for (key, rate) in [
            (
                "user_requests_per_second",
                self.rate_limit.user_requests_per_second,
            ),
            (
                "ip_requests_per_second",
                self.rate_limit.ip_requests_per_second,
            ),
        ] {
            if rate == 0 {
                return Err(SettingsError::Invalid(format!(
                    "rate_limit.{key}: must be at least 1 (rate_limit.enabled = false turns limiting off)"
                )));
            }
        }
        if !self.admin.service_token.is_empty() && self.admin.service_token.len() < 32 {
            return Err(SettingsError::Invalid(
                "admin.service_token: must be at least 32 characters".to_owned(),
            ));
        }
        Ok(())
    }
}

fn built_in_file(name: &str) -> Option<&'static str> {
    BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_body_cap_over_the_ceiling_is_refused() {
        let with_cap = |bytes: u64| {
            Settings::files(Some("test"), None)
                .map(|f| {
                    f.merge(Toml::string(&format!(
                        "[plans.free]\nmax_request_body_bytes = {bytes}"
                    )))
                })
                .and_then(Settings::extract)
        };
        let ceiling = punctual_domain::RequestBody::MAX_BYTES as u64;
        let settings = with_cap(ceiling).expect("the ceiling itself is allowed");
        assert_eq!(settings.plans["free"].max_request_body_bytes, ceiling);
        let error = with_cap(ceiling + 1).err();
        assert!(
            error.is_some_and(|e| e
                .to_string()
                .starts_with("plans.free.max_request_body_bytes:")),
            "a cap over the ceiling must be refused"
        );
    }

    #[test]
    fn a_plan_without_a_body_cap_gets_64_kib() {
        let settings = Settings::built_in("test").expect("built-in test settings");
        assert_eq!(settings.plans["free"].max_request_body_bytes, 64 * 1024);
    }

    #[test]
    fn rate_limits_of_zero_are_refused() {
        for key in ["user_requests_per_second", "ip_requests_per_second"] {
            let figment = Settings::files(Some("test"), None)
                .map(|f| f.merge(Toml::string(&format!("[rate_limit]\n{key} = 0"))));
            let error = figment.and_then(Settings::extract).err();
            assert!(
                error.is_some_and(|e| e.to_string().starts_with(&format!("rate_limit.{key}:"))),
                "rate_limit.{key} = 0 must be refused"
            );
        }
    }
}
