//! Punctual's domain: the types and rules of a multi-tenant HTTP job scheduler, pure
//! (no I/O, no async, no database).
//!
//! Values are parsed once, at the edge, into types that can only hold valid values; every
//! parse error is a [`DomainError`] naming the JSON field the user got wrong.
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod email;
mod error;
mod role;
mod slug;

pub use email::Email;
pub use error::{DomainError, FieldError};
pub use role::Role;
pub use slug::Slug;
