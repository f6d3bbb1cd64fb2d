//! The page shell (header, organization switcher, navigation, footer) and the
//! small pieces every page uses: times, form fields with their errors.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{html, Markup, DOCTYPE};
use punctual_api::error::FieldProblem;
use punctual_api::service::identity::{self, OrganizationView};
use punctual_api::AppState;
use punctual_auth::{Permission, Role};

use crate::error::ConsoleError;
use crate::form::CSRF_FIELD;
use crate::session::Viewer;

/// The stylesheet's path; its content is embedded in the binary.
pub(crate) const STYLESHEET: &str = "/assets/console.css";

/// An HTML response.
pub(crate) fn html(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ))
        .body(markup.into_string())
}

/// A 200 page.
pub(crate) fn ok(markup: Markup) -> HttpResponse {
    html(StatusCode::OK, markup)
}

/// `303 See Other` to a local path (after a form post).
pub(crate) fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

/// What the shell of a signed-in page shows.
pub(crate) struct Chrome {
    /// Who is signed in.
    pub email: String,
    /// Links to the platform admin pages.
    pub platform_admin: bool,
    /// The viewer's organizations, for the switcher.
    pub orgs: Vec<OrganizationView>,
    /// The organization the page is about, with the viewer's role there.
    pub current: Option<OrganizationView>,
    /// The page's CSRF token.
    pub csrf: String,
    /// The viewer's time zone.
    pub tz: Tz,
    /// The path of the page (the time zone form comes back to it).
    pub path: String,
    /// Reload the page every so many seconds (live refresh without a script).
    pub refresh_seconds: Option<u32>,
}

impl Chrome {
    /// Loads the viewer's profile and memberships; with `slug`, the organization
    /// must be one of them (another organization is "not found", as in the API).
    pub async fn load(
        state: &AppState,
        viewer: &Viewer,
        slug: Option<&str>,
        path: &str,
    ) -> Result<Self, ConsoleError> {
        let me = identity::me(state, &viewer.caller).await?;
        let current = match slug {
            Some(slug) => Some(
                me.organizations
                    .iter()
                    .find(|org| org.slug == slug)
                    .cloned()
                    .ok_or_else(|| ConsoleError::not_found("organization"))?,
            ),
            None => None,
        };
        Ok(Self {
            email: me.user.email,
            platform_admin: viewer.platform_admin,
            orgs: me.organizations,
            current,
            csrf: viewer.visitor.csrf.clone(),
            tz: viewer.visitor.tz,
            path: path.to_owned(),
            refresh_seconds: None,
        })
    }

    /// The viewer's role in the current organization.
    pub fn role(&self) -> Role {
        self.current
            .as_ref()
            .and_then(|org| org.role.as_deref())
            .and_then(|role| role.parse().ok())
            .unwrap_or(Role::Member)
    }

    /// Whether the viewer's role in the current organization allows `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        self.role().allows(permission)
    }

    /// The hidden CSRF field of a form.
    pub fn csrf_field(&self) -> Markup {
        csrf_field(&self.csrf)
    }
}

/// The hidden CSRF field of a form.
pub(crate) fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

fn head(title: &str, refresh_seconds: Option<u32>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            @if let Some(seconds) = refresh_seconds { meta http-equiv="refresh" content=(seconds); }
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Punctual" }
            link rel="stylesheet" href=(STYLESHEET);
        }
    }
}

/// A page for someone not signed in (sign in, register, errors).
pub(crate) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None))
            body.bare {
                header.top { a.brand href="/" { "Punctual" } }
                main id="main" { (body) }
            }
        }
    }
}

