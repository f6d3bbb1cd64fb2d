//! Scratch databases (a fresh PostgreSQL database or SQLite file per run, removed
//! afterwards), the organization that owns the jobs, and bulk job inserts.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Duration as ChronoDuration, NaiveTime, Utc};
use punctual_persistence::entities::job;
use punctual_persistence::sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseBackend, EntityTrait, Statement,
};
use punctual_persistence::{accounts, organizations, Backend, Database, DatabaseOptions};
use sqlx::{Connection, Executor};
use uuid::Uuid;

/// A database made for one run.
pub struct Scratch {
    /// What to connect to.
    pub url: String,
    /// Which engine.
    pub backend: Backend,
    /// PostgreSQL: the database name.
    pub pg_name: Option<String>,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
    Kept,
}

impl Scratch {
    /// A fresh database on the server (or next to the file) that `base` names:
    /// `postgres://…` gets `CREATE DATABASE punctual_bench_<random>`, `sqlite://DIR/…`
    /// gets a new `DIR/punctual_bench_<random>.db` (DIR: the temp dir if none).
    pub async fn create(base: &str) -> anyhow::Result<Self> {
        let suffix = &Uuid::new_v4().simple().to_string()[..12];
        let name = format!("punctual_bench_{suffix}");
        if let Some(rest) = base
            .strip_prefix("sqlite://")
            .or_else(|| base.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or_default();
            let dir = PathBuf::from(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            let file = dir.join(format!("{name}.db"));
            return Ok(Self {
                url: format!("sqlite://{}?mode=rwc", file.display()),
                backend: Backend::Sqlite,
                pg_name: None,
                cleanup: Cleanup::Sqlite(file),
            });
        }
        if !(base.starts_with("postgres://") || base.starts_with("postgresql://")) {
            bail!("DATABASE_URL must be sqlite://… or postgres://…");
        }
        let mut server = url::Url::parse(base).context("DATABASE_URL")?;
        let given = server.path().trim_start_matches('/').to_owned();
        if given.is_empty() {
            server.set_path("/postgres");
        }
        let admin_url = server.to_string();
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("connect to {admin_url}"))?;
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .context("create the scratch database")?;
        admin.close().await?;
        let mut target = server.clone();
        target.set_path(&format!("/{name}"));
        Ok(Self {
            url: target.to_string(),
            backend: Backend::Postgres,
            pg_name: Some(name.clone()),
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// Keep the database after the run (for inspection).
    pub fn keep(&mut self) {
        eprintln!("keeping the scratch database: {}", self.url);
        self.cleanup = Cleanup::Kept;
    }

    /// Bytes the database takes: the SQLite file with its WAL, or
    /// `pg_database_size`.
    pub async fn size_bytes(&self) -> anyhow::Result<u64> {
        match &self.cleanup {
            Cleanup::Sqlite(file) => Ok(sqlite_files(file)
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum()),
            _ => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await?;
                let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(&mut conn)
                    .await?;
                conn.close().await?;
                Ok(u64::try_from(size).unwrap_or_default())
            }
        }
    }

    /// Removes the database.
    pub async fn remove(self) -> anyhow::Result<()> {
        match self.cleanup {
            Cleanup::Sqlite(file) => {
                for f in sqlite_files(&file) {
                    let _ = std::fs::remove_file(f);
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await?;
                admin.close().await?;
            }
            Cleanup::Kept => {}
        }
        Ok(())
    }
}

fn sqlite_files(file: &std::path::Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|s| PathBuf::from(format!("{}{s}", file.display())))
        .collect()
}

/// A pooled, migrated connection.
pub async fn connect(url: &str, pool: u32) -> anyhow::Result<Database> {
    let mut options = DatabaseOptions::new(url.to_owned());
    options.max_connections = pool;
    options.acquire_timeout = Duration::from_secs(60);
    let database = Database::connect(&options).await?;
    use punctual_migration::MigratorTrait;
    punctual_migration::Migrator::up(database.conn(), None)
        .await
        .context("migrate")?;
    Ok(database)
}

/// The plan of the benchmark's organization: the largest of the default
/// configuration (1,000,000 jobs, 10⁹ executions a month), so plan limits and
/// quotas never cut a run short.
pub const PLAN: &str = "enterprise";

/// Creates a user and the organization that owns the benchmark's jobs.
pub async fn create_organization(database: &Database) -> anyhow::Result<Uuid> {
    let now = Utc::now();
    let user = accounts::insert_user(database.conn(), "bench@example.com", None, None, now).await?;
    let org = organizations::insert_organization(
        database.conn(),
        "bench",
        "Benchmarks",
        PLAN,
        user.id,
        punctual_auth::generate_signing_secret(),
        now,
    )
    .await?;
    Ok(org.id)
}

/// How a benchmark job runs.
#[derive(Debug, Clone)]
pub enum Timing {
    /// A once-job at this instant.
    Once(DateTime<Utc>),
    /// A cron job (UTC) whose next occurrence is `next`.
    Cron {
        /// The expression (5 or 6 fields).
        expr: String,
        /// Its first occurrence.
        next: DateTime<Utc>,
    },
}

/// One job row as the API would create it: GET to the sink, 5 s timeout, up to 3
/// attempts, concurrency `allow` (the API's default), missed runs `skip`.
pub fn job_row(org: Uuid, url: &str, timing: Timing, now: DateTime<Utc>) -> job::ActiveModel {
    job_row_with(org, url, timing, now, "allow")
}

/// [`job_row`] with another concurrency policy (`forbid` and `replace` make the
/// engine check for a run in progress before each occurrence).
pub fn job_row_with(
    org: Uuid,
    url: &str,
    timing: Timing,
    now: DateTime<Utc>,
    concurrency: &str,
) -> job::ActiveModel {
    let (kind, cron, run_at, next) = match timing {
        Timing::Once(at) => ("once", None, Some(at), at),
        Timing::Cron { expr, next } => ("cron", Some(expr), None, next),
    };
    job::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(org),
        key: Set(None),
        name: Set("bench".to_owned()),
        url: Set(url.to_owned()),
        method: Set("GET".to_owned()),
        headers: Set("{}".to_owned()),
        body: Set(None),
        timeout_ms: Set(5_000),
        schedule_kind: Set(kind.to_owned()),
        cron: Set(cron),
        timezone: Set(Some("UTC".to_owned())),
        run_at: Set(run_at),
        retry_max_attempts: Set(3),
        retry_min_backoff_ms: Set(100),
        retry_max_backoff_ms: Set(1_000),
        concurrency: Set(concurrency.to_owned()),
        missed_runs: Set("skip".to_owned()),
        catch_up_grace_ms: Set(3_600_000),
        enabled: Set(true),
        next_run_at: Set(Some(next)),
        consecutive_failures: Set(0),
        disabled_reason: Set(None),
        completed_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Rows per multi-row INSERT (26 columns: below both engines' parameter limits).
pub const INSERT_BATCH: usize = 1_000;

/// Inserts `count` jobs made by `make(i)` with multi-row INSERTs of
/// [`INSERT_BATCH`] rows. Returns the seconds it took.
pub async fn insert_jobs(
    database: &Database,
    count: usize,
    mut make: impl FnMut(usize) -> job::ActiveModel,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut i = 0;
    while i < count {
        let end = (i + INSERT_BATCH).min(count);
        let rows: Vec<job::ActiveModel> = (i..end).map(&mut make).collect();
        job::Entity::insert_many(rows)
            .exec_without_returning(database.conn())
            .await
            .context("bulk insert jobs")?;
        i = end;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// A daily cron at a pseudo-random second of the day whose next occurrence is at
/// least `not_before`: a job that exists but stays out of a run's window.
pub fn dormant_timing(i: usize, not_before: DateTime<Utc>) -> Timing {
    // A fixed spread over the day (Knuth's multiplicative hash of the index).
    let second_of_day = (i as u64).wrapping_mul(2_654_435_761) % 86_400;
    let (h, m, s) = (
        second_of_day / 3600,
        (second_of_day / 60) % 60,
        second_of_day % 60,
    );
    let at = NaiveTime::from_hms_opt(h as u32, m as u32, s as u32).unwrap_or_default();
    let mut next = not_before.date_naive().and_time(at).and_utc();
    if next <= not_before {
        next += ChronoDuration::days(1);
    }
    Timing::Cron {
        expr: format!("{s} {m} {h} * * *"),
        next,
    }
}

/// Cumulative per-database counters of PostgreSQL (`pg_stat_database`).
pub async fn pg_stats(url: &str) -> anyhow::Result<serde_json::Value> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let row: (i64, i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, \
         tup_updated, tup_deleted, blks_read, blks_hit FROM pg_stat_database \
         WHERE datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(serde_json::json!({
        "xact_commit": row.0, "xact_rollback": row.1, "tup_returned": row.2,
        "tup_fetched": row.3, "tup_inserted": row.4, "tup_updated": row.5,
        "tup_deleted": row.6, "blks_read": row.7, "blks_hit": row.8,
    }))
}

/// `b - a` for each numeric field.
pub fn diff_json(a: &serde_json::Value, b: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        for (key, after) in b {
            let before = a.get(key).and_then(|v| v.as_i64()).unwrap_or(0);
            out.insert(
                key.clone(),
                serde_json::json!(after.as_i64().unwrap_or(0) - before),
            );
        }
    }
    serde_json::Value::Object(out)
}

/// The database server's version string.
pub async fn server_version(database: &Database) -> String {
    let sql = match database.backend() {
        Backend::Postgres => "SELECT current_setting('server_version') AS v",
        Backend::Sqlite => "SELECT sqlite_version() AS v",
    };
    let backend = match database.backend() {
        Backend::Postgres => DatabaseBackend::Postgres,
        Backend::Sqlite => DatabaseBackend::Sqlite,
    };
    match database
        .conn()
        .query_one(Statement::from_string(backend, sql))
        .await
    {
        Ok(Some(row)) => row.try_get::<String>("", "v").unwrap_or_default(),
        _ => String::new(),
    }
}
