//! Request extractors that turn malformed input into problems, never 500s.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The most a request body may weigh.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body: 415 when the content type is not JSON, 413 over [`MAX_BODY_BYTES`],
/// 400 when it does not parse, 422 naming the field when a value has the wrong shape.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type_ok = is_json_content_type(req);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::UnsupportedMediaType(
                    "the request body must be application/json".to_owned(),
                ));
            }
            let bytes = body.await.map_err(body_error)?;
            parse_json(&bytes).map(ApiJson)
        })
    }
}

fn is_json_content_type(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_error(error: actix_web::Error) -> ApiError {
    match error.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => too_large(),
        _ if error.as_response_error().status_code()
            == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            too_large()
        }
        _ => ApiError::BadRequest("the request body could not be read".to_owned()),
    }
}

fn too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!("the request body exceeds {MAX_BODY_BYTES} bytes"))
}

/// Parses `bytes` as `T`: a syntax error is a 400; a value of the wrong shape is
/// a 422 naming the field. The document is read whole first, so trailing garbage
/// is a syntax error even when the prefix would not fit `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let document: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    if let Some(field) = text_with_nul(&document, "") {
        return Err(ApiError::invalid(
            field,
            "must not contain NUL (\\u0000) characters",
        ));
    }
    serde_path_to_error::deserialize(document).map_err(|error| {
        let path = error.path().to_string();
        let message = strip_position(&error.into_inner().to_string());
        ApiError::invalid(field_of(&path, &message), message)
    })
}

/// The path (as serde names it: `a.b[0]`) of the first string or key holding a
/// NUL character, which no stored text may contain (PostgreSQL refuses it).
fn text_with_nul(value: &serde_json::Value, path: &str) -> Option<String> {
    let joined = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        serde_json::Value::String(text) if text.contains('\0') => Some(path.to_owned()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| text_with_nul(item, &format!("{path}[{index}]"))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(joined(&key.replace('\0', "\\u0000")))
            } else {
                text_with_nul(item, &joined(key))
            }
        }),
        _ => None,
    }
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// The offending field: serde's path, completed by the name a "missing field" or
/// "unknown field" message quotes (serde reports those at the parent's path).
fn field_of(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    let quoted = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    match (parent, quoted) {
        ("", Some(name)) => name.to_owned(),
        (parent, Some(name)) => format!("{parent}.{name}"),
        (parent, None) => parent.to_owned(),
    }
}
