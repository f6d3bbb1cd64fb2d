//! Punctual's REST API: actix-web routes, extractors, problem+json errors and the
//! OpenAPI document generated from the handlers.
//!
//! Handlers stay thin: they extract, call one service function, and map the
//! result. Every failure becomes problem+json in [`error`], once.

pub mod docs;
pub mod error;
pub mod extract;
pub mod observability;
pub mod routes;
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
        description = "A multi-tenant HTTP job scheduler. Unknown fields in request bodies are ignored."
    ),
    tags((name = "operations", description = "Liveness, readiness, metrics and this document"))
)]
struct ApiDoc;

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
        .service(routes::ops::health)
        .service(routes::ops::ready)
        .service(routes::ops::metrics)
        .service(routes::ops::openapi_json)
        .service(routes::ops::docs)
        .split_for_parts();
    app.app_data(web::Data::new(state))
        .app_data(web::Data::new(ApiDocument::new(openapi)))
        .app_data(web::PayloadConfig::new(extract::MAX_BODY_BYTES))
        .default_service(web::to(unmatched))
        .wrap(from_fn(observability::observe))
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
