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

impl PersistenceError {
    /// Why the database refused a value it was given, when the value itself is
    /// the reason (it came from a caller, so the caller hears a 4xx, not a 500):
    /// text holding a NUL character, or a time beyond the database's range.
    /// SQLite stores both; PostgreSQL refuses them.
    pub fn refused_value(&self) -> Option<&'static str> {
        let database_error = match self {
            Self::Connect(sqlx::Error::Database(error)) => error,
            Self::Query(
                sea_orm::DbErr::Exec(sea_orm::RuntimeErr::SqlxError(sqlx::Error::Database(error)))
                | sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(sqlx::Error::Database(error))),
            ) => error,
            _ => return None,
        };
        // SQLSTATE 22021 character_not_in_repertoire (a NUL in text), 22P05
        // untranslatable_character, 22008 datetime_field_overflow.
        match database_error.code().as_deref() {
            Some("22021" | "22P05") => Some("text must not contain NUL (\\u0000) characters"),
            Some("22008") => Some("a time is outside the range the database can store"),
            _ => None,
        }
    }
}
