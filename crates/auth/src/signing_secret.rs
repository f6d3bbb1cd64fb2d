//! Webhook signing secrets in the [Standard Webhooks] format: `whsec_` followed by the
//! standard base64 (with padding) of 32 random bytes.
//!
//! The HMAC-SHA256 key is the decoded bytes, not the string: use
//! [`decode_signing_secret`] before signing.
//!
//! ```
//! use punctual_auth::signing_secret::{decode_signing_secret, generate_signing_secret};
//!
//! let secret = generate_signing_secret();
//! assert!(secret.starts_with("whsec_"));
//! assert_eq!(decode_signing_secret(&secret)?.len(), 32);
//! # Ok::<(), punctual_auth::AuthError>(())
//! ```
//!
//! [Standard Webhooks]: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore as _;

use crate::AuthError;

pub use punctual_domain::signing_secret::SIGNING_SECRET_PREFIX;
/// Number of random bytes in a generated signing secret.
const SIGNING_SECRET_BYTES: usize = 32;

/// Generates a new signing secret: `whsec_` + base64 (standard alphabet, padded) of 32
/// `OsRng` bytes, 50 characters in all.
///
/// The result is a bare `String`: do not log it.
#[must_use]
pub fn generate_signing_secret() -> String {
    let mut bytes = [0u8; SIGNING_SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    format!("{SIGNING_SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// Returns the HMAC key of a signing secret: the bytes after `whsec_`, base64-decoded.
///
/// Accepts any length from 24 to 64 bytes, as Standard Webhooks does, so that secrets
/// imported from elsewhere keep working.
///
/// # Errors
/// [`AuthError::InvalidSigningSecret`] when the prefix is missing, the base64 is invalid or
/// the key length is outside 24..=64 bytes.
pub fn decode_signing_secret(secret: &str) -> Result<Vec<u8>, AuthError> {
    punctual_domain::signing_secret::signing_key(secret).ok_or(AuthError::InvalidSigningSecret)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn format_is_standard_webhooks() {
        let s = generate_signing_secret();
        assert_eq!(s.len(), 50);
        let b64 = s.strip_prefix("whsec_").unwrap();
        assert!(b64.ends_with('='));
        assert_eq!(STANDARD.decode(b64).unwrap().len(), 32);
        assert_eq!(
            decode_signing_secret(&s).unwrap(),
            STANDARD.decode(b64).unwrap()
        );
        assert_ne!(s, generate_signing_secret());
    }

    #[test]
    fn decode_rejects_bad_secrets() {
        let short = format!("whsec_{}", STANDARD.encode([0u8; 16]));
        let long = format!("whsec_{}", STANDARD.encode([0u8; 65]));
        let no_prefix = STANDARD.encode([0u8; 32]);
        for bad in ["", "whsec_", "whsec_!!!!", &short, &long, &no_prefix] {
            assert_eq!(
                decode_signing_secret(bad),
                Err(AuthError::InvalidSigningSecret),
                "{bad}"
            );
        }
        // The Standard Webhooks example secret.
        assert_eq!(
            decode_signing_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .unwrap()
                .len(),
            24
        );
    }
}
