//! The landing redirect and the organization switcher page (with "new organization").

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::html;
use punctual_api::error::FieldProblem;
use punctual_api::service::{identity, organizations, ServiceError};
use punctual_api::AppState;
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::form::Form;
use crate::layout::{self, Chrome, Field};
use crate::resource;
use crate::session::Viewer;

pub(super) fn register(cfg: &mut web::ServiceConfig) {
    resource(
        cfg,
        "/orgs",
        vec![web::get().to(list), web::post().to(create)],
    );
}

/// `/`: the first organization's jobs, or the organization page when there is none.
pub(super) async fn home(
    state: web::Data<AppState>,
    viewer: Viewer,
) -> Result<HttpResponse, ConsoleError> {
    let me = identity::me(&state, &viewer.caller).await?;
    Ok(match me.organizations.first() {
        Some(org) => layout::redirect(&format!("/orgs/{}/jobs", org.slug)),
        None => layout::redirect("/orgs"),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OrgForm {
    name: String,
    slug: String,
}

fn render(
    chrome: &Chrome,
    form: &OrgForm,
    problems: &[FieldProblem],
    message: Option<&str>,
) -> maud::Markup {
    layout::page(
        chrome,
        "Organizations",
        html! {
            h1 { "Organizations" }
            @if chrome.orgs.is_empty() {
                p { "You are not a member of any organization yet. Create one, or accept an invitation from your email." }
            } @else {
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Slug" } th scope="col" { "Your role" } th scope="col" { "Plan" } } }
                    tbody {
                        @for org in &chrome.orgs {
                            tr {
                                td { a href=(format!("/orgs/{}/jobs", org.slug)) { (org.name) } }
                                td { code { (org.slug) } }
                                td { (org.role.as_deref().unwrap_or("")) }
                                td { (org.plan) @if org.suspended { " " span.badge.failed { "suspended" } } }
                            }
                        }
                    }
                }
            }
            h2 { "New organization" }
            @if let Some(message) = message { p.alert role="alert" { (message) } }
            form method="post" action="/orgs" {
                (chrome.csrf_field())
                (Field { name: "name", label: "Name", value: &form.name, kind: "text", hint: None, required: true }.render(problems, "name"))
                (Field { name: "slug", label: "Slug", value: &form.slug, kind: "text", hint: Some("lowercase letters, digits and dashes"), required: true }.render(problems, "slug"))
                (layout::other_problems(problems, &["name", "slug"]))
                button type="submit" { "Create" }
            }
        },
    )
}

async fn list(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, ConsoleError> {
    let chrome = Chrome::load(&state, &viewer, None, "/orgs").await?;
    Ok(layout::ok(render(&chrome, &OrgForm::default(), &[], None)))
}

async fn create(
    state: web::Data<AppState>,
    viewer: Viewer,
    Form(form): Form<OrgForm>,
) -> Result<HttpResponse, ConsoleError> {
    match organizations::create(&state, &viewer.caller, &form.name, form.slug.trim()).await {
        Ok(created) => Ok(layout::redirect(&format!(
            "/orgs/{}/jobs",
            created.organization.slug
        ))),
        Err(ServiceError::Invalid(problems)) => {
            let chrome = Chrome::load(&state, &viewer, None, "/orgs").await?;
            Ok(layout::html(
                StatusCode::UNPROCESSABLE_ENTITY,
                render(&chrome, &form, &problems, None),
            ))
        }
        Err(ServiceError::Conflict(message)) => {
            let chrome = Chrome::load(&state, &viewer, None, "/orgs").await?;
            Ok(layout::html(
                StatusCode::CONFLICT,
                render(&chrome, &form, &[], Some(&message)),
            ))
        }
        Err(other) => Err(other.into()),
    }
}
