//! Passwords: the length policy and argon2id hashing.
//!
//! ```
//! use punctual_auth::password::{validate_password, Argon2Config, PasswordHasher};
//!
//! validate_password("correct horse battery staple")?;
//! let hasher = PasswordHasher::new(Argon2Config::default())?;
//! let phc = hasher.hash("correct horse battery staple")?;
//! assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
//!
//! let check = hasher.verify("correct horse battery staple", &phc)?;
//! assert!(check.valid && !check.needs_rehash);
//! assert!(!hasher.verify("wrong", &phc)?.valid);
//! # Ok::<(), punctual_auth::AuthError>(())
//! ```

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;

use crate::AuthError;

/// The password rules of SECURITY.md: 8 to 128 characters, any characters.
///
/// Characters are Unicode scalar values (`str::chars`), not bytes, so `"ééééééé"` (7
/// characters, 14 bytes) is too short.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PasswordPolicy;

impl PasswordPolicy {
    /// The shortest acceptable password, in characters.
    pub const MIN_CHARS: usize = 8;
    /// The longest acceptable password, in characters.
    pub const MAX_CHARS: usize = 128;

    /// Checks `password` against the policy.
    ///
    /// # Errors
    /// [`AuthError::InvalidField`] with `field == "password"` when the length is out of range.
    ///
    /// ```
    /// use punctual_auth::{password::PasswordPolicy, AuthError};
    ///
    /// assert!(PasswordPolicy.check("12345678").is_ok());
    /// assert!(matches!(
    ///     PasswordPolicy.check("1234567"),
    ///     Err(AuthError::InvalidField { field: "password", .. })
    /// ));
    /// ```
    pub fn check(&self, password: &str) -> Result<(), AuthError> {
        let len = password.chars().count();
        if (Self::MIN_CHARS..=Self::MAX_CHARS).contains(&len) {
            Ok(())
        } else {
            Err(AuthError::InvalidField {
                field: "password",
                message: format!(
                    "must be between {} and {} characters long",
                    Self::MIN_CHARS,
                    Self::MAX_CHARS
                ),
            })
        }
    }
}

/// Checks a new password against [`PasswordPolicy`] (8 to 128 characters).
///
/// Use it when a password is chosen (registration, reset, change), not at login: a login with
/// a password that breaks today's policy must still fail the same way as a wrong one.
///
/// # Errors
/// [`AuthError::InvalidField`] with `field == "password"`.
///
/// ```
/// use punctual_auth::password::validate_password;
///
/// assert!(validate_password("パスワードは八文字").is_ok());
/// assert!(validate_password("short").is_err());
/// ```
pub fn validate_password(p: &str) -> Result<(), AuthError> {
    PasswordPolicy.check(p)
}

/// Argon2id cost parameters, read from configuration.
///
/// Missing keys take the defaults, which are OWASP's minimum (m = 19 MiB, t = 2, p = 1);
/// [`Argon2Config::validate`] refuses anything weaker.
///
/// ```
/// use punctual_auth::password::Argon2Config;
///
/// assert!(Argon2Config::default().validate().is_ok());
/// let weak = Argon2Config { memory_kib: 4096, ..Argon2Config::default() };
/// assert!(weak.validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct Argon2Config {
    /// Memory cost in KiB (`m`). At least 19456.
    pub memory_kib: u32,
    /// Number of passes (`t`). At least 2.
    pub iterations: u32,
    /// Degree of parallelism (`p`). At least 1.
    pub parallelism: u32,
}

impl Argon2Config {
    /// OWASP's minimum memory cost, in KiB (19 MiB).
    pub const MIN_MEMORY_KIB: u32 = 19_456;
    /// OWASP's minimum number of passes with that memory.
    pub const MIN_ITERATIONS: u32 = 2;
    /// The minimum degree of parallelism.
    pub const MIN_PARALLELISM: u32 = 1;

