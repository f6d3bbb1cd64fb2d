//! Startup as one function: configuration → database → migrations → engine → HTTP.
//! Tests call the same builder with port 0.

use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::HttpServer;
use std::sync::Arc;

use punctual_api::rate_limit::{RateLimitConfig, RateLimits};
use punctual_api::state::IdentityConfig;
use punctual_api::AppState;
use punctual_auth::{generate_jwt_secret, Argon2Config, JwtConfig, JwtKeys, PasswordHasher};
use punctual_migration::{Migrator, MigratorTrait};
use punctual_persistence::{Database, DatabaseOptions, PersistenceError};
use punctual_scheduler::{Engine, EngineConfig, EngineHandle, Mailer, MailerConfig, MailerHandle};
use tokio::sync::Notify;

use crate::settings::Settings;

/// The email sender's settings, from `[email]`.
pub fn mailer_config(settings: &Settings) -> MailerConfig {
    MailerConfig {
        smtp_url: Some(settings.email.smtp_url.clone()).filter(|u| !u.is_empty()),
        from: settings.email.from.clone(),
        log_bodies: settings.email.log_bodies,
        ..MailerConfig::default()
    }
}

/// The engine's settings, from `[engine]`, `[outbound]` and `[server]`.
pub fn engine_config(settings: &Settings) -> EngineConfig {
    let engine = &settings.engine;
    EngineConfig {
        allow_private_networks: settings.outbound.allow_private_networks,
        max_in_flight: engine.max_in_flight,
        dispatch_batch: engine.dispatch_batch,
        lease: Duration::from_secs(engine.lease_seconds),
        rescue_interval: Duration::from_secs(engine.rescue_interval_seconds.max(1)),
        response_body_limit: engine.response_body_limit_bytes,
        auto_disable_after: engine.auto_disable_after,
        missed_run_tolerance: Duration::from_secs(engine.missed_run_tolerance_seconds),
        lookahead: Duration::from_millis(engine.lookahead_ms),
        max_claimed_ahead: engine.max_claimed_ahead,
        record_queue: engine.record_queue,
        audit_retention: (engine.audit_retention_days > 0)
            .then(|| Duration::from_secs(u64::from(engine.audit_retention_days) * 86_400)),
        shutdown_grace: Duration::from_secs(settings.server.shutdown_grace_seconds),
        plans: Arc::new(settings.plans.clone()),
        ..EngineConfig::default()
    }
}

/// Keys and limits for authentication, from `[auth]` and `[admin]`.
pub fn identity_config(settings: &Settings) -> Result<IdentityConfig, StartupError> {
    let auth = &settings.auth;
    let secret = if auth.jwt_secret.is_empty() {
        tracing::warn!("auth.jwt_secret is not set: using a random key; sessions end at restart and nodes cannot share tokens");
        generate_jwt_secret()
    } else {
        auth.jwt_secret.as_bytes().to_vec()
    };
    let jwt = JwtKeys::new(JwtConfig {
        secret,
        issuer: auth.jwt_issuer.clone(),
        audience: auth.jwt_audience.clone(),
        access_ttl: chrono::Duration::seconds(auth.access_ttl_seconds),
    })
    .map_err(|e| StartupError::Config(format!("auth.jwt_*: {e}")))?;
    let hasher = PasswordHasher::new(Argon2Config {
        memory_kib: auth.argon2_memory_kib,
        iterations: auth.argon2_iterations,
        parallelism: auth.argon2_parallelism,
    })
    .map_err(|e| StartupError::Config(format!("auth.argon2_*: {e}")))?;
    Ok(IdentityConfig {
        jwt,
        hasher,
        refresh_ttl: chrono::Duration::days(auth.refresh_ttl_days),
        service_token: Some(settings.admin.service_token.clone()).filter(|t| !t.is_empty()),
        max_failed_logins_per_email: auth.max_failed_logins_per_email,
        max_failed_logins_per_ip: auth.max_failed_logins_per_ip,
        failure_window: chrono::Duration::seconds(auth.failed_login_window_seconds),
        max_email_requests_per_email: auth.max_email_requests_per_email,
    })
}

