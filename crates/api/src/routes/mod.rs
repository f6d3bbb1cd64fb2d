//! HTTP handlers, one module per resource.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod jobs;
pub mod ops;
pub mod orgs;
pub mod schedules;
pub mod usage;
