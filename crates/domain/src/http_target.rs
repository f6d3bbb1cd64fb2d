//! What a job calls: HTTP method, target URL (with the SSRF address rules) and headers.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::{Host, Url};

use crate::error::DomainError;

const METHOD_FIELD: &str = "request.method";
const URL_FIELD: &str = "request.url";
const HEADERS_FIELD: &str = "request.headers";

// ------------------------------------------------------------------------------------
// Method

/// The HTTP methods a job may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `HEAD`
    Head,
}

impl HttpMethod {
    /// Every method, in the order the API documents them.
    pub const ALL: [HttpMethod; 6] = [
        HttpMethod::Get,
        HttpMethod::Post,
        HttpMethod::Put,
        HttpMethod::Patch,
        HttpMethod::Delete,
        HttpMethod::Head,
    ];

    /// Parses a method name, case-insensitively (`post`, `Post`, `POST`); errors name
    /// the field `request.method`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|method| method.as_str().eq_ignore_ascii_case(input))
            .ok_or_else(|| {
                DomainError::invalid(
                    METHOD_FIELD,
                    "must be one of GET, POST, PUT, PATCH, DELETE, HEAD",
                )
            })
    }

    /// The method name in upper case, as sent on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Head => "HEAD",
        }
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HttpMethod {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for HttpMethod {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HttpMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

// ------------------------------------------------------------------------------------
// Blocked addresses

/// IPv4 networks no job may call unless private networks are allowed (SECURITY.md).
const BLOCKED_V4: [(Ipv4Addr, u8); 11] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),      // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),     // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),  // carrier-grade NAT
    (Ipv4Addr::new(127, 0, 0, 0), 8),    // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16), // link-local, cloud metadata
    (Ipv4Addr::new(172, 16, 0, 0), 12),  // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),   // IETF protocol assignments
    (Ipv4Addr::new(192, 168, 0, 0), 16), // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),  // benchmarking
    (Ipv4Addr::new(224, 0, 0, 0), 4),    // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),    // reserved, including 255.255.255.255
];

/// IPv6 networks no job may call unless private networks are allowed (SECURITY.md), plus
/// the local-use NAT64 prefix, which is never globally reachable.
const BLOCKED_V6: [(Ipv6Addr, u8); 6] = [
    (Ipv6Addr::UNSPECIFIED, 128),                        // ::
    (Ipv6Addr::LOCALHOST, 128),                          // ::1
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),     // unique local
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),    // link-local
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),     // multicast
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local-use NAT64 (RFC 8215)
];

/// The NAT64 well-known prefix `64:ff9b::/96` (RFC 6052): its last 32 bits are an IPv4
/// address.
const NAT64_PREFIX: [u16; 6] = [0x64, 0xff9b, 0, 0, 0, 0];

/// The deprecated IPv4-compatible prefix `::/96` (RFC 4291 2.5.5.1): its last 32 bits
/// are an IPv4 address (`::a.b.c.d`).
const IPV4_COMPATIBLE_PREFIX: [u16; 6] = [0, 0, 0, 0, 0, 0];

/// Whether outbound requests to `ip` are refused (unless configuration allows private
/// networks): exactly the ranges of SECURITY.md.
///
/// IPv4: 0.0.0.0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24,
/// 192.168/16, 198.18/15, 224/4, 240/4 (which includes 255.255.255.255).
/// IPv6: ::/128, ::1/128, fc00::/7, fe80::/10, ff00::/8, the local-use NAT64 prefix
/// 64:ff9b:1::/48 (RFC 8215; local by definition, and its IPv4 embedding depends on the
/// operator's prefix length, so all of it), and the IPv4-mapped (`::ffff:a.b.c.d`),
/// deprecated IPv4-compatible (`::a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`) forms of the
/// blocked IPv4 ranges.
pub fn is_blocked_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_ipv4(v4),
        IpAddr::V6(v6) => is_blocked_ipv6(v6),
    }
}

fn is_blocked_ipv4(ip: Ipv4Addr) -> bool {
    let address = u32::from(ip);
    BLOCKED_V4.iter().any(|(network, prefix)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
        address & mask == u32::from(*network) & mask
    })
}

