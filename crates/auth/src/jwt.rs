//! Access tokens: short-lived JWTs signed with HS256, the algorithm pinned in code.
//!
//! ```
//! use chrono::{Duration, Utc};
//! use punctual_auth::jwt::{generate_jwt_secret, JwtConfig, JwtKeys};
//! use uuid::Uuid;
//!
//! let keys = JwtKeys::new(JwtConfig {
//!     secret: generate_jwt_secret(),
//!     issuer: "https://punctual.example".into(),
//!     audience: "punctual-api".into(),
//!     access_ttl: Duration::minutes(15),
//! })?;
//!
//! let (user_id, session_id, now) = (Uuid::new_v4(), Uuid::new_v4(), Utc::now());
//! let issued = keys.issue(user_id, session_id, now)?;
//! assert_eq!(issued.expires_in, 900);
//!
//! let claims = keys.verify(&issued.token, now)?;
//! assert_eq!((claims.sub, claims.sid), (user_id, session_id));
//! assert!(keys.verify(&issued.token, now + Duration::minutes(15)).is_err()); // expired
//! # Ok::<(), punctual_auth::AuthError>(())
//! ```

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::rngs::OsRng;
use rand::RngCore as _;
use uuid::Uuid;

use crate::AuthError;

/// The only signing algorithm issued and accepted.
const ALGORITHM: Algorithm = Algorithm::HS256;

/// Settings for [`JwtKeys`]. `Debug` redacts the secret.
#[derive(Clone)]
pub struct JwtConfig {
    /// HMAC-SHA256 key, at least 32 bytes (256 bits). See [`generate_jwt_secret`].
    pub secret: Vec<u8>,
    /// Value of the `iss` claim, issued and required.
    pub issuer: String,
    /// Value of the `aud` claim, issued and required.
    pub audience: String,
    /// Lifetime of an access token: more than zero (at least one second), at most 15 minutes.
    /// Sub-second parts are dropped.
    pub access_ttl: Duration,
}

impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl", &self.access_ttl)
            .finish()
    }
}

impl JwtConfig {
    /// The shortest accepted secret, in bytes.
    pub const MIN_SECRET_BYTES: usize = 32;

    /// The longest accepted access token lifetime.
    #[must_use]
    pub fn max_access_ttl() -> Duration {
        Duration::minutes(15)
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: Uuid,
    /// The session (refresh-token family) id: revoking the family ends the session.
    pub sid: Uuid,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch; the token is refused from this second on.
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Unique token id (random UUID v4).
    pub jti: Uuid,
}

/// A freshly signed access token, as returned to the client. `Debug` redacts the token.
#[derive(Clone)]
pub struct IssuedAccessToken {
    /// The compact JWT. Do not log it.
    pub token: String,
    /// Seconds until it expires (the OAuth `expires_in`).
    pub expires_in: i64,
}

impl fmt::Debug for IssuedAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedAccessToken")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Issues and verifies access tokens. Build once at start-up and share (`Send + Sync`).
///
/// `Debug` does not print the key.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_seconds: i64,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &ALGORITHM)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl_seconds", &self.ttl_seconds)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Checks the configuration and prepares the keys.
    ///
    /// # Errors
    /// [`AuthError::InvalidConfig`] when the secret is shorter than 32 bytes, the issuer or
    /// audience is empty, or the lifetime is not within (0 s, 15 min] once sub-second parts
    /// are dropped.
    pub fn new(config: JwtConfig) -> Result<Self, AuthError> {
        if config.secret.len() < JwtConfig::MIN_SECRET_BYTES {
            return Err(AuthError::InvalidConfig {
                field: "secret",
                message: format!(
                    "must be at least {} bytes (256 bits)",
                    JwtConfig::MIN_SECRET_BYTES
                ),
            });
        }
        if config.issuer.is_empty() {
            return Err(AuthError::InvalidConfig {
                field: "issuer",
                message: "must not be empty".into(),
            });
        }
        if config.audience.is_empty() {
            return Err(AuthError::InvalidConfig {
                field: "audience",
                message: "must not be empty".into(),
            });
        }
        let ttl_seconds = config.access_ttl.num_seconds();
        if ttl_seconds <= 0 || config.access_ttl > JwtConfig::max_access_ttl() {
            return Err(AuthError::InvalidConfig {
                field: "access_ttl",
                message: "must be between 1 second and 15 minutes".into(),
            });
        }

        let mut validation = Validation::new(ALGORITHM);
        validation.algorithms = vec![ALGORITHM];
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // jsonwebtoken compares `exp` with the system clock; we compare it with the
        // caller's `now` instead, with no leeway (see `verify`).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;

        Ok(Self {
            encoding: EncodingKey::from_secret(&config.secret),
            decoding: DecodingKey::from_secret(&config.secret),
            validation,
            issuer: config.issuer,
            audience: config.audience,
            ttl_seconds,
        })
    }

