//! Performing one job request: the method, headers and body the job asks for,
//! signed, with its timeout, no redirects, the response read up to a cap.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use punctual_domain::{is_blocked_ip, TargetUrl};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use reqwest::{Client, Method, Url};

use crate::outbound::CheckedResolver;
use crate::signing::SigningKeys;

/// What the engine needs to send one request.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// `webhook-id`: the occurrence's id for a job's request (the same for each
    /// attempt), the notification's for a notification.
    pub message_id: String,
    /// Target URL as stored.
    pub url: &'a str,
    /// HTTP method as stored.
    pub method: &'a str,
    /// Header JSON object as stored.
    pub headers_json: &'a str,
    /// Body.
    pub body: Option<&'a str>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The organization's signing secrets in force, keyed.
    pub signing_keys: &'a SigningKeys,
    /// `webhook-timestamp`.
    pub now: DateTime<Utc>,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// 2xx.
    Success,
    /// Another status, or no response.
    Failed,
    /// No complete answer within the timeout.
    Timeout,
}

/// The result of one request.
#[derive(Debug, Clone)]
pub struct DeliveryResult {
    /// Outcome class.
    pub status: DeliveryStatus,
    /// Response status code.
    pub status_code: Option<u16>,
    /// Response body, up to the cap (lossy UTF-8).
    pub body: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
    /// Wall time of the request.
    pub duration: Duration,
    /// `Retry-After` of a 429/503, in seconds from now.
    pub retry_after: Option<Duration>,
}

impl DeliveryResult {
    /// A failed attempt whose request was never sent (refused target, invalid
    /// request, nothing to sign it with), after `duration` of preparation.
    pub fn not_sent(error: String, duration: Duration) -> Self {
        Self {
            status: DeliveryStatus::Failed,
            status_code: None,
            body: None,
            error: Some(error),
            duration,
            retry_after: None,
        }
    }
}

/// How many checked targets [`Deliverer`] remembers before it starts afresh.
const CHECKED_TARGETS: usize = 4096;

/// The HTTP client all executions share.
#[derive(Debug, Clone)]
pub struct Deliverer {
    client: Client,
    allow_private_networks: bool,
    body_limit: usize,
    /// Target URLs as stored, parsed and checked: the same jobs run again and
    /// again, and parsing a URL (its host, IDNA) cost ~7k instructions a request.
    /// The check depends only on the URL and `allow_private_networks`.
    checked_targets: Arc<Mutex<HashMap<String, Url>>>,
}

impl Deliverer {
    /// A client that never follows redirects, never uses a proxy, and connects
    /// only to addresses that passed the outbound check. `max_in_flight` is how
    /// many requests may run at once: as many connections to one host are kept
    /// alive, so a busy target is not re-dialled for every request.
    pub fn new(
        allow_private_networks: bool,
        body_limit: usize,
        max_in_flight: usize,
    ) -> Result<Self, reqwest::Error> {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(CheckedResolver::new(allow_private_networks))
            .pool_max_idle_per_host(max_in_flight.max(1))
            .build()?;
        Ok(Self {
            client,
            allow_private_networks,
            body_limit,
            checked_targets: Arc::default(),
        })
    }

    /// The URL to call for `url` as stored, or why it is refused. Names that
    /// resolve to refused addresses are caught when connecting, not here.
    fn checked_target(&self, url: &str) -> Result<Url, String> {
        let remembered = self.checked_targets.lock().ok();
        if let Some(target) = remembered.and_then(|cache| cache.get(url).cloned()) {
            return Ok(target);
        }
        let target = TargetUrl::parse(url, self.allow_private_networks)
            .map_err(|error| format!("refused target: {error}"))?;
        // An IP literal never reaches the resolver, so it is checked here.
        if let Some(ip) = target.ip() {
            if !self.allow_private_networks && is_blocked_ip(ip) {
                return Err(format!(
                    "refused target: {ip} is a private or reserved address"
                ));
            }
        }
        let target = target.url().clone();
        if let Ok(mut cache) = self.checked_targets.lock() {
            if cache.len() >= CHECKED_TARGETS {
                cache.clear();
            }
            cache.insert(url.to_owned(), target.clone());
        }
        Ok(target)
    }

