//! The OpenAPI document and the route table derived from it.

use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{Content, OpenApi, Ref, ResponseBuilder};

use crate::error::PROBLEM_JSON;

/// The rendered OpenAPI document and its browsable page.
pub struct ApiDocument {
    /// `/api/v1/openapi.json`.
    pub json: String,
    /// `/docs`.
    pub html: String,
    /// Every documented route, for telling 405 from 404.
    pub routes: RouteTable,
}

impl ApiDocument {
    /// Renders `openapi`, with the problems every operation can answer added
    /// (see [`document_common_problems`]).
    pub fn new(mut openapi: OpenApi) -> Self {
        document_common_problems(&mut openapi);
        let routes = RouteTable::from_openapi(&openapi);
        let json = openapi.to_json().unwrap_or_else(|_| "{}".to_owned());
        let html = utoipa_scalar::Scalar::new(openapi).to_html();
        Self { json, html, routes }
    }
}

/// Path templates with their allowed methods.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<(Vec<Segment>, Vec<String>)>,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Parameter,
}

impl RouteTable {
    fn from_openapi(openapi: &OpenApi) -> Self {
        let routes = openapi
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            Segment::Parameter
                        } else {
                            Segment::Literal(s.to_owned())
                        }
                    })
                    .collect();
                let methods = methods_of(item);
                (segments, methods)
            })
            .collect();
        Self { routes }
    }

    /// The methods allowed on `path`, if any documented route matches it.
    pub fn allowed_methods(&self, path: &str) -> Option<Vec<String>> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut allowed: Vec<String> = self
            .routes
            .iter()
            .filter(|(segments, _)| {
                segments.len() == parts.len()
                    && segments
                        .iter()
                        .zip(&parts)
                        .all(|(segment, part)| match segment {
                            Segment::Literal(literal) => literal == part,
                            Segment::Parameter => true,
                        })
            })
            .flat_map(|(_, methods)| methods.iter().cloned())
            .collect();
        allowed.sort();
        allowed.dedup();
        (!allowed.is_empty()).then_some(allowed)
    }
}

fn methods_of(item: &utoipa::openapi::PathItem) -> Vec<String> {
    let candidates = [
        ("GET", item.get.is_some()),
        ("PUT", item.put.is_some()),
        ("POST", item.post.is_some()),
        ("DELETE", item.delete.is_some()),
        ("PATCH", item.patch.is_some()),
        ("HEAD", item.head.is_some()),
        ("OPTIONS", item.options.is_some()),
    ];
    candidates
        .iter()
        .filter(|(_, present)| *present)
        .map(|(method, _)| (*method).to_owned())
        .collect()
}

/// A string schema that is one of `values` (the document's enum for a field the
/// API reads as text and validates itself).
pub(crate) fn one_of(values: &[&str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// `schema` with `description`: a field's `schema_with` replaces its doc comment.
pub(crate) fn described(
    mut schema: utoipa::openapi::Object,
    description: &str,
) -> utoipa::openapi::Object {
    schema.description = Some(description.to_owned());
    schema
}

/// [`one_of`] for an optional field, where `null` means the default.
pub(crate) fn one_of_or_null(values: &[&str]) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let mut schema = one_of(values);
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    schema
        .enum_values
        .get_or_insert_with(Vec::new)
        .push(serde_json::Value::Null);
    schema
}

/// Adds to every operation the error answers it can give without listing them
/// itself, each as problem+json: 400 for a malformed body or query string, 401
/// and 403 where credentials are required, 404 where the path names something,
/// 413/415/422 where there is a body, 422 where there are query parameters, and
/// 429 (with `Retry-After`) under the rate-limited `/api/`. A client generated
/// from the document then knows every status it must handle. An operation's own
/// description of a status is kept.
pub fn document_common_problems(openapi: &mut OpenApi) {
    for (path, item) in openapi.paths.paths.iter_mut() {
        let rate_limited = path.starts_with("/api/") && path != "/api/v1/openapi.json";
        let names_something = path.contains('{');
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            add_common_problems(operation, rate_limited, names_something);
        }
    }
}

fn add_common_problems(operation: &mut Operation, rate_limited: bool, names_something: bool) {
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let has_body = operation.request_body.is_some();
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|parameter| matches!(parameter.parameter_in, ParameterIn::Query));
    let mut problems: Vec<(&str, &str)> = Vec::new();
    if has_body || has_query {
        problems.push((
            "400",
            "the body is not well-formed JSON, or the query string cannot be read",
        ));
    }
    if secured {
        problems.push((
            "401",
            "no credentials, or credentials that are invalid, expired or revoked",
        ));
        problems.push((
            "403",
            "the credentials are valid but may not do this (role, kind of credential, suspended organization, platform admins only)",
        ));
    }
    if names_something {
        problems.push((
            "404",
            "nothing of that name the caller can see (another organization's things included)",
        ));
    }
    if has_body {
        problems.push(("413", "the body is over the size limit"));
        problems.push(("415", "the body is not application/json"));
    }
    if has_body || has_query {
        problems.push((
            "422",
            "invalid fields or parameters, every one named in `errors`",
        ));
    }
    for (status, description) in problems {
        add_problem(operation, status, description, None);
    }
    if rate_limited {
        let retry_after = Header::new(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::Integer),
        );
        add_problem(
            operation,
            "429",
            "over the rate limit (`Retry-After` says in how many seconds to try again) or a plan limit (`limit` and `current` say which)",
            Some(("Retry-After", retry_after)),
        );
    }
}

fn add_problem(
    operation: &mut Operation,
    status: &str,
    description: &str,
    header: Option<(&str, Header)>,
) {
    if operation.responses.responses.contains_key(status) {
        return;
    }
    let mut response = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        Content::new(Some(Ref::from_schema_name("Problem"))),
    );
    if let Some((name, header)) = header {
        response = response.header(name, header);
    }
    operation
        .responses
        .responses
        .insert(status.to_owned(), response.build().into());
}
