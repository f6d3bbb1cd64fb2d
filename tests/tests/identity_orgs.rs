//! Organizations (issue 3): the role matrix of every organization route, tenant
//! isolation (another organization's things are 404), the last-owner rule, API
//! keys and invitations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use punctual_tests::{
    invalid_fields, problem, spawn_app, spawn_app_with, unauthorized, unique, TestApp, TestOrg,
    TestUser,
};
use reqwest::Method;
use serde_json::{json, Value};

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    json_of(app.call(Method::GET, path, Some(token), None).await, 200).await
}

/// Everything an organization's owner can read about it, minus what merely
/// using a key changes (`last_used_at`): two equal snapshots mean nothing changed.
async fn snapshot(app: &TestApp, org: &TestOrg, owner: &TestUser) -> Value {
    let base = format!("/api/v1/orgs/{}", org.slug);
    let token = owner.access_token.as_str();
    let mut keys = get_json(app, &format!("{base}/api-keys"), token).await;
    for key in keys["data"].as_array_mut().unwrap() {
        key.as_object_mut().unwrap().remove("last_used_at");
    }
    json!({
        "org": get_json(app, &base, token).await,
        "members": get_json(app, &format!("{base}/members"), token).await,
        "invitations": get_json(app, &format!("{base}/invitations"), token).await,
        "api_keys": keys,
        "signing_secret": get_json(app, &format!("{base}/signing-secret"), token).await,
    })
}

fn api_key_id(created: &Value) -> String {
    created["id"].as_str().unwrap().to_owned()
}

async fn create_key(app: &TestApp, token: &str, org: &TestOrg, role: &str) -> Value {
    json_of(
        app.post_json(
            &format!("/api/v1/orgs/{}/api-keys", org.slug),
            Some(token),
            &json!({"name": "fixture", "role": role}),
        )
        .await,
        201,
    )
    .await
}

async fn invite(app: &TestApp, token: &str, org: &TestOrg, email: &str, role: &str) -> Value {
    json_of(
        app.post_json(
            &format!("/api/v1/orgs/{}/invitations", org.slug),
            Some(token),
            &json!({"email": email, "role": role}),
        )
        .await,
        201,
    )
    .await
}

// ---------------------------------------------------------------------------
// Role matrix.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Member,
    Admin,
    Owner,
    AdminKey,
    MemberKey,
}

impl Who {
    const ALL: [Who; 5] = [
        Who::Member,
        Who::Admin,
        Who::Owner,
        Who::AdminKey,
        Who::MemberKey,
    ];

    fn rank(self) -> u8 {
        match self {
            Who::Member | Who::MemberKey => 0,
            Who::Admin | Who::AdminKey => 1,
            Who::Owner => 2,
        }
    }
}

/// The people every matrix case needs; registered once (password hashing is slow).
struct Cast {
    owner: TestUser,
    second_owner: TestUser,
    admin: TestUser,
    member: TestUser,
    target: TestUser,
}

impl Cast {
    async fn new(app: &TestApp) -> Self {
        Self {
            owner: app.register_user().await,
            second_owner: app.register_user().await,
            admin: app.register_user().await,
            member: app.register_user().await,
            target: app.register_user().await,
        }
    }
}

/// A fresh organization per case, so destructive cases do not interfere.
struct Fixture {
    org: TestOrg,
    admin_key: String,
    member_key: String,
    invitation_id: String,
    spare_key_id: String,
}

