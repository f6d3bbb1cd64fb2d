//! The format of webhook signing secrets ([Standard Webhooks]): `whsec_` followed by
//! the standard base64 (with padding) of the HMAC key. The API hands them out and the
//! engine signs with them; both read them here, so neither accepts one the other
//! would refuse.
//!
//! [Standard Webhooks]: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

use std::ops::RangeInclusive;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// What every signing secret starts with.
pub const SIGNING_SECRET_PREFIX: &str = "whsec_";

/// Key lengths accepted, in bytes: those Standard Webhooks allows, so that secrets
/// imported from elsewhere keep working.
pub const SIGNING_KEY_BYTES: RangeInclusive<usize> = 24..=64;

/// The HMAC key of a signing secret: the bytes after `whsec_`, base64-decoded.
/// None when the prefix is missing, the base64 is invalid or the key's length is
/// outside [`SIGNING_KEY_BYTES`].
#[must_use]
pub fn signing_key(secret: &str) -> Option<Vec<u8>> {
    let key = STANDARD
        .decode(secret.strip_prefix(SIGNING_SECRET_PREFIX)?)
        .ok()?;
    SIGNING_KEY_BYTES.contains(&key.len()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_outside_the_standard_lengths_are_refused() {
        for bytes in [24, 32, 64] {
            let secret = format!("whsec_{}", STANDARD.encode(vec![1u8; bytes]));
            assert_eq!(signing_key(&secret), Some(vec![1u8; bytes]));
        }
        for bytes in [0, 16, 23, 65] {
            let secret = format!("whsec_{}", STANDARD.encode(vec![1u8; bytes]));
            assert_eq!(signing_key(&secret), None, "{bytes} bytes");
        }
        let unprefixed = STANDARD.encode([1u8; 32]);
        for bad in ["", "whsec_", "whsec_!!!!", unprefixed.as_str()] {
            assert_eq!(signing_key(bad), None, "{bad}");
        }
    }
}
