//! sea-orm entities, one per table (shaped by the `punctual-migration` crate).

#![allow(missing_docs)]

pub mod api_key;
pub mod audit_event;
pub mod auth_failure;
pub mod auth_session;
pub mod email_outbox;
pub mod email_token;
pub mod execution;
pub mod invitation;
pub mod job;
pub mod membership;
pub mod notification_event;
pub mod notification_setting;
pub mod organization;
pub mod refresh_token;
pub mod signing_secret;
pub mod usage_counter;
pub mod user;
pub mod webhook_outbox;
