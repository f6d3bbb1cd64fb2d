//! Headless Chromium for the console's browser tests: Debian's `chromium` driven
//! through `chromedriver` (started here on a free port, with a fresh profile) by
//! fantoccini over WebDriver. `.ci/run` installs both packages.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// The Chromium binary the tests drive.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A desktop viewport.
pub const DESKTOP: (u32, u32) = (1280, 800);
/// A phone viewport.
pub const PHONE: (u32, u32) = (390, 844);

/// A running chromedriver with one browser session.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn chromedriver() -> PathBuf {
    for candidate in ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "chromedriver is missing: `apt-get install -y chromium chromium-driver` (as .ci/run does)"
    );
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session at the desktop size.
    pub async fn start() -> Self {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: `apt-get install -y chromium chromium-driver` (as .ci/run does)"
        );
        let port = free_port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--hide-scrollbars",
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        // The driver takes a moment to listen; the first session takes a moment more.
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(error) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "no WebDriver session within 30 s: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Opens `url` and waits for its document.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// The page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    /// Waits until the page's HTML contains `needle` (reloading with `reload`
    /// between looks), or panics after `timeout`.
    pub async fn wait_for_text(&self, needle: &str, timeout: Duration, reload: bool) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let source = self.source().await;
            if source.contains(needle) {
                return source;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {needle:?} in:\n{source}"
            );
            if reload {
                self.client.refresh().await.expect("reload");
            } else {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Replaces the value of the input with this id by typing.
    pub async fn fill(&self, id: &str, value: &str) {
        let element = self
            .client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no #{id}: {e}"));
        element.clear().await.expect("clear");
        if !value.is_empty() {
            element.send_keys(value).await.expect("type");
        }
    }

    /// Chooses `value` in the select with this id.
    pub async fn choose(&self, id: &str, value: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no #{id}: {e}"))
            .select_by_value(value)
            .await
            .expect("select");
    }

    /// Clicks the element matching `css` and waits for the next page to load.
    pub async fn click(&self, css: &str) {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        element.click().await.expect("click");
        // WebDriver's click returns once the navigation it started has loaded; wait
        // for the document to be complete in case it had not started yet.
        self.wait_loaded().await;
    }

    async fn wait_loaded(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let state = self
                .client
                .execute("return document.readyState", vec![])
                .await
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            if state.as_deref() == Some("complete") {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page did not finish loading"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes a PNG of the viewport at `size` to `docs/screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str, size: (u32, u32)) {
        self.set_viewport(size).await;
        // The top of the page, without a focus ring from the last field typed in.
        self.client
            .execute(
                "if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0);",
                vec![],
            )
            .await
            .expect("scroll to the top");
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).expect("screenshots dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Resizes the window so that the viewport (not the outer window) is `size`.
    pub async fn set_viewport(&self, (width, height): (u32, u32)) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize");
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight]", vec![])
            .await
            .expect("viewport");
        let measured = |i: usize| {
            inner
                .get(i)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        };
        let (w, h) = (measured(0), measured(1));
        if (w, h) != (u64::from(width), u64::from(height)) {
            let fix = |want: u32, got: u64| {
                (i64::from(want) * 2 - i64::try_from(got).unwrap_or(0)).max(1) as u32
            };
            self.client
                .set_window_size(fix(width, w), fix(height, h))
                .await
                .expect("resize");
        }
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked did not close the session: stop the driver anyway.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `docs/screenshots` at the workspace root.
pub fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("docs")
        .join("screenshots")
}