    /// Signs an access token for `user_id` in session `session_id`, valid from `now` for the
    /// configured lifetime, with a random `jti`.
    ///
    /// # Errors
    /// [`AuthError::Crypto`] if encoding fails (it does not in practice).
    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<IssuedAccessToken, AuthError> {
        let iat = now.timestamp();
        let claims = AccessClaims {
            sub: user_id,
            sid: session_id,
            iat,
            exp: iat.saturating_add(self.ttl_seconds),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4(),
        };
        let token = jsonwebtoken::encode(&Header::new(ALGORITHM), &claims, &self.encoding)
            .map_err(|e| AuthError::Crypto(e.to_string()))?;
        Ok(IssuedAccessToken {
            token,
            expires_in: self.ttl_seconds,
        })
    }

    /// Verifies a token and returns its claims.
    ///
    /// The header's `alg` must be HS256 (so `none`, HS512, RS256… are refused), the signature
    /// must match, `iss` and `aud` must be the configured ones, and `now` must be before
    /// `exp` (no leeway: at `now == exp` the token is refused).
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for every failure, without detail.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, AuthError> {
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| AuthError::InvalidToken)?
            .claims;
        // `iss` and `aud` were checked by jsonwebtoken; checking again costs nothing.
        if now.timestamp() >= claims.exp || claims.iss != self.issuer || claims.aud != self.audience
        {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }

    /// The lifetime of issued tokens, in seconds.
    #[must_use]
    pub fn access_ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }
}

