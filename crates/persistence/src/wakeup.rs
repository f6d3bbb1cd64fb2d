//! Cross-node wake-ups over PostgreSQL `LISTEN/NOTIFY`: a node that creates or
//! changes a job tells the others, so sleeping dispatchers wake at once instead of
//! at their next timer. SQLite is one node: nothing to do there.

use sea_orm::ConnectionTrait;
use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::{Backend, Database, PersistenceError};

/// The channel Punctual nodes talk on.
pub const CHANNEL: &str = "punctual_wakeup";

/// Tells every listening node to look for work (PostgreSQL only).
pub async fn notify_all(database: &Database) -> Result<(), PersistenceError> {
    if database.backend() == Backend::Postgres {
        database
            .conn()
            .execute_unprepared(&format!("NOTIFY {CHANNEL}"))
            .await?;
    }
    Ok(())
}

/// A subscription to wake-ups; `None` on SQLite.
pub struct WakeupListener {
    listener: PgListener,
}

impl WakeupListener {
    /// Subscribes (PostgreSQL); SQLite answers `None`.
    pub async fn subscribe(database: &Database) -> Result<Option<Self>, PersistenceError> {
        if database.backend() != Backend::Postgres {
            return Ok(None);
        }
        // A connection of its own rather than one of the shared pool's: a
        // listener holds its connection for good, and a pool waits for every
        // connection to come back before it closes.
        let options = database
            .conn()
            .get_postgres_connection_pool()
            .connect_options();
        let own = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with((*options).clone());
        let mut listener = PgListener::connect_with(&own).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(Self { listener }))
    }

    /// Waits for the next wake-up. The listener reconnects by itself after a
    /// lost connection; an error here means it could not.
    pub async fn next(&mut self) -> Result<(), PersistenceError> {
        self.listener.recv().await?;
        Ok(())
    }
}
