//! Punctual's web console: server-rendered HTML pages at `/`, served by the same
//! `punctual serve` as the REST API.
//!
//! The console has no rules of its own. Every page calls the very use cases in
//! [`punctual_api::service`] that the REST handlers call, with a
//! [`punctual_api::caller::Caller`] built from the session cookie, and renders what
//! they return (or the error they refuse with) as HTML. It works without
//! JavaScript; forms post `application/x-www-form-urlencoded` with a CSRF token.
//!
//! `punctual-api` does not know about the console: the server mounts it with
//! [`Console::configure`] on the App that [`punctual_api::app`] builds.

#![warn(missing_docs)]

mod chart;
mod error;
mod form;
mod layout;
mod pages;
mod session;
mod words;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpMessage};

pub use error::ConsoleError;

/// The console's own state, shared by every worker of one process.
#[derive(Clone, Default)]
pub struct Console {
    refreshes: Arc<session::RefreshCache>,
}

impl Console {
    /// A console with an empty refresh cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the console's pages and assets on an App (call it once per worker
    /// with a clone of the same `Console`).
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()));
        pages::register(cfg);
    }
}

/// Wraps every console resource: writes the cookies extractors asked for (a
/// renewed session, a new CSRF token) and the headers every page should carry.
pub(crate) async fn console_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let pending = response
        .request()
        .extensions_mut()
        .remove::<session::PendingCookies>();
    if let Some(pending) = pending {
        for cookie in pending.0 {
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
    }
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Pages show a person's data; no shared cache may keep them.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

/// Registers `path` with the console's middleware and the given routes.
pub(crate) fn resource(cfg: &mut web::ServiceConfig, path: &str, routes: Vec<actix_web::Route>) {
    let mut resource = web::resource(path);
    for route in routes {
        resource = resource.route(route);
    }
    cfg.service(resource.wrap(from_fn(console_layer)));
}