/// Generates a 32-byte (256-bit) HS256 secret from the operating system's CSPRNG.
#[must_use]
pub fn generate_jwt_secret() -> Vec<u8> {
    let mut secret = vec![0u8; JwtConfig::MIN_SECRET_BYTES];
    OsRng.fill_bytes(&mut secret);
    secret
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use chrono::TimeZone as _;

    const ISS: &str = "https://punctual.test";
    const AUD: &str = "punctual-api";

    fn config(secret: Vec<u8>) -> JwtConfig {
        JwtConfig {
            secret,
            issuer: ISS.into(),
            audience: AUD.into(),
            access_ttl: Duration::minutes(15),
        }
    }

    fn keys() -> (JwtKeys, Vec<u8>) {
        let secret = generate_jwt_secret();
        (JwtKeys::new(config(secret.clone())).unwrap(), secret)
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap()
    }

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn round_trip() {
        let (keys, _) = keys();
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let issued = keys.issue(user, session, now()).unwrap();
        assert_eq!(issued.expires_in, 900);
        let claims = keys.verify(&issued.token, now()).unwrap();
        assert_eq!(claims.sub, user);
        assert_eq!(claims.sid, session);
        assert_eq!(claims.iat, now().timestamp());
        assert_eq!(claims.exp, now().timestamp() + 900);
        assert_eq!(claims.iss, ISS);
        assert_eq!(claims.aud, AUD);

        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);

        // jti is unique per token.
        let again = keys.issue(user, session, now()).unwrap();
        assert_ne!(keys.verify(&again.token, now()).unwrap().jti, claims.jti);
    }

    #[test]
    fn expiry_is_checked_against_now_without_leeway() {
        let (keys, _) = keys();
        let issued = keys.issue(Uuid::new_v4(), Uuid::new_v4(), now()).unwrap();
        let exp = now() + Duration::seconds(900);
        assert!(keys
            .verify(&issued.token, exp - Duration::seconds(1))
            .is_ok());
        assert_eq!(
            keys.verify(&issued.token, exp),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(
            keys.verify(&issued.token, exp + Duration::seconds(1)),
            Err(AuthError::InvalidToken)
        );
        // A token from 2030 verified against the real clock is still valid: no system time.
        let past = Utc.with_ymd_and_hms(2001, 1, 1, 0, 0, 0).unwrap();
        let old = keys.issue(Uuid::new_v4(), Uuid::new_v4(), past).unwrap();
        assert_eq!(keys.verify(&old.token, now()), Err(AuthError::InvalidToken));
        assert!(keys.verify(&old.token, past).is_ok());
    }

    #[test]
    fn tampered_signature_and_payload_are_rejected() {
        let (keys, _) = keys();
        let token = keys
            .issue(Uuid::new_v4(), Uuid::new_v4(), now())
            .unwrap()
            .token;
        let (message, signature) = token.rsplit_once('.').unwrap();

        // Flip one signature character.
        let mut sig: Vec<u8> = signature.bytes().collect();
        sig[0] = if sig[0] == b'A' { b'B' } else { b'A' };
        let forged = format!("{message}.{}", String::from_utf8(sig).unwrap());
        assert_eq!(keys.verify(&forged, now()), Err(AuthError::InvalidToken));

        // Empty signature.
        assert_eq!(
            keys.verify(&format!("{message}."), now()),
            Err(AuthError::InvalidToken)
        );

        // Another user's id in the payload, original signature.
        let (header, _) = message.split_once('.').unwrap();
        let forged = format!("{header}.{}.{signature}", b64(&valid_payload()));
        assert_eq!(keys.verify(&forged, now()), Err(AuthError::InvalidToken));

        // Signed with another secret.
        let (other, _) = self::keys();
        let foreign = other
            .issue(Uuid::new_v4(), Uuid::new_v4(), now())
            .unwrap()
            .token;
        assert_eq!(keys.verify(&foreign, now()), Err(AuthError::InvalidToken));
    }

    fn valid_payload() -> String {
        format!(
            r#"{{"sub":"{}","sid":"{}","iat":{},"exp":{},"iss":"{ISS}","aud":"{AUD}","jti":"{}"}}"#,
            Uuid::new_v4(),
            Uuid::new_v4(),
            now().timestamp(),
            now().timestamp() + 900,
            Uuid::new_v4()
        )
    }

    #[test]
    fn alg_none_is_rejected() {
        let (keys, _) = keys();
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"None","typ":"JWT"}"#,
            r#"{"alg":"NONE","typ":"JWT"}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            let token = format!("{}.{}.", b64(header), b64(&valid_payload()));
            assert_eq!(
                keys.verify(&token, now()),
                Err(AuthError::InvalidToken),
                "{header}"
            );
        }
    }

    #[test]
    fn other_algorithms_are_rejected() {
        let (keys, secret) = keys();
        let claims = keys
            .verify(
                &keys
                    .issue(Uuid::new_v4(), Uuid::new_v4(), now())
                    .unwrap()
                    .token,
                now(),
            )
            .unwrap();

        // HS512 and HS384 with the very same secret: correctly signed, wrong algorithm.
        for alg in [Algorithm::HS512, Algorithm::HS384] {
            let token = jsonwebtoken::encode(
                &Header::new(alg),
                &claims,
                &EncodingKey::from_secret(&secret),
            )
            .unwrap();
            assert_eq!(
                keys.verify(&token, now()),
                Err(AuthError::InvalidToken),
                "{alg:?}"
            );
        }

        // An HS256 token whose header claims RS256 or ES256 (key-confusion attempts).
        let token = keys
            .issue(Uuid::new_v4(), Uuid::new_v4(), now())
            .unwrap()
            .token;
        let (_, rest) = token.split_once('.').unwrap();
        for header in [
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"alg":"ES256","typ":"JWT"}"#,
            r#"{"alg":"EdDSA","typ":"JWT"}"#,
            r#"{"alg":"HS257","typ":"JWT"}"#,
        ] {
            let forged = format!("{}.{rest}", b64(header));
            assert_eq!(
                keys.verify(&forged, now()),
                Err(AuthError::InvalidToken),
                "{header}"
            );
        }
    }

    #[test]
    fn wrong_issuer_or_audience_is_rejected() {
        let (keys, secret) = keys();
        let wrong_iss = JwtKeys::new(JwtConfig {
            issuer: "https://evil.test".into(),
            ..config(secret.clone())
        })
        .unwrap();
        let wrong_aud = JwtKeys::new(JwtConfig {
            audience: "other-service".into(),
            ..config(secret)
        })
        .unwrap();
        for other in [&wrong_iss, &wrong_aud] {
            let token = other
                .issue(Uuid::new_v4(), Uuid::new_v4(), now())
                .unwrap()
                .token;
            assert_eq!(keys.verify(&token, now()), Err(AuthError::InvalidToken));
            // And the other way round.
            let ours = keys
                .issue(Uuid::new_v4(), Uuid::new_v4(), now())
                .unwrap()
                .token;
            assert_eq!(other.verify(&ours, now()), Err(AuthError::InvalidToken));
        }
    }

    #[test]
    fn missing_claims_and_malformed_tokens_are_rejected() {
        #[derive(serde::Serialize)]
        struct NoAud {
            sub: Uuid,
            sid: Uuid,
            iat: i64,
            exp: i64,
            iss: String,
            jti: Uuid,
        }
        let (keys, secret) = keys();
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoAud {
                sub: Uuid::new_v4(),
                sid: Uuid::new_v4(),
                iat: now().timestamp(),
                exp: now().timestamp() + 900,
                iss: ISS.into(),
                jti: Uuid::new_v4(),
            },
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert_eq!(keys.verify(&token, now()), Err(AuthError::InvalidToken));

        for bad in [
            "",
            ".",
            "..",
            "a.b.c",
            "not a token",
            "eyJhbGciOiJIUzI1NiJ9",
        ] {
            assert_eq!(
                keys.verify(bad, now()),
                Err(AuthError::InvalidToken),
                "{bad}"
            );
        }
    }

    #[test]
    fn config_is_checked() {
        let secret = generate_jwt_secret();
        assert_eq!(secret.len(), 32);
        assert_ne!(secret, generate_jwt_secret());

        let refused = |c: JwtConfig, field: &str| match JwtKeys::new(c) {
            Err(AuthError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected refusal of {field}, got {other:?}"),
        };
        refused(config(vec![7; 31]), "secret");
        refused(config(Vec::new()), "secret");
        assert!(JwtKeys::new(config(vec![7; 32])).is_ok());

        for ttl in [
            Duration::minutes(15) + Duration::seconds(1),
            Duration::hours(1),
            Duration::zero(),
            Duration::seconds(-5),
            Duration::milliseconds(500),
        ] {
            refused(
                JwtConfig {
                    access_ttl: ttl,
                    ..config(secret.clone())
                },
                "access_ttl",
            );
        }
        for ttl in [
            Duration::seconds(1),
            Duration::minutes(5),
            Duration::minutes(15),
        ] {
            let keys = JwtKeys::new(JwtConfig {
                access_ttl: ttl,
                ..config(secret.clone())
            })
            .unwrap();
            assert_eq!(
                keys.issue(Uuid::new_v4(), Uuid::new_v4(), now())
                    .unwrap()
                    .expires_in,
                ttl.num_seconds()
            );
        }
        refused(
            JwtConfig {
                issuer: String::new(),
                ..config(secret.clone())
            },
            "issuer",
        );
        refused(
            JwtConfig {
                audience: String::new(),
                ..config(secret)
            },
            "audience",
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let (keys, secret) = keys();
        let cfg = config(secret.clone());
        let issued = keys.issue(Uuid::new_v4(), Uuid::new_v4(), now()).unwrap();
        let debug = format!("{cfg:?} {keys:?} {issued:?}");
        assert!(!debug.contains(&issued.token));
        assert!(!debug.contains(&format!("{:?}", secret)));
        assert!(!debug.contains(&URL_SAFE_NO_PAD.encode(&secret)));
        assert!(!debug.contains(&hex::encode(&secret)));
        assert!(debug.contains(ISS));
    }
}
