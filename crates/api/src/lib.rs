//! Punctual's REST API: actix-web routes, extractors, problem+json errors and the
//! OpenAPI document generated from the handlers.
//!
//! Handlers stay thin: they extract, call one service function, and map the
//! result. Every failure becomes problem+json in [`error`], once.

#![warn(missing_docs)]

pub mod auth_cache;
pub mod caller;
pub mod docs;
pub mod error;
pub mod extract;
pub mod observability;
pub mod pagination;
pub mod rate_limit;
pub mod routes;
pub mod service;
pub mod state;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpResponse};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

pub use docs::ApiDocument;
pub use error::{ApiError, Problem};
pub use state::AppState;

/// The API's description; paths are collected from the registered handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Punctual",
        description = "A multi-tenant HTTP job scheduler. Unknown fields in request bodies are ignored. \
            Requests under /api/ (except this document) are rate limited per API key, user or client \
            address: responses carry RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset, and \
            over the limit the answer is 429 with Retry-After."
    ),
    tags(
        (name = "operations", description = "Liveness, readiness, metrics and this document"),
        (name = "accounts", description = "Registration, sessions, password resets, magic links"),
        (name = "organizations", description = "Organizations, members, invitations, API keys, signing secrets"),
        (name = "jobs", description = "Jobs, their executions, and the schedule preview"),
        (name = "admin", description = "Internal administration: platform admins or the service token"),
        (name = "audit", description = "The audit log: every change and security event, who made it, from where")
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Declares the `bearer` scheme: a user's JWT or an API key `pk_live_<id>.sk_live_<secret>`.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The whole application: every route, its state, and the middleware that gives
/// each request a span, a request id, metrics and problem+json errors.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, openapi) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        // The router tries resources in this order, matching each dynamic path
        // against the request's: the jobs API, the hot path of automation, first.
        .service(routes::jobs::create)
        .service(routes::jobs::list)
        .service(routes::jobs::upsert)
        .service(routes::jobs::get)
        .service(routes::jobs::update)
        .service(routes::jobs::delete)
        .service(routes::jobs::pause)
        .service(routes::jobs::resume)
        .service(routes::jobs::trigger)
        .service(routes::jobs::executions)
        .service(routes::jobs::execution)
        .service(routes::ops::health)
        .service(routes::ops::ready)
        .service(routes::ops::metrics)
        .service(routes::ops::openapi_json)
        .service(routes::ops::docs)
        .service(routes::auth::register)
        .service(routes::auth::login)
        .service(routes::auth::refresh)
        .service(routes::auth::logout)
        .service(routes::auth::magic_link)
        .service(routes::auth::magic_link_verify)
        .service(routes::auth::password_reset)
        .service(routes::auth::password_reset_confirm)
        .service(routes::auth::me)
        .service(routes::orgs::create)
        .service(routes::orgs::list)
        .service(routes::orgs::get)
        .service(routes::orgs::update)
        .service(routes::orgs::delete)
        .service(routes::orgs::members)
        .service(routes::orgs::update_member)
        .service(routes::orgs::remove_member)
        .service(routes::orgs::invite)
        .service(routes::orgs::invitations)
        .service(routes::orgs::revoke_invitation)
        .service(routes::orgs::accept_invitation)
        .service(routes::orgs::create_api_key)
        .service(routes::orgs::api_keys)
        .service(routes::orgs::revoke_api_key)
        .service(routes::orgs::rotate_signing_secret)
        .service(routes::orgs::signing_secret)
        .service(routes::schedules::preview)
        .service(routes::admin::organizations)
        .service(routes::admin::organization)
        .service(routes::admin::update_organization)
        .service(routes::admin::users)
        .service(routes::admin::update_user)
        .service(routes::admin::stats)
        .service(routes::usage::get_usage)
        .service(routes::usage::get_notifications)
        .service(routes::usage::put_notifications)
        .service(routes::audit::organization_log)
        .service(routes::audit::platform_log)
        .split_for_parts();
    // Each worker batches its own reads on its own thread (one extra task per
    // worker, no hop to another thread per read).
    let state = AppState {
        job_reads: punctual_persistence::job_reads::JobReads::start(state.database.clone()),
        ..state
    };
    app.app_data(web::Data::new(state))
        .app_data(web::Data::new(ApiDocument::new(openapi)))
        .app_data(web::PayloadConfig::new(extract::MAX_BODY_BYTES))
        .app_data(web::QueryConfig::default().error_handler(unreadable_query))
        .default_service(web::to(unmatched))
        .wrap(from_fn(refuse_encoded_nul))
        // Inside `observe`, so that 429s get a request id, a span and metrics too.
        .wrap(from_fn(rate_limit::limit))
        .wrap(from_fn(observability::observe))
}

/// A path or query string carrying an encoded NUL character is a 400 before any
/// handler sees it: no stored text may hold one (PostgreSQL refuses it), and a
/// filter or a name holding one could only ever be hostile.
async fn refuse_encoded_nul(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    if req.uri().path().contains("%00") || req.query_string().contains("%00") {
        let refusal = ApiError::BadRequest(
            "the URL must not contain an encoded NUL character (%00)".to_owned(),
        );
        let response = actix_web::ResponseError::error_response(&refusal);
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// A query string that does not fit the operation's parameters (say, one of them
/// twice): a 400 saying why. Parameters are read as text and validated by the
/// services, so a bad value is a 422 naming its field instead.
fn unreadable_query(
    error: actix_web::error::QueryPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    let reason = match error {
        actix_web::error::QueryPayloadError::Deserialize(inner) => inner.to_string(),
        other => other.to_string(),
    };
    ApiError::BadRequest(format!("the query string cannot be read: {reason}")).into()
}

/// No route matched: 405 with `Allow` when the path exists with other methods,
/// 404 otherwise.
async fn unmatched(req: HttpRequest, doc: web::Data<ApiDocument>) -> HttpResponse {
    match doc.routes.allowed_methods(req.path()) {
        Some(methods) => {
            let detail = format!("{} is not allowed on {}", req.method(), req.path());
            let status = actix_web::http::StatusCode::METHOD_NOT_ALLOWED;
            let mut response = Problem::for_status(status, detail).into_response(status);
            if let Ok(value) = header::HeaderValue::from_str(&methods.join(", ")) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
        None => {
            let status = actix_web::http::StatusCode::NOT_FOUND;
            let detail = format!("no route matches {} {}", req.method(), req.path());
            Problem::for_status(status, detail).into_response(status)
        }
    }
}
