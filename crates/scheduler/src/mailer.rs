//! The background sender of the email outbox.
//!
//! Emails are written to `email_outbox` by the code that causes them (in the same
//! transaction), and this task delivers them: it claims due messages, sends each
//! over SMTP (or, with no SMTP server configured, logs it), and records the
//! outcome. A failed send is rescheduled with an exponential backoff and never
//! dropped. Delivery is at least once: a node that dies between the SMTP server's
//! acceptance and `outbox::mark_sent` leaves a message that is sent again when its
//! claim expires, with the same `Message-ID` so receivers can recognise it. A
//! message that can never go out (a malformed address, a 5xx reply) keeps being
//! retried at the backoff cap, with its error in `last_error`, rather than being
//! dropped: `pending_email_count` shows it to operators.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};
use punctual_persistence::entities::email_outbox;
use punctual_persistence::{outbox, Database, PersistenceError};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Mailer settings (the `[email]` section of the configuration, plus timings).
#[derive(Clone)]
pub struct MailerConfig {
    /// `email.smtp_url`: `smtp://host:port` (plain SMTP, no TLS, no STARTTLS),
    /// `smtp://host:port?tls=required` (STARTTLS), or `smtps://user:pass@host:port`
    /// (implicit TLS). `None` or empty: emails are logged instead of sent.
    pub smtp_url: Option<String>,
    /// `email.from`: the `From` mailbox, e.g. `Punctual <no-reply@example.com>`.
    pub from: String,
    /// `email.log_bodies`: when emails are logged instead of sent, log their bodies
    /// too. Bodies carry single-use tokens, so this is for development only.
    pub log_bodies: bool,
    /// How often the outbox is checked when nobody wakes the mailer.
    pub poll_interval: Duration,
    /// How many emails one claim takes.
    pub batch_size: u64,
    /// The first retry delay; each further failure doubles it.
    pub retry_base: Duration,
    /// The longest retry delay.
    pub retry_cap: Duration,
    /// How long a claimed email stays reserved to this sender.
    pub claim_lock: Duration,
    /// The longest one SMTP delivery may take (connect to final reply).
    pub send_timeout: Duration,
}

impl Default for MailerConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "Punctual <no-reply@punctual.localhost>".to_owned(),
            log_bodies: false,
            poll_interval: Duration::from_secs(5),
            batch_size: 20,
            retry_base: Duration::from_secs(2),
            retry_cap: Duration::from_secs(15 * 60),
            claim_lock: Duration::from_secs(120),
            send_timeout: Duration::from_secs(30),
        }
    }
}

// Hand-written so that a password in `smtp_url` never reaches a log line or a
// panic message through `{:?}`.
impl fmt::Debug for MailerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailerConfig")
            .field("smtp_url", &self.smtp_url.as_deref().map(redacted_endpoint))
            .field("from", &self.from)
            .field("log_bodies", &self.log_bodies)
            .field("poll_interval", &self.poll_interval)
            .field("batch_size", &self.batch_size)
            .field("retry_base", &self.retry_base)
            .field("retry_cap", &self.retry_cap)
            .field("claim_lock", &self.claim_lock)
            .field("send_timeout", &self.send_timeout)
            .finish()
    }
}

/// Why a [`Mailer`] could not be built. Messages name the configuration key and
/// never repeat the URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// `email.smtp_url` is not a usable SMTP URL.
    #[error("email.smtp_url is invalid: {reason}")]
    InvalidSmtpUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// `email.from` is not a mailbox.
    #[error("email.from is not a valid mailbox ({reason})")]
    InvalidFrom {
        /// What is wrong with it.
        reason: String,
    },
}

/// Where messages go.
enum Delivery {
    Smtp {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        /// `host:port`, the only part of the URL that may be logged.
        endpoint: String,
    },
    Log {
        log_bodies: bool,
    },
}

/// The outbox sender of one node. Several nodes may run one each: claims keep
/// them from sending the same message at the same time.
pub struct Mailer {
    database: Database,
    config: MailerConfig,
    from: Mailbox,
    delivery: Delivery,
}