impl Fixture {
    async fn new(app: &TestApp, cast: &Cast) -> Self {
        let org = app.create_org(&cast.owner).await;
        app.add_member(&org, &cast.second_owner, "owner").await;
        app.add_member(&org, &cast.admin, "admin").await;
        app.add_member(&org, &cast.member, "member").await;
        app.add_member(&org, &cast.target, "member").await;
        let owner = cast.owner.access_token.as_str();
        let admin_key = create_key(app, owner, &org, "admin").await["api_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let member_key = create_key(app, owner, &org, "member").await["api_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let spare_key_id = api_key_id(&create_key(app, owner, &org, "member").await);
        let invitation = invite(app, owner, &org, "invitee@example.com", "member").await;
        Self {
            org,
            admin_key,
            member_key,
            invitation_id: invitation["id"].as_str().unwrap().to_owned(),
            spare_key_id,
        }
    }

    fn token<'a>(&'a self, cast: &'a Cast, who: Who) -> &'a str {
        match who {
            Who::Member => &cast.member.access_token,
            Who::Admin => &cast.admin.access_token,
            Who::Owner => &cast.owner.access_token,
            Who::AdminKey => &self.admin_key,
            Who::MemberKey => &self.member_key,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Route {
    GetOrg,
    RenameOrg,
    // A PATCH that changes nothing is still an admin's.
    EmptyOrgPatch,
    DeleteOrg,
    ListMembers,
    ChangeMemberRole,
    RemoveMember,
    Invite,
    ListInvitations,
    RevokeInvitation,
    CreateApiKey,
    ListApiKeys,
    RevokeApiKey,
    RotateSigningSecret,
    GetSigningSecret,
    // Owners only.
    PromoteToOwner,
    DemoteOwner,
    RemoveOwner,
    InviteOwner,
}

impl Route {
    const ALL: [Route; 19] = [
        Route::GetOrg,
        Route::RenameOrg,
        Route::EmptyOrgPatch,
        Route::DeleteOrg,
        Route::ListMembers,
        Route::ChangeMemberRole,
        Route::RemoveMember,
        Route::Invite,
        Route::ListInvitations,
        Route::RevokeInvitation,
        Route::CreateApiKey,
        Route::ListApiKeys,
        Route::RevokeApiKey,
        Route::RotateSigningSecret,
        Route::GetSigningSecret,
        Route::PromoteToOwner,
        Route::DemoteOwner,
        Route::RemoveOwner,
        Route::InviteOwner,
    ];

    /// The weakest rank allowed (member 0, admin 1, owner 2) and the success status.
    fn rule(self) -> (u8, u16) {
        match self {
            Route::GetOrg | Route::ListMembers => (0, 200),
            Route::RenameOrg
            | Route::EmptyOrgPatch
            | Route::ChangeMemberRole
            | Route::ListInvitations
            | Route::ListApiKeys
            | Route::RotateSigningSecret
            | Route::GetSigningSecret => (1, 200),
            Route::RemoveMember | Route::RevokeInvitation | Route::RevokeApiKey => (1, 204),
            Route::Invite | Route::CreateApiKey => (1, 201),
            Route::DeleteOrg | Route::RemoveOwner => (2, 204),
            Route::PromoteToOwner | Route::DemoteOwner => (2, 200),
            Route::InviteOwner => (2, 201),
        }
    }

    fn request(self, fixture: &Fixture, cast: &Cast) -> (Method, String, Option<Value>) {
        let base = format!("/api/v1/orgs/{}", fixture.org.slug);
        let target = &cast.target.id;
        let second_owner = &cast.second_owner.id;
        match self {
            Route::GetOrg => (Method::GET, base, None),
            Route::RenameOrg => (Method::PATCH, base, Some(json!({"name": "Renamed"}))),
            Route::EmptyOrgPatch => (Method::PATCH, base, Some(json!({}))),
            Route::DeleteOrg => (Method::DELETE, base, None),
            Route::ListMembers => (Method::GET, format!("{base}/members"), None),
            Route::ChangeMemberRole => (
                Method::PATCH,
                format!("{base}/members/{target}"),
                Some(json!({"role": "admin"})),
            ),
            Route::RemoveMember => (Method::DELETE, format!("{base}/members/{target}"), None),
            Route::Invite => (
                Method::POST,
                format!("{base}/invitations"),
                Some(json!({"email": "new@example.com", "role": "member"})),
            ),
            Route::ListInvitations => (Method::GET, format!("{base}/invitations"), None),
            Route::RevokeInvitation => (
                Method::DELETE,
                format!("{base}/invitations/{}", fixture.invitation_id),
                None,
            ),
            Route::CreateApiKey => (
                Method::POST,
                format!("{base}/api-keys"),
                Some(json!({"name": "ci", "role": "member"})),
            ),
            Route::ListApiKeys => (Method::GET, format!("{base}/api-keys"), None),
            Route::RevokeApiKey => (
                Method::DELETE,
                format!("{base}/api-keys/{}", fixture.spare_key_id),
                None,
            ),
            Route::RotateSigningSecret => {
                (Method::POST, format!("{base}/signing-secret/rotate"), None)
            }
            Route::GetSigningSecret => (Method::GET, format!("{base}/signing-secret"), None),
            Route::PromoteToOwner => (
                Method::PATCH,
                format!("{base}/members/{target}"),
                Some(json!({"role": "owner"})),
            ),
            Route::DemoteOwner => (
                Method::PATCH,
                format!("{base}/members/{second_owner}"),
                Some(json!({"role": "admin"})),
            ),
            Route::RemoveOwner => (
                Method::DELETE,
                format!("{base}/members/{second_owner}"),
                None,
            ),
            Route::InviteOwner => (
                Method::POST,
                format!("{base}/invitations"),
                Some(json!({"email": "new-owner@example.com", "role": "owner"})),
            ),
        }
    }
}

#[tokio::test]
async fn role_matrix_of_every_organization_route() {
    let app = spawn_app().await;
    let cast = Cast::new(&app).await;
    let mut failures = Vec::new();
    for route in Route::ALL {
        for who in Who::ALL {
            let fixture = Fixture::new(&app, &cast).await;
            let before = snapshot(&app, &fixture.org, &cast.owner).await;
            let (method, path, body) = route.request(&fixture, &cast);
            let response = app
                .call(
                    method.clone(),
                    &path,
                    Some(fixture.token(&cast, who)),
                    body.as_ref(),
                )
                .await;
            let (minimum, success) = route.rule();
            let expected = if who.rank() >= minimum { success } else { 403 };
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            if status != expected {
                failures.push(format!(
                    "{route:?} as {who:?}: {method} {path} → {status}, expected {expected}: {text}"
                ));
                continue;
            }
            if expected == 403 {
                // A refusal changes nothing.
                let after = snapshot(&app, &fixture.org, &cast.owner).await;
                if after != before {
                    failures.push(format!("{route:?} as {who:?}: refused but changed state"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn allowed_organization_actions_take_effect() {
    let app = spawn_app().await;
    let cast = Cast::new(&app).await;
    let fixture = Fixture::new(&app, &cast).await;
    let base = format!("/api/v1/orgs/{}", fixture.org.slug);
    let admin = cast.admin.access_token.as_str();

    let renamed = json_of(
        app.call(
            Method::PATCH,
            &base,
            Some(admin),
            Some(&json!({"name": "New name"})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(renamed["name"], "New name");
    assert_eq!(
        get_json(&app, &base, &fixture.member_key).await["name"],
        "New name"
    );

    // Change a role; the member list shows it and the new admin can act as one.
    let changed = json_of(
        app.call(
            Method::PATCH,
            &format!("{base}/members/{}", cast.target.id),
            Some(&fixture.admin_key),
            Some(&json!({"role": "admin"})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(changed["role"], "admin");
    let listed = app
        .call(
            Method::GET,
            &format!("{base}/invitations"),
            Some(&cast.target.access_token),
            None,
        )
        .await;
    assert_eq!(listed.status(), 200, "promoted to admin for real");

    // Rotation returns a new secret and keeps the old one beside it.
    let rotated = json_of(
        app.call(
            Method::POST,
            &format!("{base}/signing-secret/rotate"),
            Some(admin),
            None,
        )
        .await,
        200,
    )
    .await;
    let new_secret = rotated["signing_secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_"));
    assert_ne!(new_secret, fixture.org.signing_secret);
    assert_eq!(
        rotated["previous_secret"],
        fixture.org.signing_secret.as_str()
    );
    assert!(rotated["previous_expires_at"].is_string());

    // Removing a member ends their access; a member may leave by themself.
    let removed = app
        .call(
            Method::DELETE,
            &format!("{base}/members/{}", cast.target.id),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(removed.status(), 204);
    problem(
        app.call(Method::GET, &base, Some(&cast.target.access_token), None)
            .await,
        404,
    )
    .await;
    let left = app
        .call(
            Method::DELETE,
            &format!("{base}/members/{}", cast.member.id),
            Some(&cast.member.access_token),
            None,
        )
        .await;
    assert_eq!(left.status(), 204, "a member may leave");
    problem(
        app.call(Method::GET, &base, Some(&cast.member.access_token), None)
            .await,
        404,
    )
    .await;

    // Deleting the organization: gone for its members, its keys stop working.
    let deleted = app
        .call(Method::DELETE, &base, Some(&cast.owner.access_token), None)
        .await;
    assert_eq!(deleted.status(), 204);
    problem(
        app.call(Method::GET, &base, Some(&cast.owner.access_token), None)
            .await,
        404,
    )
    .await;
    unauthorized(
        app.call(Method::GET, &base, Some(&fixture.admin_key), None)
            .await,
    )
    .await;
    let me = json_of(app.me(&cast.owner.access_token).await, 200).await;
    assert!(me["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["slug"] != fixture.org.slug.as_str()));
}

#[tokio::test]
async fn api_keys_are_admin_or_member_never_owner() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let response = app
        .post_json(
            &format!("/api/v1/orgs/{}/api-keys", org.slug),
            Some(&owner.access_token),
            &json!({"name": "root", "role": "owner"}),
        )
        .await;
    assert_eq!(invalid_fields(response).await, ["role"]);
    // A key cannot do what a signed-in user alone may: accept invitations, /me.
    let key = app.create_api_key(&owner, &org, "admin").await;
    problem(app.me(&key).await, 403).await;
}

// ---------------------------------------------------------------------------
// Tenancy.

#[tokio::test]
async fn another_organizations_credentials_and_ids_get_404() {
    let app = spawn_app().await;
    // Organization A, with one of everything.
    let a_owner = app.register_user().await;
    let a_member = app.register_user().await;
    let a = app.create_org(&a_owner).await;
    app.add_member(&a, &a_member, "member").await;
    let a_key = create_key(&app, &a_owner.access_token, &a, "admin").await;
    let a_invitation = invite(&app, &a_owner.access_token, &a, "x@example.com", "member").await;
    // Organization B, whose people try their luck on A.
    let b_owner = app.register_user().await;
    let b_member = app.register_user().await;
    let b = app.create_org(&b_owner).await;
    app.add_member(&b, &b_member, "member").await;
    let b_key = create_key(&app, &b_owner.access_token, &b, "admin").await;
    let b_full_key = b_key["api_key"].as_str().unwrap().to_owned();
    let b_invitation = invite(&app, &b_owner.access_token, &b, "y@example.com", "member").await;

    let before_a = snapshot(&app, &a, &a_owner).await;
    let before_b = snapshot(&app, &b, &b_owner).await;

    let base = format!("/api/v1/orgs/{}", a.slug);
    let a_key_id = api_key_id(&a_key);
    let a_invitation_id = a_invitation["id"].as_str().unwrap();
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, base.clone(), None),
        (Method::PATCH, base.clone(), Some(json!({"name": "pwned"}))),
        (Method::PATCH, base.clone(), Some(json!({}))),
        (Method::DELETE, base.clone(), None),
        (Method::GET, format!("{base}/members"), None),
        (
            Method::PATCH,
            format!("{base}/members/{}", a_member.id),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::DELETE,
            format!("{base}/members/{}", a_member.id),
            None,
        ),
        (
            Method::DELETE,
            format!("{base}/members/{}", a_owner.id),
            None,
        ),
        (
            Method::POST,
            format!("{base}/invitations"),
            Some(json!({"email": "z@example.com", "role": "admin"})),
        ),
        (Method::GET, format!("{base}/invitations"), None),
        (
            Method::DELETE,
            format!("{base}/invitations/{a_invitation_id}"),
            None,
        ),
        (
            Method::POST,
            format!("{base}/api-keys"),
            Some(json!({"name": "mine now", "role": "admin"})),
        ),
        (Method::GET, format!("{base}/api-keys"), None),
        (Method::DELETE, format!("{base}/api-keys/{a_key_id}"), None),
        (Method::POST, format!("{base}/signing-secret/rotate"), None),
        (Method::GET, format!("{base}/signing-secret"), None),
    ];
    let unknown = app
        .call(
            Method::GET,
            "/api/v1/orgs/no-such-org",
            Some(&b_owner.access_token),
            None,
        )
        .await;
    let unknown = problem(unknown, 404).await;

    let mut failures = Vec::new();
    let callers = [
        ("B's owner", b_owner.access_token.as_str()),
        ("B's member", b_member.access_token.as_str()),
        ("B's admin key", b_full_key.as_str()),
    ];
    for (caller, token) in callers {
        for (method, path, body) in &routes {
            let response = app
                .call(method.clone(), path, Some(token), body.as_ref())
                .await;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            if status != 404 {
                failures.push(format!("{caller}: {method} {path} → {status}: {text}"));
                continue;
            }
            for secret in [
                a.id.as_str(),
                a.signing_secret.as_str(),
                a_member.email.as_str(),
                "Test org",
            ] {
                if text.contains(secret) {
                    failures.push(format!("{caller}: {method} {path} leaks {secret}"));
                }
            }
            // Indistinguishable from an organization that does not exist.
            let body: Value = serde_json::from_str(&text).unwrap();
            if body != unknown {
                failures.push(format!(
                    "{caller}: {method} {path}: {body} differs from an unknown org's {unknown}"
                ));
            }
        }
    }

    // B's ids in A's paths, with A's own owner.
    let b_ids: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::DELETE,
            format!("{base}/api-keys/{}", api_key_id(&b_key)),
            None,
        ),
        (
            Method::DELETE,
            format!(
                "{base}/invitations/{}",
                b_invitation["id"].as_str().unwrap()
            ),
            None,
        ),
        (
            Method::PATCH,
            format!("{base}/members/{}", b_member.id),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::DELETE,
            format!("{base}/members/{}", b_member.id),
            None,
        ),
        (
            Method::DELETE,
            format!("{base}/members/{}", b_owner.id),
            None,
        ),
    ];
    for (method, path, body) in &b_ids {
        let response = app
            .call(
                method.clone(),
                path,
                Some(&a_owner.access_token),
                body.as_ref(),
            )
            .await;
        let status = response.status().as_u16();
        if status != 404 {
            failures.push(format!("A's owner with B's id: {method} {path} → {status}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Nothing changed on either side, and B's key still works.
    assert_eq!(snapshot(&app, &a, &a_owner).await, before_a);
    assert_eq!(snapshot(&app, &b, &b_owner).await, before_b);
    assert_eq!(
        app.call(
            Method::GET,
            &format!("/api/v1/orgs/{}", b.slug),
            Some(&b_full_key),
            None
        )
        .await
        .status(),
        200
    );

    // Listings show only one's own organizations.
    for (token, own) in [
        (b_owner.access_token.as_str(), &b.slug),
        (b_full_key.as_str(), &b.slug),
    ] {
        let list = get_json(&app, "/api/v1/orgs", token).await;
        let slugs: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["slug"].as_str().unwrap())
            .collect();
        assert_eq!(slugs, [own.as_str()]);
    }
}

#[tokio::test]
async fn a_platform_admin_is_not_a_member_of_every_organization() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let staff = app.register_user().await;
    punctual_api::service::admin::grant_platform_admin(&app.database, &staff.email)
        .await
        .unwrap();
    let response = app
        .call(
            Method::GET,
            &format!("/api/v1/orgs/{}/members", org.slug),
            Some(&staff.access_token),
            None,
        )
        .await;
    problem(response, 404).await;
}

// ---------------------------------------------------------------------------
// The last owner.

async fn set_role(app: &TestApp, org: &TestOrg, by: &TestUser, user: &TestUser, role: &str) -> u16 {
    app.call(
        Method::PATCH,
        &format!("/api/v1/orgs/{}/members/{}", org.slug, user.id),
        Some(&by.access_token),
        Some(&json!({"role": role})),
    )
    .await
    .status()
    .as_u16()
}

async fn remove(app: &TestApp, org: &TestOrg, by: &TestUser, user: &TestUser) -> u16 {
    app.call(
        Method::DELETE,
        &format!("/api/v1/orgs/{}/members/{}", org.slug, user.id),
        Some(&by.access_token),
        None,
    )
    .await
    .status()
    .as_u16()
}

async fn roles(app: &TestApp, org: &TestOrg, by: &TestUser) -> Vec<(String, String)> {
    let members = get_json(
        app,
        &format!("/api/v1/orgs/{}/members", org.slug),
        &by.access_token,
    )
    .await;
    let mut roles: Vec<(String, String)> = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"]["id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    roles.sort();
    roles
}

#[tokio::test]
async fn the_last_owner_can_be_neither_demoted_nor_removed() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let admin = app.register_user().await;
    let org = app.create_org(&owner).await;
    app.add_member(&org, &admin, "admin").await;

    for role in ["admin", "member"] {
        let response = app
            .call(
                Method::PATCH,
                &format!("/api/v1/orgs/{}/members/{}", org.slug, owner.id),
                Some(&owner.access_token),
                Some(&json!({"role": role})),
            )
            .await;
        problem(response, 409).await;
    }
    let response = app
        .call(
            Method::DELETE,
            &format!("/api/v1/orgs/{}/members/{}", org.slug, owner.id),
            Some(&owner.access_token),
            None,
        )
        .await;
    problem(response, 409).await;
    // An admin may not touch an owner at all.
    assert_eq!(set_role(&app, &org, &admin, &owner, "member").await, 403);
    assert_eq!(remove(&app, &org, &admin, &owner).await, 403);
    assert_eq!(set_role(&app, &org, &admin, &admin, "owner").await, 403);
    assert_eq!(roles(&app, &org, &owner).await, {
        let mut r = vec![
            (owner.id.clone(), "owner".to_owned()),
            (admin.id.clone(), "admin".to_owned()),
        ];
        r.sort();
        r
    });

    // With a second owner, the first may step down, and then be removed.
    assert_eq!(set_role(&app, &org, &owner, &admin, "owner").await, 200);
    assert_eq!(set_role(&app, &org, &owner, &owner, "admin").await, 200);
    // Now `admin` is the only owner again.
    assert_eq!(set_role(&app, &org, &admin, &admin, "member").await, 409);
    assert_eq!(remove(&app, &org, &admin, &admin).await, 409);
    assert_eq!(set_role(&app, &org, &admin, &owner, "owner").await, 200);
    assert_eq!(remove(&app, &org, &admin, &owner).await, 204);
    assert_eq!(
        roles(&app, &org, &admin).await,
        [(admin.id.clone(), "owner".to_owned())]
    );
    // And an owner who is not the last may leave.
    assert_eq!(
        {
            app.add_member(&org, &owner, "owner").await;
            remove(&app, &org, &owner, &owner).await
        },
        204
    );
}

#[tokio::test]
async fn two_owners_stepping_down_at_once_leave_one_owner() {
    let app = spawn_app().await;
    let first = app.register_user().await;
    let second = app.register_user().await;
    for round in 0..12 {
        let org = app.create_org(&first).await;
        app.add_member(&org, &second, "owner").await;
        // Each owner acts on themself, concurrently: one demotion, one departure.
        let (a, b) = if round % 2 == 0 {
            tokio::join!(
                set_role(&app, &org, &first, &first, "member"),
                remove(&app, &org, &second, &second)
            )
        } else {
            tokio::join!(
                remove(&app, &org, &first, &first),
                set_role(&app, &org, &second, &second, "admin")
            )
        };
        let mut statuses = [a, b];
        statuses.sort_unstable();
        let survivor = if round % 2 == 0 { &first } else { &second };
        let owners = roles(&app, &org, survivor)
            .await
            .into_iter()
            .filter(|(_, role)| role == "owner")
            .count();
        assert_eq!(owners, 1, "round {round}: statuses {statuses:?}");
        assert!(
            statuses == [200, 409] || statuses == [204, 409],
            "round {round}: one succeeds, one is refused: {statuses:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// API keys.

#[tokio::test]
async fn api_keys_are_shown_once_listed_without_secret_and_revocable() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let base = format!("/api/v1/orgs/{}", org.slug);

    let created = create_key(&app, &owner.access_token, &org, "member").await;
    let full = created["api_key"].as_str().unwrap().to_owned();
    let (public, secret) = full.split_once('.').unwrap();
    assert!(public.starts_with("pk_live_"), "{full}");
    let secret_body = secret.strip_prefix("sk_live_").expect("sk_live_ secret");
    assert!(secret_body.len() >= 43, "at least 256 bits: {secret_body}");
    assert_eq!(created["prefix"], public);
    assert_eq!(created["role"], "member");
    assert!(created["last_used_at"].is_null());

    let list = get_json(&app, &format!("{base}/api-keys"), &owner.access_token).await;
    let text = list.to_string();
    assert!(!text.contains(secret_body), "the list shows no secret");
    assert!(!text.contains("sk_live_"));
    assert_eq!(list["data"][0]["prefix"], public);
    assert!(list["data"][0]["last_used_at"].is_null());

    // Using it records last_used_at.
    assert_eq!(
        get_json(&app, &base, &full).await["slug"],
        org.slug.as_str()
    );
    let list = get_json(&app, &format!("{base}/api-keys"), &owner.access_token).await;
    assert!(
        list["data"][0]["last_used_at"].is_string(),
        "last_used_at after use: {list}"
    );

    // The public part with a wrong secret is refused.
    let forged = format!("{public}.sk_live_{}", "A".repeat(secret_body.len()));
    unauthorized(app.call(Method::GET, &base, Some(&forged), None).await).await;
    unauthorized(app.call(Method::GET, &base, Some(public), None).await).await;

    // Revoked: refused at once, gone from the list, and not revocable twice.
    let id = api_key_id(&created);
    let revoked = app
        .call(
            Method::DELETE,
            &format!("{base}/api-keys/{id}"),
            Some(&owner.access_token),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    unauthorized(app.call(Method::GET, &base, Some(&full), None).await).await;
    let list = get_json(&app, &format!("{base}/api-keys"), &owner.access_token).await;
    assert_eq!(list["data"], json!([]));
    let again = app
        .call(
            Method::DELETE,
            &format!("{base}/api-keys/{id}"),
            Some(&owner.access_token),
            None,
        )
        .await;
    problem(again, 404).await;
}

/// Every page of `path` with `?limit=`, following `next_cursor`: the ids of the
/// items of each page (read with `id`).
async fn pages(
    app: &TestApp,
    token: &str,
    path: &str,
    limit: u64,
    id: impl Fn(&Value) -> String,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{path}?limit={limit}&cursor={cursor}"),
            None => format!("{path}?limit={limit}"),
        };
        let page = get_json(app, &url, token).await;
        pages.push(page["data"].as_array().unwrap().iter().map(&id).collect());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 10, "pages without end: {pages:?}");
    }
}

/// The organization lists (the caller's organizations, members, invitations,
/// API keys) are cursor-paginated like every list (API.md): `limit` and
/// `cursor` page through all of them once, and a bad `limit` is a 422.
#[tokio::test]
async fn organization_lists_are_paginated() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    for _ in 0..2 {
        app.create_org(&owner).await;
    }
    for _ in 0..2 {
        let member = app.register_user().await;
        app.add_member(&org, &member, "member").await;
    }
    for _ in 0..3 {
        let email = format!("{}@example.com", unique("paged"));
        invite(&app, &owner.access_token, &org, &email, "member").await;
    }
    for _ in 0..3 {
        create_key(&app, &owner.access_token, &org, "member").await;
    }
    let base = format!("/api/v1/orgs/{}", org.slug);
    let by_id = |item: &Value| item["id"].as_str().unwrap().to_owned();
    let by_user = |item: &Value| item["user"]["id"].as_str().unwrap().to_owned();
    for (path, id, total) in [
        (
            "/api/v1/orgs".to_owned(),
            &by_id as &dyn Fn(&Value) -> String,
            3,
        ),
        (format!("{base}/members"), &by_user, 3),
        (format!("{base}/invitations"), &by_id, 3),
        (format!("{base}/api-keys"), &by_id, 3),
    ] {
        let whole = get_json(&app, &path, &owner.access_token).await;
        assert_eq!(whole["data"].as_array().unwrap().len(), total, "{path}");
        assert_eq!(whole["next_cursor"], Value::Null, "{path}");
        let paged = pages(&app, &owner.access_token, &path, 2, id).await;
        assert_eq!(
            paged.iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 1],
            "{path}: {paged:?}"
        );
        let mut seen: Vec<String> = paged.concat();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), total, "{path}: each item once");
        let bad = app
            .call(
                Method::GET,
                &format!("{path}?limit=abc"),
                Some(&owner.access_token),
                None,
            )
            .await;
        assert_eq!(invalid_fields(bad).await, ["limit"], "{path}");
    }
}

#[tokio::test]
async fn a_suspended_organizations_keys_get_403() {
    let service_token = "x".repeat(40);
    let token = service_token.clone();
    let app = spawn_app_with(move |s| s.admin.service_token = token).await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let other = app.create_org(&owner).await;
    let key = app.create_api_key(&owner, &org, "admin").await;
    let other_key = app.create_api_key(&owner, &other, "admin").await;
    let path = format!("/api/v1/orgs/{}", org.slug);
    assert_eq!(
        app.call(Method::GET, &path, Some(&key), None)
            .await
            .status(),
        200
    );

    let suspend = |suspended: bool| {
        let app = &app;
        let path = format!("/api/v1/admin/orgs/{}", org.slug);
        let service_token = service_token.clone();
        async move {
            app.call(
                Method::PATCH,
                &path,
                Some(&service_token),
                Some(&json!({"suspended": suspended})),
            )
            .await
        }
    };
    let body = json_of(suspend(true).await, 200).await;
    assert!(body["suspended_at"].is_string());

    let response = app.call(Method::GET, &path, Some(&key), None).await;
    problem(response, 403).await;
    let response = app
        .call(Method::GET, &format!("{path}/members"), Some(&key), None)
        .await;
    problem(response, 403).await;
    // Only that organization.
    assert_eq!(
        app.call(
            Method::GET,
            &format!("/api/v1/orgs/{}", other.slug),
            Some(&other_key),
            None
        )
        .await
        .status(),
        200
    );
    // Its members see the flag.
    let seen = get_json(&app, &path, &owner.access_token).await;
    assert_eq!(seen["suspended"], true);

    let body = json_of(suspend(false).await, 200).await;
    assert!(body["suspended_at"].is_null());
    assert_eq!(
        app.call(Method::GET, &path, Some(&key), None)
            .await
            .status(),
        200
    );
}

// ---------------------------------------------------------------------------
// Invitations.

async fn accept(app: &TestApp, user: &TestUser, token: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/invitations/accept",
        Some(&user.access_token),
        &json!({"token": token}),
    )
    .await
}

#[tokio::test]
async fn an_invitation_is_accepted_once_by_the_invited_email_only() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let admin = app.register_user().await;
    let org = app.create_org(&owner).await;
    app.add_member(&org, &admin, "admin").await;
    let base = format!("/api/v1/orgs/{}", org.slug);

    let email = format!("{}@example.com", unique("invitee"));
    let invitation = invite(&app, &admin.access_token, &org, &email, "member").await;
    assert_eq!(invitation["email"], email);
    assert_eq!(invitation["role"], "member");
    let token = app.latest_email_token(&email).await;
    // The token travels by email only.
    let listed = get_json(&app, &format!("{base}/invitations"), &admin.access_token).await;
    assert!(!listed.to_string().contains(&token));
    assert_eq!(listed["data"][0]["id"], invitation["id"]);

    // Someone else cannot use it, and the attempt does not spend it.
    let intruder = app.register_user().await;
    problem(accept(&app, &intruder, &token).await, 403).await;
    // Neither can an API key.
    let key = app.create_api_key(&owner, &org, "admin").await;
    let by_key = app
        .post_json(
            "/api/v1/invitations/accept",
            Some(&key),
            &json!({"token": token}),
        )
        .await;
    problem(by_key, 403).await;

    // The invited address registers (in another case) and accepts.
    let invitee = app.register_user_with_email(&email.to_uppercase()).await;
    let joined = json_of(accept(&app, &invitee, &token).await, 200).await;
    assert_eq!(joined["slug"], org.slug.as_str());
    assert_eq!(joined["role"], "member");
    let members = get_json(&app, &format!("{base}/members"), &invitee.access_token).await;
    assert!(members["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["user"]["id"] == invitee.id.as_str() && m["role"] == "member"));
    // Members are not admins: the role granted is the one invited with.
    problem(
        app.call(
            Method::GET,
            &format!("{base}/invitations"),
            Some(&invitee.access_token),
            None,
        )
        .await,
        403,
    )
    .await;

    // Used once.
    problem(accept(&app, &invitee, &token).await, 404).await;
    problem(accept(&app, &invitee, "made-up-token").await, 404).await;
    let listed = get_json(&app, &format!("{base}/invitations"), &admin.access_token).await;
    assert_eq!(
        listed["data"],
        json!([]),
        "accepted invitations are not open"
    );
}

/// Two invitations of one address, accepted at once: one joins, the other is a
/// 409 "already a member" (it was a 500 on PostgreSQL, from the membership's
/// key, when both passed the membership check together).
#[tokio::test]
async fn two_invitations_accepted_at_once_give_one_200_and_one_409() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    for round in 0..4 {
        let email = format!("{}@example.com", unique("twice"));
        invite(&app, &owner.access_token, &org, &email, "member").await;
        invite(&app, &owner.access_token, &org, &email, "admin").await;
        let tokens: Vec<String> = app
            .emails_to(&email)
            .await
            .iter()
            .map(|email| punctual_tests::token_in_email(&email.body))
            .collect();
        assert_eq!(tokens.len(), 2);
        let invitee = app.register_user_with_email(&email).await;
        let (a, b) = tokio::join!(
            accept(&app, &invitee, &tokens[0]),
            accept(&app, &invitee, &tokens[1])
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "round {round}");
    }
}

#[tokio::test]
async fn an_admin_invitation_grants_admin() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let invitee = app.register_user().await;
    invite(&app, &owner.access_token, &org, &invitee.email, "admin").await;
    let token = app.latest_email_token(&invitee.email).await;
    let joined = json_of(accept(&app, &invitee, &token).await, 200).await;
    assert_eq!(joined["role"], "admin");
    let response = app
        .call(
            Method::GET,
            &format!("/api/v1/orgs/{}/api-keys", org.slug),
            Some(&invitee.access_token),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_revoked_invitation_cannot_be_accepted() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let invitee = app.register_user().await;
    let invitation = invite(&app, &owner.access_token, &org, &invitee.email, "member").await;
    let token = app.latest_email_token(&invitee.email).await;
    let path = format!(
        "/api/v1/orgs/{}/invitations/{}",
        org.slug,
        invitation["id"].as_str().unwrap()
    );
    let revoked = app
        .call(Method::DELETE, &path, Some(&owner.access_token), None)
        .await;
    assert_eq!(revoked.status(), 204);
    problem(accept(&app, &invitee, &token).await, 404).await;
    problem(
        app.call(Method::DELETE, &path, Some(&owner.access_token), None)
            .await,
        404,
    )
    .await;
    let me = json_of(app.me(&invitee.access_token).await, 200).await;
    assert_eq!(me["organizations"], json!([]));
}

#[tokio::test]
async fn invitations_are_validated() {
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let path = format!("/api/v1/orgs/{}/invitations", org.slug);
    let response = app
        .post_json(
            &path,
            Some(&owner.access_token),
            &json!({"email": "nope", "role": "member"}),
        )
        .await;
    assert_eq!(invalid_fields(response).await, ["email"]);
    let response = app
        .post_json(
            &path,
            Some(&owner.access_token),
            &json!({"email": "a@example.com", "role": "superuser"}),
        )
        .await;
    assert_eq!(invalid_fields(response).await, ["role"]);
}

#[tokio::test]
async fn concurrent_creations_of_one_slug_give_one_201_and_one_409() {
    let app = spawn_app().await;
    let first = app.register_user().await;
    let second = app.register_user().await;
    for round in 0..6 {
        let body = json!({"name": "Race", "slug": unique("race")});
        let (a, b) = tokio::join!(
            app.post_json("/api/v1/orgs", Some(&first.access_token), &body),
            app.post_json("/api/v1/orgs", Some(&second.access_token), &body)
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {round}");
    }
}

/// Rotations asked at once (a double click) leave one secret without an end:
/// each rotation holds the organization while it expires the current secret
/// and adds the next, so the second sees the first's.
#[tokio::test]
async fn concurrent_rotations_leave_one_current_signing_secret() {
    use punctual_persistence::entities::signing_secret;
    use punctual_persistence::sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let app = spawn_app().await;
    let owner = app.register_user().await;
    let org = app.create_org(&owner).await;
    let path = format!("/api/v1/orgs/{}/signing-secret/rotate", org.slug);
    let rotate = || app.call(Method::POST, &path, Some(&owner.access_token), None);
    for round in 0..8 {
        let (a, b) = tokio::join!(rotate(), rotate());
        let statuses = (a.status().as_u16(), b.status().as_u16());
        assert_eq!(statuses, (200, 200), "round {round}");
        let current = signing_secret::Entity::find()
            .filter(
                signing_secret::Column::OrganizationId.eq(org.id.parse::<uuid::Uuid>().unwrap()),
            )
            .filter(signing_secret::Column::ExpiresAt.is_null())
            .count(app.database.conn())
            .await
            .unwrap();
        assert_eq!(current, 1, "round {round}");
    }
}
