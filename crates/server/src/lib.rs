//! The `punctual` binary's library half: configuration, telemetry and startup,
//! shared by `main` and by the end-to-end tests.

#![warn(missing_docs)]

pub mod settings;
pub mod startup;
pub mod telemetry;

pub use settings::Settings;
pub use startup::{open_database, Application, StartupError};