fn is_blocked_ipv6(ip: Ipv6Addr) -> bool {
    let address = u128::from(ip);
    let in_blocked_network = BLOCKED_V6.iter().any(|(network, prefix)| {
        let mask = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
        address & mask == u128::from(*network) & mask
    });
    if in_blocked_network {
        return true;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_blocked_ipv4(v4);
    }
    let segments = ip.segments();
    if segments[..6] == NAT64_PREFIX || segments[..6] == IPV4_COMPATIBLE_PREFIX {
        // Truncation is the point: the low 32 bits are the embedded IPv4 address.
        let embedded = Ipv4Addr::from((address & 0xffff_ffff) as u32);
        return is_blocked_ipv4(embedded);
    }
    false
}

// ------------------------------------------------------------------------------------
// URL

/// The URL a job calls: absolute, `http` or `https`, with a host and without
/// credentials, at most [`TargetUrl::MAX_LEN`] characters.
///
/// When the host is an IP literal (in any spelling the WHATWG URL parser accepts, such as
/// `http://2130706433/` or `http://[::ffff:7f00:1]/`) it must not be [blocked](is_blocked_ip),
/// and `localhost` names are refused too, unless private networks are allowed. Host
/// names are not resolved here: the engine checks every resolved address again before
/// it connects.
///
/// There is no `Deserialize`: whether private networks are allowed is configuration, so
/// every load goes through [`TargetUrl::parse`] with the caller's setting.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetUrl(Url);

impl TargetUrl {
    /// Longest accepted URL, in characters.
    pub const MAX_LEN: usize = 2048;

    /// Parses a target URL; errors name the field `request.url`.
    ///
    /// `allow_private_networks` is the `outbound.allow_private_networks` setting: when
    /// false, IP literals in [blocked ranges](is_blocked_ip) and `localhost` are refused.
    pub fn parse(input: &str, allow_private_networks: bool) -> Result<Self, DomainError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(DomainError::invalid(URL_FIELD, "must not be empty"));
        }
        if input.chars().count() > Self::MAX_LEN {
            return Err(DomainError::invalid(
                URL_FIELD,
                format!("must be at most {} characters long", Self::MAX_LEN),
            ));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::invalid(
                URL_FIELD,
                "must not contain whitespace or control characters (percent-encode them)",
            ));
        }
        let url = Url::parse(input).map_err(|error| match error {
            url::ParseError::RelativeUrlWithoutBase => DomainError::invalid(
                URL_FIELD,
                "must be an absolute http or https URL, such as https://example.com/hook",
            ),
            other => DomainError::invalid(URL_FIELD, format!("is not a valid URL: {other}")),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DomainError::invalid(
                URL_FIELD,
                format!("must use http or https, not {}", url.scheme()),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DomainError::invalid(
                URL_FIELD,
                "must not contain credentials (user:password@); send them in a header",
            ));
        }
        let host = url
            .host()
            .ok_or_else(|| DomainError::invalid(URL_FIELD, "must have a host"))?;
        if !allow_private_networks {
            let blocked = match host {
                Host::Ipv4(ip) => is_blocked_ip(IpAddr::V4(ip)),
                Host::Ipv6(ip) => is_blocked_ip(IpAddr::V6(ip)),
                Host::Domain(name) => is_localhost_name(name),
            };
            if blocked {
                return Err(DomainError::invalid(
                    URL_FIELD,
                    "points to a loopback, private, link-local or otherwise non-public \
                     address, which jobs may not call",
                ));
            }
        }
        if url.as_str().len() > Self::MAX_LEN {
            return Err(DomainError::invalid(
                URL_FIELD,
                format!(
                    "must be at most {} characters long once normalised",
                    Self::MAX_LEN
                ),
            ));
        }
        Ok(Self(url))
    }

    /// The normalised URL (`https://example.com/hook`).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The host as written in the URL: a domain name, an IPv4 address, or an IPv6
    /// address in brackets (`[::1]`).
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// The IP address when the host is an IP literal; `None` for a domain name.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.0.host()? {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        }
    }

    /// The explicit port, or 80 for `http` and 443 for `https`.
    pub fn port_or_default(&self) -> u16 {
        self.0
            .port_or_known_default()
            .unwrap_or(if self.0.scheme() == "https" { 443 } else { 80 })
    }

    /// The parsed URL.
    pub fn url(&self) -> &Url {
        &self.0
    }
}