impl Mailer {
    /// A mailer for `database`'s outbox. Fails when `email.smtp_url` or
    /// `email.from` cannot be used; nothing is contacted yet.
    pub fn new(database: Database, config: MailerConfig) -> Result<Self, MailerError> {
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|error| MailerError::InvalidFrom {
                reason: error.to_string(),
            })?;
        let delivery = match config.smtp_url.as_deref().map(str::trim) {
            None | Some("") => Delivery::Log {
                log_bodies: config.log_bodies,
            },
            Some(smtp_url) => smtp_delivery(smtp_url, config.send_timeout)?,
        };
        Ok(Self {
            database,
            config,
            from,
            delivery,
        })
    }

    /// Starts sending in the background and returns the handle that wakes and
    /// stops it.
    pub fn start(self) -> MailerHandle {
        let stop = CancellationToken::new();
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(self.run(stop.clone(), Arc::clone(&wake)));
        MailerHandle { stop, wake, task }
    }

    async fn run(self, stop: CancellationToken, wake: Arc<Notify>) {
        match &self.delivery {
            Delivery::Smtp { endpoint, .. } => {
                tracing::info!(transport = "smtp", %endpoint, "mailer started");
            }
            Delivery::Log { log_bodies } => {
                tracing::info!(transport = "log", log_bodies, "mailer started");
            }
        }
        // When the earliest retry this mailer scheduled falls due. Kept across
        // wake-ups: a wake-up that comes before it must not make us forget it and
        // sleep a whole poll interval.
        let mut next_retry: Option<Instant> = None;
        loop {
            let claimed_at = Instant::now();
            let outcome = self.send_due_batch().await.unwrap_or_else(|error| {
                tracing::warn!(%error, "could not claim emails from the outbox");
                BatchOutcome::default()
            });
            // That claim took every retry due by then.
            next_retry = next_retry.filter(|&at| at > claimed_at);
            if let Some(retry) = outcome.earliest_retry {
                next_retry = Some(earliest(next_retry, retry));
            }
            if outcome.more && !stop.is_cancelled() {
                continue;
            }
            let next_poll = instant_after(self.config.poll_interval);
            let wake_at = next_retry.map_or(next_poll, |retry| retry.min(next_poll));
            tokio::select! {
                () = stop.cancelled() => break,
                () = wake.notified() => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
        tracing::info!("mailer stopped");
    }

    /// Claims one batch and delivers it.
    async fn send_due_batch(&self) -> Result<BatchOutcome, PersistenceError> {
        let now = Utc::now();
        let lock_until = wall_clock_after(now, self.config.claim_lock);
        let claimed = outbox::claim_due::<email_outbox::Entity>(
            self.database.conn(),
            now,
            lock_until,
            self.config.batch_size,
        )
        .await?;
        // Claim again until a claim comes back empty. A short claim does not mean
        // the outbox is drained: with several senders, candidates we selected may
        // have been taken by another sender while others are still due.
        let mut outcome = BatchOutcome {
            more: !claimed.is_empty(),
            earliest_retry: None,
        };
        for email in claimed {
            // Past this point another node may reclaim the message while we are
            // still talking to the server, and it would go out twice; leave it for
            // whoever claims it next.
            if wall_clock_after(Utc::now(), self.config.send_timeout) >= lock_until {
                tracing::debug!(outbox_id = %email.id, "claim nearly expired; left for later");
                // Claims need `locked_until < now`, hence the millisecond.
                let until_unlocked = (lock_until - Utc::now()).to_std().unwrap_or_default();
                let unlocked = instant_after(until_unlocked + Duration::from_millis(1));
                outcome.earliest_retry = Some(earliest(outcome.earliest_retry, unlocked));
                continue;
            }
            let span = tracing::info_span!(
                "send_email",
                outbox_id = %email.id,
                attempt = email.attempts.saturating_add(1)
            );
            if let Some(retry) = self.deliver_and_record(&email).instrument(span).await {
                outcome.earliest_retry = Some(earliest(outcome.earliest_retry, retry));
            }
        }
        Ok(outcome)
    }

    /// Sends one claimed email and records the outcome; returns when it may be
    /// retried when it failed.
    async fn deliver_and_record(&self, email: &email_outbox::Model) -> Option<Instant> {
        match self.deliver(email).await {
            Ok(()) => {
                metrics::counter!("emails_sent_total").increment(1);
                if let Err(error) = outbox::mark_sent::<email_outbox::Entity>(
                    self.database.conn(),
                    email.id,
                    Utc::now(),
                )
                .await
                {
                    // The message is out but still looks pending: it will be sent
                    // again once the claim expires (at least once, never lost).
                    tracing::error!(%error, "email sent but not marked as sent");
                }
                None
            }
            Err(reason) => {
                metrics::counter!("emails_failed_total").increment(1);
                let attempts = email.attempts.saturating_add(1);
                let delay = backoff(
                    email.attempts,
                    self.config.retry_base,
                    self.config.retry_cap,
                );
                let next_attempt_at = wall_clock_after(Utc::now(), delay);
                tracing::warn!(
                    error = %reason,
                    attempts,
                    retry_in = ?delay,
                    "email not delivered; will retry"
                );
                if let Err(error) = outbox::mark_failed::<email_outbox::Entity>(
                    self.database.conn(),
                    email.id,
                    attempts,
                    &reason,
                    next_attempt_at,
                )
                .await
                {
                    // The claim expires on its own and the message is retried then.
                    tracing::error!(%error, "could not record a failed email");
                }
                // Measured after `next_attempt_at` was fixed, so a claim made at
                // this instant or later finds the message due.
                Some(instant_after(delay))
            }
        }
    }

    /// Delivers one email; the error is a message fit for `last_error` and logs.
    async fn deliver(&self, email: &email_outbox::Model) -> Result<(), String> {
        match &self.delivery {
            Delivery::Log { log_bodies: true } => {
                tracing::info!(
                    recipient = %email.recipient,
                    subject = %email.subject,
                    body = %email.body,
                    "email logged (no SMTP server configured)"
                );
                Ok(())
            }
            Delivery::Log { log_bodies: false } => {
                tracing::info!(
                    recipient = %email.recipient,
                    subject = %email.subject,
                    "email logged (no SMTP server configured); body withheld, \
                     set email.log_bodies in development to see it"
                );
                Ok(())
            }
            Delivery::Smtp {
                transport,
                endpoint,
            } => {
                let message = self.build_message(email)?;
                match tokio::time::timeout(self.config.send_timeout, transport.send(message)).await
                {
                    Ok(Ok(_response)) => {
                        tracing::info!(%endpoint, "email sent");
                        Ok(())
                    }
                    Ok(Err(error)) => Err(format!("SMTP delivery to {endpoint} failed: {error}")),
                    Err(_elapsed) => Err(format!(
                        "SMTP delivery to {endpoint} took longer than {:?}",
                        self.config.send_timeout
                    )),
                }
            }
        }
    }

    fn build_message(&self, email: &email_outbox::Model) -> Result<Message, String> {
        let to: Mailbox = email
            .recipient
            .parse()
            .map_err(|error| format!("invalid recipient address: {error}"))?;
        // The outbox id makes the Message-ID stable across retries, so a message
        // sent twice (at least once delivery) can be recognised as one.
        let message_id = format!("<{}@{}>", email.id, self.from.email.domain());
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(single_line(&email.subject))
            .message_id(Some(message_id))
            .header(ContentType::TEXT_PLAIN)
            // lettre picks the transfer encoding: 7bit for short ASCII lines (the
            // usual case, readable as is), quoted-printable or base64 otherwise,
            // which any server accepts (8bit needs the server's 8BITMIME).
            .body(email.body.clone())
            .map_err(|error| format!("cannot build the message: {error}"))
    }
}

/// Stops and wakes a running [`Mailer`].
pub struct MailerHandle {
    stop: CancellationToken,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl MailerHandle {
    /// Asks the mailer to look at the outbox now rather than at the next poll
    /// (after enqueueing an email, say). A wake-up during a batch is kept, not lost.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The wake-up signal, to hand to code that enqueues emails (the API state).
    /// Call `notify_one()` on it: unlike `notify_waiters()`, it is remembered when
    /// the mailer is busy sending.
    pub fn notifier(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Stops the mailer after the batch it is sending, and waits for it to end.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "mailer task ended abnormally");
        }
    }
}

