//! Organization API keys: `pk_live_<public id>.sk_live_<secret>`.
//!
//! * The **public id** is 16 `OsRng` bytes as 32 lowercase hexadecimal characters. It is not
//!   secret: store it in clear (unique index) to find the key, show it in lists.
//! * The **secret** is 32 `OsRng` bytes (256 bits) as 43 base64url characters without
//!   padding. Only its [`TokenHash`] (SHA-256 of the 43 characters) is stored; a secret with
//!   that much entropy needs no slow hash.
//! * The **full key** is shown to the user once, at creation.
//!
//! A full key is therefore always 8 + 32 + 1 + 8 + 43 = 92 ASCII characters.
//!
//! ```
//! use punctual_auth::api_key::{
//!     looks_like_api_key, parse_api_key, verify_api_key_secret, ApiKeyMaterial,
//! };
//!
//! // Creation: store `public_id` and `secret_hash.to_hex()`, show `full_key` once.
//! let material = ApiKeyMaterial::generate();
//!
//! // Each request: `Authorization: Bearer <full key>`.
//! let bearer = material.full_key.as_str();
//! assert!(looks_like_api_key(bearer));
//! let parsed = parse_api_key(bearer)?;
//! assert_eq!(parsed.public_id, material.public_id);  // look the key up by it
//! assert!(verify_api_key_secret(&parsed.secret, &material.secret_hash));
//! # Ok::<(), punctual_auth::AuthError>(())
//! ```

use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore as _;

use crate::token::{is_b64url_secret, random_b64url_secret, TokenHash, SECRET_B64_LEN};
use crate::AuthError;

/// What every API key starts with.
pub const PUBLIC_PREFIX: &str = "pk_live_";
/// What the secret half of an API key starts with.
pub const SECRET_PREFIX: &str = "sk_live_";
/// Number of random bytes in a public id.
const PUBLIC_ID_BYTES: usize = 16;
/// Length of a public id: 16 bytes in hexadecimal.
pub const PUBLIC_ID_LEN: usize = PUBLIC_ID_BYTES * 2;
/// Length of a secret: 32 bytes in base64url without padding.
pub const SECRET_LEN: usize = SECRET_B64_LEN;
/// Length of a full key.
pub const API_KEY_LEN: usize =
    PUBLIC_PREFIX.len() + PUBLIC_ID_LEN + 1 + SECRET_PREFIX.len() + SECRET_LEN;

/// A freshly generated API key. `Debug` redacts the full key.
#[derive(Clone)]
pub struct ApiKeyMaterial {
    /// 32 lowercase hexadecimal characters, without the `pk_live_` prefix. Store in clear.
    pub public_id: String,
    /// `pk_live_<public_id>.sk_live_<secret>`: show it to the user once, never store or log it.
    pub full_key: String,
    /// SHA-256 of the secret (the 43 characters after `sk_live_`): store it.
    pub secret_hash: TokenHash,
}

impl ApiKeyMaterial {
    /// Generates a new key from the operating system's CSPRNG.
    #[must_use]
    pub fn generate() -> Self {
        let mut id = [0u8; PUBLIC_ID_BYTES];
        OsRng.fill_bytes(&mut id);
        let public_id = hex::encode(id);
        let secret = random_b64url_secret();
        let secret_hash = TokenHash::from_plaintext(&secret);
        let full_key = format!("{PUBLIC_PREFIX}{public_id}.{SECRET_PREFIX}{secret}");
        Self {
            public_id,
            full_key,
            secret_hash,
        }
    }
}

impl fmt::Debug for ApiKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyMaterial")
            .field("public_id", &self.public_id)
            .field("full_key", &"<redacted>")
            .field("secret_hash", &self.secret_hash)
            .finish()
    }
}

/// The two halves of a presented API key. `Debug` redacts the secret.
///
/// Deliberately not `PartialEq`: compare the secret only with [`verify_api_key_secret`].
#[derive(Clone)]
pub struct ParsedApiKey {
    /// 32 lowercase hexadecimal characters, without the `pk_live_` prefix.
    pub public_id: String,
    /// 43 base64url characters, without the `sk_live_` prefix.
    pub secret: String,
}

