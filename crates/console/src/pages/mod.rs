//! The console's routes, one module per area, and what they share.

mod admin;
mod audit;
mod auth;
mod jobs;
mod orgs;
mod settings;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono_tz::Tz;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::form::Form;
use crate::layout;
use crate::resource;
use crate::session;

/// Registers every console route.
pub(crate) fn register(cfg: &mut web::ServiceConfig) {
    resource(cfg, layout::STYLESHEET, vec![web::get().to(stylesheet)]);
    resource(cfg, "/", vec![web::get().to(orgs::home)]);
    resource(
        cfg,
        "/preferences/timezone",
        vec![web::post().to(set_timezone)],
    );
    auth::register(cfg);
    orgs::register(cfg);
    jobs::register(cfg);
    settings::register(cfg);
    admin::register(cfg);
    audit::register(cfg);
}

/// A form with nothing but its CSRF token (buttons that change something).
#[derive(Debug, Deserialize)]
pub(crate) struct Empty {}

/// The query string as `T`; what does not parse is a 400 page, not a 500.
pub(crate) fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ConsoleError> {
    serde_urlencoded::from_str(req.query_string()).map_err(|error| {
        ConsoleError::bad_request(format!("the query string is malformed: {error}"))
    })
}

/// A local path to go back to; anything else (another host, `//host`) is `/`.
pub(crate) fn local_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if local {
        next
    } else {
        "/"
    }
}

/// A page size from the query string: 1 to 200, `default` when absent.
pub(crate) fn page_size(raw: Option<&str>, default: u64) -> Result<u64, ConsoleError> {
    match raw.filter(|r| !r.is_empty()) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| ConsoleError::bad_request("limit must be a whole number from 1 to 200")),
    }
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        ))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ))
        .body(include_str!("../../assets/console.css"))
}

#[derive(Debug, Deserialize)]
struct TimezoneForm {
    #[serde(default)]
    tz: String,
    #[serde(default)]
    next: String,
}

/// Remembers the viewer's time zone in a cookie (an unknown zone is a 422 page).
async fn set_timezone(
    req: HttpRequest,
    Form(form): Form<TimezoneForm>,
) -> Result<HttpResponse, ConsoleError> {
    let zone: Tz = form.tz.trim().parse().map_err(|_| ConsoleError::Page {
        status: actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
        detail: "unknown time zone".to_owned(),
        problems: vec![punctual_api::error::FieldProblem {
            field: "tz".to_owned(),
            message: "must be an IANA time zone such as Europe/Oslo or UTC".to_owned(),
        }],
        retry_after: None,
    })?;
    session::set_timezone(&req, zone);
    Ok(layout::redirect(local_path(&form.next)))
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path("/orgs/a/jobs?x=1"), "/orgs/a/jobs?x=1");
        for outside in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "orgs",
        ] {
            assert_eq!(local_path(outside), "/", "{outside}");
        }
    }
}
