//! The console's session: cookies carrying a short-lived access token and the
//! refresh token behind it, renewed transparently; the CSRF token; the viewer's
//! time zone.
//!
//! Both tokens are the very ones the REST API issues (`identity::login`,
//! `identity::refresh`): a console session is an API session, revoked by the same
//! logout, password reset or account disable.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use base64::Engine as _;
use chrono_tz::Tz;
use punctual_api::caller::{Caller, Principal, RequestMeta};
use punctual_api::service::identity::{self, TokenPair};
use punctual_api::service::ServiceError;
use punctual_api::AppState;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ConsoleError;
use crate::Console;

/// The access token (JWT, minutes).
pub(crate) const ACCESS_COOKIE: &str = "punctual_access";
/// The refresh token (opaque, single use, the session's lifetime).
pub(crate) const REFRESH_COOKIE: &str = "punctual_refresh";
/// The double-submit CSRF token.
pub(crate) const CSRF_COOKIE: &str = "punctual_csrf";
/// The viewer's chosen time zone.
pub(crate) const TZ_COOKIE: &str = "punctual_tz";

/// How long a rotated refresh token keeps answering with its successor. Two
/// requests that both find the access token expired present the same refresh
/// token; without this the second would look like theft and end the session.
const REFRESH_GRACE: Duration = Duration::from_secs(30);

/// `Set-Cookie` values for the response, left in the request's extensions by
/// extractors and written by [`crate::console_layer`].
#[derive(Default)]
pub(crate) struct PendingCookies(pub Vec<String>);

/// A recent rotation: what the token was exchanged for, when, and by whom.
struct Rotation {
    pair: TokenPair,
    at: Instant,
    requester: [u8; 32],
}

/// Recently rotated refresh tokens (by SHA-256) and what they were exchanged for.
#[derive(Default)]
pub(crate) struct RefreshCache {
    recent: tokio::sync::Mutex<HashMap<[u8; 32], Rotation>>,
}

impl RefreshCache {
    /// Exchanges `token` once; a second exchange within [`REFRESH_GRACE`] by the
    /// same requester (address and user agent: the same browser racing itself)
    /// gets the same pair. From anyone else it is a used token presented again,
    /// which the exchange treats as theft (the session ends). Refreshes on this
    /// node are serialized (they happen once per session every few minutes).
    async fn refresh(
        &self,
        state: &AppState,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<TokenPair, ServiceError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let requester = requester_of(meta);
        let mut recent = self.recent.lock().await;
        recent.retain(|_, rotation| rotation.at.elapsed() < REFRESH_GRACE);
        if let Some(rotation) = recent.get(&key) {
            if rotation.requester == requester {
                return Ok(rotation.pair.clone());
            }
            recent.remove(&key);
        }
        let pair = identity::refresh(state, token, meta).await?;
        recent.insert(
            key,
            Rotation {
                pair: pair.clone(),
                at: Instant::now(),
                requester,
            },
        );
        Ok(pair)
    }
}

/// Who presents a refresh token, as far as a browser can be told apart.
fn requester_of(meta: &RequestMeta) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(meta.address_key().as_bytes());
    hasher.update([0]);
    hasher.update(meta.user_agent.as_deref().unwrap_or_default().as_bytes());
    hasher.finalize().into()
}

/// The value of cookie `name`, if the request carries it.
pub(crate) fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

