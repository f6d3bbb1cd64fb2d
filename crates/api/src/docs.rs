//! The OpenAPI document and the route table derived from it.

use utoipa::openapi::OpenApi;

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
    /// Renders `openapi`.
    pub fn new(openapi: OpenApi) -> Self {
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