#[derive(Default)]
struct BatchOutcome {
    /// Something was claimed: more may be due right away.
    more: bool,
    /// When the first message that failed in this batch may be retried.
    earliest_retry: Option<Instant>,
}

fn smtp_delivery(smtp_url: &str, timeout: Duration) -> Result<Delivery, MailerError> {
    let invalid = |reason: String| MailerError::InvalidSmtpUrl { reason };
    let parsed = url::Url::parse(smtp_url).map_err(|error| invalid(error.to_string()))?;
    if !matches!(parsed.scheme(), "smtp" | "smtps") {
        return Err(invalid(format!(
            "the scheme must be smtp or smtps, not {:?}",
            parsed.scheme()
        )));
    }
    let endpoint = redacted_endpoint(smtp_url);
    let encrypted = parsed.scheme() == "smtps" || parsed.query_pairs().any(|(key, _)| key == "tls");
    if parsed.password().is_some() && !encrypted {
        tracing::warn!(
            %endpoint,
            "email.smtp_url has credentials but no TLS: they cross the network in clear"
        );
    }
    // lettre's errors describe the scheme, query or TLS setup, never the
    // credentials, so they can be repeated.
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
        .map_err(|error| invalid(error.to_string()))?
        .timeout(Some(timeout))
        .build();
    let transport = Box::new(transport);
    Ok(Delivery::Smtp {
        transport,
        endpoint,
    })
}