/// Whether the request came over TLS (directly, or as a proxy's
/// `X-Forwarded-Proto` / `Forwarded` says).
fn is_secure(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

fn set_cookie(req: &HttpRequest, name: &str, value: &str, max_age: Option<i64>) {
    let secure = if is_secure(req) { "; Secure" } else { "" };
    let max_age = max_age
        .map(|seconds| format!("; Max-Age={seconds}"))
        .unwrap_or_default();
    let cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{max_age}");
    let mut extensions = req.extensions_mut();
    match extensions.get_mut::<PendingCookies>() {
        Some(pending) => pending.0.push(cookie),
        None => {
            extensions.insert(PendingCookies(vec![cookie]));
        }
    }
}

/// Sets the session cookies for a fresh token pair.
pub(crate) fn start(req: &HttpRequest, state: &AppState, pair: &TokenPair) {
    set_cookie(
        req,
        ACCESS_COOKIE,
        &pair.access_token,
        Some(pair.expires_in),
    );
    set_cookie(
        req,
        REFRESH_COOKIE,
        &pair.refresh_token,
        Some(state.identity.refresh_ttl.num_seconds()),
    );
}

/// Clears the session cookies.
pub(crate) fn end(req: &HttpRequest) {
    set_cookie(req, ACCESS_COOKIE, "", Some(0));
    set_cookie(req, REFRESH_COOKIE, "", Some(0));
}

/// Remembers the viewer's time zone for a year.
pub(crate) fn set_timezone(req: &HttpRequest, zone: Tz) {
    set_cookie(req, TZ_COOKIE, zone.name(), Some(365 * 24 * 3600));
}

fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Anyone looking at a page, signed in or not.
#[derive(Debug, Clone)]
pub(crate) struct Visitor {
    /// The CSRF token every form of the page carries.
    pub csrf: String,
    /// Times are shown in this zone.
    pub tz: Tz,
    /// Peer address and user agent, for the use cases.
    pub meta: RequestMeta,
}

impl Visitor {
    fn of(req: &HttpRequest) -> Self {
        let csrf = match cookie(req, CSRF_COOKIE).filter(|t| t.len() == 43) {
            Some(token) => token,
            None => {
                let token = random_token();
                set_cookie(req, CSRF_COOKIE, &token, None);
                token
            }
        };
        let tz = cookie(req, TZ_COOKIE)
            .and_then(|name| name.parse::<Tz>().ok())
            .unwrap_or(Tz::UTC);
        Self {
            csrf,
            tz,
            meta: RequestMeta::of(req),
        }
    }
}

impl FromRequest for Visitor {
    type Error = ConsoleError;
    type Future = std::future::Ready<Result<Self, ConsoleError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Visitor::of(req)))
    }
}

/// A signed-in user: the caller the use cases get, and the page's visitor data.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// For the service functions.
    pub caller: Caller,
    /// May see the platform admin pages.
    pub platform_admin: bool,
    /// CSRF token and time zone.
    pub visitor: Visitor,
}

impl FromRequest for Viewer {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let visitor = Visitor::of(&req);
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ConsoleError::internal("application state is missing"))?;
            let console = req
                .app_data::<web::Data<Console>>()
                .cloned()
                .ok_or_else(|| ConsoleError::internal("console state is missing"))?;
            let sign_in = || {
                let next = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_else(|| "/".to_owned());
                ConsoleError::SignIn {
                    next: if req.method() == actix_web::http::Method::GET {
                        next
                    } else {
                        "/".to_owned()
                    },
                }
            };
            let mut principal = None;
            if let Some(access) = cookie(&req, ACCESS_COOKIE) {
                principal = identity::authenticate(&state, &access).await.ok();
            }
            if principal.is_none() {
                if let Some(refresh) = cookie(&req, REFRESH_COOKIE) {
                    match console
                        .refreshes
                        .refresh(&state, &refresh, &visitor.meta)
                        .await
                    {
                        Ok(pair) => {
                            principal = identity::authenticate(&state, &pair.access_token)
                                .await
                                .ok();
                            start(&req, &state, &pair);
                        }
                        Err(ServiceError::Unauthenticated(_)) => {}
                        Err(other) => return Err(other.into()),
                    }
                }
            }
            // Only a user's own session signs in to the console: a cookie holding
            // an API key or the service token is not a session.
            match principal {
                Some(principal @ Principal::User { platform_admin, .. }) => Ok(Viewer {
                    caller: Caller {
                        principal,
                        meta: visitor.meta.clone(),
                    },
                    platform_admin,
                    visitor,
                }),
                _ => {
                    if cookie(&req, ACCESS_COOKIE).is_some()
                        || cookie(&req, REFRESH_COOKIE).is_some()
                    {
                        end(&req);
                    }
                    Err(sign_in())
                }
            }
        })
    }
}
