//! An organization's own pages: usage, members, invitations, API keys,
//! notification settings and the signing secret. Links to what a role may not do
//! are not shown, and the routes refuse it anyway (the use cases decide).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use maud::{html, Markup};
use punctual_api::error::FieldProblem;
use punctual_api::service::notifications::{NotificationEvents, NotificationSettings};
use punctual_api::service::organizations::CreatedApiKey;
use punctual_api::service::{notifications, organizations, usage, ServiceError};
use punctual_api::AppState;
use punctual_auth::Permission;
use serde::Deserialize;
use uuid::Uuid;

use super::{query, Empty};
use crate::error::ConsoleError;
use crate::form::Form;
use crate::layout::{self, Chrome, Field};
use crate::resource;
use crate::session::Viewer;

pub(super) fn register(cfg: &mut web::ServiceConfig) {
    resource(cfg, "/orgs/{org}/usage", vec![web::get().to(usage_page)]);
    resource(cfg, "/orgs/{org}/members", vec![web::get().to(members)]);
    resource(
        cfg,
        "/orgs/{org}/members/{user}/role",
        vec![web::post().to(change_role)],
    );
    resource(
        cfg,
        "/orgs/{org}/members/{user}/remove",
        vec![web::post().to(remove_member)],
    );
    resource(
        cfg,
        "/orgs/{org}/invitations",
        vec![web::get().to(invitations), web::post().to(invite)],
    );
    resource(
        cfg,
        "/orgs/{org}/invitations/{id}/revoke",
        vec![web::post().to(revoke_invitation)],
    );
    resource(
        cfg,
        "/orgs/{org}/api-keys",
        vec![web::get().to(api_keys), web::post().to(create_api_key)],
    );
    resource(
        cfg,
        "/orgs/{org}/api-keys/{id}/revoke",
        vec![web::post().to(revoke_api_key)],
    );
    resource(
        cfg,
        "/orgs/{org}/notifications",
        vec![
            web::get().to(notification_page),
            web::post().to(save_notifications),
        ],
    );
    resource(
        cfg,
        "/orgs/{org}/signing-secret",
        vec![
            web::get().to(signing_secret),
            web::post().to(rotate_signing_secret),
        ],
    );
}

/// Path ids that are not UUIDs name nothing: 404, as in the API.
fn path_uuid(raw: &str, what: &str) -> Result<Uuid, ConsoleError> {
    raw.parse().map_err(|_| ConsoleError::not_found(what))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DoneQuery {
    done: String,
}

fn done_notice(req: &HttpRequest) -> Result<Option<&'static str>, ConsoleError> {
    let q: DoneQuery = query(req)?;
    Ok(match q.done.as_str() {
        "role" => Some("Role changed."),
        "removed" => Some("Member removed."),
        "invited" => Some("Invitation sent."),
        "revoked" => Some("Revoked."),
        "saved" => Some("Saved."),
        _ => None,
    })
}

fn meter(label: &str, used: u64, limit: Option<u64>) -> Markup {
    let id = label.to_lowercase().replace(' ', "-");
    html! {
        div.meter {
            label for=(id) { (label) ": " strong.used { (used) } @if let Some(limit) = limit { " of " (limit) } }
            @if let Some(limit) = limit {
                meter id=(id) min="0" max=(limit.max(1)) value=(used) high=(limit.max(1) * 9 / 10) { (used) " of " (limit) }
            }
        }
    }
}

