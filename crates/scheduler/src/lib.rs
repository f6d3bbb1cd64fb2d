//! Punctual's job engine: it takes due jobs from the database and performs their
//! HTTP requests on time. It never names actix; it is driven by a [`Clock`] and a
//! store it does not own, so it can be tested without the HTTP API.

#![warn(missing_docs)]

pub mod clock;
pub mod delivery;
pub mod dispatch;
mod engine;
pub mod mailer;
pub mod notify;
pub mod outbound;
pub mod signing;
mod webhooks;

pub use clock::{Clock, OffsetClock, SystemClock};
pub use engine::{Engine, EngineConfig, EngineError, EngineHandle};
pub use mailer::{Mailer, MailerConfig, MailerError, MailerHandle};
