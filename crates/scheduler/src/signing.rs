//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
//! keyed with the base64 part of the organization's `whsec_` secret. During a
//! rotation both secrets sign, space-separated, so receivers may use either.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header value signing `body` for message `id` at `timestamp` (seconds)
/// with each of `secrets`; secrets that do not decode are skipped.
pub fn signature_header(
    secrets: &[String],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<String> {
    let signatures: Vec<String> = secrets
        .iter()
        .filter_map(|secret| sign(secret, id, timestamp, body))
        .collect();
    (!signatures.is_empty()).then(|| signatures.join(" "))
}

fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}