async fn usage_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let slug = path.into_inner();
    let chrome = Chrome::load(&state, &viewer, Some(&slug), req.path()).await?;
    let usage = usage::usage(&state, &viewer.caller, &slug).await?;
    let tz = chrome.tz;
    let body = html! {
        h1 { "Usage" }
        p { "Plan " strong { (usage.plan) } ", period " (usage.period) " (" (layout::short_time(usage.period_start, tz)) " to " (layout::short_time(usage.period_end, tz)) ")." }
        (meter("Executions this period", usage.executions.used, usage.executions.limit))
        (meter("Jobs", usage.jobs.used, usage.jobs.limit))
        @if !usage.executions_by_status.is_empty() {
            h2 { "Executions by status" }
            table {
                thead { tr { th scope="col" { "Status" } th scope="col" { "Count" } } }
                tbody { @for (status, count) in &usage.executions_by_status { tr { td { (status) } td { (count) } } } }
            }
        }
        @if let Some(limits) = &usage.limits {
            h2 { "Plan limits" }
            dl {
                dt { "Shortest interval" } dd { (limits.min_interval_seconds) " s" }
                dt { "Longest timeout" } dd { (limits.max_timeout_ms) " ms" }
                dt { "Largest request body" } dd { (limits.max_request_body_bytes) " bytes" }
                dt { "Attempts per run" } dd { (limits.max_retry_attempts) }
                dt { "History kept" } dd { (limits.retention_days) " days" }
            }
        }
    };
    Ok(layout::ok(layout::page(&chrome, "Usage", body)))
}

