//! Sign in (password or magic link), sign out, register with an organization,
//! reset a forgotten password, accept an invitation.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use punctual_api::error::FieldProblem;
use punctual_api::service::identity::{self, Registration};
use punctual_api::service::{organizations, ServiceError};
use punctual_api::AppState;
use serde::Deserialize;

use super::{local_path, query, Empty};
use crate::error::ConsoleError;
use crate::form::Form;
use crate::layout::{self, csrf_field, Field};
use crate::resource;
use crate::session::{self, Viewer, Visitor};

pub(super) fn register(cfg: &mut web::ServiceConfig) {
    resource(
        cfg,
        "/login",
        vec![web::get().to(login_page), web::post().to(login)],
    );
    resource(cfg, "/logout", vec![web::post().to(logout)]);
    resource(
        cfg,
        "/register",
        vec![
            web::get().to(register_page),
            web::post().to(register_account),
        ],
    );
    resource(
        cfg,
        "/login/magic-link",
        vec![
            web::get().to(magic_link_page),
            web::post().to(request_magic_link),
        ],
    );
    resource(
        cfg,
        "/login/magic",
        vec![web::get().to(magic_page), web::post().to(magic_sign_in)],
    );
    resource(
        cfg,
        "/password-reset",
        vec![
            web::get().to(password_reset_page),
            web::post().to(reset_password),
        ],
    );
    resource(
        cfg,
        "/password-reset/request",
        vec![web::post().to(request_password_reset)],
    );
    resource(
        cfg,
        "/invitations/accept",
        vec![
            web::get().to(invitation_page),
            web::post().to(accept_invitation),
        ],
    );
}

// No `Debug`: it holds a password or a token.
#[derive(Default, Deserialize)]
#[serde(default)]
struct LoginForm {
    email: String,
    password: String,
    next: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NextQuery {
    next: String,
}

fn login_form(visitor: &Visitor, form: &LoginForm, message: Option<&str>) -> Markup {
    layout::bare(
        "Sign in",
        html! {
            section.narrow {
                h1 { "Sign in" }
                @if let Some(message) = message { p.alert role="alert" { (message) } }
                form method="post" action="/login" {
                    (csrf_field(&visitor.csrf))
                    input type="hidden" name="next" value=(form.next);
                    (Field { name: "email", label: "Email", value: &form.email, kind: "email", hint: None, required: true }.render(&[], "email"))
                    (Field { name: "password", label: "Password", value: "", kind: "password", hint: None, required: true }.render(&[], "password"))
                    button type="submit" { "Sign in" }
                }
                p { a href="/login/magic-link" { "Email me a sign-in link" } " · " a href="/password-reset" { "Forgot your password?" } }
                p { "No account yet? " a href="/register" { "Register" } }
            }
        },
    )
}

async fn login_page(req: HttpRequest, visitor: Visitor) -> Result<HttpResponse, ConsoleError> {
    let NextQuery { next } = query(&req)?;
    let form = LoginForm {
        next,
        ..LoginForm::default()
    };
    Ok(layout::ok(login_form(&visitor, &form, None)))
}

async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    Form(form): Form<LoginForm>,
) -> Result<HttpResponse, ConsoleError> {
    match identity::login(&state, &form.email, &form.password, &visitor.meta).await {
        Ok(pair) => {
            session::start(&req, &state, &pair);
            Ok(layout::redirect(local_path(&form.next)))
        }
        Err(ServiceError::Unauthenticated(_)) => Ok(layout::html(
            StatusCode::UNAUTHORIZED,
            login_form(&visitor, &form, Some("Invalid email or password.")),
        )),
        Err(other) => Err(other.into()),
    }
}

async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, ConsoleError> {
    if let Some(refresh) = session::cookie(&req, session::REFRESH_COOKIE) {
        identity::logout(&state, &refresh, &visitor.meta).await?;
    }
    session::end(&req);
    Ok(layout::redirect("/login"))
}

// No `Debug`: it holds a password or a token.
#[derive(Default, Deserialize)]
#[serde(default)]
struct RegisterForm {
    email: String,
    password: String,
    name: String,
    org_name: String,
    org_slug: String,
}

