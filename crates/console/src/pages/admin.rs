//! Platform admin pages over `service::admin`: engine stats, organizations (plan,
//! suspend), users (disable). The use cases refuse anyone else (403 page).

use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use punctual_api::service::admin;
use punctual_api::AppState;
use serde::Deserialize;
use uuid::Uuid;

use super::{page_size, query};
use crate::error::ConsoleError;
use crate::form::Form;
use crate::layout::{self, Chrome};
use crate::resource;
use crate::session::Viewer;

pub(super) fn register(cfg: &mut web::ServiceConfig) {
    resource(cfg, "/admin", vec![web::get().to(stats)]);
    resource(cfg, "/admin/orgs", vec![web::get().to(organizations)]);
    resource(
        cfg,
        "/admin/orgs/{slug}",
        vec![web::post().to(update_organization)],
    );
    resource(cfg, "/admin/users", vec![web::get().to(users)]);
    resource(cfg, "/admin/users/{id}", vec![web::post().to(update_user)]);
}

/// The admin pages' navigation.
pub(super) fn admin_nav() -> maud::Markup {
    html! {
        nav.org aria-label="Admin" {
            ul {
                li { a href="/admin" { "Stats" } }
                li { a href="/admin/orgs" { "Organizations" } }
                li { a href="/admin/users" { "Users" } }
                li { a href="/admin/audit" { "Audit log" } }
            }
        }
    }
}

async fn stats(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
) -> Result<HttpResponse, ConsoleError> {
    let stats = admin::stats(&state, &viewer.caller).await?;
    let chrome = Chrome::load(&state, &viewer, None, req.path()).await?;
    let body = html! {
        (admin_nav())
        h1 { "Platform" }
        dl {
            dt { "Organizations" } dd { (stats.organizations) }
            dt { "Users" } dd { (stats.users) }
            dt { "Jobs" } dd { (stats.jobs) }
        }
        h2 { "Executions in the last 24 hours" }
        @if stats.executions_last_24h.is_empty() { p.muted { "None." } } @else {
            table {
                thead { tr { th scope="col" { "Status" } th scope="col" { "Count" } } }
                tbody { @for (status, count) in &stats.executions_last_24h { tr { td { (status) } td { (count) } } } }
            }
        }
    };
    Ok(layout::ok(layout::page(&chrome, "Admin", body)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListQuery {
    cursor: String,
    limit: String,
}

fn cursor(raw: &str) -> Result<Option<Uuid>, ConsoleError> {
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse()
        .map(Some)
        .map_err(|_| ConsoleError::bad_request("cursor is not a cursor from this list"))
}

async fn organizations(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
) -> Result<HttpResponse, ConsoleError> {
    let q: ListQuery = query(&req)?;
    let limit = page_size(Some(&q.limit), 50)?;
    let orgs = admin::list_organizations(&state, &viewer.caller, cursor(&q.cursor)?, limit).await?;
    let chrome = Chrome::load(&state, &viewer, None, req.path()).await?;
    let plans: Vec<&String> = state.plans.keys().collect();
    let next = (orgs.len() as u64 == limit)
        .then(|| {
            orgs.last()
                .map(|o| format!("/admin/orgs?cursor={}&limit={limit}", o.id))
        })
        .flatten();
    let body = html! {
        (admin_nav())
        h1 { "Organizations" }
        div.scroll { table {
            thead { tr { th scope="col" { "Organization" } th scope="col" { "Jobs" } th scope="col" { "Executions this month" } th scope="col" { "Plan and state" } } }
            tbody { @for org in &orgs { tr {
                td { (org.name) br; code { (org.slug) } }
                td { (org.jobs) }
                td { (org.executions_this_period) }
                td {
                    form.inline method="post" action=(format!("/admin/orgs/{}", org.slug)) {
                        (chrome.csrf_field())
                        label.visually-hidden for=(format!("plan-{}", org.id)) { "Plan of " (org.slug) }
                        select id=(format!("plan-{}", org.id)) name="plan" {
                            @for plan in &plans { option value=(plan) selected[**plan == org.plan] { (plan) } }
                        }
                        div.checkbox {
                            input id=(format!("suspended-{}", org.id)) type="checkbox" name="suspended" checked[org.suspended_at.is_some()];
                            label for=(format!("suspended-{}", org.id)) { "suspended" }
                        }
                        button type="submit" { "Save" }
                    }
                }
            } } }
        } }
        nav.pager aria-label="Pages" {
            @if !q.cursor.is_empty() { a href="/admin/orgs" { "First page" } }
            @if let Some(next) = next { a rel="next" href=(next) { "Next page" } }
        }
    };
    Ok(layout::ok(layout::page(&chrome, "Organizations", body)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OrgForm {
    plan: String,
    suspended: Option<String>,
}

async fn update_organization(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
    Form(form): Form<OrgForm>,
) -> Result<HttpResponse, ConsoleError> {
    let plan = Some(form.plan.clone()).filter(|p| !p.is_empty());
    admin::update_organization(
        &state,
        &viewer.caller,
        &path,
        plan,
        Some(form.suspended.is_some()),
    )
    .await?;
    Ok(layout::redirect("/admin/orgs"))
}

async fn users(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
) -> Result<HttpResponse, ConsoleError> {
    let q: ListQuery = query(&req)?;
    let limit = page_size(Some(&q.limit), 50)?;
    let users = admin::list_users(&state, &viewer.caller, cursor(&q.cursor)?, limit).await?;
    let chrome = Chrome::load(&state, &viewer, None, req.path()).await?;
    let next = (users.len() as u64 == limit)
        .then(|| {
            users
                .last()
                .map(|u| format!("/admin/users?cursor={}&limit={limit}", u.id))
        })
        .flatten();
    let body = html! {
        (admin_nav())
        h1 { "Users" }
        div.scroll { table {
            thead { tr { th scope="col" { "Email" } th scope="col" { "Since" } th scope="col" { "State" } } }
            tbody { @for user in &users { tr {
                td { (user.email) @if user.is_platform_admin { " " span.badge.neutral { "admin" } } }
                td { (layout::short_time(user.created_at, chrome.tz)) }
                td {
                    form.inline method="post" action=(format!("/admin/users/{}", user.id)) {
                        (chrome.csrf_field())
                        @if user.disabled {
                            input type="hidden" name="disabled" value="false";
                            span.badge.failed { "disabled" } " "
                            button type="submit" { "Enable" }
                        } @else {
                            input type="hidden" name="disabled" value="true";
                            button.danger type="submit" { "Disable" }
                        }
                    }
                }
            } } }
        } }
        nav.pager aria-label="Pages" {
            @if !q.cursor.is_empty() { a href="/admin/users" { "First page" } }
            @if let Some(next) = next { a rel="next" href=(next) { "Next page" } }
        }
    };
    Ok(layout::ok(layout::page(&chrome, "Users", body)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UserForm {
    disabled: String,
}

async fn update_user(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
    Form(form): Form<UserForm>,
) -> Result<HttpResponse, ConsoleError> {
    let id: Uuid = path.parse().map_err(|_| ConsoleError::not_found("user"))?;
    let disabled = match form.disabled.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(ConsoleError::bad_request("disabled must be true or false")),
    };
    admin::update_user(&state, &viewer.caller, id, Some(disabled), None).await?;
    Ok(layout::redirect("/admin/users"))
}
