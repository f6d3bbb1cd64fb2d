//! The crate's single error type.

/// Everything that can go wrong in `punctual-auth`.
///
/// No variant ever carries a password, token, key, secret or hash: the messages are safe to
/// log and, for the client-facing variants, safe to map to an HTTP response as they are.
///
/// | Variant | Typical HTTP mapping |
/// |---|---|
/// | [`AuthError::InvalidField`] | 422 naming `field` |
/// | [`AuthError::InvalidToken`], [`AuthError::InvalidApiKey`] | 401 |
/// | [`AuthError::InvalidConfig`] | refuse to start |
/// | [`AuthError::UnknownRole`], [`AuthError::InvalidTokenHash`], [`AuthError::InvalidSigningSecret`], [`AuthError::Crypto`] | 500 (corrupt stored data or a bug) |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A user-supplied value breaks a rule, e.g. a password of the wrong length.
    ///
    /// `field` is the request field to name in the 422 response (`"password"`).
    #[error("{field}: {message}")]
    InvalidField {
        /// The name of the offending field, as the client sent it.
        field: &'static str,
        /// What is wrong with it (never the value itself).
        message: String,
    },

    /// A configuration value is unsafe or unusable (weak argon2 parameters, short JWT secret…).
    #[error("invalid configuration `{field}`: {message}")]
    InvalidConfig {
        /// The configuration key at fault.
        field: &'static str,
        /// Why it is refused (never the value when it is a secret).
        message: String,
    },

    /// An access token is not acceptable: malformed, wrong algorithm (including `none`),
    /// bad signature, wrong issuer or audience, or expired. Deliberately one variant with no
    /// detail, so nothing about the reason leaks to the client.
    #[error("invalid token")]
    InvalidToken,

    /// A presented API key does not have the `pk_live_<id>.sk_live_<secret>` shape.
    #[error("invalid API key")]
    InvalidApiKey,

    /// A stored token hash is not 64 hexadecimal characters.
    #[error("invalid token hash")]
    InvalidTokenHash,

    /// A stored webhook signing secret is not `whsec_` followed by base64.
    #[error("invalid signing secret")]
    InvalidSigningSecret,

    /// A role name is not one of `owner`, `admin`, `member`.
    #[error("unknown role")]
    UnknownRole,

    /// A cryptographic primitive failed (argon2 hashing, a corrupt stored PHC string, JWT
    /// encoding). The message comes from the underlying library and holds no secret.
    #[error("cryptographic operation failed: {0}")]
    Crypto(String),
}