    /// Sends the request and classifies the answer. Never fails: every problem
    /// becomes a `Failed` result with the reason.
    pub async fn deliver(&self, delivery: &Delivery<'_>) -> DeliveryResult {
        let started = Instant::now();
        let failed = |error: String| DeliveryResult::not_sent(error, started.elapsed());
        let target = match self.checked_target(delivery.url) {
            Ok(target) => target,
            Err(error) => return failed(error),
        };
        let method = match Method::from_bytes(delivery.method.as_bytes()) {
            Ok(method) => method,
            Err(_) => return failed(format!("invalid method {}", delivery.method)),
        };
        let headers = match build_headers(delivery) {
            Ok(headers) => headers,
            Err(error) => return failed(error),
        };
        let request = self
            .client
            .request(method, target)
            .headers(headers)
            .timeout(delivery.timeout)
            .body(delivery.body.unwrap_or_default().to_owned());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => {
                return DeliveryResult {
                    status: DeliveryStatus::Timeout,
                    error: Some(format!(
                        "no response within {} ms",
                        delivery.timeout.as_millis()
                    )),
                    ..failed(String::new())
                }
            }
            // Without the URL, which reqwest's message repeats: a webhook's path may
            // carry its token, and this text goes to the log and the outbox.
            Err(error) => return failed(error_chain(&error.without_url())),
        };
        let code = response.status();
        let retry_after = if code.as_u16() == 429 || code.as_u16() == 503 {
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, delivery.now))
        } else {
            None
        };
        let mut body = Vec::new();
        let mut timed_out = false;
        let mut cut_off: Option<String> = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = self.body_limit.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= self.body_limit {
                        // The rest is dropped unread: the connection closes.
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    timed_out = error.is_timeout();
                    cut_off = Some(error_chain(&error.without_url()));
                    break;
                }
            }
        }
        let body = Some(recordable_text(&body));
        // The status line came, so the target answered: a 2xx stays a success,
        // but a body cut short says so rather than passing for the whole answer.
        let cut_off = cut_off.map(|error| format!("the response body was cut off: {error}"));
        let (status, error) = if timed_out {
            (
                DeliveryStatus::Timeout,
                Some("the response body did not arrive in time".to_owned()),
            )
        } else if code.is_success() {
            (DeliveryStatus::Success, cut_off)
        } else {
            let status = format!("HTTP {}", code.as_u16());
            (
                DeliveryStatus::Failed,
                Some(match cut_off {
                    Some(cut_off) => format!("{status}; {cut_off}"),
                    None => status,
                }),
            )
        };
        DeliveryResult {
            status,
            status_code: Some(code.as_u16()),
            body,
            error,
            duration: started.elapsed(),
            retry_after,
        }
    }
}

/// A response body as text that every database can store: invalid UTF-8 and NUL
/// characters (which PostgreSQL's `text` refuses, so a binary body could not be
/// recorded at all) become U+FFFD.
fn recordable_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\0', "\u{FFFD}")
}

fn build_headers(delivery: &Delivery<'_>) -> Result<HeaderMap, String> {
    let stored: BTreeMap<String, String> = serde_json::from_str(delivery.headers_json)
        .map_err(|e| format!("stored headers are invalid: {e}"))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &stored {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name}"))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name}"))?;
        headers.insert(name, value);
    }
    // Signature headers are always ours: a job cannot forge or drop them.
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("punctual/", env!("CARGO_PKG_VERSION"))),
    );
    let timestamp = delivery.now.timestamp();
    let body = delivery.body.unwrap_or_default().as_bytes();
    let insert =
        |headers: &mut HeaderMap, name: &'static str, value: String| -> Result<(), String> {
            let value = HeaderValue::from_str(&value).map_err(|_| format!("invalid {name}"))?;
            headers.insert(HeaderName::from_static(name), value);
            Ok(())
        };
    insert(&mut headers, "webhook-id", delivery.message_id.clone())?;
    insert(&mut headers, "webhook-timestamp", timestamp.to_string())?;
    headers.remove("webhook-signature");
    if let Some(signature) = delivery
        .signing_keys
        .header(&delivery.message_id, timestamp, body)
    {
        insert(&mut headers, "webhook-signature", signature)?;
    }
    Ok(headers)
}