    /// Refuses parameters below OWASP's minimum, or that argon2 itself cannot use.
    ///
    /// Each parameter is checked on its own: OWASP's equivalent trade-offs with fewer passes
    /// and more memory (e.g. m = 46 MiB, t = 1) are refused too.
    ///
    /// # Errors
    /// [`AuthError::InvalidConfig`] naming the offending parameter.
    pub fn validate(&self) -> Result<(), AuthError> {
        if self.memory_kib < Self::MIN_MEMORY_KIB {
            return Err(config_error(
                "memory_kib",
                format!("must be at least {} (OWASP minimum)", Self::MIN_MEMORY_KIB),
            ));
        }
        if self.iterations < Self::MIN_ITERATIONS {
            return Err(config_error(
                "iterations",
                format!("must be at least {} (OWASP minimum)", Self::MIN_ITERATIONS),
            ));
        }
        if self.parallelism < Self::MIN_PARALLELISM {
            return Err(config_error(
                "parallelism",
                format!("must be at least {}", Self::MIN_PARALLELISM),
            ));
        }
        // Checked here so that `Params::new` (which computes `8 * p`) never overflows.
        if self.parallelism > Params::MAX_P_COST {
            return Err(config_error(
                "parallelism",
                format!("must be at most {}", Params::MAX_P_COST),
            ));
        }
        self.params().map(|_| ())
    }

    fn params(&self) -> Result<Params, AuthError> {
        Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(Params::DEFAULT_OUTPUT_LEN),
        )
        .map_err(|e| config_error("memory_kib", e.to_string()))
    }
}

impl Default for Argon2Config {
    fn default() -> Self {
        Self {
            memory_kib: Self::MIN_MEMORY_KIB,
            iterations: Self::MIN_ITERATIONS,
            parallelism: Self::MIN_PARALLELISM,
        }
    }
}

fn config_error(field: &'static str, message: String) -> AuthError {
    AuthError::InvalidConfig { field, message }
}

/// The outcome of [`PasswordHasher::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCheck {
    /// The password matches the stored hash.
    pub valid: bool,
    /// The password matched but the stored hash was made with another algorithm, version
    /// or other parameters than the configured ones: hash the password again and store the
    /// new PHC string. Always `false` when `valid` is `false`.
    pub needs_rehash: bool,
}

/// The password a dummy hash is computed from; its value is irrelevant.
const DUMMY_PASSWORD: &str = "punctual-dummy-password-for-unknown-emails";

/// Hashes and verifies passwords with argon2id and the configured parameters.
///
/// Cheap to share: put one in the application state (it is `Send + Sync`). Hashing is
/// CPU-bound and takes tens of milliseconds in release builds, so async callers should run
/// it on a blocking thread.
///
/// ```
/// use punctual_auth::password::{Argon2Config, PasswordHasher};
///
/// let hasher = PasswordHasher::new(Argon2Config::default())?;
/// // Unknown email at login: spend the same time as a real check, then answer 401.
/// hasher.verify_dummy("whatever the client sent");
/// # Ok::<(), punctual_auth::AuthError>(())
/// ```
#[derive(Clone)]
pub struct PasswordHasher {
    config: Argon2Config,
    argon2: Argon2<'static>,
    /// PHC string of [`DUMMY_PASSWORD`] with the configured parameters, made on first use.
    dummy: OnceLock<Option<String>>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Builds a hasher after [validating](Argon2Config::validate) the parameters.
    ///
    /// # Errors
    /// [`AuthError::InvalidConfig`] when the parameters are below OWASP's minimum.
    pub fn new(config: Argon2Config) -> Result<Self, AuthError> {
        config.validate()?;
        let params = config.params()?;
        Ok(Self {
            config,
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            dummy: OnceLock::new(),
        })
    }

    /// The parameters this hasher hashes with.
    pub fn config(&self) -> &Argon2Config {
        &self.config
    }

