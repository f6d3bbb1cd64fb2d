//! An actix-web service that protects its own route with Punctual credentials:
//! organization API keys (checked against a Punctual database) and user access
//! tokens (JWT). It starts, calls itself with a valid key, a valid token and bad
//! credentials, and exits non-zero unless each got the expected answer.
//!
//! ```sh
//! cargo run -p punctual-auth --example protect_route
//! ```
//! Point `DATABASE_URL` at a real Punctual database to check its keys instead of
//! the temporary one created here.

use actix_web::{get, web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::Utc;
use punctual_auth::{
    generate_jwt_secret, looks_like_api_key, parse_api_key, verify_api_key_secret, ApiKeyMaterial,
    JwtConfig, JwtKeys, TokenHash,
};
use punctual_migration::{Migrator, MigratorTrait};
use punctual_persistence::{accounts, organizations, Database, DatabaseOptions};

struct Verifier {
    database: Database,
    jwt: JwtKeys,
}

impl Verifier {
    /// Who the bearer token belongs to, or None.
    async fn principal(&self, token: &str) -> Option<String> {
        if looks_like_api_key(token) {
            let parsed = parse_api_key(token).ok()?;
            let key =
                organizations::find_api_key_by_public_id(self.database.conn(), &parsed.public_id)
                    .await
                    .ok()??;
            let stored = TokenHash::from_hex(&key.secret_hash).ok()?;
            (key.revoked_at.is_none() && verify_api_key_secret(&parsed.secret, &stored)).then(
                || {
                    format!(
                        "API key {} of organization {}",
                        key.name, key.organization_id
                    )
                },
            )
        } else {
            let claims = self.jwt.verify(token, Utc::now()).ok()?;
            Some(format!("user {}", claims.sub))
        }
    }
}

#[get("/hello")]
async fn hello(request: HttpRequest, verifier: web::Data<Verifier>) -> HttpResponse {
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(token) => match verifier.principal(token).await {
            Some(who) => HttpResponse::Ok().body(format!("hello, {who}")),
            None => HttpResponse::Unauthorized().finish(),
        },
        None => HttpResponse::Unauthorized().finish(),
    }
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("auth-example.db").display()
        )
    });
    let database = Database::connect(&DatabaseOptions::new(url)).await?;
    Migrator::up(database.conn(), None).await?;

    // Something to check against: an organization and one of its keys.
    let now = Utc::now();
    let owner = accounts::insert_user(
        database.conn(),
        &format!("{}@example.com", uuid::Uuid::new_v4()),
        None,
        None,
        now,
    )
    .await?;
    let slug = format!(
        "example-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let org = organizations::insert_organization(
        database.conn(),
        &slug,
        "Example",
        "free",
        owner.id,
        "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0".into(),
        now,
    )
    .await?;
    let key = ApiKeyMaterial::generate();
    organizations::insert_api_key(
        database.conn(),
        org.id,
        &key.public_id,
        key.secret_hash.to_hex(),
        "example",
        "member",
        None,
        now,
    )
    .await?;

    let jwt = JwtKeys::new(JwtConfig {
        secret: generate_jwt_secret(),
        issuer: "punctual".into(),
        audience: "punctual-api".into(),
        access_ttl: chrono::Duration::minutes(15),
    })?;
    let user_token = jwt.issue(owner.id, uuid::Uuid::new_v4(), now)?.token;
    let verifier = web::Data::new(Verifier { database, jwt });

    let server = HttpServer::new(move || App::new().app_data(verifier.clone()).service(hello))
        .workers(1)
        .bind(("127.0.0.1", 0))?;
    let address = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    let running = tokio::spawn(server);

    let client = reqwest::Client::new();
    let url = format!("http://{address}/hello");
    let mut ok = true;
    for (label, token, expected) in [
        ("API key", key.full_key.clone(), 200),
        ("user token", user_token, 200),
        (
            "forged key",
            format!("{}x", &key.full_key[..key.full_key.len() - 1]),
            401,
        ),
        ("garbage", "not-a-token".to_owned(), 401),
    ] {
        let response = client.get(&url).bearer_auth(&token).send().await?;
        let status = response.status().as_u16();
        println!(
            "{label:>10}: {status} {}",
            response.text().await.unwrap_or_default()
        );
        ok &= status == expected;
    }
    handle.stop(true).await;
    running.await??;
    if ok {
        Ok(())
    } else {
        Err("a credential got an unexpected answer".into())
    }
}