async fn members(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let slug = path.into_inner();
    let chrome = Chrome::load(&state, &viewer, Some(&slug), req.path()).await?;
    let members = organizations::members(&state, &viewer.caller, &slug).await?;
    let manage = chrome.may(Permission::ManageMembers);
    let owners = chrome.may(Permission::ManageOwners);
    let me = viewer.caller.user_id();
    let notice = done_notice(&req)?;
    let body = html! {
        h1 { "Members" }
        @if let Some(text) = notice { (layout::notice(text)) }
        div.scroll {
            table {
                thead { tr { th scope="col" { "Member" } th scope="col" { "Role" } th scope="col" { "Since" } @if manage { th scope="col" { "Change" } } } }
                tbody {
                    @for member in &members {
                        @let base = format!("/orgs/{slug}/members/{}", member.user.id);
                        @let touchable = manage && (owners || member.role != "owner");
                        tr {
                            td { (member.user.email) @if let Some(name) = &member.user.name { br; small.muted { (name) } } }
                            td { (member.role) }
                            td { (layout::short_time(member.joined_at, chrome.tz)) }
                            @if manage {
                                td {
                                    @if touchable {
                                        form.inline method="post" action=(format!("{base}/role")) {
                                            (chrome.csrf_field())
                                            label.visually-hidden for=(format!("role-{}", member.user.id)) { "Role of " (member.user.email) }
                                            select id=(format!("role-{}", member.user.id)) name="role" {
                                                @for role in ["member", "admin", "owner"] {
                                                    @if owners || role != "owner" {
                                                        option value=(role) selected[member.role == role] { (role) }
                                                    }
                                                }
                                            }
                                            button type="submit" { "Set role" }
                                        }
                                        form.inline method="post" action=(format!("{base}/remove")) {
                                            (chrome.csrf_field())
                                            button.danger type="submit" { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                        @if !manage && Some(member.user.id) == me {
                            tr { td colspan="3" {
                                form.inline method="post" action=(format!("{base}/remove")) {
                                    (chrome.csrf_field())
                                    button.danger type="submit" { "Leave this organization" }
                                }
                            } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::ok(layout::page(&chrome, "Members", body)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RoleForm {
    role: String,
}

async fn change_role(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
    Form(form): Form<RoleForm>,
) -> Result<HttpResponse, ConsoleError> {
    let (slug, user) = path.into_inner();
    let user = path_uuid(&user, "member")?;
    organizations::change_role(&state, &viewer.caller, &slug, user, &form.role).await?;
    Ok(layout::redirect(&format!("/orgs/{slug}/members?done=role")))
}

async fn remove_member(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, ConsoleError> {
    let (slug, user) = path.into_inner();
    let user = path_uuid(&user, "member")?;
    organizations::remove_member(&state, &viewer.caller, &slug, user).await?;
    if viewer.caller.user_id() == Some(user) {
        return Ok(layout::redirect("/orgs"));
    }
    Ok(layout::redirect(&format!(
        "/orgs/{slug}/members?done=removed"
    )))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InviteForm {
    email: String,
    role: String,
}

async fn invitations_page(
    req: &HttpRequest,
    state: &AppState,
    viewer: &Viewer,
    slug: &str,
    form: &InviteForm,
    problems: &[FieldProblem],
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let chrome = Chrome::load(state, viewer, Some(slug), req.path()).await?;
    let open = organizations::invitations(state, &viewer.caller, slug).await?;
    let notice = done_notice(req)?;
    let owners = chrome.may(Permission::ManageOwners);
    let body = html! {
        h1 { "Invitations" }
        @if let Some(text) = notice { (layout::notice(text)) }
        @if open.is_empty() { p.muted { "No open invitations." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Expires" } th scope="col" { "" } } }
                tbody { @for invitation in &open { tr {
                    td { (invitation.email) } td { (invitation.role) }
                    td { (layout::short_time(invitation.expires_at, chrome.tz)) }
                    td { form.inline method="post" action=(format!("/orgs/{slug}/invitations/{}/revoke", invitation.id)) {
                        (chrome.csrf_field()) button.danger type="submit" { "Revoke" }
                    } }
                } } }
            } }
        }
        h2 { "Invite someone" }
        form method="post" action=(format!("/orgs/{slug}/invitations")) {
            (chrome.csrf_field())
            (Field { name: "email", label: "Email", value: &form.email, kind: "email", hint: None, required: true }.render(problems, "email"))
            div.field {
                label for="role" { "Role" }
                select id="role" name="role" {
                    @for role in ["member", "admin", "owner"] {
                        @if owners || role != "owner" { option value=(role) selected[form.role == role] { (role) } }
                    }
                }
                (layout::errors("role-error", &layout::problems_of(problems, "role")))
            }
            (layout::other_problems(problems, &["email", "role"]))
            button type="submit" { "Send the invitation" }
        }
    };
    Ok(layout::html(
        status,
        layout::page(&chrome, "Invitations", body),
    ))
}

async fn invitations(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let form = InviteForm {
        role: "member".to_owned(),
        ..InviteForm::default()
    };
    invitations_page(&req, &state, &viewer, &path, &form, &[], StatusCode::OK).await
}

async fn invite(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
    Form(form): Form<InviteForm>,
) -> Result<HttpResponse, ConsoleError> {
    let slug = path.into_inner();
    match organizations::invite(&state, &viewer.caller, &slug, &form.email, &form.role).await {
        Ok(_) => Ok(layout::redirect(&format!(
            "/orgs/{slug}/invitations?done=invited"
        ))),
        Err(ServiceError::Invalid(problems)) => {
            invitations_page(
                &req,
                &state,
                &viewer,
                &slug,
                &form,
                &problems,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

async fn revoke_invitation(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, ConsoleError> {
    let (slug, id) = path.into_inner();
    let id = path_uuid(&id, "invitation")?;
    organizations::revoke_invitation(&state, &viewer.caller, &slug, id).await?;
    Ok(layout::redirect(&format!(
        "/orgs/{slug}/invitations?done=revoked"
    )))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KeyForm {
    name: String,
    role: String,
}

async fn api_keys_page(
    req: &HttpRequest,
    state: &AppState,
    viewer: &Viewer,
    slug: &str,
    created: Option<&CreatedApiKey>,
    problems: &[FieldProblem],
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let chrome = Chrome::load(state, viewer, Some(slug), req.path()).await?;
    let keys = organizations::api_keys(state, &viewer.caller, slug).await?;
    let notice = done_notice(req)?;
    let now = Utc::now();
    let body = html! {
        h1 { "API keys" }
        @if let Some(text) = notice { (layout::notice(text)) }
        @if let Some(created) = created {
            div.secret role="status" {
                p { strong { "Your new key. Copy it now: it is shown only this once." } }
                label for="new-key" { "API key " (created.key.name) }
                input id="new-key" type="text" readonly value=(created.api_key);
            }
        }
        @if keys.is_empty() { p.muted { "No API keys." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Prefix" } th scope="col" { "Role" } th scope="col" { "Last used" } th scope="col" { "" } } }
                tbody { @for key in &keys { tr {
                    td { (key.name) } td { code { (key.prefix) } } td { (key.role) }
                    td { @match key.last_used_at { Some(at) => (layout::time(at, chrome.tz, now)), None => span.muted { "never" } } }
                    td { form.inline method="post" action=(format!("/orgs/{slug}/api-keys/{}/revoke", key.id)) {
                        (chrome.csrf_field()) button.danger type="submit" { "Revoke" }
                    } }
                } } }
            } }
        }
        h2 { "New key" }
        form method="post" action=(format!("/orgs/{slug}/api-keys")) {
            (chrome.csrf_field())
            (Field { name: "name", label: "Name", value: "", kind: "text", hint: None, required: true }.render(problems, "name"))
            div.field {
                label for="role" { "Role" }
                select id="role" name="role" { option value="member" { "member" } option value="admin" { "admin" } }
                (layout::errors("role-error", &layout::problems_of(problems, "role")))
            }
            (layout::other_problems(problems, &["name", "role"]))
            button type="submit" { "Create the key" }
        }
    };
    Ok(layout::html(
        status,
        layout::page(&chrome, "API keys", body),
    ))
}

async fn api_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    api_keys_page(&req, &state, &viewer, &path, None, &[], StatusCode::OK).await
}

async fn create_api_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
    Form(form): Form<KeyForm>,
) -> Result<HttpResponse, ConsoleError> {
    let slug = path.into_inner();
    // The key is shown in this response and never again: no redirect.
    match organizations::create_api_key(&state, &viewer.caller, &slug, &form.name, &form.role).await
    {
        Ok(created) => {
            api_keys_page(
                &req,
                &state,
                &viewer,
                &slug,
                Some(&created),
                &[],
                StatusCode::CREATED,
            )
            .await
        }
        Err(ServiceError::Invalid(problems)) => {
            api_keys_page(
                &req,
                &state,
                &viewer,
                &slug,
                None,
                &problems,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

async fn revoke_api_key(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, ConsoleError> {
    let (slug, id) = path.into_inner();
    let id = path_uuid(&id, "API key")?;
    organizations::revoke_api_key(&state, &viewer.caller, &slug, id).await?;
    Ok(layout::redirect(&format!(
        "/orgs/{slug}/api-keys?done=revoked"
    )))
}

// No `Debug`: a webhook URL may hold a token.
#[derive(Default, Deserialize)]
#[serde(default)]
struct NotificationForm {
    emails: String,
    webhook_url: String,
    failure: Option<String>,
    auto_disable: Option<String>,
    recovery: Option<String>,
}

impl NotificationForm {
    fn of(settings: &NotificationSettings) -> Self {
        let on = |flag: bool| flag.then(|| "on".to_owned());
        Self {
            emails: settings.emails.join("\n"),
            webhook_url: settings.webhook_url.clone().unwrap_or_default(),
            failure: on(settings.events.failure),
            auto_disable: on(settings.events.auto_disable),
            recovery: on(settings.events.recovery),
        }
    }

    fn settings(&self) -> NotificationSettings {
        NotificationSettings {
            emails: self
                .emails
                .split(['\n', ','])
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            webhook_url: Some(self.webhook_url.trim().to_owned()).filter(|u| !u.is_empty()),
            events: NotificationEvents {
                failure: self.failure.is_some(),
                auto_disable: self.auto_disable.is_some(),
                recovery: self.recovery.is_some(),
            },
            updated_at: None,
        }
    }
}

async fn notifications_page(
    req: &HttpRequest,
    state: &AppState,
    viewer: &Viewer,
    slug: &str,
    form: Option<&NotificationForm>,
    problems: &[FieldProblem],
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let chrome = Chrome::load(state, viewer, Some(slug), req.path()).await?;
    let saved = notifications::get(state, &viewer.caller, slug).await?;
    let notice = done_notice(req)?;
    let form = form.map_or_else(
        || NotificationForm::of(&saved),
        |f| NotificationForm {
            emails: f.emails.clone(),
            webhook_url: f.webhook_url.clone(),
            failure: f.failure.clone(),
            auto_disable: f.auto_disable.clone(),
            recovery: f.recovery.clone(),
        },
    );
    let email_problems = layout::problems_of(problems, "emails");
    let body = html! {
        h1 { "Notifications" }
        @if let Some(text) = notice { (layout::notice(text)) }
        @if saved.updated_at.is_none() { p.muted { "Nothing saved yet: owners and admins are emailed for every event." } }
        form method="post" action=(format!("/orgs/{slug}/notifications")) {
            (chrome.csrf_field())
            div.field.invalid[!email_problems.is_empty()] {
                label for="emails" { "Email recipients" }
                textarea id="emails" name="emails" rows="3" aria-describedby="emails-hint" { (form.emails) }
                small id="emails-hint" { "one per line, at most 20" }
                (layout::errors("emails-error", &email_problems))
            }
            (Field { name: "webhook_url", label: "Webhook URL (optional)", value: &form.webhook_url, kind: "url", hint: Some("receives a signed JSON POST per event"), required: false }.render(problems, "webhook_url"))
            fieldset {
                legend { "Notify on" }
                div.field.checkbox { input id="failure" name="failure" type="checkbox" checked[form.failure.is_some()]; label for="failure" { "a run failing all its attempts" } }
                div.field.checkbox { input id="auto_disable" name="auto_disable" type="checkbox" checked[form.auto_disable.is_some()]; label for="auto_disable" { "a job disabled after failures" } }
                div.field.checkbox { input id="recovery" name="recovery" type="checkbox" checked[form.recovery.is_some()]; label for="recovery" { "a job recovering" } }
            }
            (layout::other_problems(problems, &["emails", "webhook_url"]))
            button type="submit" { "Save" }
        }
    };
    Ok(layout::html(
        status,
        layout::page(&chrome, "Notifications", body),
    ))
}

async fn notification_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    notifications_page(&req, &state, &viewer, &path, None, &[], StatusCode::OK).await
}

async fn save_notifications(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
    Form(form): Form<NotificationForm>,
) -> Result<HttpResponse, ConsoleError> {
    let slug = path.into_inner();
    match notifications::put(&state, &viewer.caller, &slug, form.settings()).await {
        Ok(_) => Ok(layout::redirect(&format!(
            "/orgs/{slug}/notifications?done=saved"
        ))),
        Err(ServiceError::Invalid(problems)) => {
            notifications_page(
                &req,
                &state,
                &viewer,
                &slug,
                Some(&form),
                &problems,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

async fn signing_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let slug = path.into_inner();
    let chrome = Chrome::load(&state, &viewer, Some(&slug), req.path()).await?;
    let secrets = organizations::signing_secrets(&state, &viewer.caller, &slug).await?;
    let notice = done_notice(&req)?;
    let body = html! {
        h1 { "Signing secret" }
        @if let Some(text) = notice { (layout::notice(text)) }
        p { "Every request Punctual makes for this organization is signed with this secret (Standard Webhooks). Verify the signatures at your endpoints." }
        details {
            summary { "Show the current secret" }
            input aria-label="Current signing secret" type="text" readonly value=(secrets.signing_secret);
        }
        @if let (Some(_), Some(until)) = (&secrets.previous_secret, secrets.previous_expires_at) {
            p { "The previous secret still signs beside it until " (layout::time(until, chrome.tz, Utc::now())) "." }
        }
        h2 { "Rotate" }
        p { "A new secret signs from now on; the current one keeps signing for 24 hours, so endpoints can switch over." }
        form method="post" action=(format!("/orgs/{slug}/signing-secret")) {
            (chrome.csrf_field())
            button type="submit" { "Rotate the secret" }
        }
    };
    Ok(layout::ok(layout::page(&chrome, "Signing secret", body)))
}

async fn rotate_signing_secret(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<String>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, ConsoleError> {
    let slug = path.into_inner();
    organizations::rotate_signing_secret(&state, &viewer.caller, &slug).await?;
    Ok(layout::redirect(&format!(
        "/orgs/{slug}/signing-secret?done=saved"
    )))
}
