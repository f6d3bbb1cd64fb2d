//! Where an organization hears about failing jobs: email recipients and a signed
//! webhook, per event kind.

use chrono::{DateTime, Utc};
use punctual_auth::Permission;
use punctual_domain::{Email, TargetUrl};
use punctual_persistence::entities::notification_setting;
use punctual_persistence::notifications;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::caller::Caller;
use crate::error::FieldProblem;
use crate::service::audit::Entry;
use crate::service::jobs::resolves_to_blocked_address;
use crate::service::organizations::authorize;
use crate::service::ServiceError;
use crate::state::AppState;

const MAX_RECIPIENTS: usize = 20;

/// Which events notify.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NotificationEvents {
    /// An occurrence failed all its attempts (at most one per job per 10 minutes).
    pub failure: bool,
    /// A job was disabled after consecutive failures.
    pub auto_disable: bool,
    /// A job succeeded after failing.
    pub recovery: bool,
}

/// Notification settings. Without any saved, owners and admins are emailed for
/// every event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NotificationSettings {
    /// Recipients.
    #[schema(example = json!(["ops@example.com"]))]
    pub emails: Vec<String>,
    /// Receives a Standard Webhooks-signed JSON POST per event.
    pub webhook_url: Option<String>,
    /// Which events notify.
    pub events: NotificationEvents,
    /// Last saved (null: never saved, defaults shown).
    pub updated_at: Option<DateTime<Utc>>,
}

/// `GET .../notifications` (admins).
pub async fn get(
    state: &AppState,
    caller: &Caller,
    slug: &str,
) -> Result<NotificationSettings, ServiceError> {
    let access = authorize(state, caller, slug, Permission::ManageNotifications).await?;
    let db = state.database.conn();
    Ok(match notifications::settings(db, access.org.id).await? {
        Some(saved) => NotificationSettings {
            emails: serde_json::from_str(&saved.emails).unwrap_or_default(),
            webhook_url: saved.webhook_url,
            events: NotificationEvents {
                failure: saved.on_failure,
                auto_disable: saved.on_auto_disable,
                recovery: saved.on_recovery,
            },
            updated_at: Some(saved.updated_at),
        },
        None => NotificationSettings {
            emails: notifications::admin_emails(db, access.org.id).await?,
            webhook_url: None,
            events: NotificationEvents {
                failure: true,
                auto_disable: true,
                recovery: true,
            },
            updated_at: None,
        },
    })
}

/// `PUT .../notifications` (admins): replaces the settings.
pub async fn put(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    input: NotificationSettings,
) -> Result<NotificationSettings, ServiceError> {
    let access = authorize(state, caller, slug, Permission::ManageNotifications).await?;
    let mut problems = Vec::new();
    if input.emails.len() > MAX_RECIPIENTS {
        problems.push(FieldProblem {
            field: "emails".to_owned(),
            message: format!("at most {MAX_RECIPIENTS} recipients"),
        });
    }
    let mut emails = Vec::new();
    for (index, email) in input.emails.iter().enumerate() {
        match Email::parse(email) {
            Ok(email) => emails.push(email.as_str().to_owned()),
            Err(error) => problems.push(FieldProblem {
                field: format!("emails[{index}]"),
                message: error.message().to_owned(),
            }),
        }
    }
    let webhook_url = match input
        .webhook_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        None => None,
        Some(url) => match TargetUrl::parse(url, state.allow_private_networks) {
            Ok(target) => {
                let blocked = if state.allow_private_networks {
                    None
                } else {
                    resolves_to_blocked_address(&target, "webhook_url").await
                };
                match blocked {
                    Some(problem) => {
                        problems.push(problem);
                        None
                    }
                    None => Some(target.as_str().to_owned()),
                }
            }
            Err(error) => {
                problems.push(FieldProblem {
                    field: "webhook_url".to_owned(),
                    message: error.message().to_owned(),
                });
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(ServiceError::Invalid(problems));
    }
    let now = Utc::now();
    // Only the webhook's host: a webhook URL often carries a token in its path
    // or query (Slack's do), which must not reach the audit log.
    let webhook_host = webhook_url
        .as_deref()
        .and_then(|url| TargetUrl::parse(url, true).ok())
        .map(|url| url.host().to_owned());
    let audit_metadata = serde_json::json!({
        "emails": emails,
        "webhook": webhook_url.is_some(),
        "webhook_host": webhook_host,
        "events": input.events,
    });
    let transaction = state.database.begin_write().await?;
    notifications::save_settings(
        &transaction,
        notification_setting::Model {
            organization_id: access.org.id,
            emails: serde_json::to_string(&emails).unwrap_or_else(|_| "[]".to_owned()),
            webhook_url,
            on_failure: input.events.failure,
            on_auto_disable: input.events.auto_disable,
            on_recovery: input.events.recovery,
            updated_at: now,
        },
    )
    .await?;
    Entry::by(caller, "notifications.updated")
        .org(access.org.id)
        .target("organization", access.org.id)
        .metadata(audit_metadata)
        .record(&transaction, now)
        .await?;
    transaction.commit().await.map_err(ServiceError::from)?;
    get(state, caller, slug).await
}