/// A signed-in page: header with the organization switcher, the organization's
/// navigation, `body`, and the footer with the time zone choice.
pub(crate) fn page(chrome: &Chrome, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, chrome.refresh_seconds))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Punctual" }
                    (switcher(chrome))
                    div.account {
                        span.email { (chrome.email) }
                        @if chrome.platform_admin { a href="/admin" { "Admin" } }
                        form.inline method="post" action="/logout" {
                            (chrome.csrf_field())
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                @if let Some(org) = &chrome.current { (org_nav(chrome, org)) }
                main id="main" { (body) }
                footer {
                    form.inline method="post" action="/preferences/timezone" {
                        (chrome.csrf_field())
                        input type="hidden" name="next" value=(chrome.path);
                        label for="tz" { "Show times in" }
                        input id="tz" name="tz" type="text" value=(chrome.tz.name()) size="16" autocomplete="off";
                        button type="submit" { "Set" }
                    }
                }
            }
        }
    }
}

fn switcher(chrome: &Chrome) -> Markup {
    let label = chrome
        .current
        .as_ref()
        .map(|o| o.name.as_str())
        .unwrap_or("Organizations");
    html! {
        nav.switcher aria-label="Organizations" {
            details {
                summary { (label) }
                ul {
                    @for org in &chrome.orgs {
                        li { a href=(format!("/orgs/{}/jobs", org.slug)) aria-current=[(Some(&org.slug) == chrome.current.as_ref().map(|c| &c.slug)).then_some("page")] { (org.name) " " small { "(" (org.slug) ")" } } }
                    }
                    li { a href="/orgs" { "All organizations / new" } }
                }
            }
        }
    }
}

fn org_nav(chrome: &Chrome, org: &OrganizationView) -> Markup {
    let base = format!("/orgs/{}", org.slug);
    let mut links = vec![("jobs", "Jobs"), ("usage", "Usage"), ("members", "Members")];
    if chrome.may(Permission::ManageInvitations) {
        links.push(("invitations", "Invitations"));
    }
    if chrome.may(Permission::ManageApiKeys) {
        links.push(("api-keys", "API keys"));
    }
    if chrome.may(Permission::ManageNotifications) {
        links.push(("notifications", "Notifications"));
    }
    if chrome.may(Permission::RotateSigningSecret) {
        links.push(("signing-secret", "Signing secret"));
    }
    if chrome.may(Permission::ReadAuditLog) {
        links.push(("audit", "Audit log"));
    }
    html! {
        nav.org aria-label="Organization" {
            ul {
                @for (path, label) in links {
                    @let href = format!("{base}/{path}");
                    li { a href=(href) aria-current=[chrome.path.starts_with(&href).then_some("page")] { (label) } }
                }
            }
        }
    }
}

/// The page of a refused or failed request.
pub(crate) fn error_page(status: StatusCode, detail: &str, problems: &[FieldProblem]) -> Markup {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    bare(
        &title,
        html! {
            section.error {
                h1 { (title) }
                p { (detail) }
                @if !problems.is_empty() {
                    ul {
                        @for problem in problems { li { code { (problem.field) } ": " (problem.message) } }
                    }
                }
                p { a href="/" { "Back to the console" } }
            }
        },
    )
}

/// An instant in the viewer's zone, with UTC on hover and how far away it is.
pub(crate) fn time(at: DateTime<Utc>, tz: Tz, now: DateTime<Utc>) -> Markup {
    let local = at.with_timezone(&tz);
    html! {
        time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            title=(format!("{} UTC", at.format("%Y-%m-%d %H:%M:%S"))) {
            (local.format("%Y-%m-%d %H:%M:%S %Z"))
        }
        " " span.relative { "(" (relative(at, now)) ")" }
    }
}

/// An instant in the viewer's zone, with UTC on hover, without the distance.
pub(crate) fn short_time(at: DateTime<Utc>, tz: Tz) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            title=(format!("{} UTC", at.format("%Y-%m-%d %H:%M:%S"))) {
            (at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S"))
        }
    }
}

/// "in 5 min", "3 h ago".
pub(crate) fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (at - now).num_seconds();
    let magnitude = seconds.unsigned_abs();
    if magnitude == 0 {
        return "now".to_owned();
    }
    let amount = match magnitude {
        0..60 => format!("{magnitude} s"),
        60..3600 => format!("{} min", magnitude / 60),
        3600..86_400 => format!("{} h", magnitude / 3600),
        _ => format!("{} d", magnitude / 86_400),
    };
    if seconds >= 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// The problems of one form field: its own and those of its parts