fn register_form(
    visitor: &Visitor,
    form: &RegisterForm,
    problems: &[FieldProblem],
    message: Option<&str>,
) -> Markup {
    layout::bare(
        "Register",
        html! {
            section.narrow {
                h1 { "Create an account" }
                @if let Some(message) = message { p.alert role="alert" { (message) } }
                form method="post" action="/register" novalidate {
                    (csrf_field(&visitor.csrf))
                    (Field { name: "email", label: "Email", value: &form.email, kind: "email", hint: None, required: true }.render(problems, "email"))
                    (Field { name: "password", label: "Password", value: "", kind: "password", hint: Some("8 to 128 characters"), required: true }.render(problems, "password"))
                    (Field { name: "name", label: "Your name (optional)", value: &form.name, kind: "text", hint: None, required: false }.render(problems, "name"))
                    fieldset {
                        legend { "Your organization" }
                        (Field { name: "org_name", label: "Organization name", value: &form.org_name, kind: "text", hint: None, required: true }.render(problems, "organization.name"))
                        (Field { name: "org_slug", label: "Organization slug", value: &form.org_slug, kind: "text", hint: Some("lowercase letters, digits and dashes; used in URLs"), required: true }.render(problems, "organization.slug"))
                    }
                    (layout::other_problems(problems, &["email", "password", "name", "organization.name", "organization.slug"]))
                    button type="submit" { "Register" }
                }
                p { "Have an account? " a href="/login" { "Sign in" } }
            }
        },
    )
}

async fn register_page(visitor: Visitor) -> HttpResponse {
    layout::ok(register_form(&visitor, &RegisterForm::default(), &[], None))
}

