//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
//! keyed with the base64 part of the organization's `whsec_` secret. During a
//! rotation both secrets sign, space-separated, so receivers may use either.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `webhook-id` of a job's occurrence: the same for every attempt at it
/// (retries, and a send again after a node was lost), as Standard Webhooks asks,
/// so that a receiver can tell a message delivered twice. Derived (UUIDv5 in the
/// job's namespace, named by the occurrence's instant to the microsecond, as
/// stored) rather than stored: an occurrence is its job and instant.
pub fn occurrence_message_id(
    job_id: uuid::Uuid,
    scheduled_for: chrono::DateTime<chrono::Utc>,
) -> String {
    uuid::Uuid::new_v5(&job_id, &scheduled_for.timestamp_micros().to_be_bytes()).to_string()
}

/// An organization's secrets, decoded and keyed once. Keying HMAC-SHA256 hashes
/// two blocks of its own; a request signed from a keyed copy hashes only its
/// message, so the engine keeps these, not the secrets, in its cache.
#[derive(Clone, Default)]
pub struct SigningKeys(Vec<Hmac<Sha256>>);

impl SigningKeys {
    /// Keys for `secrets` (`whsec_…`); secrets that do not decode are skipped.
    pub fn new(secrets: &[String]) -> Self {
        Self(secrets.iter().filter_map(|secret| keyed(secret)).collect())
    }

    /// Whether no secret signs (the header is then left out).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The header value signing `body` for message `id` at `timestamp`
    /// (seconds) with each key; None without keys.
    pub fn header(&self, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
        let signatures: Vec<String> = self
            .0
            .iter()
            .map(|key| {
                let mut mac = key.clone();
                mac.update(id.as_bytes());
                mac.update(b".");
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b".");
                mac.update(body);
                format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
            })
            .collect();
        (!signatures.is_empty()).then(|| signatures.join(" "))
    }
}

/// Never shows key material.
impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKeys({} keys)", self.0.len())
    }
}

/// Read by the domain's rules for the format, as the API reads them.
fn keyed(secret: &str) -> Option<Hmac<Sha256>> {
    let key = punctual_domain::signing_secret::signing_key(secret)?;
    Hmac::<Sha256>::new_from_slice(&key).ok()
}

/// The header value signing `body` for message `id` at `timestamp` (seconds)
/// with each of `secrets`; secrets that do not decode are skipped.
pub fn signature_header(
    secrets: &[String],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<String> {
    SigningKeys::new(secrets).header(id, timestamp, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification: a keyed copy must
    /// sign exactly as a fresh key does, every time it is reused.
    #[test]
    fn keyed_once_signs_as_the_specification_says_every_time() {
        let secret = vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()];
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let keys = SigningKeys::new(&secret);
        for _ in 0..3 {
            assert_eq!(keys.header(id, 1614265330, body).as_deref(), Some(expected));
        }
        assert_eq!(
            signature_header(&secret, id, 1614265330, body).as_deref(),
            Some(expected)
        );
    }

    #[test]
    fn undecodable_secrets_are_skipped_and_no_keys_sign_nothing() {
        // A key of 16 bytes is base64 all right, but shorter than Standard
        // Webhooks allows: the API refuses it, and so does the engine.
        let short = format!("whsec_{}", STANDARD.encode([7u8; 16]));
        let keys = SigningKeys::new(&["not-a-secret".to_owned(), "whsec_!!".to_owned(), short]);
        assert!(keys.is_empty());
        assert_eq!(keys.header("id", 1, b""), None);
        assert_eq!(format!("{keys:?}"), "SigningKeys(0 keys)");
    }
}