/// (`request.headers` collects `request.headers.X-Foo`).
pub(crate) fn problems_of<'a>(problems: &'a [FieldProblem], field: &str) -> Vec<&'a str> {
    problems
        .iter()
        .filter(|p| {
            p.field == field
                || p.field
                    .strip_prefix(field)
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
        .map(|p| p.message.as_str())
        .collect()
}

/// A labelled input with the problems of `field` under it.
pub(crate) struct Field<'a> {
    /// The input's `name` and `id`.
    pub name: &'a str,
    /// The label text.
    pub label: &'a str,
    /// The current value.
    pub value: &'a str,
    /// `text`, `email`, `password`, `number` ...
    pub kind: &'a str,
    /// A hint under the input.
    pub hint: Option<&'a str>,
    /// Whether the browser should insist on a value.
    pub required: bool,
}

impl Field<'_> {
    /// Renders the field with the problems of `problem_field` (a service field
    /// name such as `request.url`).
    pub fn render(&self, problems: &[FieldProblem], problem_field: &str) -> Markup {
        let mine = problems_of(problems, problem_field);
        let error_id = format!("{}-error", self.name);
        let hint_id = format!("{}-hint", self.name);
        let described = match (mine.is_empty(), self.hint.is_some()) {
            (false, true) => Some(format!("{error_id} {hint_id}")),
            (false, false) => Some(error_id.clone()),
            (true, true) => Some(hint_id.clone()),
            (true, false) => None,
        };
        html! {
            div.field.invalid[!mine.is_empty()] {
                label for=(self.name) { (self.label) }
                input id=(self.name) name=(self.name) type=(self.kind) value=(self.value)
                    required[self.required]
                    aria-invalid=[(!mine.is_empty()).then_some("true")]
                    aria-describedby=[described];
                @if let Some(hint) = self.hint { small id=(hint_id) { (hint) } }
                (errors(&error_id, &mine))
            }
        }
    }
}

/// The messages of a field, if any.
pub(crate) fn errors(id: &str, messages: &[&str]) -> Markup {
    html! {
        @if !messages.is_empty() {
            p.error id=(id) {
                @for (i, message) in messages.iter().enumerate() {
                    @if i > 0 { br; }
                    (message)
                }
            }
        }
    }
}

/// The problems no field shows (so none is lost).
pub(crate) fn other_problems(problems: &[FieldProblem], shown: &[&str]) -> Markup {
    let rest: Vec<&FieldProblem> = problems
        .iter()
        .filter(|p| {
            !shown.iter().any(|field| {
                p.field == *field
                    || p.field
                        .strip_prefix(field)
                        .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
            })
        })
        .collect();
    html! {
        @if !rest.is_empty() {
            div.alert role="alert" {
                ul { @for p in rest { li { code { (p.field) } ": " (p.message) } } }
            }
        }
    }
}

/// A one-line notice at the top of a page.
pub(crate) fn notice(text: &str) -> Markup {
    html! { p.notice role="status" { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn relative_times_read_naturally() {
        let now = Utc::now();
        assert_eq!(relative(now, now), "now");
        assert_eq!(relative(now + Duration::seconds(12), now), "in 12 s");
        assert_eq!(relative(now - Duration::minutes(5), now), "5 min ago");
        assert_eq!(relative(now + Duration::hours(3), now), "in 3 h");
        assert_eq!(relative(now - Duration::days(2), now), "2 d ago");
    }

    #[test]
    fn problems_belong_to_their_field_and_its_parts() {
        let problems = vec![
            FieldProblem {
                field: "request.headers.X-A".to_owned(),
                message: "bad".to_owned(),
            },
            FieldProblem {
                field: "request.headers_other".to_owned(),
                message: "other".to_owned(),
            },
        ];
        assert_eq!(problems_of(&problems, "request.headers"), ["bad"]);
    }
}
