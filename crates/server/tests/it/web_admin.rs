//! The operator dashboard in a real browser (headless Chromium through
//! chromedriver) against the real server, and its refusals over plain HTTP.

use std::path::PathBuf;

use reqwest::StatusCode;
use roster_testkit::browser::Browser;

use super::api_directories::admin_key;
use crate::support::{StoreKind, TestServer};

/// Where the screenshots shown in docs/admin.md go (from the SQLite run,
/// so that the two stores do not write the same pictures).
fn screenshot_path(name: &str) -> Option<PathBuf> {
    (crate::STORE == StoreKind::Sqlite).then(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/img")
            .join(format!("{name}.png"))
    })
}

async fn screenshot(b: &Browser, name: &str) {
    if let Some(p) = screenshot_path(name) {
        b.screenshot(&p).await;
    }
}

/// Signs the browser in with `key` on server `s`.
pub async fn sign_in(b: &Browser, s: &TestServer, key: &str) {
    b.goto(&format!("http://{}/admin", s.addr)).await;
    b.find("#key").await;
    b.fill("#key", key).await;
    b.click("form[action='/admin/sign-in'] button[type=submit]")
        .await;
    b.find("#directories").await;
}

#[tokio::test]
async fn an_operator_signs_in_sees_the_directories_and_signs_out() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let b = Browser::start().await;

    // Unsigned, the dashboard sends the browser to the sign-in page.
    b.goto(&format!("http://{}/admin", s.addr)).await;
    b.find("#key").await;
    assert!(b.url().await.ends_with("/admin/sign-in"));
    screenshot(&b, "admin-sign-in").await;

    b.fill("#key", "rak_not-a-key").await;
    b.click("form[action='/admin/sign-in'] button[type=submit]")
        .await;
    assert!(
        b.text("#sign-in-error")
            .await
            .contains("unknown or revoked")
    );

    sign_in(&b, &s, &key).await;
    let table = b.text("#directories").await;
    assert!(table.contains("test"), "{table}");
    screenshot(&b, "admin-directories").await;

    b.click("header form[action='/admin/sign-out'] button")
        .await;
    b.find("#key").await;
    // Signed out, the dashboard is closed again.
    b.goto(&format!("http://{}/admin", s.addr)).await;
    b.find("#key").await;
    b.close().await;
}

/// A dashboard session over plain HTTP: its cookie and form token.
struct Http {
    client: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Http {
    /// Signs in with `key`.
    async fn sign_in(s: &TestServer, key: &str) -> Http {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let base = format!("http://{}", s.addr);
        let r = client
            .post(format!("{base}/admin/sign-in"))
            .form(&[("key", key)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        assert!(set.contains("Path=/admin"), "{set}");
        let cookie = set.split(';').next().unwrap().to_owned();
        let mut http = Http {
            client,
            base,
            cookie,
            csrf: String::new(),
        };
        let html = http.get("/admin").await.text().await.unwrap();
        let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
        http.csrf = html[at..].split('"').next().unwrap().to_owned();
        http
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn pages_send_a_strict_content_security_policy_and_no_caching() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let c = Http::sign_in(&s, &key).await;
    let r = c.get("/admin").await;
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(!html.contains(" style=\"") && !html.contains("<script>"));
    // The stylesheet is cached for good under its versioned path.
    let css = html.split("href=\"/assets/").nth(1).unwrap();
    let css = css.split('"').next().unwrap();
    let r = c.get(&format!("/assets/{css}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
}

#[tokio::test]
async fn a_post_without_the_form_token_is_refused() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let c = Http::sign_in(&s, &key).await;
    let url = "/admin/directories";
    let r = c.post(url, &[("name", "forged")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let r = c
        .post(url, &[("name", "forged"), ("csrf", "not-the-token")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let dirs = s.store.list_directories().await.unwrap();
    assert!(dirs.iter().all(|d| d.name != "forged"));
    // With the session's token the same form creates it.
    let r = c.post(url, &[("name", "real"), ("csrf", &c.csrf)]).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let dirs = s.store.list_directories().await.unwrap();
    assert!(dirs.iter().any(|d| d.name == "real"));
}

#[tokio::test]
async fn a_revoked_keys_session_ends_at_once() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let c = Http::sign_in(&s, &key).await;
    let id = s.store.authenticate_admin(&key).await.unwrap().unwrap().id;
    s.store
        .revoke_admin_key(&roster_store::Actor::Cli, &id)
        .await
        .unwrap()
        .unwrap();
    let r = c.get("/admin").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/admin/sign-in");
}

#[tokio::test]
async fn a_sign_in_from_another_site_is_refused() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let r = reqwest::Client::new()
        .post(format!("http://{}/admin/sign-in", s.addr))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .form(&[("key", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("set-cookie").is_none());
}
