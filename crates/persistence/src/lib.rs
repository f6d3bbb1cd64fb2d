//! Punctual's storage layer: one [`Database`] handle over SQLite or PostgreSQL,
//! sea-orm entities and the queries the rest of the system needs.
//!
//! Every function that must be atomic opens its own transaction here and says so
//! in its doc line; callers above this crate never see SQL.

mod database;
mod error;

pub use database::{Backend, Database, DatabaseOptions};
pub use error::PersistenceError;
pub use sea_orm;
