//! Punctual's credentials, as pure functions and small structs: no web framework, no
//! database, no async. Every service that authenticates someone reuses them.
//!
//! | Module | Concept |
//! |---|---|
//! | [`password`] | password policy (8–128 characters) and argon2id hashing with rehash detection |
//! | [`jwt`] | HS256 access tokens (≤ 15 minutes, `iss`/`aud` checked, time passed explicitly) |
//! | [`token`] | opaque random tokens (refresh, reset, magic link, invitation) and their SHA-256 |
//! | [`api_key`] | `pk_live_<id>.sk_live_<secret>` API keys |
//! | [`signing_secret`] | `whsec_…` webhook signing secrets (Standard Webhooks) |
//! | [`roles`] | owner > admin > member and what each may do |
//!
//! Secrets never print by accident: every type holding one has a `Debug` that redacts it,
//! and no [`AuthError`] carries one. Plaintexts that must leave the crate as bare `String`s
//! (a new refresh token, a new signing secret) are documented as such: do not log them.
//!
//! # Example
//!
//! A login, end to end:
//!
//! ```
//! use chrono::{Duration, Utc};
//! use punctual_auth::{
//!     jwt::{generate_jwt_secret, JwtConfig, JwtKeys},
//!     password::{validate_password, Argon2Config, PasswordHasher},
//!     token::{OpaqueToken, TokenHash},
//! };
//! use uuid::Uuid;
//!
//! let hasher = PasswordHasher::new(Argon2Config::default())?;
//! let keys = JwtKeys::new(JwtConfig {
//!     secret: generate_jwt_secret(),
//!     issuer: "https://punctual.example".into(),
//!     audience: "punctual-api".into(),
//!     access_ttl: Duration::minutes(15),
//! })?;
//!
//! // Registration.
//! validate_password("correct horse battery staple")?;
//! let stored_phc = hasher.hash("correct horse battery staple")?;
//!
//! // Login.
//! let check = hasher.verify("correct horse battery staple", &stored_phc)?;
//! assert!(check.valid);
//! let (user_id, session_id, now) = (Uuid::new_v4(), Uuid::new_v4(), Utc::now());
//! let access = keys.issue(user_id, session_id, now)?;
//! let (refresh_token, refresh_hash) = OpaqueToken::generate(); // store refresh_hash.to_hex()
//!
//! // A later request.
//! assert_eq!(keys.verify(&access.token, now)?.sub, user_id);
//! // A later refresh.
//! assert_eq!(TokenHash::from_plaintext(&refresh_token), refresh_hash);
//! # Ok::<(), punctual_auth::AuthError>(())
//! ```
#![warn(missing_docs)]

pub mod api_key;
mod error;
pub mod jwt;
pub mod password;
pub mod roles;
pub mod signing_secret;
pub mod token;

pub use api_key::{
    looks_like_api_key, parse_api_key, verify_api_key_secret, ApiKeyMaterial, ParsedApiKey,
};
pub use error::AuthError;
pub use jwt::{generate_jwt_secret, AccessClaims, IssuedAccessToken, JwtConfig, JwtKeys};
pub use password::{
    validate_password, Argon2Config, PasswordCheck, PasswordHasher, PasswordPolicy,
};
pub use roles::{role_allows, Permission, Role};
pub use signing_secret::{decode_signing_secret, generate_signing_secret};
pub use token::{OpaqueToken, TokenHash};