/// `Retry-After` as seconds or as an HTTP date (IMF-fixdate, or the obsolete
/// RFC 850 and asctime forms RFC 9110 says a recipient must accept). A date
/// already past means "now", not "unknown".
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now =
            DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").map(|t| t.with_timezone(&Utc));
        let now = now.unwrap_or_else(|_| Utc::now());
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        // The obsolete forms, and a date already past.
        for obsolete in [
            "Thursday, 01-Jan-26 00:00:30 GMT",
            "Thu Jan  1 00:00:30 2026",
        ] {
            assert_eq!(
                parse_retry_after(obsolete, now),
                Some(Duration::from_secs(30)),
                "{obsolete}"
            );
        }
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 23:59:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    fn remembered(deliverer: &Deliverer) -> usize {
        deliverer
            .checked_targets
            .lock()
            .map(|c| c.len())
            .unwrap_or(0)
    }

    /// A checked target is remembered; a refusal is not, and is refused again.
    #[test]
    #[allow(clippy::expect_used)]
    fn checked_targets_are_remembered_and_refusals_are_refused_every_time() {
        let deliverer = Deliverer::new(false, 1024, 4).expect("client");
        let url = "https://example.com/hook?a=1";
        let first = deliverer.checked_target(url);
        assert_eq!(first.as_ref().map(Url::as_str), Ok(url));
        assert_eq!(deliverer.checked_target(url), first);
        assert_eq!(remembered(&deliverer), 1);
        for _ in 0..2 {
            assert!(deliverer
                .checked_target("http://127.0.0.1:9/x")
                .is_err_and(|e| e.starts_with("refused target")));
            assert!(deliverer.checked_target("ftp://example.com/").is_err());
        }
        assert_eq!(remembered(&deliverer), 1);
        let open = Deliverer::new(true, 1024, 4).expect("client");
        assert!(open.checked_target("http://127.0.0.1:9/x").is_ok());
    }

    /// A failure's text never repeats the URL, whose path may be a token.
    #[tokio::test]
    #[allow(clippy::expect_used)]
    async fn failures_do_not_name_the_url() {
        let keys = SigningKeys::new(&[]);
        let delivery = |url| Delivery {
            message_id: "msg".to_owned(),
            url,
            method: "POST",
            headers_json: "{}",
            body: None,
            timeout: Duration::from_secs(5),
            signing_keys: &keys,
            now: Utc::now(),
        };
        // Refused connection (nothing listens on the port bound and dropped).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("address")
            .port();
        let open = Deliverer::new(true, 1024, 4).expect("client");
        let refused = format!("http://127.0.0.1:{port}/T01/secret-token");
        // A name resolving to a blocked address, refused by the resolver.
        let closed = Deliverer::new(false, 1024, 4).expect("client");
        for (deliverer, url) in [
            (&open, refused.as_str()),
            (&closed, "http://localhost:9/T01/secret-token"),
        ] {
            let result = deliverer.deliver(&delivery(url)).await;
            let error = result.error.expect("a failure");
            assert!(!error.contains("secret-token"), "{error}");
            assert!(!error.is_empty());
        }
    }

    /// A 2xx whose body stops short of its `Content-Length` (the connection
    /// dropped) is a success that says its body was cut off.
    #[tokio::test]
    #[allow(clippy::expect_used)]
    async fn a_body_cut_off_by_the_connection_is_recorded_as_such() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n";
            socket.write_all(head.as_bytes()).await.expect("head");
            socket.write_all(&[b'a'; 100]).await.expect("body");
            socket.flush().await.expect("flush");
        });
        let keys = SigningKeys::new(&[]);
        let url = format!("http://127.0.0.1:{port}/");
        let deliverer = Deliverer::new(true, 1024, 4).expect("client");
        let result = deliverer
            .deliver(&Delivery {
                message_id: "msg".to_owned(),
                url: &url,
                method: "GET",
                headers_json: "{}",
                body: None,
                timeout: Duration::from_secs(5),
                signing_keys: &keys,
                now: Utc::now(),
            })
            .await;
        server.await.expect("server");
        assert_eq!(result.status, DeliveryStatus::Success);
        assert_eq!(result.status_code, Some(200));
        assert_eq!(result.body.as_deref().map(str::len), Some(100));
        assert!(
            result
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("the response body was cut off")),
            "{:?}",
            result.error
        );
    }

    #[test]
    #[allow(clippy::expect_used)]
    fn the_remembered_targets_are_bounded() {
        let deliverer = Deliverer::new(false, 1024, 4).expect("client");
        for n in 0..=CHECKED_TARGETS {
            assert!(deliverer
                .checked_target(&format!("https://example.com/{n}"))
                .is_ok());
        }
        assert_eq!(remembered(&deliverer), 1);
    }
}
