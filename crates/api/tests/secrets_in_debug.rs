//! Values that hold a password, a token, an API key or a signing secret print
//! (`{:?}`, as a log line or an error might) without it.

#![allow(clippy::unwrap_used)]

use chrono::Utc;
use punctual_api::routes::auth::{
    LoginRequest, RefreshRequest, RegisterRequest, ResetConfirmRequest, TokenRequest,
};
use punctual_api::routes::orgs::AcceptInvitation;
use punctual_api::service::identity::{Registered, Registration, TokenPair, UserView};
use punctual_api::service::organizations::{ApiKeyView, CreatedApiKey, SigningSecrets};

const SECRET: &str = "s3cr3t-value-that-must-not-print";

fn assert_hidden(printed: String) {
    assert!(!printed.contains(SECRET), "{printed}");
    assert!(printed.contains("<redacted>"), "{printed}");
}

#[test]
fn requests_with_passwords_or_tokens_print_without_them() {
    let from_json = |json: serde_json::Value| json.to_string();
    let register: RegisterRequest = serde_json::from_str(&from_json(
        serde_json::json!({"email": "a@b.io", "password": SECRET}),
    ))
    .unwrap();
    assert_hidden(format!("{register:?}"));
    let login: LoginRequest = serde_json::from_str(&from_json(
        serde_json::json!({"email": "a@b.io", "password": SECRET}),
    ))
    .unwrap();
    assert_hidden(format!("{login:?}"));
    let reset: ResetConfirmRequest = serde_json::from_str(&from_json(
        serde_json::json!({"token": SECRET, "password": SECRET}),
    ))
    .unwrap();
    assert_hidden(format!("{reset:?}"));
    let refresh: RefreshRequest =
        serde_json::from_str(&from_json(serde_json::json!({"refresh_token": SECRET}))).unwrap();
    assert_hidden(format!("{refresh:?}"));
    let token: TokenRequest =
        serde_json::from_str(&from_json(serde_json::json!({"token": SECRET}))).unwrap();
    assert_hidden(format!("{token:?}"));
    let accept: AcceptInvitation =
        serde_json::from_str(&from_json(serde_json::json!({"token": SECRET}))).unwrap();
    assert_hidden(format!("{accept:?}"));
}

#[test]
fn results_with_tokens_keys_or_secrets_print_without_them() {
    let registration = Registration {
        email: "a@b.io".to_owned(),
        password: SECRET.to_owned(),
        name: None,
        organization: None,
    };
    assert_hidden(format!("{registration:?}"));
    let tokens = TokenPair {
        access_token: SECRET.to_owned(),
        refresh_token: SECRET.to_owned(),
        token_type: "Bearer",
        expires_in: 900,
    };
    assert_hidden(format!("{tokens:?}"));
    let registered = Registered {
        user: UserView {
            id: uuid::Uuid::now_v7(),
            email: "a@b.io".to_owned(),
            name: None,
            is_platform_admin: false,
            disabled: false,
            created_at: Utc::now(),
        },
        organization: None,
        signing_secret: Some(SECRET.to_owned()),
        tokens: tokens.clone(),
    };
    assert_hidden(format!("{registered:?}"));
    let key = CreatedApiKey {
        key: ApiKeyView {
            id: uuid::Uuid::now_v7(),
            name: "ci".to_owned(),
            role: "member".to_owned(),
            prefix: "pk_live_x".to_owned(),
            created_at: Utc::now(),
            last_used_at: None,
        },
        api_key: SECRET.to_owned(),
    };
    assert_hidden(format!("{key:?}"));
    let secrets = SigningSecrets {
        signing_secret: SECRET.to_owned(),
        previous_secret: Some(SECRET.to_owned()),
        previous_expires_at: None,
    };
    assert_hidden(format!("{secrets:?}"));
}