/// `localhost` and `*.localhost` always mean loopback (RFC 6761).
fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    name.eq_ignore_ascii_case("localhost")
        || name
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.eq_ignore_ascii_case("localhost"))
}

impl fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TargetUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

// ------------------------------------------------------------------------------------
// Headers

/// Header names that Punctual sets itself or that belong to one connection only; a job
/// may not set them (compared case-insensitively).
const FORBIDDEN_HEADERS: [(&str, &str); 11] = [
    ("host", "is set from the URL"),
    ("content-length", "is set from the body"),
    ("connection", "is a hop-by-hop header"),
    ("keep-alive", "is a hop-by-hop header"),
    ("proxy-authenticate", "is a hop-by-hop header"),
    ("proxy-authorization", "is a hop-by-hop header"),
    ("proxy-connection", "is a hop-by-hop header"),
    ("te", "is a hop-by-hop header"),
    ("trailer", "is a hop-by-hop header"),
    ("transfer-encoding", "is a hop-by-hop header"),
    ("upgrade", "is a hop-by-hop header"),
];

/// The extra request headers of a job, names as the user wrote them.
///
/// Rules: at most [`Headers::MAX_COUNT`] headers; names are 1 to
/// [`Headers::MAX_NAME_LEN`] HTTP token characters (letters, digits and
/// ``!#$%&'*+-.^_`|~``), unique ignoring case, and not `Host`, `Content-Length` or a
/// hop-by-hop header (`Connection`, `Keep-Alive`, `Proxy-Authenticate`,
/// `Proxy-Authorization`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`,
/// `Upgrade`); values are visible ASCII, spaces and tabs (so no CR or LF), at most
/// [`Headers::MAX_VALUE_LEN`] bytes. Errors name `request.headers.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// Most headers a job may have.
    pub const MAX_COUNT: usize = 64;
    /// Longest header name, in bytes.
    pub const MAX_NAME_LEN: usize = 256;
    /// Longest header value, in bytes (8 KiB).
    pub const MAX_VALUE_LEN: usize = 8 * 1024;

    /// Parses the `request.headers` object of a job; the first problem found is the
    /// error.
    pub fn parse(map: &BTreeMap<String, String>) -> Result<Self, DomainError> {
        Self::parse_reporting_all(map).map_err(|mut errors| errors.swap_remove(0))
    }

    /// Like [`Headers::parse`], but reports every bad header (each under its own
    /// `request.headers.<name>`), for a 422 that lists them all. Never an empty list.
    pub fn parse_reporting_all(map: &BTreeMap<String, String>) -> Result<Self, Vec<DomainError>> {
        if map.len() > Self::MAX_COUNT {
            return Err(vec![DomainError::invalid(
                HEADERS_FIELD,
                format!(
                    "at most {} headers are allowed (got {})",
                    Self::MAX_COUNT,
                    map.len()
                ),
            )]);
        }
        let mut errors = Vec::new();
        let mut headers: Vec<(String, String)> = Vec::with_capacity(map.len());
        for (name, value) in map {
            if let Err(error) = check_name(name) {
                errors.push(error);
                continue;
            }
            if let Some((earlier, _)) = headers
                .iter()
                .find(|(seen, _)| seen.eq_ignore_ascii_case(name))
            {
                errors.push(DomainError::invalid(
                    format!("{HEADERS_FIELD}.{name}"),
                    format!("duplicates {earlier} (header names are case-insensitive)"),
                ));
                continue;
            }
            match check_value(name, value) {
                Ok(()) => headers.push((name.clone(), value.clone())),
                Err(error) => errors.push(error),
            }
        }
        if errors.is_empty() {
            Ok(Self(headers))
        } else {
            Err(errors)
        }
    }

    /// The headers as `(name, value)` pairs, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The value of the header called `name`, ignoring case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn check_name(name: &str) -> Result<(), DomainError> {
    let field = || format!("{HEADERS_FIELD}.{name}");
    if name.is_empty() {
        return Err(DomainError::invalid(
            HEADERS_FIELD,
            "a header name must not be empty",
        ));
    }
    if name.len() > Headers::MAX_NAME_LEN {
        return Err(DomainError::invalid(
            field(),
            format!(
                "header names must be at most {} characters long",
                Headers::MAX_NAME_LEN
            ),
        ));
    }
    if !name.bytes().all(is_token_byte) {
        return Err(DomainError::invalid(
            field(),
            "header names may contain only letters, digits and !#$%&'*+-.^_`|~",
        ));
    }
    if let Some((_, reason)) = FORBIDDEN_HEADERS
        .iter()
        .find(|(forbidden, _)| forbidden.eq_ignore_ascii_case(name))
    {
        return Err(DomainError::invalid(
            field(),
            format!("cannot be set: it {reason}"),
        ));
    }
    Ok(())
}