/// `host:port` of an SMTP URL (default ports filled in), for logs.
fn redacted_endpoint(smtp_url: &str) -> String {
    match url::Url::parse(smtp_url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("?");
            let starttls = parsed.query_pairs().any(|(key, _)| key == "tls");
            let port = parsed.port().unwrap_or(match (parsed.scheme(), starttls) {
                ("smtps", _) => 465,
                (_, true) => 587,
                _ => 25,
            });
            format!("{host}:{port}")
        }
        Err(_) => "<invalid url>".to_owned(),
    }
}

/// The delay before the next try of a message that failed `previous_attempts`
/// times before this failure: `base × 2^previous_attempts`, at most `cap`.
pub(crate) fn backoff(previous_attempts: i32, base: Duration, cap: Duration) -> Duration {
    let exponent = u32::try_from(previous_attempts.clamp(0, 30)).unwrap_or(30);
    base.checked_mul(2u32.saturating_pow(exponent))
        .map_or(cap, |delay| delay.min(cap))
}

fn earliest(known: Option<Instant>, new: Instant) -> Instant {
    known.map_or(new, |known| known.min(new))
}

/// `now + duration` on the wall clock, saturating rather than panicking on a
/// absurd configured duration.
fn wall_clock_after(now: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|duration| now.checked_add_signed(duration))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `duration` from now on the monotonic clock, saturating like [`wall_clock_after`].
fn instant_after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// A header value on one line: a stray newline must not start a new header.
fn single_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let base = Duration::from_secs(2);
        let cap = Duration::from_secs(15 * 60);
        assert_eq!(backoff(0, base, cap), Duration::from_secs(2));
        assert_eq!(backoff(1, base, cap), Duration::from_secs(4));
        assert_eq!(backoff(5, base, cap), Duration::from_secs(64));
        assert_eq!(backoff(9, base, cap), cap);
        assert_eq!(backoff(i32::MAX, base, cap), cap);
        assert_eq!(backoff(-3, base, cap), base);
    }

    #[test]
    fn endpoints_never_carry_credentials() {
        assert_eq!(
            redacted_endpoint("smtps://user:s3cret@mail.example.com"),
            "mail.example.com:465"
        );
        assert_eq!(redacted_endpoint("smtp://127.0.0.1:2525"), "127.0.0.1:2525");
        let config = MailerConfig {
            smtp_url: Some("smtp://user:s3cret@mail.example.com:587?tls=required".to_owned()),
            ..MailerConfig::default()
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn headers_stay_on_one_line() {
        assert_eq!(single_line("a\r\nBcc: x"), "a  Bcc: x");
    }
}
