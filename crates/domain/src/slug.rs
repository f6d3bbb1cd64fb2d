//! Organization slugs: the short, URL-safe names in `/api/v1/orgs/{org}`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DomainError;

const FIELD: &str = "slug";

/// A URL-safe organization name: 3 to 48 characters of lowercase ASCII letters, digits
/// and hyphens, neither starting nor ending with a hyphen (`acme`, `acme-eu-2`).
///
/// The input is taken as given: it is not trimmed or lowercased, so what the user typed is
/// exactly what appears in URLs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slug(String);

impl Slug {
    /// Shortest accepted slug, in characters.
    pub const MIN_LEN: usize = 3;
    /// Longest accepted slug, in characters.
    pub const MAX_LEN: usize = 48;

    /// Parses a slug; errors name the field `slug`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let len = input.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(DomainError::invalid(
                FIELD,
                format!(
                    "must be {} to {} characters long (got {len})",
                    Self::MIN_LEN,
                    Self::MAX_LEN
                ),
            ));
        }
        if let Some(bad) = input
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(DomainError::invalid(
                FIELD,
                format!("may contain only lowercase letters a-z, digits and hyphens, not {bad:?}"),
            ));
        }
        if input.starts_with('-') || input.ends_with('-') {
            return Err(DomainError::invalid(
                FIELD,
                "must not start or end with a hyphen",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// The slug as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Slug {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Slug {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Slug {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_slugs() {
        for ok in [
            "abc",
            "acme",
            "acme-eu-2",
            "a-b",
            "123",
            "a--b",
            &"a".repeat(48),
        ] {
            let slug = Slug::parse(ok).unwrap();
            assert_eq!(slug.as_str(), ok);
            assert_eq!(slug.to_string(), ok);
        }
    }

    #[test]
    fn rejects_invalid_slugs_naming_the_field() {
        let too_long = "a".repeat(49);
        for bad in [
            "",
            "ab",
            too_long.as_str(),
            "Acme",
            "acme_eu",
            "acme eu",
            " acme",
            "-acme",
            "acme-",
            "---",
            "acmé",
            "ac.me",
        ] {
            let error = Slug::parse(bad).unwrap_err();
            assert_eq!(error.field(), "slug", "{bad:?}");
        }
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // Two multi-byte characters are two characters: too short, not a charset error.
        let error = Slug::parse("éé").unwrap_err();
        assert!(error.message().contains("3 to 48"), "{error}");
    }

    #[test]
    fn serde_round_trips_and_deserialize_validates() {
        let slug = Slug::parse("acme-eu").unwrap();
        let json = serde_json::to_string(&slug).unwrap();
        assert_eq!(json, "\"acme-eu\"");
        assert_eq!(serde_json::from_str::<Slug>(&json).unwrap(), slug);
        assert!(serde_json::from_str::<Slug>("\"Bad Slug\"").is_err());
    }
}
