//! The use cases, below the web layer: plain async functions that take the state,
//! the authenticated caller and parsed input, and return domain values or a
//! [`ServiceError`]. REST handlers, the console and the CLI all call these.

pub mod admin;
pub mod audit;
mod error;
pub mod identity;
pub mod jobs;
pub mod notifications;
pub mod organizations;
pub mod plans;
pub mod usage;

pub use error::ServiceError;
