//! A headless Chromium for the web pages' tests: Debian's `chromium` driven
//! through its `chromedriver` (WebDriver) with fantoccini. Each [`Browser`]
//! starts a chromedriver of its own on a free loopback port, in a process
//! group of its own, and a fresh profile; dropping it ends both.
//!
//! Every wait is bounded ([`WAIT`]): a page that never shows what a test
//! waits for fails that test within seconds instead of hanging the run.

// fantoccini's errors are large; they only ever reach a panic message here.
#![allow(clippy::result_large_err)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// The longest a test waits for a page, an element or chromedriver.
pub const WAIT: Duration = Duration::from_secs(15);

/// A desktop window, and the narrowest phone width the pages support.
pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (360, 780);

fn chromedriver() -> PathBuf {
    for dir in ["/usr/bin", "/usr/lib/chromium", "/usr/local/bin"] {
        let p = Path::new(dir).join("chromedriver");
        if p.exists() {
            return p;
        }
    }
    panic!(
        "no chromedriver: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)"
    )
}

fn chromium() -> PathBuf {
    for p in ["/usr/bin/chromium", "/usr/lib/chromium/chromium"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("no chromium: apt-get install chromium chromium-driver (.ci/run does)")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// A browser for one test.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A headless Chromium with a desktop-sized window.
    pub async fn start() -> Browser {
        Browser::start_sized(DESKTOP).await
    }

    /// A headless Chromium with a window of `(width, height)` CSS pixels.
    pub async fn start_sized((width, height): (u32, u32)) -> Browser {
        let port = free_port();
        let mut driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so that ending it ends the Chromium it started.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver does not start: {e}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = driver.try_wait() {
                panic!("chromedriver exited at start: {status}");
            }
            assert!(
                started.elapsed() < WAIT,
                "chromedriver did not listen on {addr} within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary folder: {e}"));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium(),
                "args": [
                    "--headless=new",
                    // CI runs as root, where Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = tokio::time::timeout(
            WAIT * 2,
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&format!("http://{addr}")),
        )
        .await
        .unwrap_or_else(|_| panic!("Chromium did not start within {:?}", WAIT * 2))
        .unwrap_or_else(|e| panic!("Chromium does not start through chromedriver: {e}"));
        // Headless windows take the size from the flag; say it again for
        // drivers that start with their own.
        let _ = client.set_window_size(width, height).await;
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Opens `url` and waits for its page to load.
    pub async fn goto(&self, url: &str) {
        tokio::time::timeout(WAIT, self.client.goto(url))
            .await
            .unwrap_or_else(|_| panic!("{url} did not load within {WAIT:?}"))
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The element `css` selects, waiting up to [`WAIT`] for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css:?} within {WAIT:?}: {e}"))
    }

    /// Every element `css` selects now (no waiting).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("cannot look for {css:?}: {e}"))
    }

    /// The text of the element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("no text in {css:?}: {e}"))
    }

    /// Types `value` into the field `css` selects (after clearing it).
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("cannot clear {css:?}: {e}"));
        field
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("cannot type into {css:?}: {e}"));
    }

    /// Clicks the element `css` selects (WebDriver returns once a page the
    /// click opens has loaded).
    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        tokio::time::timeout(WAIT, el.click())
            .await
            .unwrap_or_else(|_| panic!("clicking {css:?} took over {WAIT:?}"))
            .unwrap_or_else(|e| panic!("cannot click {css:?}: {e}"));
    }

    /// Clicks what `css` selects (a link, a form's button) and waits until
    /// the page it leads to has replaced this one, so that what the test
    /// reads next is the new page's.
    pub async fn click_to_page(&self, css: &str) {
        let old = self.find("html").await;
        self.click(css).await;
        let started = Instant::now();
        // The old document's root goes stale once the next page is in.
        while old.tag_name().await.is_ok() {
            assert!(
                started.elapsed() < WAIT,
                "clicking {css:?} did not lead to another page within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.find("body").await;
    }

    /// Waits until the page's text contains `needle`.
    pub async fn wait_for_text(&self, needle: &str) {
        let started = Instant::now();
        loop {
            let body = self.body_text().await;
            if body.contains(needle) {
                return;
            }
            assert!(
                started.elapsed() < WAIT,
                "{needle:?} did not appear within {WAIT:?}; the page says:\n{body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The visible text of the whole page.
    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The page's address now (waits for the driver).
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_else(|e| panic!("no current URL: {e}"))
    }

    /// Saves a PNG of the window to `path` (its folder created if need be).
    pub async fn screenshot(&self, path: &Path) {
        let png = tokio::time::timeout(WAIT, self.client.screenshot())
            .await
            .unwrap_or_else(|_| panic!("no screenshot within {WAIT:?}"))
            .unwrap_or_else(|e| panic!("no screenshot: {e}"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        std::fs::write(path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Ends the browser session (Chromium quits) and chromedriver.
    pub async fn close(self) {
        let _ = tokio::time::timeout(WAIT, self.client.clone().close()).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group holds chromedriver and the Chromium it started.
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            // SAFETY: kill(2) on a process group this browser created.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.driver.wait();
    }
}
