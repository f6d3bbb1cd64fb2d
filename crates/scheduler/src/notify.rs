//! Telling an organization that something broke or recovered: through the email
//! outbox and the webhook outbox, in the transaction that notices it, so nothing
//! is lost; bursts of one job's failures are coalesced.

use chrono::{DateTime, Duration, Utc};
use punctual_persistence::entities::job;
use punctual_persistence::sea_orm::ConnectionTrait;
use punctual_persistence::{notifications, outbox, PersistenceError};
use uuid::Uuid;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    /// An occurrence failed all its attempts.
    Failure,
    /// A job was disabled after consecutive failures.
    AutoDisabled,
    /// A job succeeded after failing.
    Recovery,
    /// The monthly execution quota is used up.
    QuotaExceeded,
}

impl NotificationKind {
    /// The event name in payloads and the coalescing log.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Failure => "job.failed",
            Self::AutoDisabled => "job.auto_disabled",
            Self::Recovery => "job.recovered",
            Self::QuotaExceeded => "quota.exceeded",
        }
    }
}

/// Queues a notification of `kind` for `org` (about `job`, if any). Failures of
/// one job within `coalesce` of the last notified one are dropped.
#[allow(clippy::too_many_arguments)]
pub async fn notify(
    db: &impl ConnectionTrait,
    org: Uuid,
    job: Option<&job::Model>,
    kind: NotificationKind,
    detail: &str,
    coalesce: Duration,
    now: DateTime<Utc>,
) -> Result<bool, PersistenceError> {
    let settings = notifications::settings(db, org).await?;
    let wanted = match (&settings, kind) {
        (_, NotificationKind::QuotaExceeded) => true,
        (None, _) => true,
        (Some(s), NotificationKind::Failure) => s.on_failure,
        (Some(s), NotificationKind::AutoDisabled) => s.on_auto_disable,
        (Some(s), NotificationKind::Recovery) => s.on_recovery,
    };
    if !wanted {
        return Ok(false);
    }
    let job_id = job.map(|j| j.id);
    if kind == NotificationKind::Failure {
        if let Some(last) = notifications::last_event(db, org, job_id, kind.as_str()).await? {
            if now - last < coalesce {
                return Ok(false);
            }
        }
    }
    notifications::record_event(db, org, job_id, kind.as_str(), now).await?;
    let (emails, webhook) = match settings {
        Some(s) => (
            serde_json::from_str::<Vec<String>>(&s.emails).unwrap_or_default(),
            s.webhook_url,
        ),
        None => (notifications::admin_emails(db, org).await?, None),
    };
    let job_name = job.map(|j| j.name.as_str()).unwrap_or("");
    let subject = match kind {
        NotificationKind::Failure => format!("Punctual: job \"{job_name}\" failed"),
        NotificationKind::AutoDisabled => format!("Punctual: job \"{job_name}\" was disabled"),
        NotificationKind::Recovery => format!("Punctual: job \"{job_name}\" recovered"),
        NotificationKind::QuotaExceeded => "Punctual: monthly execution quota reached".to_owned(),
    };
    let body = match job {
        Some(job) => format!(
            "{detail}\n\nJob: {} ({})\nTarget: {} {}\nTime: {}\n",
            job.name,
            job.id,
            job.method,
            job.url,
            now.to_rfc3339()
        ),
        None => format!("{detail}\n\nTime: {}\n", now.to_rfc3339()),
    };
    for email in &emails {
        outbox::enqueue_email(db, email, &subject, &body, now).await?;
    }
    if let Some(url) = webhook {
        let payload = serde_json::json!({
            "type": kind.as_str(),
            "timestamp": now.to_rfc3339(),
            "data": {
                "organization_id": org,
                "job_id": job_id,
                "job_name": job.map(|j| j.name.clone()),
                "detail": detail,
            }
        });
        notifications::enqueue_webhook(db, org, &url, &payload.to_string(), now).await?;
    }
    Ok(true)
}
