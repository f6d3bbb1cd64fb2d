//! The audit log: an organization's for its admins, and the platform's for
//! platform admins, with the API's filters (action, actor, time range) and paging.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use maud::{html, Markup};
use punctual_api::error::FieldProblem;
use punctual_api::pagination::Page;
use punctual_api::service::audit::{self, AuditEventView, ListAudit};
use punctual_api::service::ServiceError;
use punctual_api::AppState;
use serde::Deserialize;

use super::{page_size, query};
use crate::error::ConsoleError;
use crate::layout::{self, Chrome, Field};
use crate::resource;
use crate::session::Viewer;

pub(super) fn register(cfg: &mut web::ServiceConfig) {
    resource(
        cfg,
        "/orgs/{org}/audit",
        vec![web::get().to(organization_log)],
    );
    resource(cfg, "/admin/audit", vec![web::get().to(platform_log)]);
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AuditQuery {
    action: String,
    actor: String,
    since: String,
    until: String,
    org: String,
    cursor: String,
    limit: String,
}

impl AuditQuery {
    fn listing(&self, limit: u64) -> ListAudit {
        let given = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        ListAudit {
            action: given(&self.action),
            actor: given(&self.actor),
            since: given(&self.since),
            until: given(&self.until),
            org: given(&self.org),
            org_id: None,
            cursor: given(&self.cursor),
            limit,
        }
    }

    fn next_link(&self, base: &str, cursor: &str, limit: u64) -> String {
        let query = serde_urlencoded::to_string([
            ("action", self.action.as_str()),
            ("actor", self.actor.as_str()),
            ("since", self.since.as_str()),
            ("until", self.until.as_str()),
            ("org", self.org.as_str()),
            ("limit", &limit.to_string()),
            ("cursor", cursor),
        ])
        .unwrap_or_default();
        format!("{base}?{query}")
    }
}

/// The log's page: filters (with their problems), the events, the pager.
fn render(
    chrome: &Chrome,
    base: &str,
    q: &AuditQuery,
    platform: bool,
    result: &Listing,
    limit: u64,
) -> Markup {
    let problems: &[FieldProblem] = match result {
        Err(problems) => problems,
        Ok(_) => &[],
    };
    let now = Utc::now();
    html! {
        h1 { "Audit log" }
        form.audit-filters method="get" action=(base) {
            (Field { name: "action", label: "Action", value: &q.action, kind: "text", hint: Some("e.g. job.created"), required: false }.render(problems, "action"))
            (Field { name: "actor", label: "Actor", value: &q.actor, kind: "text", hint: Some("a user or key id, admin, system or anonymous"), required: false }.render(problems, "actor"))
            (Field { name: "since", label: "Since", value: &q.since, kind: "text", hint: Some("RFC 3339, e.g. 2026-11-01T00:00:00Z"), required: false }.render(problems, "since"))
            (Field { name: "until", label: "Until", value: &q.until, kind: "text", hint: None, required: false }.render(problems, "until"))
            @if platform {
                (Field { name: "org", label: "Organization (slug)", value: &q.org, kind: "text", hint: None, required: false }.render(problems, "org"))
            }
            (layout::other_problems(problems, &["action", "actor", "since", "until", "org"]))
            button type="submit" { "Filter" }
        }
        @if let Ok(page) = result {
            @if page.data.is_empty() { p.muted { "No events match." } } @else {
                div.scroll { table.audit {
                    thead { tr {
                        th scope="col" { "When" } th scope="col" { "Action" } th scope="col" { "Actor" }
                        th scope="col" { "Target" } th scope="col" { "From" } th scope="col" { "Details" }
                    } }
                    tbody { @for event in &page.data { tr {
                        td { (layout::time(event.created_at, chrome.tz, now)) }
                        td { code { (event.action) } }
                        td { (event.actor_type) @if let Some(id) = &event.actor_id { br; small { code { (id) } } } }
                        td { @if let Some(kind) = &event.target_type { (kind) } @if let Some(id) = &event.target_id { br; small { code { (id) } } } }
                        td { (event.ip.as_deref().unwrap_or("—")) }
                        td { @if !event.metadata.is_null() { code { (event.metadata.to_string()) } } }
                    } } }
                } }
            }
            nav.pager aria-label="Pages" {
                @if !q.cursor.is_empty() { a href=(base) { "Newest" } }
                @if let Some(cursor) = &page.next_cursor { a rel="next" href=(q.next_link(base, cursor, limit)) { "Older" } }
            }
        }
    }
}

/// A page of events, or the problems of the filters that prevented it.
type Listing = Result<Page<AuditEventView>, Vec<FieldProblem>>;

/// Bad filters are shown on the page (422); other refusals are error pages.
fn outcome(
    result: Result<Page<AuditEventView>, ServiceError>,
) -> Result<(StatusCode, Listing), ConsoleError> {
    match result {
        Ok(page) => Ok((StatusCode::OK, Ok(page))),
        Err(ServiceError::Invalid(problems)) => {
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Err(problems)))
        }
        Err(other) => Err(other.into()),
    }
}

async fn organization_log(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let slug = path.into_inner();
    let q: AuditQuery = query(&req)?;
    let limit = page_size(Some(&q.limit), 50)?;
    let chrome = Chrome::load(&state, &viewer, Some(&slug), req.path()).await?;
    let (status, result) =
        outcome(audit::organization_log(&state, &viewer.caller, &slug, &q.listing(limit)).await)?;
    let base = format!("/orgs/{slug}/audit");
    let body = render(&chrome, &base, &q, false, &result, limit);
    Ok(layout::html(
        status,
        layout::page(&chrome, "Audit log", body),
    ))
}

async fn platform_log(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
) -> Result<HttpResponse, ConsoleError> {
    let q: AuditQuery = query(&req)?;
    let limit = page_size(Some(&q.limit), 50)?;
    let (status, result) =
        outcome(audit::platform_log(&state, &viewer.caller, &q.listing(limit)).await)?;
    let chrome = Chrome::load(&state, &viewer, None, req.path()).await?;
    let body = html! {
        (super::admin::admin_nav())
        (render(&chrome, "/admin/audit", &q, true, &result, limit))
    };
    Ok(layout::html(
        status,
        layout::page(&chrome, "Audit log", body),
    ))
}
