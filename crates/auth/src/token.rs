//! Opaque random tokens (refresh, password-reset, magic-link, email-verification and
//! invitation tokens) and their stored SHA-256 hash.
//!
//! The plaintext goes to the client once; only the [`TokenHash`] is stored. A token is
//! 32 bytes from the operating system's CSPRNG (256 bits, above the 128 required), so a plain
//! SHA-256 is enough: there is nothing to brute-force.
//!
//! ```
//! use punctual_auth::token::{OpaqueToken, TokenHash};
//!
//! let (plaintext, hash) = OpaqueToken::generate();   // send `plaintext`, store `hash.to_hex()`
//! assert_eq!(plaintext.len(), 43);
//!
//! // Later, the client presents the token:
//! let stored = TokenHash::from_hex(&hash.to_hex())?;
//! assert_eq!(TokenHash::from_plaintext(&plaintext), stored); // constant-time comparison
//! # Ok::<(), punctual_auth::AuthError>(())
//! ```

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::AuthError;

/// Number of random bytes in an opaque token or an API key secret.
pub(crate) const SECRET_BYTES: usize = 32;
/// Length of [`SECRET_BYTES`] encoded as base64url without padding.
pub(crate) const SECRET_B64_LEN: usize = 43;

/// Generator of opaque random tokens; see the [module documentation](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpaqueToken;

impl OpaqueToken {
    /// Length of a plaintext token: 32 bytes as base64url without padding.
    pub const PLAINTEXT_LEN: usize = SECRET_B64_LEN;

    /// Makes a new token: the plaintext (32 `OsRng` bytes, base64url without padding, 43
    /// characters) to hand to the client, and its hash to store.
    ///
    /// The plaintext is a bare `String`: do not log it.
    #[must_use]
    pub fn generate() -> (String, TokenHash) {
        let plaintext = random_b64url_secret();
        let hash = TokenHash::from_plaintext(&plaintext);
        (plaintext, hash)
    }

    /// Whether `plaintext` has the shape of a token made by [`generate`](Self::generate)
    /// (43 base64url characters encoding 32 bytes).
    ///
    /// Optional: a malformed token simply hashes to nothing stored. Useful to answer early
    /// without a database lookup.
    #[must_use]
    pub fn is_well_formed(plaintext: &str) -> bool {
        is_b64url_secret(plaintext)
    }
}

/// 32 `OsRng` bytes as base64url without padding.
pub(crate) fn random_b64url_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `s` is exactly the canonical base64url (no padding) encoding of 32 bytes.
pub(crate) fn is_b64url_secret(s: &str) -> bool {
    s.len() == SECRET_B64_LEN
        && s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        // The engine refuses non-zero trailing bits, so only canonical encodings pass.
        && URL_SAFE_NO_PAD
            .decode(s)
            .is_ok_and(|bytes| bytes.len() == SECRET_BYTES)
}

/// SHA-256 of a token's plaintext (its UTF-8 bytes), as stored in the database.
///
/// Equality is constant-time ([`subtle`]); `Debug` does not print the bytes.
///
/// ```
/// use punctual_auth::token::TokenHash;
///
/// let h = TokenHash::from_plaintext("abc");
/// assert_eq!(
///     h.to_hex(),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// assert_eq!(format!("{h:?}"), "TokenHash(<redacted>)");
/// ```
#[derive(Clone, Copy)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a plaintext token (or API key secret).
    #[must_use]
    pub fn from_plaintext(plaintext: &str) -> Self {
        Self(Sha256::digest(plaintext.as_bytes()).into())
    }

    /// Lowercase hexadecimal, 64 characters: the stored form.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the stored form: exactly 64 hexadecimal characters (either case).
    ///
    /// # Errors
    /// [`AuthError::InvalidTokenHash`] for anything else.
    pub fn from_hex(s: &str) -> Result<Self, AuthError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| AuthError::InvalidTokenHash)?;
        Ok(Self(bytes))
    }

    /// Whether `plaintext` hashes to this hash, compared in constant time.
    #[must_use]
    pub fn matches(&self, plaintext: &str) -> bool {
        Self::from_plaintext(plaintext) == *self
    }
}

impl ConstantTimeEq for TokenHash {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0[..].ct_eq(&other.0[..])
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for TokenHash {}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_is_43_base64url_chars_and_hash_is_stable() {
        let (plaintext, hash) = OpaqueToken::generate();
        assert_eq!(plaintext.len(), 43);
        assert!(plaintext
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(URL_SAFE_NO_PAD.decode(&plaintext).unwrap().len(), 32);
        assert!(OpaqueToken::is_well_formed(&plaintext));

        assert_eq!(TokenHash::from_plaintext(&plaintext), hash);
        assert_eq!(TokenHash::from_plaintext(&plaintext), hash);
        assert!(hash.matches(&plaintext));
        assert_eq!(
            hash.0,
            <[u8; 32]>::from(Sha256::digest(plaintext.as_bytes()))
        );
    }

    #[test]
    fn tokens_are_unique() {
        let (a, ha) = OpaqueToken::generate();
        let (b, hb) = OpaqueToken::generate();
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert!(!ha.matches(&b));
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let (_, hash) = OpaqueToken::generate();
        let hex = hash.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(hex, hex.to_lowercase());
        assert_eq!(TokenHash::from_hex(&hex).unwrap(), hash);
        assert_eq!(TokenHash::from_hex(&hex.to_uppercase()).unwrap(), hash);
        for bad in ["", "00", &hex[..63], &format!("{hex}00"), &"zz".repeat(32)] {
            assert_eq!(TokenHash::from_hex(bad), Err(AuthError::InvalidTokenHash));
        }
    }

    #[test]
    fn well_formed_rejects_other_shapes() {
        let (t, _) = OpaqueToken::generate();
        assert!(!OpaqueToken::is_well_formed(""));
        assert!(!OpaqueToken::is_well_formed(&t[..42]));
        assert!(!OpaqueToken::is_well_formed(&format!("{t}A")));
        assert!(!OpaqueToken::is_well_formed(&format!("{}=", &t[..42])));
        assert!(!OpaqueToken::is_well_formed(&format!("{}+", &t[..42])));
        // Non-canonical last character (non-zero trailing bits).
        assert!(!OpaqueToken::is_well_formed(&format!(
            "{}B",
            &"A".repeat(42)
        )));
        assert!(OpaqueToken::is_well_formed(&"A".repeat(43)));
    }

    #[test]
    fn debug_redacts() {
        let (plaintext, hash) = OpaqueToken::generate();
        let debug = format!("{hash:?}");
        assert!(!debug.contains(&hash.to_hex()));
        assert!(!debug.contains(&plaintext));
    }
}
