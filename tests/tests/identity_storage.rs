//! What identity stores and for how long (issue 3, SECURITY.md): argon2id at the
//! configured parameters with re-hashing, only SHA-256 digests of tokens and API
//! key secrets, the lifetimes of email tokens, invitations and sessions (checked by
//! ageing rows in the database, not by waiting), `last_used_at` written at most
//! once a minute, and the per-IP login limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use punctual_persistence::entities::{
    api_key, auth_session, email_token, invitation, refresh_token, user,
};
use punctual_tests::{problem, spawn_app, unauthorized, unique, TestApp, TestUser};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn user_row(app: &TestApp, user: &TestUser) -> user::Model {
    user::Entity::find_by_id(user.id.parse::<uuid::Uuid>().unwrap())
        .one(app.database.conn())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn passwords_are_argon2id_at_the_configured_cost_and_rehashed_when_it_changes() {
    let app = spawn_app().await;
    let user = app.register_user().await;
    let stored = user_row(&app, &user).await.password_hash.unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "OWASP's minimum argon2id: {stored}"
    );
    assert!(!stored.contains(&user.password));

    // A hash made with other parameters (as after a configuration change) still
    // verifies, and is replaced by one at the configured cost on login.
    let older = punctual_auth::PasswordHasher::new(punctual_auth::password::Argon2Config {
        memory_kib: 24576,
        iterations: 3,
        parallelism: 1,
    })
    .unwrap()
    .hash(&user.password)
    .unwrap();
    assert!(older.starts_with("$argon2id$v=19$m=24576,t=3,p=1$"));
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(Some(older.clone())))
        .filter(user::Column::Id.eq(user.id.parse::<uuid::Uuid>().unwrap()))
        .exec(app.database.conn())
        .await
        .unwrap();
    assert_eq!(app.login(&user.email, &user.password).await.status(), 200);
    let rehashed = user_row(&app, &user).await.password_hash.unwrap();
    assert_ne!(rehashed, older);
    assert!(rehashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert_eq!(app.login(&user.email, &user.password).await.status(), 200);
    unauthorized(app.login(&user.email, "not the password").await).await;
}

