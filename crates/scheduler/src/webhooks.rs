//! Delivering webhook notifications from their outbox: signed like job requests,
//! retried with backoff until the receiver answers 2xx.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use punctual_persistence::entities::webhook_outbox;
use punctual_persistence::{notifications, outbox};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::delivery::{Delivery, DeliveryStatus};
use crate::engine::{EngineError, Inner};

const BATCH: u64 = 20;
const TIMEOUT: Duration = Duration::from_secs(10);
const LOCK: Duration = Duration::from_secs(120);
const RETRY_BASE: Duration = Duration::from_secs(2);
const RETRY_CAP: Duration = Duration::from_secs(900);
const IDLE: Duration = Duration::from_secs(5);

pub(crate) async fn send_webhook_notifications(inner: Arc<Inner>, stop: CancellationToken) {
    loop {
        let sent = match send_batch(&inner).await {
            Ok(sent) => sent,
            Err(error) => {
                tracing::warn!(%error, "webhook notifications failed");
                0
            }
        };
        if sent as u64 == BATCH {
            continue;
        }
        let delay = match notifications::earliest_webhook(inner.database.conn()).await {
            Ok(Some(at)) => (at - inner.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(50), IDLE),
            _ => IDLE,
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = inner.webhook_wake.notified() => {}
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

async fn send_batch(inner: &Inner) -> Result<usize, EngineError> {
    let now = inner.clock.now();
    let lock_until = now + chrono::Duration::from_std(LOCK).unwrap_or(chrono::Duration::minutes(2));
    let claimed =
        outbox::claim_due::<webhook_outbox::Entity>(inner.database.conn(), now, lock_until, BATCH)
            .await?;
    let count = claimed.len();
    // Sent together: a dead or slow receiver holds up its batch for one
    // timeout, not one timeout per notification queued behind it, so one
    // organization's broken endpoint does not delay everyone's notifications.
    let sends = claimed.into_iter().map(|notification| {
        // Instrumented, not entered: an entered span would stay on this thread
        // across the awaits and label whatever else runs there meanwhile.
        let span = tracing::info_span!("webhook_notification", notification_id = %notification.id, org_id = %notification.organization_id);
        send_one(inner, notification, now, lock_until).instrument(span)
    });
    for result in futures_util::future::join_all(sends).await {
        // Each send records its own outcome; one that could not is claimed
        // again once its claim expires.
        if let Err(error) = result {
            tracing::warn!(%error, "webhook notification not recorded");
        }
    }
    Ok(count)
}

/// Whether a send starting at `now` is over, outcome recorded, before the
/// claim held until `lock_until` expires.
fn claim_outlasts_send(now: DateTime<Utc>, lock_until: DateTime<Utc>) -> bool {
    now + send_allowance() < lock_until
}

/// The longest a send and its record may take: the request's timeout and a
/// second to write the outcome.
fn send_allowance() -> chrono::Duration {
    chrono::Duration::from_std(TIMEOUT + Duration::from_secs(1)).unwrap_or(chrono::Duration::MAX)
}

/// Sends one notification claimed until `lock_until` and records how it went.
async fn send_one(
    inner: &Inner,
    notification: webhook_outbox::Model,
    now: DateTime<Utc>,
    lock_until: DateTime<Utc>,
) -> Result<(), EngineError> {
    let keys = inner
        .signing_keys(notification.organization_id, now)
        .await?;
    // Past this point another node may claim the message again while we are
    // still waiting on the receiver, and it would go out twice: leave it for
    // whoever claims it once the claim has expired.
    if !claim_outlasts_send(inner.clock.now(), lock_until) {
        tracing::debug!("claim nearly expired; left for later");
        return Ok(());
    }
    let delivery = Delivery {
        message_id: notification.id.to_string(),
        url: &notification.url,
        method: "POST",
        headers_json: r#"{"content-type":"application/json"}"#,
        body: Some(&notification.payload),
        timeout: TIMEOUT,
        signing_keys: &keys,
        now: inner.clock.now(),
    };
    let result = inner.deliverer.deliver(&delivery).await;
    if result.status == DeliveryStatus::Success {
        outbox::mark_sent::<webhook_outbox::Entity>(
            inner.database.conn(),
            notification.id,
            inner.clock.now(),
        )
        .await?;
    } else {
        let attempts = notification.attempts.saturating_add(1);
        let error = result.error.unwrap_or_else(|| "delivery failed".to_owned());
        tracing::warn!(attempts, %error, "webhook notification not delivered; will retry");
        outbox::mark_failed::<webhook_outbox::Entity>(
            inner.database.conn(),
            notification.id,
            attempts,
            &error,
            inner.clock.now() + retry_delay(notification.attempts),
        )
        .await?;
    }
    Ok(())
}

/// The wait before the next try of a notification that had failed
/// `previous_attempts` times before this failure: 2 s, then doubling, at most
/// 15 minutes (as emails).
fn retry_delay(previous_attempts: i32) -> chrono::Duration {
    chrono::Duration::from_std(crate::mailer::backoff(
        previous_attempts,
        RETRY_BASE,
        RETRY_CAP,
    ))
    .unwrap_or(chrono::Duration::seconds(900))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_retry_comes_after_two_seconds_then_doubles_to_a_cap() {
        assert_eq!(retry_delay(0), chrono::Duration::seconds(2));
        assert_eq!(retry_delay(1), chrono::Duration::seconds(4));
        assert_eq!(retry_delay(20), chrono::Duration::seconds(900));
    }

    #[test]
    fn a_send_starts_only_while_the_claim_outlasts_its_timeout() {
        let now = Utc::now();
        let allowance = send_allowance();
        assert_eq!(allowance, chrono::Duration::seconds(11));
        assert!(claim_outlasts_send(
            now,
            now + chrono::Duration::seconds(120)
        ));
        assert!(claim_outlasts_send(
            now,
            now + allowance + chrono::Duration::milliseconds(1)
        ));
        assert!(!claim_outlasts_send(now, now + allowance));
        assert!(!claim_outlasts_send(
            now,
            now - chrono::Duration::seconds(1)
        ));
    }
}