    /// Hashes `password` with argon2id (v19), the configured parameters and a fresh 16-byte
    /// random salt, and returns the PHC string (`$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`).
    ///
    /// The password is not checked against [`PasswordPolicy`]; call [`validate_password`]
    /// first when it is a new one.
    ///
    /// # Errors
    /// [`AuthError::Crypto`] if argon2 fails (it does not with validated parameters).
    pub fn hash(&self, password: &str) -> Result<String, AuthError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|phc| phc.to_string())
            .map_err(|e| AuthError::Crypto(e.to_string()))
    }

    /// Checks `password` against a stored PHC string, in constant time with respect to the
    /// hash.
    ///
    /// The stored hash is verified with its own algorithm and parameters (so argon2i/argon2d
    /// or older-parameter hashes still verify); when the password matches and those differ
    /// from the configured argon2id parameters, `needs_rehash` is `true`.
    ///
    /// # Errors
    /// [`AuthError::Crypto`] when `phc` is not a usable argon2 PHC string (corrupt data).
    /// A wrong password is not an error: it is `Ok(PasswordCheck { valid: false, .. })`.
    pub fn verify(&self, password: &str, phc: &str) -> Result<PasswordCheck, AuthError> {
        let parsed = PasswordHash::new(phc).map_err(|e| AuthError::Crypto(e.to_string()))?;
        match self.argon2.verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(PasswordCheck {
                valid: true,
                needs_rehash: self.differs_from_config(&parsed),
            }),
            Err(argon2::password_hash::Error::Password) => Ok(PasswordCheck {
                valid: false,
                needs_rehash: false,
            }),
            Err(e) => Err(AuthError::Crypto(e.to_string())),
        }
    }

    /// Spends the time of one real [`verify`](Self::verify) and throws the result away.
    ///
    /// Call it at login when the email is unknown, so that an unknown email and a wrong
    /// password take roughly the same time. The dummy hash is computed once, with the
    /// configured parameters, on the first call; that first call spends its time computing
    /// it (one argon2 run, like a verify) instead of verifying against it.
    pub fn verify_dummy(&self, password: &str) {
        let mut computed_now = false;
        let dummy = self.dummy.get_or_init(|| {
            computed_now = true;
            self.hash(DUMMY_PASSWORD).ok()
        });
        if computed_now {
            return;
        }
        if let Some(phc) = dummy {
            let _ = std::hint::black_box(self.verify(password, phc));
        }
    }

    fn differs_from_config(&self, hash: &PasswordHash<'_>) -> bool {
        if hash.algorithm != Algorithm::Argon2id.ident() {
            return true;
        }
        if hash.version != Some(Version::V0x13.into()) {
            return true;
        }
        let Ok(params) = Params::try_from(hash) else {
            return true;
        };
        let output_len = hash.hash.map(|h| h.len());
        params.m_cost() != self.config.memory_kib
            || params.t_cost() != self.config.iterations
            || params.p_cost() != self.config.parallelism
            || output_len != Some(Params::DEFAULT_OUTPUT_LEN)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn password_length_boundaries_count_characters() {
        assert!(validate_password(&"a".repeat(7)).is_err());
        assert!(validate_password(&"a".repeat(8)).is_ok());
        assert!(validate_password(&"a".repeat(128)).is_ok());
        assert!(validate_password(&"a".repeat(129)).is_err());
        assert!(validate_password("").is_err());

        // Multibyte: 7 characters but 14 / 28 bytes are still too short.
        assert!(validate_password(&"é".repeat(7)).is_err());
        assert!(validate_password(&"🦀".repeat(7)).is_err());
        assert!(validate_password(&"é".repeat(8)).is_ok());
        // 128 characters of 3 bytes (384 bytes) are fine, 129 are not.
        assert!(validate_password(&"€".repeat(128)).is_ok());
        assert!(validate_password(&"€".repeat(129)).is_err());
        assert!(validate_password(&"🦀".repeat(128)).is_ok());
        // Any characters: spaces, control characters.
        assert!(validate_password("        ").is_ok());
        assert!(validate_password("a\u{0}b\tc\nd e").is_ok());
    }

    #[test]
    fn password_error_names_the_field_and_not_the_value() {
        let err = validate_password("hunter2").unwrap_err();
        assert!(matches!(
            err,
            AuthError::InvalidField {
                field: "password",
                ..
            }
        ));
        assert!(!err.to_string().contains("hunter2"));
        assert!(!format!("{err:?}").contains("hunter2"));
    }

    #[test]
    fn argon2_config_default_is_the_owasp_minimum() {
        let c = Argon2Config::default();
        assert_eq!((c.memory_kib, c.iterations, c.parallelism), (19456, 2, 1));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn argon2_config_below_minimum_is_refused() {
        let base = Argon2Config::default();
        for (weak, field) in [
            (
                Argon2Config {
                    memory_kib: 19455,
                    ..base.clone()
                },
                "memory_kib",
            ),
            (
                Argon2Config {
                    iterations: 1,
                    ..base.clone()
                },
                "iterations",
            ),
            (
                Argon2Config {
                    parallelism: 0,
                    ..base.clone()
                },
                "parallelism",
            ),
            (
                Argon2Config {
                    parallelism: u32::MAX,
                    ..base.clone()
                },
                "parallelism",
            ),
        ] {
            match weak.validate() {
                Err(AuthError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{weak:?} gave {other:?}"),
            }
            assert!(PasswordHasher::new(weak).is_err());
        }
        // Stronger than the minimum is fine.
        assert!(Argon2Config {
            memory_kib: 65536,
            iterations: 3,
            parallelism: 4
        }
        .validate()
        .is_ok());
        // p too large for m is refused by argon2 itself.
        assert!(Argon2Config {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 10_000
        }
        .validate()
        .is_err());
    }

    #[test]
    fn argon2_config_deserializes_with_defaults() {
        // No JSON/TOML crate here: go through serde's value deserializer.
        use serde::de::value::{Error, MapDeserializer};
        use serde::Deserialize;
        let map = MapDeserializer::<_, Error>::new([("iterations", 3u32)].into_iter());
        let cfg = Argon2Config::deserialize(map).unwrap();
        assert_eq!(
            cfg,
            Argon2Config {
                iterations: 3,
                ..Argon2Config::default()
            }
        );
    }

    #[test]
    fn hash_verify_round_trip_wrong_password_and_rehash() {
        let hasher = PasswordHasher::new(Argon2Config::default()).unwrap();
        let phc = hasher.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!phc.contains("correct horse"));

        // Random salt: same password, different hash.
        let phc2 = hasher.hash("correct horse").unwrap();
        assert_ne!(phc, phc2);

        assert_eq!(
            hasher.verify("correct horse", &phc).unwrap(),
            PasswordCheck {
                valid: true,
                needs_rehash: false
            }
        );
        assert_eq!(
            hasher.verify("correct horsE", &phc).unwrap(),
            PasswordCheck {
                valid: false,
                needs_rehash: false
            }
        );

        // The configuration moved on: the old hash still verifies, and asks for a rehash.
        let stronger = PasswordHasher::new(Argon2Config {
            iterations: 3,
            ..Argon2Config::default()
        })
        .unwrap();
        assert_eq!(
            stronger.verify("correct horse", &phc).unwrap(),
            PasswordCheck {
                valid: true,
                needs_rehash: true
            }
        );
        assert!(!stronger.verify("wrong", &phc).unwrap().valid);
    }

    #[test]
    fn other_algorithms_and_weak_params_need_rehash() {
        let hasher = PasswordHasher::new(Argon2Config::default()).unwrap();
        // Small parameters so the test stays fast; verification uses the stored ones.
        let params = Params::new(1024, 1, 1, None).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        for alg in [Algorithm::Argon2i, Algorithm::Argon2d, Algorithm::Argon2id] {
            let phc = Argon2::new(alg, Version::V0x13, params.clone())
                .hash_password(b"legacy password", &salt)
                .unwrap()
                .to_string();
            assert_eq!(
                hasher.verify("legacy password", &phc).unwrap(),
                PasswordCheck {
                    valid: true,
                    needs_rehash: true
                },
                "{alg:?}"
            );
        }
    }

    #[test]
    fn malformed_phc_is_an_error() {
        let hasher = PasswordHasher::new(Argon2Config::default()).unwrap();
        for bad in [
            "",
            "not a hash",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$bcrypt$x",
        ] {
            assert!(
                matches!(hasher.verify("password", bad), Err(AuthError::Crypto(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn dummy_verify_computes_once_and_then_verifies() {
        let hasher = PasswordHasher::new(Argon2Config::default()).unwrap();
        assert!(hasher.dummy.get().is_none());
        hasher.verify_dummy("anything");
        let dummy = hasher.dummy.get().cloned().flatten().unwrap();
        assert!(dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        hasher.verify_dummy("anything else");
        // Computed once only.
        assert_eq!(hasher.dummy.get().cloned().flatten().unwrap(), dummy);
        assert!(!hasher.verify("anything", &dummy).unwrap().valid);
    }

    #[test]
    fn debug_does_not_show_the_dummy_hash() {
        let hasher = PasswordHasher::new(Argon2Config::default()).unwrap();
        hasher.verify_dummy("x");
        let dummy = hasher.dummy.get().cloned().flatten().unwrap();
        let debug = format!("{hasher:?}");
        assert!(!debug.contains(&dummy));
        assert!(debug.contains("19456"));
    }
}
