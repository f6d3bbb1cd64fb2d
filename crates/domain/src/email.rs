//! Email addresses of users and notification recipients.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DomainError;

const FIELD: &str = "email";

/// A normalised email address: trimmed and lowercased, so that two spellings of one
/// address compare (and are stored) equal.
///
/// Deliberately loose, because only a delivered message proves an address works:
/// exactly one `@`, a non-empty local part, a domain that contains a dot and neither
/// starts nor ends with one (and has no empty label), no whitespace or control
/// characters anywhere, and at most 254 bytes after normalisation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

impl Email {
    /// Longest accepted address, in bytes (RFC 5321's path limit minus the brackets).
    pub const MAX_LEN: usize = 254;

    /// Parses and normalises an address; errors name the field `email`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let normalised = input.trim().to_lowercase();
        if normalised.is_empty() {
            return Err(DomainError::invalid(FIELD, "must not be empty"));
        }
        if normalised.len() > Self::MAX_LEN {
            return Err(DomainError::invalid(
                FIELD,
                format!("must be at most {} bytes long", Self::MAX_LEN),
            ));
        }
        if normalised
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(DomainError::invalid(
                FIELD,
                "must not contain whitespace or control characters",
            ));
        }
        let mut parts = normalised.split('@');
        let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
            (Some(local), Some(domain), None) => (local, domain),
            (_, None, _) => return Err(DomainError::invalid(FIELD, "must contain an @")),
            _ => return Err(DomainError::invalid(FIELD, "must contain exactly one @")),
        };
        if local.is_empty() {
            return Err(DomainError::invalid(FIELD, "must have a name before the @"));
        }
        if domain.is_empty() {
            return Err(DomainError::invalid(
                FIELD,
                "must have a domain after the @",
            ));
        }
        if !domain.contains('.') {
            return Err(DomainError::invalid(
                FIELD,
                "the domain must contain a dot (example.com)",
            ));
        }
        if domain.split('.').any(str::is_empty) {
            return Err(DomainError::invalid(
                FIELD,
                "the domain must not start or end with a dot or contain two dots in a row",
            ));
        }
        Ok(Self(normalised))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit('@').next().unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Email {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_valid_addresses() {
        for (input, expected) in [
            ("ada@example.com", "ada@example.com"),
            ("  Ada.Lovelace@Example.COM \n", "ada.lovelace@example.com"),
            ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
            ("ÅSE@eksempel.no", "åse@eksempel.no"),
        ] {
            let email = Email::parse(input).unwrap();
            assert_eq!(email.as_str(), expected);
        }
        assert_eq!(
            Email::parse("x@example.com").unwrap().domain(),
            "example.com"
        );
    }

    #[test]
    fn accepts_exactly_254_bytes() {
        let local = "a".repeat(254 - "@example.com".len());
        let input = format!("{local}@example.com");
        assert_eq!(input.len(), 254);
        assert!(Email::parse(&input).is_ok());
        assert!(Email::parse(&format!("a{input}")).is_err());
    }

    #[test]
    fn rejects_invalid_addresses_naming_the_field() {
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@@example.com",
            "ada@b@example.com",
            "ada@localhost",
            "ada lovelace@example.com",
            "ada@exa mple.com",
            "ada@example.com\u{0}",
            "ada\t@example.com",
            "ada@.example.com",
            "ada@example.com.",
            "ada@example..com",
        ] {
            let error = Email::parse(bad).unwrap_err();
            assert_eq!(error.field(), "email", "{bad:?}");
        }
    }

    #[test]
    fn serde_normalises_and_validates() {
        let email: Email = serde_json::from_str("\"Ada@Example.com\"").unwrap();
        assert_eq!(email.as_str(), "ada@example.com");
        assert_eq!(
            serde_json::to_string(&email).unwrap(),
            "\"ada@example.com\""
        );
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }
}