fn check_value(name: &str, value: &str) -> Result<(), DomainError> {
    let field = || format!("{HEADERS_FIELD}.{name}");
    if value.len() > Headers::MAX_VALUE_LEN {
        return Err(DomainError::invalid(
            field(),
            format!(
                "header values must be at most {} bytes long",
                Headers::MAX_VALUE_LEN
            ),
        ));
    }
    if value.contains(['\r', '\n']) {
        return Err(DomainError::invalid(
            field(),
            "header values must not contain line breaks",
        ));
    }
    if !value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(DomainError::invalid(
            field(),
            "header values may contain only visible ASCII characters, spaces and tabs",
        ));
    }
    Ok(())
}

/// `tchar` of RFC 9110: the characters of a header name.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(deserializer)?;
        Self::parse(&map).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ------------------------------------------------------------------ method

    #[test]
    fn methods_parse_case_insensitively() {
        for method in HttpMethod::ALL {
            let name = method.as_str();
            assert_eq!(HttpMethod::parse(name).unwrap(), method);
            assert_eq!(HttpMethod::parse(&name.to_lowercase()).unwrap(), method);
            assert_eq!(name.parse::<HttpMethod>().unwrap(), method);
        }
        assert_eq!(HttpMethod::parse("pAtCh").unwrap(), HttpMethod::Patch);
        assert_eq!(HttpMethod::Delete.to_string(), "DELETE");
    }

    #[test]
    fn unknown_methods_name_request_method() {
        for bad in ["", "OPTIONS", "CONNECT", "TRACE", "G ET", " GET", "GETT"] {
            assert_eq!(
                HttpMethod::parse(bad).unwrap_err().field(),
                "request.method",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn method_serde_is_upper_case() {
        assert_eq!(
            serde_json::to_string(&HttpMethod::Post).unwrap(),
            "\"POST\""
        );
        assert_eq!(
            serde_json::from_str::<HttpMethod>("\"post\"").unwrap(),
            HttpMethod::Post
        );
        assert!(serde_json::from_str::<HttpMethod>("\"TRACE\"").is_err());
    }

    // ------------------------------------------------------------------ blocked addresses

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocked_ipv4_ranges_and_their_edges() {
        let blocked = [
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.0",
            "10.255.255.255",
            "100.64.0.0",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.0.0",
            "169.254.169.254",
            "169.254.255.255",
            "172.16.0.0",
            "172.31.255.255",
            "192.0.0.0",
            "192.0.0.255",
            "192.168.0.1",
            "192.168.255.255",
            "198.18.0.0",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.0",
            "255.255.255.255",
        ];
        let allowed = [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "191.255.255.255",
            "192.0.1.0",
            "192.0.2.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ];
        for text in blocked {
            assert!(is_blocked_ip(ip(text)), "{text} should be blocked");
        }
        for text in allowed {
            assert!(!is_blocked_ip(ip(text)), "{text} should be allowed");
        }
    }

    #[test]
    fn blocked_ipv6_ranges_and_embedded_ipv4() {
        let blocked = [
            "::",
            "::1",
            "fc00::",
            "fc00::1",
            "fd12:3456:789a::1",
            "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fe80::",
            "fe80::1",
            "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "ff00::",
            "ff02::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            // IPv4-mapped forms of blocked IPv4 ranges.
            "::ffff:0.0.0.0",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:192.168.1.1",
            "::ffff:255.255.255.255",
            "::ffff:7f00:1",
            // NAT64 forms.
            "64:ff9b::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::100.64.0.1",
            "64:ff9b::255.255.255.255",
            // Deprecated IPv4-compatible forms (::/96).
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            "::192.168.0.1",
            "::255.255.255.255",
            "::2", // ::0.0.0.2, in 0.0.0.0/8
            // The local-use NAT64 prefix 64:ff9b:1::/48, whatever it embeds.
            "64:ff9b:1::",
            "64:ff9b:1::10.0.0.1",
            "64:ff9b:1::8.8.8.8",
            "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
        ];
        let allowed = [
            "2001:4860:4860::8888",
            "2606:4700:4700::1111",
            "2001:db8::1",
            "::8.8.8.8",
            "::93.184.216.34",
            "::1:0:0:1", // outside ::/96
            "64:ff9b:0:1::1",
            "64:ff9b:2::1",
            "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fec0::1",
            "feff::1",
            "::ffff:8.8.8.8",
            "::ffff:93.184.216.34",
            "64:ff9b::8.8.8.8",
            "64:ff9b::1.1.1.1",
        ];
        for text in blocked {
            assert!(is_blocked_ip(ip(text)), "{text} should be blocked");
        }
        for text in allowed {
            assert!(!is_blocked_ip(ip(text)), "{text} should be allowed");
        }
    }

    // ------------------------------------------------------------------ URL

    #[test]
    fn accepts_public_http_and_https_urls() {
        let url = TargetUrl::parse("https://example.com/hook?x=1", false).unwrap();
        assert_eq!(url.as_str(), "https://example.com/hook?x=1");
        assert_eq!(url.host(), "example.com");
        assert_eq!(url.port_or_default(), 443);
        assert_eq!(url.ip(), None);
        assert_eq!(url.url().path(), "/hook");

        let url = TargetUrl::parse("  HTTP://Example.COM:8080  ", false).unwrap();
        assert_eq!(url.as_str(), "http://example.com:8080/");
        assert_eq!(url.port_or_default(), 8080);

        assert_eq!(
            TargetUrl::parse("http://example.com", false)
                .unwrap()
                .port_or_default(),
            80
        );
        let url = TargetUrl::parse("http://93.184.216.34/", false).unwrap();
        assert_eq!(url.ip(), Some(ip("93.184.216.34")));
        let url = TargetUrl::parse("https://[2001:db8::1]:8443/", false).unwrap();
        assert_eq!(url.host(), "[2001:db8::1]");
        assert_eq!(url.ip(), Some(ip("2001:db8::1")));
        assert_eq!(url.port_or_default(), 8443);
        assert_eq!(url.to_string(), "https://[2001:db8::1]:8443/");
    }

    #[test]
    fn rejected_urls_name_request_url() {
        let too_long = format!("https://example.com/{}", "a".repeat(2048));
        for (bad, allow_private) in [
            ("", false),
            ("   ", false),
            ("example.com/hook", false),
            ("/hook", false),
            ("ftp://example.com/", true),
            ("file:///etc/passwd", true),
            ("javascript:alert(1)", true),
            ("data:text/plain,hi", true),
            ("ws://example.com/", true),
            ("http://", true),
            ("https://[::1", true),
            ("http://exa mple.com/", true),
            ("http://example.com/a b", true),
            ("http://exa\nmple.com/", true),
            ("http://user:pass@example.com/", true),
            ("http://user@example.com/", true),
            ("http://:pass@example.com/", true),
            ("http://127.0.0.1/", false),
            ("http://127.1/", false),
            ("http://2130706433/", false),
            ("http://0x7f.0.0.1/", false),
            ("http://0177.0.0.1/", false),
            ("http://10.0.0.1:8080/", false),
            ("http://169.254.169.254/latest/meta-data", false),
            ("http://0.0.0.0/", false),
            ("http://[::1]/", false),
            ("http://[::ffff:127.0.0.1]/", false),
            ("http://[64:ff9b::a9fe:a9fe]/", false),
            ("http://[::127.0.0.1]/", false),
            ("http://[::a9fe:a9fe]/", false),
            ("http://[64:ff9b:1::a00:1]/", false),
            ("http://[fe80::1]/", false),
            ("http://localhost/", false),
            ("http://LOCALHOST:3000/", false),
            ("http://api.localhost/", false),
            ("http://localhost./", false),
            (too_long.as_str(), true),
        ] {
            let error = TargetUrl::parse(bad, allow_private).unwrap_err();
            assert_eq!(error.field(), "request.url", "{bad:?}");
        }
    }

    #[test]
    fn private_targets_are_fine_when_allowed() {
        for url in [
            "http://127.0.0.1:3000/hook",
            "http://localhost:8080/",
            "http://[::1]/",
            "http://10.0.0.1/",
            "http://192.168.1.10/",
        ] {
            assert!(TargetUrl::parse(url, true).is_ok(), "{url}");
            assert!(TargetUrl::parse(url, false).is_err(), "{url}");
        }
    }

    #[test]
    fn names_that_merely_contain_localhost_are_not_loopback() {
        for url in [
            "https://localhost.example.com/",
            "https://mylocalhost.com/",
            "https://localhostapi.io/",
        ] {
            assert!(TargetUrl::parse(url, false).is_ok(), "{url}");
        }
    }

    #[test]
    fn url_length_limit_is_inclusive() {
        let prefix = "https://example.com/";
        let exact = format!("{prefix}{}", "a".repeat(TargetUrl::MAX_LEN - prefix.len()));
        assert_eq!(exact.len(), TargetUrl::MAX_LEN);
        assert!(TargetUrl::parse(&exact, false).is_ok());
        assert!(TargetUrl::parse(&format!("{exact}a"), false).is_err());
    }

    #[test]
    fn url_serializes_as_its_string() {
        let url = TargetUrl::parse("https://example.com/hook", false).unwrap();
        assert_eq!(
            serde_json::to_string(&url).unwrap(),
            "\"https://example.com/hook\""
        );
    }

    // ------------------------------------------------------------------ headers

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn accepts_ordinary_headers_keeping_names() {
        let headers = Headers::parse(&map(&[
            ("content-type", "application/json"),
            ("X-Foo", "bar baz\tqux"),
            ("Authorization", "Bearer abc.def"),
            ("X-Empty", ""),
            ("x-weird!#$%&'*+-.^_`|~", "~!@#$%^&*()"),
        ]))
        .unwrap();
        assert_eq!(headers.len(), 5);
        assert!(!headers.is_empty());
        assert_eq!(headers.get("CONTENT-TYPE"), Some("application/json"));
        assert_eq!(headers.get("x-foo"), Some("bar baz\tqux"));
        assert_eq!(headers.get("x-missing"), None);
        let names: Vec<&str> = headers.iter().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            [
                "Authorization",
                "X-Empty",
                "X-Foo",
                "content-type",
                "x-weird!#$%&'*+-.^_`|~"
            ]
        );
        assert!(Headers::parse(&BTreeMap::new()).unwrap().is_empty());
        assert!(Headers::default().is_empty());
    }

    #[test]
    fn limits_are_inclusive() {
        let many: BTreeMap<String, String> = (0..Headers::MAX_COUNT)
            .map(|i| (format!("X-H{i}"), "v".to_owned()))
            .collect();
        assert!(Headers::parse(&many).is_ok());
        let name = "X".repeat(Headers::MAX_NAME_LEN);
        let value = "v".repeat(Headers::MAX_VALUE_LEN);
        assert!(Headers::parse(&map(&[(name.as_str(), value.as_str())])).is_ok());
    }

    #[test]
    fn rejected_headers_name_their_field() {
        let long_name = "X".repeat(Headers::MAX_NAME_LEN + 1);
        let long_value = "v".repeat(Headers::MAX_VALUE_LEN + 1);
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (vec![("Host", "example.com")], "request.headers.Host".into()),
            (vec![("host", "x")], "request.headers.host".into()),
            (
                vec![("Content-Length", "3")],
                "request.headers.Content-Length".into(),
            ),
            (
                vec![("Connection", "close")],
                "request.headers.Connection".into(),
            ),
            (
                vec![("keep-alive", "5")],
                "request.headers.keep-alive".into(),
            ),
            (
                vec![("Proxy-Authenticate", "x")],
                "request.headers.Proxy-Authenticate".into(),
            ),
            (
                vec![("proxy-authorization", "x")],
                "request.headers.proxy-authorization".into(),
            ),
            (
                vec![("Proxy-Connection", "x")],
                "request.headers.Proxy-Connection".into(),
            ),
            (vec![("TE", "trailers")], "request.headers.TE".into()),
            (vec![("Trailer", "x")], "request.headers.Trailer".into()),
            (
                vec![("Transfer-Encoding", "chunked")],
                "request.headers.Transfer-Encoding".into(),
            ),
            (
                vec![("UPGRADE", "websocket")],
                "request.headers.UPGRADE".into(),
            ),
            (vec![("X Foo", "x")], "request.headers.X Foo".into()),
            (vec![("X:Foo", "x")], "request.headers.X:Foo".into()),
            (vec![("X-Føø", "x")], "request.headers.X-Føø".into()),
            (vec![("X-(Foo)", "x")], "request.headers.X-(Foo)".into()),
            (vec![("", "x")], "request.headers".into()),
            (
                vec![(long_name.as_str(), "x")],
                format!("request.headers.{long_name}"),
            ),
            (
                vec![("X-Foo", "a\r\nX-Injected: 1")],
                "request.headers.X-Foo".into(),
            ),
            (vec![("X-Foo", "a\nb")], "request.headers.X-Foo".into()),
            (vec![("X-Foo", "a\rb")], "request.headers.X-Foo".into()),
            (vec![("X-Foo", "café")], "request.headers.X-Foo".into()),
            (vec![("X-Foo", "a\u{0}b")], "request.headers.X-Foo".into()),
            (vec![("X-Foo", "a\u{7f}b")], "request.headers.X-Foo".into()),
            (
                vec![("X-Foo", long_value.as_str())],
                "request.headers.X-Foo".into(),
            ),
            (
                vec![("X-Foo", "1"), ("x-foo", "2")],
                "request.headers.x-foo".into(),
            ),
        ];
        for (pairs, field) in cases {
            let error = Headers::parse(&map(&pairs)).unwrap_err();
            assert_eq!(error.field(), field, "{pairs:?}");
        }
    }

    #[test]
    fn every_bad_header_can_be_reported() {
        let errors = Headers::parse_reporting_all(&map(&[
            ("Host", "x"),
            ("X-Fine", "ok"),
            ("X-Bad", "a\nb"),
            ("Upgrade", "h2c"),
        ]))
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(DomainError::field).collect();
        assert_eq!(
            fields,
            [
                "request.headers.Host",
                "request.headers.Upgrade",
                "request.headers.X-Bad"
            ]
        );
        assert_eq!(
            Headers::parse(&map(&[("Host", "x"), ("Upgrade", "h2c")]))
                .unwrap_err()
                .field(),
            "request.headers.Host"
        );
    }

    #[test]
    fn too_many_headers_names_the_whole_object() {
        let many: BTreeMap<String, String> = (0..=Headers::MAX_COUNT)
            .map(|i| (format!("X-H{i}"), "v".to_owned()))
            .collect();
        assert_eq!(
            Headers::parse(&many).unwrap_err().field(),
            "request.headers"
        );
    }

    #[test]
    fn headers_serde_is_a_map_and_validates() {
        let headers: Headers =
            serde_json::from_str(r#"{"X-Foo":"bar","content-type":"text/plain"}"#).unwrap();
        assert_eq!(headers.get("x-foo"), Some("bar"));
        assert_eq!(
            serde_json::to_string(&headers).unwrap(),
            r#"{"X-Foo":"bar","content-type":"text/plain"}"#
        );
        assert!(serde_json::from_str::<Headers>(r#"{"Host":"evil"}"#).is_err());
    }
}
