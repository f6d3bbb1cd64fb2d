//! Who is calling: one `Authorization: Bearer` extractor for user access tokens,
//! organization API keys and the admin service token.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use punctual_auth::Role;
use uuid::Uuid;

use crate::error::ApiError;
use crate::service::identity;
use crate::state::AppState;

/// The authenticated principal.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A signed-in user.
    User {
        /// The user.
        user_id: Uuid,
        /// The session family the access token belongs to.
        session_id: Uuid,
        /// May call the internal admin endpoints.
        platform_admin: bool,
    },
    /// An organization's API key, acting with its role in that organization only.
    ApiKey {
        /// The key's id.
        key_id: Uuid,
        /// The one organization it acts for.
        organization_id: Uuid,
        /// The role it was created with (never owner).
        role: Role,
        /// That organization as read when the key was authenticated (at most
        /// [`crate::auth_cache::API_KEY_CACHE_TTL`] ago).
        organization: Box<punctual_persistence::entities::organization::Model>,
    },
    /// The configured admin service token.
    Service,
}

/// Where a request came from, for brute-force limits and the audit trail.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// The peer address.
    pub ip: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// From where.
    pub meta: RequestMeta,
}

impl Caller {
    /// The user behind the call, if it is a user.
    pub fn user_id(&self) -> Option<Uuid> {
        match self.principal {
            Principal::User { user_id, .. } => Some(user_id),
            _ => None,
        }
    }
}

impl FromRequest for RequestMeta {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(request_meta(req)))
    }
}

impl RequestMeta {
    /// The address and user agent of `req`.
    pub fn of(req: &HttpRequest) -> Self {
        request_meta(req)
    }

    /// Who the per-address limits count a request against: its IPv4 address,
    /// or its IPv6 /64 (one client usually holds a whole /64, and rotating
    /// through it must not reset the count). Empty when the address is unknown.
    pub fn address_key(&self) -> String {
        match self.ip.as_deref().map(str::parse::<std::net::IpAddr>) {
            Some(Ok(ip)) => crate::rate_limit::address_key(ip).to_string(),
            Some(Err(_)) => self.ip.clone().unwrap_or_default(),
            None => String::new(),
        }
    }
}

fn request_meta(req: &HttpRequest) -> RequestMeta {
    RequestMeta {
        ip: req.peer_addr().map(|addr| addr.ip().to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        let meta = request_meta(req);
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::internal(std::io::Error::other("state missing")))?;
            let token = token
                .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".to_owned()))?;
            let principal = identity::authenticate(&state, &token).await?;
            Ok(Caller { principal, meta })
        })
    }
}

fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::RequestMeta;

    fn key(ip: &str) -> String {
        RequestMeta {
            ip: Some(ip.to_owned()),
            user_agent: None,
        }
        .address_key()
    }

    #[test]
    fn addresses_are_counted_by_ipv4_address_or_ipv6_64() {
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(RequestMeta::default().address_key(), "");
    }
}