async fn register_account(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    Form(form): Form<RegisterForm>,
) -> Result<HttpResponse, ConsoleError> {
    let organization = if form.org_name.trim().is_empty() && form.org_slug.trim().is_empty() {
        None
    } else {
        Some((form.org_name.clone(), form.org_slug.trim().to_owned()))
    };
    let input = Registration {
        email: form.email.clone(),
        password: form.password.clone(),
        name: Some(form.name.clone()),
        organization,
    };
    match identity::register(&state, input, &visitor.meta).await {
        Ok(registered) => {
            session::start(&req, &state, &registered.tokens);
            let next = match &registered.organization {
                Some(org) => format!("/orgs/{}/jobs", org.slug),
                None => "/orgs".to_owned(),
            };
            Ok(layout::redirect(&next))
        }
        Err(ServiceError::Invalid(problems)) => Ok(layout::html(
            StatusCode::UNPROCESSABLE_ENTITY,
            register_form(&visitor, &form, &problems, None),
        )),
        Err(ServiceError::Conflict(message)) => Ok(layout::html(
            StatusCode::CONFLICT,
            register_form(&visitor, &form, &[], Some(&message)),
        )),
        Err(other) => Err(other.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EmailForm {
    email: String,
}

async fn magic_link_page(visitor: Visitor) -> HttpResponse {
    layout::ok(layout::bare(
        "Sign-in link",
        html! {
            section.narrow {
                h1 { "Email me a sign-in link" }
                form method="post" action="/login/magic-link" {
                    (csrf_field(&visitor.csrf))
                    (Field { name: "email", label: "Email", value: "", kind: "email", hint: None, required: true }.render(&[], "email"))
                    button type="submit" { "Send the link" }
                }
            }
        },
    ))
}

async fn request_magic_link(
    state: web::Data<AppState>,
    visitor: Visitor,
    Form(form): Form<EmailForm>,
) -> Result<HttpResponse, ConsoleError> {
    identity::request_magic_link(&state, &form.email, &visitor.meta).await?;
    Ok(layout::ok(layout::bare(
        "Check your email",
        html! {
            section.narrow {
                h1 { "Check your email" }
                p { "If an account uses this address, a sign-in link valid for 30 minutes is on its way." }
            }
        },
    )))
}

// No `Debug`: it holds a password or a token.
#[derive(Default, Deserialize)]
#[serde(default)]
struct TokenForm {
    token: String,
}

/// The link in the email only shows a button: a mail scanner that follows links
/// must not use up the single-use token.
async fn magic_page(req: HttpRequest, visitor: Visitor) -> Result<HttpResponse, ConsoleError> {
    let TokenForm { token } = query(&req)?;
    Ok(layout::ok(layout::bare(
        "Sign in",
        html! {
            section.narrow {
                h1 { "Sign in with your link" }
                form method="post" action="/login/magic" {
                    (csrf_field(&visitor.csrf))
                    input type="hidden" name="token" value=(token);
                    button type="submit" { "Sign in" }
                }
            }
        },
    )))
}

async fn magic_sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    Form(form): Form<TokenForm>,
) -> Result<HttpResponse, ConsoleError> {
    match identity::verify_magic_link(&state, &form.token, &visitor.meta).await {
        Ok(pair) => {
            session::start(&req, &state, &pair);
            Ok(layout::redirect("/"))
        }
        Err(ServiceError::Unauthenticated(message)) => {
            Err(ConsoleError::page(StatusCode::UNAUTHORIZED, message))
        }
        Err(other) => Err(other.into()),
    }
}

async fn invitation_page(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, ConsoleError> {
    let TokenForm { token } = query(&req)?;
    Ok(layout::ok(layout::bare(
        "Invitation",
        html! {
            section.narrow {
                h1 { "Join an organization" }
                p { "Accept the invitation sent to your email address." }
                form method="post" action="/invitations/accept" {
                    (csrf_field(&viewer.visitor.csrf))
                    input type="hidden" name="token" value=(token);
                    button type="submit" { "Accept the invitation" }
                }
            }
        },
    )))
}

async fn accept_invitation(
    state: web::Data<AppState>,
    viewer: Viewer,
    Form(form): Form<TokenForm>,
) -> Result<HttpResponse, ConsoleError> {
    let org = organizations::accept_invitation(&state, &viewer.caller, &form.token).await?;
    Ok(layout::redirect(&format!("/orgs/{}/jobs", org.slug)))
}

/// Without a token: ask for a reset email. With the token from that email: choose
/// a new password.
async fn password_reset_page(
    req: HttpRequest,
    visitor: Visitor,
) -> Result<HttpResponse, ConsoleError> {
    let TokenForm { token } = query(&req)?;
    Ok(layout::ok(password_reset_form(&visitor, &token, &[])))
}

fn password_reset_form(visitor: &Visitor, token: &str, problems: &[FieldProblem]) -> Markup {
    layout::bare(
        "Reset your password",
        html! {
            section.narrow {
                h1 { "Reset your password" }
                @if token.is_empty() {
                    form method="post" action="/password-reset/request" {
                        (csrf_field(&visitor.csrf))
                        (Field { name: "email", label: "Email", value: "", kind: "email", hint: None, required: true }.render(&[], "email"))
                        button type="submit" { "Email me a reset link" }
                    }
                } @else {
                    form method="post" action="/password-reset" {
                        (csrf_field(&visitor.csrf))
                        input type="hidden" name="token" value=(token);
                        (Field { name: "password", label: "New password", value: "", kind: "password", hint: Some("8 to 128 characters; every session is signed out"), required: true }.render(problems, "password"))
                        (layout::other_problems(problems, &["password"]))
                        button type="submit" { "Set the new password" }
                    }
                }
            }
        },
    )
}

async fn request_password_reset(
    state: web::Data<AppState>,
    visitor: Visitor,
    Form(form): Form<EmailForm>,
) -> Result<HttpResponse, ConsoleError> {
    identity::request_password_reset(&state, &form.email, &visitor.meta).await?;
    Ok(layout::ok(layout::bare(
        "Check your email",
        html! {
            section.narrow {
                h1 { "Check your email" }
                p { "If an account uses this address, a reset link valid for 30 minutes is on its way." }
            }
        },
    )))
}

// No `Debug`: it holds a password or a token.
#[derive(Default, Deserialize)]
#[serde(default)]
struct ResetForm {
    token: String,
    password: String,
}

async fn reset_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    Form(form): Form<ResetForm>,
) -> Result<HttpResponse, ConsoleError> {
    match identity::confirm_password_reset(&state, &form.token, &form.password, &visitor.meta).await
    {
        Ok(()) => {
            // Every session ended, this browser's included.
            session::end(&req);
            Ok(layout::redirect("/login"))
        }
        Err(ServiceError::Invalid(problems)) => Ok(layout::html(
            StatusCode::UNPROCESSABLE_ENTITY,
            password_reset_form(&visitor, &form.token, &problems),
        )),
        Err(ServiceError::Unauthenticated(message)) => {
            Err(ConsoleError::page(StatusCode::UNAUTHORIZED, message))
        }
        Err(other) => Err(other.into()),
    }
}
