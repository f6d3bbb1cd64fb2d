//! Punctual's storage layer: one [`Database`] handle over SQLite or PostgreSQL,
//! sea-orm entities and the queries the rest of the system needs.
//!
//! Every function that must be atomic opens its own transaction here and says so
//! in its doc line; callers above this crate never see SQL.

#![warn(missing_docs)]

pub mod accounts;
pub mod audit;
mod database;
pub mod engine;
pub mod entities;
mod error;
pub mod job_reads;
mod job_rows;
pub mod jobs;
pub mod notifications;
pub mod organizations;
pub mod outbox;
mod parameters;
pub mod quota;
pub mod retention;
pub mod usage;
pub mod wakeup;

pub use database::{Backend, Database, DatabaseOptions};
pub use error::PersistenceError;
pub use sea_orm;
