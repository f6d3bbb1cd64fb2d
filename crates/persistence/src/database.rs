use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, SqlxPostgresConnector,
    SqlxSqliteConnector, TransactionTrait,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Connection;

use crate::PersistenceError;

/// Punctual's key among PostgreSQL advisory locks ("punctual" in ASCII).
const SCHEMA_LOCK_KEY: i64 = 0x7075_6e63_7475_616c;

/// Which engine a [`Database`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (one node).
    Sqlite,
    /// PostgreSQL (any number of nodes).
    Postgres,
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// `sqlite://path?mode=rwc` or `postgres://user@host:port/db`.
    pub url: String,
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long a caller waits for a pooled connection.
    pub acquire_timeout: Duration,
    /// A pooled connection idle for longer than this is pinged before it is
    /// handed out (and replaced if the ping fails); one used more recently is
    /// handed out as is. Pinging every acquisition costs a round trip per
    /// query; a connection that broke within this window (the database
    /// restarted) fails one query and is then dropped. Zero pings every time.
    pub check_idle_after: Duration,
}

impl DatabaseOptions {
    /// Options with the defaults used by `punctual serve`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            check_idle_after: Duration::from_secs(5),
        }
    }
}

/// A pooled connection to SQLite or PostgreSQL; cheap to clone.
#[derive(Debug, Clone)]
pub struct Database {
    conn: DatabaseConnection,
    backend: Backend,
}

/// The pool settings both backends share: size, acquire timeout, and a ping
/// before use only for a connection idle past `check_idle_after`.
fn pool_options<DB: sqlx::Database>(
    pool: sqlx::pool::PoolOptions<DB>,
    options: &DatabaseOptions,
) -> sqlx::pool::PoolOptions<DB> {
    let check_idle_after = options.check_idle_after;
    pool.max_connections(options.max_connections.max(1))
        .acquire_timeout(options.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= check_idle_after {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

impl Database {
    /// Opens the pool. For SQLite the file's directory is created, the journal is
    /// switched to WAL and every connection waits on locks instead of failing.
    pub async fn connect(options: &DatabaseOptions) -> Result<Self, PersistenceError> {
        let url = options.url.trim();
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(url, options).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::connect_postgres(url, options).await
        } else {
            Err(PersistenceError::InvalidUrl(
                "expected a sqlite:// or postgres:// url".to_owned(),
            ))
        }
    }

    async fn connect_sqlite(
        url: &str,
        options: &DatabaseOptions,
    ) -> Result<Self, PersistenceError> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| PersistenceError::InvalidUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let filename = connect.get_filename();
        if let Some(dir) = filename.parent() {
            ensure_directory(dir)?;
        }
        let pool = pool_options(SqlitePoolOptions::new(), options)
            .connect_with(connect)
            .await?;
        Ok(Self {
            conn: SqlxSqliteConnector::from_sqlx_sqlite_pool(pool),
            backend: Backend::Sqlite,
        })
    }

    async fn connect_postgres(
        url: &str,
        options: &DatabaseOptions,
    ) -> Result<Self, PersistenceError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| PersistenceError::InvalidUrl(e.to_string()))?;
        let pool = pool_options(PgPoolOptions::new(), options)
            .connect_with(connect)
            .await?;
        Ok(Self {
            conn: SqlxPostgresConnector::from_sqlx_postgres_pool(pool),
            backend: Backend::Postgres,
        })
    }

    /// Runs `work` (applying migrations) while no other process does the same:
    /// on PostgreSQL it holds a session advisory lock, on a connection of its
    /// own, until `work` ends, so nodes started together on a fresh database
    /// migrate one after the other and the later ones find nothing left to do.
    /// On SQLite (one node) it runs `work` as is. The outer error is the lock's,
    /// the inner one `work`'s.
    ///
    /// ```no_run
    /// # async fn example(database: punctual_persistence::Database) -> Result<(), Box<dyn std::error::Error>> {
    /// let migrated: Result<(), std::io::Error> = database.with_schema_lock(async { Ok(()) }).await?;
    /// migrated?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn with_schema_lock<T, E>(
        &self,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<Result<T, E>, PersistenceError> {
        if self.backend != Backend::Postgres {
            return Ok(work.await);
        }
        use sqlx::Connection;
        let options = self.conn.get_postgres_connection_pool().connect_options();
        let mut lock = sqlx::postgres::PgConnection::connect_with(&options).await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(SCHEMA_LOCK_KEY)
            .execute(&mut lock)
            .await?;
        let result = work.await;
        // Closing the session releases the lock in any case.
        if let Err(error) = lock.close().await {
            tracing::warn!(%error, "closing the schema lock's connection failed");
        }
        Ok(result)
    }

    /// The sea-orm connection, for queries and migrations.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Answers whether the database is reachable, within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), PersistenceError> {
        let probe = self.conn.execute_unprepared("SELECT 1");
        match tokio::time::timeout(timeout, probe).await {
            Ok(result) => result.map(|_| ()).map_err(PersistenceError::from),
            Err(_) => Err(PersistenceError::Timeout(timeout)),
        }
    }

    /// Opens a transaction that will write. On SQLite the write lock is taken at
    /// once: a deferred transaction that reads first and writes later fails with
    /// SQLITE_BUSY (without waiting) when another writer committed in between, so
    /// the first statement here is a write that matches nothing, which makes SQLite
    /// wait for the lock (busy_timeout) before anything is read.
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, PersistenceError> {
        let transaction = self.conn.begin().await?;
        if self.backend == Backend::Sqlite {
            transaction
                .execute_unprepared("UPDATE seaql_migrations SET version = version WHERE 1 = 0")
                .await?;
        }
        Ok(transaction)
    }

    /// Closes every pooled connection; later queries fail. Used on shutdown (and by
    /// tests that simulate a database going away).
    pub async fn close(&self) {
        match self.backend {
            Backend::Sqlite => self.conn.get_sqlite_connection_pool().close().await,
            Backend::Postgres => self.conn.get_postgres_connection_pool().close().await,
        }
    }
}

fn ensure_directory(dir: &Path) -> Result<(), PersistenceError> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| PersistenceError::Directory {
        path: dir.display().to_string(),
        source,
    })
}
