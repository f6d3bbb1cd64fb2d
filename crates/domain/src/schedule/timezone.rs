//! IANA time zones a cron schedule is evaluated in.

use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DomainError;

const FIELD: &str = "schedule.timezone";

/// An IANA time zone name (`Europe/Oslo`, `America/New_York`, `UTC`), checked against
/// the tz database compiled into `chrono-tz`.
///
/// Names are case-sensitive, as in the tz database; links such as `US/Eastern` are
/// accepted and keep their own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timezone(Tz);

impl Timezone {
    /// Coordinated Universal Time.
    pub const UTC: Timezone = Timezone(Tz::UTC);

    /// Parses an IANA zone name (surrounding whitespace is ignored); errors name the field
    /// `schedule.timezone`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let name = input.trim();
        if name.is_empty() {
            return Err(DomainError::invalid(
                FIELD,
                "must not be empty; use an IANA time zone name such as Europe/Oslo or UTC",
            ));
        }
        Tz::from_str(name).map(Self).map_err(|_| {
            DomainError::invalid(
                FIELD,
                format!(
                    "unknown time zone {name:?}; use an IANA time zone name such as \
                     Europe/Oslo or UTC (names are case-sensitive)"
                ),
            )
        })
    }

    /// The `chrono-tz` zone, for date arithmetic.
    pub fn tz(&self) -> Tz {
        self.0
    }

    /// The IANA name, e.g. `Europe/Oslo`.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl From<Tz> for Timezone {
    fn from(tz: Tz) -> Self {
        Self(tz)
    }
}

impl fmt::Display for Timezone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Timezone {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Timezone {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Timezone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iana_names() {
        for name in [
            "Europe/Oslo",
            "America/New_York",
            "Australia/Sydney",
            "Asia/Kathmandu",
            "Pacific/Chatham",
            "UTC",
            "Etc/GMT+5",
            "US/Eastern",
        ] {
            let zone = Timezone::parse(name).unwrap();
            assert_eq!(zone.name(), name);
            assert_eq!(zone.to_string(), name);
        }
        assert_eq!(
            Timezone::parse(" Europe/Oslo ").unwrap().tz(),
            Tz::Europe__Oslo
        );
        assert_eq!(Timezone::UTC.name(), "UTC");
    }

    #[test]
    fn rejects_unknown_names_naming_the_field() {
        for bad in [
            "",
            "  ",
            "europe/oslo",
            "Europe/Olso",
            "CEST",
            "+02:00",
            "Mars/Olympus_Mons",
        ] {
            let error = Timezone::parse(bad).unwrap_err();
            assert_eq!(error.field(), "schedule.timezone", "{bad:?}");
        }
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let zone = Timezone::parse("Asia/Kolkata").unwrap();
        let json = serde_json::to_string(&zone).unwrap();
        assert_eq!(json, "\"Asia/Kolkata\"");
        assert_eq!(serde_json::from_str::<Timezone>(&json).unwrap(), zone);
        assert!(serde_json::from_str::<Timezone>("\"Asia/Nowhere\"").is_err());
    }
}
