//! Where job requests may go: the target's host is resolved once, every address
//! is checked against the blocked ranges, and the connection is made to a checked
//! address (the resolver below hands reqwest only those), so DNS rebinding cannot
//! slip a private address in between the check and the connection.

use std::net::SocketAddr;
use std::sync::Arc;

use punctual_domain::is_blocked_ip;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a target may not be called.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum OutboundError {
    /// The name did not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's words.
        reason: String,
    },
    /// It resolved only to blocked addresses (or to none).
    #[error("{host} resolves to a private or reserved address ({address}), which is not allowed")]
    Blocked {
        /// The host.
        host: String,
        /// The first offending address.
        address: String,
    },
}

/// Resolves `host:port` and keeps the addresses a job may reach. With private
/// networks disallowed, any blocked address makes the whole name refused (a name
/// that mixes public and private answers is suspicious enough).
pub async fn resolve_checked(
    host: &str,
    port: u16,
    allow_private_networks: bool,
) -> Result<Vec<SocketAddr>, OutboundError> {
    let host_for_lookup = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host_for_lookup, port))
        .await
        .map_err(|e| OutboundError::Resolve {
            host: host.to_owned(),
            reason: e.to_string(),
        })?
        .collect();
    if addresses.is_empty() {
        return Err(OutboundError::Resolve {
            host: host.to_owned(),
            reason: "no addresses".to_owned(),
        });
    }
    if !allow_private_networks {
        if let Some(blocked) = addresses.iter().find(|a| is_blocked_ip(a.ip())) {
            return Err(OutboundError::Blocked {
                host: host.to_owned(),
                address: blocked.ip().to_string(),
            });
        }
    }
    Ok(addresses)
}

/// A reqwest resolver that only ever returns checked addresses.
#[derive(Debug, Clone)]
pub struct CheckedResolver {
    allow_private_networks: bool,
}

impl CheckedResolver {
    /// A resolver enforcing (or not) the private-network rule.
    pub fn new(allow_private_networks: bool) -> Arc<Self> {
        Arc::new(Self {
            allow_private_networks,
        })
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private_networks;
        Box::pin(async move {
            // reqwest replaces the port with the URL's own; 0 is a placeholder.
            let addresses = resolve_checked(name.as_str(), 0, allow)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            let addrs: Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}
