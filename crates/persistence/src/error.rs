use thiserror::Error;

/// What can go wrong when talking to the database.
#[derive(Debug, Error)]
pub enum PersistenceError {
    /// The configured URL is not one we can use.
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    /// The SQLite file's directory could not be created.
    #[error("cannot prepare the database directory {path}: {source}")]
    Directory {
        /// The directory we tried to create.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A driver-level failure (connection, pool, protocol).
    #[error("database connection failed: {0}")]
    Connect(#[from] sqlx::Error),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] sea_orm::DbErr),
    /// A background task of this crate has stopped (the runtime is shutting down).
    #[error("{0} stopped")]
    Stopped(&'static str),
    /// The database did not answer in time.
    #[error("database did not answer within {0:?}")]
    Timeout(std::time::Duration),
}
