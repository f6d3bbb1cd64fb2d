//! Form posts: `application/x-www-form-urlencoded`, same origin, with the CSRF
//! token of the page that showed the form. Whatever else arrives is a 4xx page.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::error::ConsoleError;
use crate::session::{cookie, CSRF_COOKIE};

/// The name of the hidden field carrying the CSRF token.
pub(crate) const CSRF_FIELD: &str = "_csrf";

/// A form body that passed the CSRF check, parsed as `T`.
#[derive(Debug)]
pub(crate) struct Form<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Form<T> {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            check_origin(&req)?;
            if !is_form(&req) {
                return Err(ConsoleError::page(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "forms are sent as application/x-www-form-urlencoded",
                ));
            }
            let bytes = body
                .await
                .map_err(|error| match error.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => ConsoleError::page(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "the form is larger than 1 MiB",
                    ),
                    _ => ConsoleError::bad_request("the form could not be read"),
                })?;
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
                .map_err(|_| ConsoleError::bad_request("the form could not be read"))?;
            check_csrf(&req, &pairs)?;
            // No stored text may hold a NUL character (PostgreSQL refuses it).
            if pairs
                .iter()
                .any(|(name, value)| name.contains('\0') || value.contains('\0'))
            {
                return Err(ConsoleError::bad_request(
                    "the form must not contain NUL characters",
                ));
            }
            serde_urlencoded::from_bytes::<T>(&bytes)
                .map(Form)
                .map_err(|error| {
                    ConsoleError::bad_request(format!("the form is malformed: {error}"))
                })
        })
    }
}

fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Double submit: the hidden field must equal the cookie, which another site can
/// neither read nor set.
fn check_csrf(req: &HttpRequest, pairs: &[(String, String)]) -> Result<(), ConsoleError> {
    let sent = pairs
        .iter()
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.as_str());
    let expected = cookie(req, CSRF_COOKIE);
    match (sent, expected) {
        (Some(sent), Some(expected))
            if !expected.is_empty() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) =>
        {
            Ok(())
        }
        _ => Err(ConsoleError::forbidden(
            "the form's security token is missing or wrong; reload the page and try again",
        )),
    }
}

/// A browser names the page a form was posted from; another origin is refused
/// even before the token is looked at (defence in depth).
fn check_origin(req: &HttpRequest) -> Result<(), ConsoleError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let info = req.connection_info();
    let ours = format!("{}://{}", info.scheme(), info.host());
    match origin.to_str() {
        Ok(origin) if origin.eq_ignore_ascii_case(&ours) => Ok(()),
        _ => Err(ConsoleError::forbidden(
            "the form was sent from another site",
        )),
    }
}