/// The API rate limits, from `[rate_limit]` and the plans.
pub fn rate_limits(settings: &Settings) -> Result<RateLimits, StartupError> {
    let rate = |name: &str, value: u32| {
        NonZeroU32::new(value)
            .ok_or_else(|| StartupError::Config(format!("rate_limit.{name}: must be at least 1")))
    };
    let limits = &settings.rate_limit;
    let config = RateLimitConfig {
        enabled: limits.enabled,
        user_requests_per_second: rate(
            "user_requests_per_second",
            limits.user_requests_per_second,
        )?,
        ip_requests_per_second: rate("ip_requests_per_second", limits.ip_requests_per_second)?,
    };
    Ok(RateLimits::new(config, &settings.plans))
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened.
    #[error(transparent)]
    Database(#[from] PersistenceError),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(#[source] punctual_persistence::sea_orm::DbErr),
    /// A setting could not be turned into what it configures.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// What we tried.
        address: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Opens the database described by `settings` and applies every pending migration.
pub async fn open_database(settings: &Settings) -> Result<Database, StartupError> {
    let options = DatabaseOptions {
        url: settings.database.url.clone(),
        max_connections: settings.database.max_connections,
        acquire_timeout: Duration::from_secs(settings.database.acquire_timeout_seconds),
        check_idle_after: Duration::from_secs(settings.database.check_idle_after_seconds),
    };
    let database = Database::connect(&options).await?;
    database
        .with_schema_lock(Migrator::up(database.conn(), None))
        .await?
        .map_err(StartupError::Migration)?;
    Ok(database)
}

/// A built, not yet running, Punctual node.
pub struct Application {
    address: SocketAddr,
    server: Server,
    engine: EngineHandle,
    mailer: MailerHandle,
    database: Database,
    engine_wakeup: Arc<Notify>,
}

impl Application {
    /// Migrates, binds the listener and starts the engine.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let database = open_database(&settings).await?;
        let identity = identity_config(&settings)?;
        let address = format!("{}:{}", settings.server.bind, settings.server.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let bound = listener.local_addr().map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let grace = Duration::from_secs(settings.server.shutdown_grace_seconds);
        let engine_wakeup = Arc::new(Notify::new());
        let mailer = Mailer::new(database.clone(), mailer_config(&settings))
            .map_err(|e| StartupError::Config(e.to_string()))?
            .start();
        let state = AppState {
            database: database.clone(),
            prometheus: punctual_api::observability::prometheus(),
            identity: Arc::new(identity),
            mail_wakeup: mailer.notifier(),
            engine_wakeup: engine_wakeup.clone(),
            allow_private_networks: settings.outbound.allow_private_networks,
            public_url: settings.web.public_url.clone(),
            plans: Arc::new(settings.plans.clone()),
            rate_limits: Arc::new(rate_limits(&settings)?),
            api_keys: Arc::new(punctual_api::auth_cache::ApiKeyCache::new()),
            // Replaced by one per worker in `punctual_api::app`.
            job_reads: punctual_persistence::job_reads::JobReads::start(database.clone()),
        };
        // The web console is mounted beside the API (which does not know it).
        let console = punctual_console::Console::new();
        let mut http = HttpServer::new(move || {
            let console = console.clone();
            punctual_api::app(state.clone()).configure(move |cfg| console.configure(cfg))
        })
        .shutdown_timeout(grace.as_secs())
        .listen(listener)
        .map_err(|source| StartupError::Bind { address, source })?;
        if settings.server.workers > 0 {
            http = http.workers(settings.server.workers);
        }
        let server = http.run();
        let engine = Engine::new(database.clone(), engine_config(&settings))
            .map_err(|e| StartupError::Config(format!("engine: {e}")))?
            .with_mail_wakeup(mailer.notifier())
            .start(Some(engine_wakeup.clone()));
        Ok(Self {
            address: bound,
            server,
            engine,
            mailer,
            database,
            engine_wakeup,
        })
    }

    /// Where the API listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The store this node uses.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Wakes this node's engine (as the API does after a job changes).
    pub fn engine_wakeup(&self) -> Arc<Notify> {
        self.engine_wakeup.clone()
    }

    /// A handle that stops the HTTP server gracefully.
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (or [`ServerHandle::stop`]): stops accepting,
    /// finishes in-flight requests, then stops the engine and closes the pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.engine.shutdown().await;
        self.mailer.shutdown().await;
        self.database.close().await;
        served
    }
}
