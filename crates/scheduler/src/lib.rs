//! Punctual's job engine: it takes due jobs from the database and performs their
//! HTTP requests on time. It never names actix; it is driven by a clock and a
//! store so it can be tested without the HTTP API.

mod engine;
pub mod mailer;
pub mod outbound;

pub use engine::{Engine, EngineConfig, EngineHandle};
pub use mailer::{Mailer, MailerConfig, MailerError, MailerHandle};