#[tokio::test]
async fn tokens_and_key_secrets_are_stored_as_sha256_digests_only() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let db = app.database.conn();

    // Refresh tokens.
    let digests: Vec<String> = refresh_token::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.token_hash)
        .collect();
    assert_eq!(digests, [sha256_hex(&owner.refresh_token)]);

    // API keys: the digest of the secret, never the secret.
    let full = app.create_api_key(&owner, &org, "member").await;
    let secret = full.split_once(".sk_live_").unwrap().1;
    let keys = api_key::Entity::find().all(db).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].secret_hash, sha256_hex(secret));
    assert!(!format!("{:?}", keys[0]).contains(secret));

    // Invitation and email tokens.
    let invitee = format!("{}@example.com", unique("invitee"));
    let response = app
        .post_json(
            &format!("/api/v1/orgs/{}/invitations", org.slug),
            Some(&owner.access_token),
            &json!({"email": invitee, "role": "member"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let invitation_token = app.latest_email_token(&invitee).await;
    let invitations = invitation::Entity::find().all(db).await.unwrap();
    assert_eq!(invitations[0].token_hash, sha256_hex(&invitation_token));

    let response = app
        .post_json(
            "/api/v1/auth/password-reset",
            None,
            &json!({"email": owner.email}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let reset_token = app.latest_email_token(&owner.email).await;
    let tokens = email_token::Entity::find().all(db).await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].token_hash, sha256_hex(&reset_token));
}

#[tokio::test]
async fn email_tokens_live_thirty_minutes_and_expired_ones_are_refused() {
    let app = spawn_app().await;
    let user = app.register_user().await;
    let db = app.database.conn();
    for (path, verify) in [
        (
            "/api/v1/auth/password-reset",
            "/api/v1/auth/password-reset/confirm",
        ),
        ("/api/v1/auth/magic-link", "/api/v1/auth/magic-link/verify"),
    ] {
        email_token::Entity::delete_many().exec(db).await.unwrap();
        let response = app
            .post_json(path, None, &json!({"email": user.email}))
            .await;
        assert_eq!(response.status(), 202);
        let token = app.latest_email_token(&user.email).await;
        let row = email_token::Entity::find().one(db).await.unwrap().unwrap();
        assert_eq!(
            row.expires_at - row.created_at,
            Duration::minutes(30),
            "{path}"
        );

        // Aged past its expiry, it is refused, however fresh the request.
        email_token::Entity::update_many()
            .col_expr(
                email_token::Column::ExpiresAt,
                Expr::value(Utc::now() - Duration::seconds(1)),
            )
            .exec(db)
            .await
            .unwrap();
        let body = json!({"token": token, "password": "a new passphrase"});
        unauthorized(app.post_json(verify, None, &body).await).await;
    }
    assert_eq!(app.login(&user.email, &user.password).await.status(), 200);
}

#[tokio::test]
async fn invitations_live_seven_days_and_expired_ones_are_refused() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let invitee = app.register_user().await;
    let created = json_of(
        app.post_json(
            &format!("/api/v1/orgs/{}/invitations", org.slug),
            Some(&owner.access_token),
            &json!({"email": invitee.email, "role": "member"}),
        )
        .await,
        201,
    )
    .await;
    let token = app.latest_email_token(&invitee.email).await;
    let row = invitation::Entity::find()
        .one(app.database.conn())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.expires_at - row.created_at, Duration::days(7));
    let shown_created =
        chrono::DateTime::parse_from_rfc3339(created["created_at"].as_str().unwrap()).unwrap();
    let shown_expires =
        chrono::DateTime::parse_from_rfc3339(created["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(shown_expires - shown_created, Duration::days(7));

    invitation::Entity::update_many()
        .col_expr(
            invitation::Column::ExpiresAt,
            Expr::value(Utc::now() - Duration::seconds(1)),
        )
        .exec(app.database.conn())
        .await
        .unwrap();
    let response = app
        .post_json(
            "/api/v1/invitations/accept",
            Some(&invitee.access_token),
            &json!({"token": token}),
        )
        .await;
    problem(response, 404).await;
}

#[tokio::test]
async fn an_expired_session_cannot_be_refreshed() {
    let app = spawn_app().await;
    let user = app.register_user().await;
    let session = auth_session::Entity::find()
        .one(app.database.conn())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        session.expires_at - session.created_at,
        Duration::days(30),
        "refresh_ttl_days"
    );
    auth_session::Entity::update_many()
        .col_expr(
            auth_session::Column::ExpiresAt,
            Expr::value(Utc::now() - Duration::seconds(1)),
        )
        .exec(app.database.conn())
        .await
        .unwrap();
    unauthorized(app.refresh(&user.refresh_token).await).await;
}

#[tokio::test]
async fn api_key_last_used_at_is_written_at_most_once_a_minute() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let key = app.create_api_key(&owner, &org, "member").await;
    let path = format!("/api/v1/orgs/{}", org.slug);
    let last_used = || async {
        api_key::Entity::find()
            .one(app.database.conn())
            .await
            .unwrap()
            .unwrap()
            .last_used_at
    };
    assert_eq!(last_used().await, None);
    let use_key = || async {
        let status = app
            .call(Method::GET, &path, Some(&key), None)
            .await
            .status();
        assert_eq!(status, 200);
    };
    use_key().await;
    let first = last_used().await.expect("written on first use");
    use_key().await;
    use_key().await;
    assert_eq!(
        last_used().await,
        Some(first),
        "not rewritten within a minute"
    );

    // Once the recorded use is more than a minute old, the next use records again.
    let aged = Utc::now() - Duration::minutes(2);
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, Expr::value(Some(aged)))
        .exec(app.database.conn())
        .await
        .unwrap();
    // The node reads the key again once its cached copy expires.
    tokio::time::sleep(
        punctual_api::auth_cache::API_KEY_CACHE_TTL + std::time::Duration::from_millis(100),
    )
    .await;
    use_key().await;
    let refreshed = last_used().await.unwrap();
    assert!(
        refreshed > aged + Duration::seconds(60),
        "{refreshed} vs {aged}"
    );
}

#[tokio::test]
async fn fifty_failed_logins_from_one_ip_lock_it_out_whatever_the_email() {
    let app = spawn_app().await;
    let user = app.register_user().await;
    // 50 failures spread over emails, none of which reaches its own limit of 10.
    for round in 0..50 {
        let email = format!("spray-{}@example.com", round % 6);
        let status = app.login(&email, "guess").await.status();
        assert_eq!(status, 401, "failure {round}");
    }
    let response = app.login(&user.email, &user.password).await;
    assert!(response.headers().contains_key("retry-after"));
    problem(response, 429).await;
}
