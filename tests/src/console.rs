//! A browser-like client for the web console: keeps cookies, reads the CSRF token
//! from its cookie and posts forms with it, follows no redirects (tests look at them).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::TestApp;

/// One visitor of the console, with its own cookies.
pub struct ConsoleClient {
    /// The server's base address.
    pub address: String,
    client: reqwest::Client,
    jar: Mutex<BTreeMap<String, String>>,
}

/// A response read whole.
#[derive(Debug)]
pub struct Page {
    /// Status code.
    pub status: u16,
    /// `Location`, for redirects.
    pub location: Option<String>,
    /// `Content-Type`.
    pub content_type: String,
    /// Every `Set-Cookie`.
    pub set_cookies: Vec<String>,
    /// The body.
    pub body: String,
}

impl Page {
    /// Panics unless the status is `status`; returns the page for chaining.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; location {:?}; body:\n{}",
            self.location, self.body
        );
        self
    }

    /// Panics unless this is an HTML page (errors included).
    #[track_caller]
    pub fn html(self) -> Self {
        assert!(
            self.content_type.starts_with("text/html"),
            "expected an HTML page, got {:?} (status {}): {}",
            self.content_type,
            self.status,
            self.body
        );
        self
    }

    /// Panics unless the body contains `needle`.
    #[track_caller]
    pub fn contains(self, needle: &str) -> Self {
        assert!(
            self.body.contains(needle),
            "expected {needle:?} in the page:\n{}",
            self.body
        );
        self
    }

    /// Panics if the body contains `needle`.
    #[track_caller]
    pub fn lacks(self, needle: &str) -> Self {
        assert!(
            !self.body.contains(needle),
            "did not expect {needle:?} in the page:\n{}",
            self.body
        );
        self
    }

    /// Panics unless this is a `303` to a location starting with `prefix`.
    #[track_caller]
    pub fn redirects_to(self, prefix: &str) -> Self {
        assert_eq!(
            self.status, 303,
            "expected a redirect; body:\n{}",
            self.body
        );
        let location = self.location.clone().unwrap_or_default();
        assert!(
            location.starts_with(prefix),
            "expected a redirect to {prefix}, got {location}"
        );
        self
    }
}

impl ConsoleClient {
    /// A visitor with no cookies.
    pub fn new(app: &TestApp) -> Self {
        Self {
            address: app.address.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            jar: Mutex::new(BTreeMap::new()),
        }
    }

    /// The value of one of this visitor's cookies.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().expect("jar").get(name).cloned()
    }

    /// Drops a cookie (as its expiry would).
    pub fn forget_cookie(&self, name: &str) {
        self.jar.lock().expect("jar").remove(name);
    }

    /// Sets a cookie by hand.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar
            .lock()
            .expect("jar")
            .insert(name.to_owned(), value.to_owned());
    }

    fn cookie_header(&self) -> String {
        self.jar
            .lock()
            .expect("jar")
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Sends a request with this visitor's cookies and keeps what it is given.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Page {
        let response = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = header("location");
        let content_type = header("content-type").unwrap_or_default();
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        {
            let mut jar = self.jar.lock().expect("jar");
            for cookie in &set_cookies {
                let first = cookie.split(';').next().unwrap_or_default();
                if let Some((name, value)) = first.split_once('=') {
                    let expired = value.is_empty() || cookie.contains("Max-Age=0");
                    if expired {
                        jar.remove(name.trim());
                    } else {
                        jar.insert(name.trim().to_owned(), value.to_owned());
                    }
                }
            }
        }
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            location,
            content_type,
            set_cookies,
            body,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Page {
        self.send(self.client.get(format!("{}{path}", self.address)))
            .await
    }

    /// Posts a form with the visitor's CSRF token (fetched first when it has none).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        if self.cookie("punctual_csrf").is_none() {
            self.get("/login").await.expect(200);
        }
        let token = self.cookie("punctual_csrf").expect("a CSRF cookie");
        let mut all: Vec<(&str, &str)> = vec![("_csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Posts exactly `fields` (no token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.send(
            self.client
                .post(format!("{}{path}", self.address))
                .form(fields),
        )
        .await
    }

    /// A request builder for anything else (another content type, an Origin).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
    }

    /// Signs in through the form.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.post("/login", &[("email", email), ("password", password)])
            .await
            .redirects_to("/");
    }

    /// Registers through the form with an organization; returns its slug.
    pub async fn register(&self, email: &str) -> String {
        let slug = crate::unique("org");
        self.post(
            "/register",
            &[
                ("email", email),
                ("password", "correct horse battery staple"),
                ("name", "Test Person"),
                ("org_name", "Console Org"),
                ("org_slug", &slug),
            ],
        )
        .await
        .redirects_to(&format!("/orgs/{slug}/jobs"));
        slug
    }
}

/// Waits for `condition` to hold, polling, until `timeout`; panics with `what`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first `href` in `html` that starts with `prefix`.
pub fn first_link(html: &str, prefix: &str) -> Option<String> {
    let needle = format!("href=\"{prefix}");
    let start = html.find(&needle)? + "href=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&"))
}