impl fmt::Debug for ParsedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedApiKey")
            .field("public_id", &self.public_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Splits and strictly checks a presented API key.
///
/// Accepted: exactly `pk_live_` + 32 lowercase hex + `.sk_live_` + the canonical 43-character
/// base64url (no padding) encoding of 32 bytes. No surrounding whitespace, no other case.
///
/// # Errors
/// [`AuthError::InvalidApiKey`] for anything else.
pub fn parse_api_key(key: &str) -> Result<ParsedApiKey, AuthError> {
    if key.len() != API_KEY_LEN {
        return Err(AuthError::InvalidApiKey);
    }
    let rest = key
        .strip_prefix(PUBLIC_PREFIX)
        .ok_or(AuthError::InvalidApiKey)?;
    let (public_id, rest) = rest.split_once('.').ok_or(AuthError::InvalidApiKey)?;
    let secret = rest
        .strip_prefix(SECRET_PREFIX)
        .ok_or(AuthError::InvalidApiKey)?;
    let public_id_ok = public_id.len() == PUBLIC_ID_LEN
        && public_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !public_id_ok || !is_b64url_secret(secret) {
        return Err(AuthError::InvalidApiKey);
    }
    Ok(ParsedApiKey {
        public_id: public_id.to_owned(),
        secret: secret.to_owned(),
    })
}

/// Whether `secret` (the part after `sk_live_`) hashes to the stored hash, compared in
/// constant time.
#[must_use]
pub fn verify_api_key_secret(secret: &str, stored: &TokenHash) -> bool {
    stored.matches(secret)
}

/// Whether a bearer token should be treated as an API key (it starts with `pk_live_`) rather
/// than a JWT access token, so one extractor can route between the two.
///
/// It does not validate the key: follow with [`parse_api_key`].
#[must_use]
pub fn looks_like_api_key(token: &str) -> bool {
    token.starts_with(PUBLIC_PREFIX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generate_parse_verify_round_trip() {
        let m = ApiKeyMaterial::generate();
        assert_eq!(m.full_key.len(), API_KEY_LEN);
        assert_eq!(API_KEY_LEN, 92);
        assert_eq!(m.public_id.len(), 32);
        assert!(m
            .full_key
            .starts_with(&format!("pk_live_{}.sk_live_", m.public_id)));
        assert!(looks_like_api_key(&m.full_key));

        let parsed = parse_api_key(&m.full_key).unwrap();
        assert_eq!(parsed.public_id, m.public_id);
        assert_eq!(parsed.secret.len(), 43);
        assert!(verify_api_key_secret(&parsed.secret, &m.secret_hash));
        // The hash is of the secret alone, not of the full key.
        assert!(!verify_api_key_secret(&m.full_key, &m.secret_hash));
    }

    #[test]
    fn keys_are_unique() {
        let a = ApiKeyMaterial::generate();
        let b = ApiKeyMaterial::generate();
        assert_ne!(a.public_id, b.public_id);
        assert_ne!(a.full_key, b.full_key);
        assert_ne!(a.secret_hash, b.secret_hash);
    }

    #[test]
    fn tampered_secret_fails() {
        let m = ApiKeyMaterial::generate();
        let parsed = parse_api_key(&m.full_key).unwrap();
        let mut chars: Vec<char> = parsed.secret.chars().collect();
        chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert!(!verify_api_key_secret(&tampered, &m.secret_hash));
        assert!(!verify_api_key_secret("", &m.secret_hash));
        // Another key's secret does not match either.
        let other = parse_api_key(&ApiKeyMaterial::generate().full_key).unwrap();
        assert!(!verify_api_key_secret(&other.secret, &m.secret_hash));
    }

    #[test]
    fn malformed_keys_are_rejected() {
        let m = ApiKeyMaterial::generate();
        let good = m.full_key.clone();
        let parsed = parse_api_key(&good).unwrap();
        let (id, secret) = (parsed.public_id.as_str(), parsed.secret.as_str());
        let cases: Vec<(&str, String)> = vec![
            ("empty", String::new()),
            ("just prefix", "pk_live_".into()),
            (
                "wrong public prefix",
                format!("pk_test_{id}.sk_live_{secret}"),
            ),
            (
                "wrong secret prefix",
                format!("pk_live_{id}.sk_test_{secret}"),
            ),
            ("uppercase prefix", format!("PK_LIVE_{id}.sk_live_{secret}")),
            ("swapped halves", format!("sk_live_{secret}.pk_live_{id}")),
            ("no dot", format!("pk_live_{id}sk_live_{secret}x")),
            (
                "colon instead of dot",
                format!("pk_live_{id}:sk_live_{secret}"),
            ),
            (
                "uppercase hex id",
                format!(
                    "pk_live_{}.sk_live_{secret}",
                    id.to_uppercase().replace(|c: char| c.is_ascii_digit(), "A")
                ),
            ),
            (
                "non-hex id",
                format!("pk_live_{}.sk_live_{secret}", "g".repeat(32)),
            ),
            (
                "short id",
                format!("pk_live_{}.sk_live_{secret}0", &id[..31]),
            ),
            (
                "long id",
                format!("pk_live_{id}0.sk_live_{}", &secret[..42]),
            ),
            (
                "short secret",
                format!("pk_live_{id}.sk_live_{}", &secret[..42]),
            ),
            ("long secret", format!("pk_live_{id}.sk_live_{secret}A")),
            (
                "padded secret",
                format!("pk_live_{id}.sk_live_{}=", &secret[..42]),
            ),
            (
                "standard base64 char",
                format!("pk_live_{id}.sk_live_{}+", &secret[..42]),
            ),
            (
                "non-canonical secret",
                format!("pk_live_{id}.sk_live_{}B", "A".repeat(42)),
            ),
            ("leading space", format!(" {good}")),
            ("trailing newline", format!("{good}\n")),
            (
                "two dots",
                format!("pk_live_{id}..sk_live_{}", &secret[..42]),
            ),
            (
                "non-ascii",
                format!("pk_live_{}é.sk_live_{secret}", &id[..30]),
            ),
            ("only public half", format!("pk_live_{id}")),
            ("bearer prefix", format!("Bearer {good}")),
        ];
        for (name, key) in &cases {
            assert!(
                matches!(parse_api_key(key), Err(AuthError::InvalidApiKey)),
                "{name}: {key}"
            );
        }
    }

    #[test]
    fn looks_like_api_key_routes_on_prefix() {
        assert!(looks_like_api_key("pk_live_anything"));
        assert!(!looks_like_api_key("eyJhbGciOiJIUzI1NiJ9.e30.x"));
        assert!(!looks_like_api_key("sk_live_abc"));
        assert!(!looks_like_api_key(""));
    }

    #[test]
    fn debug_redacts_secrets() {
        let m = ApiKeyMaterial::generate();
        let parsed = parse_api_key(&m.full_key).unwrap();
        let debug = format!("{m:?} {parsed:?}");
        assert!(!debug.contains(&m.full_key));
        assert!(!debug.contains(&parsed.secret));
        assert!(!debug.contains(&m.secret_hash.to_hex()));
        assert!(debug.contains(&m.public_id));
    }
}
