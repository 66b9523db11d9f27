//! The Admin Portal in a real browser against the real server: the app makes
//! a link, the IT admin opens it, picks Okta, copies the base URL and the
//! token, the provider provisions with exactly those, and the page turns to
//! "connected". And its refusals over plain HTTP: a spent or expired link, a
//! forged form, another directory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use roster_testkit::browser::{Browser, PHONE};
use serde_json::{Value, json};

use super::api_directories::{admin_key, api};
use super::web_http::Http;
use crate::support::{StoreKind, TestServer};

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

/// The text of the element `css` selects, read again if the page replaced
/// the element between finding and reading it (at most 15 s).
async fn text_of(b: &Browser, css: &str) -> String {
    let started = Instant::now();
    loop {
        for el in b.find_all(css).await {
            if let Ok(t) = el.text().await {
                return t;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no {css} to read"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A portal link for the test's directory, made by the app over /api/v1.
pub(crate) async fn portal_link(s: &TestServer, key: &str, body: Value) -> String {
    let r = api(s, key, Method::POST, "/portal_links", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["url"].as_str().unwrap().to_owned()
}

/// Sends a SCIM request as a provider would, with `base` and `token` as read
/// from the page.
async fn provision(base: &str, token: &str, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .header("user-agent", "Okta SCIM Client 1.0.0")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

#[tokio::test]
async fn an_it_admin_connects_okta_through_a_portal_link() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let url = portal_link(
        &s,
        &key,
        json!({"directory_id": s.directory, "return_url": "https://app.example.com/sso"}),
    )
    .await;
    let b = Browser::start().await;
    b.goto(&url).await;
    // The secret is gone from the address bar.
    b.find("#connection-status").await;
    let here = b.url().await;
    assert!(here.ends_with("/portal"), "{here}");
    assert!(!here.contains("rpl_"));
    assert!(
        text_of(&b, "#connection-headline")
            .await
            .contains("waiting for the first request")
    );
    assert!(b.body_text().await.contains("Back to Roster"));
    screenshot(&b, "portal-home").await;

    b.click("a[href='/portal/setup/okta']").await;
    b.find("form[action='/portal/setup/okta/token'] button")
        .await;
    assert!(b.body_text().await.contains("SCIM connector base URL"));
    b.click("form[action='/portal/setup/okta/token'] button")
        .await;
    // The token is on the answer to the form only: once it shows, the
    // page is the new one.
    let token = text_of(&b, "#scim-token").await;
    let base = text_of(&b, "#scim-base-url").await;
    assert!(token.starts_with("rst_"), "{token}");
    assert!(!b.url().await.contains("rst_"));
    screenshot(&b, "portal-okta").await;

    // The provider provisions with exactly what the page showed.
    let mut users = Vec::new();
    for i in 0..3 {
        let u = provision(
            &base,
            &token,
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("okta{i}@example.com")}),
        )
        .await;
        users.push(json!({"value": u["id"]}));
    }
    provision(
        &base,
        &token,
        "/Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering", "members": users}),
    )
    .await;

    // The page's script refreshes the status until it is connected (the
    // whole body is read: the status element itself is replaced each time).
    let started = Instant::now();
    loop {
        let body = b.body_text().await;
        if body.contains("Connection: connected") {
            assert!(
                body.contains("connected: Okta, 3 users, 1 group, last request"),
                "{body}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never connected: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    screenshot(&b, "portal-connected").await;
    b.close().await;

    // At phone width the page still works.
    let url = portal_link(&s, &key, json!({"directory_id": s.directory})).await;
    let phone = Browser::start_sized(PHONE).await;
    phone.goto(&url).await;
    phone.find("#connection-status").await;
    phone.click("a[href='/portal/setup/entra-id']").await;
    phone.find("#scim-base-url").await;
    screenshot(&phone, "portal-phone").await;
    phone.close().await;
}

#[tokio::test]
async fn spent_expired_and_forged_requests_are_refused() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let url = portal_link(&s, &key, json!({"directory_id": s.directory})).await;
    let c = Http::open(&s, &url).await;

    // A link opens once.
    let again = c.client.get(&url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.headers().get("set-cookie").is_none());
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("expired or was already used")
    );

    // An expired link does not open.
    let (_, secret) = s
        .store
        .create_portal_link(
            &roster_store::Actor::Cli,
            &s.directory,
            None,
            roster_store::now_ms() - 1,
        )
        .await
        .unwrap();
    let r = c
        .client
        .get(format!("{}/portal/open/{secret}", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GONE);

    // A POST without the form token, or with another, changes nothing.
    let before = s.store.list_tokens(&s.directory).await.unwrap().len();
    let r = c
        .post("/portal/setup/okta/token", &[("action", "issue")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post(
            "/portal/setup/okta/token",
            &[("action", "issue"), ("csrf", "forged")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        s.store.list_tokens(&s.directory).await.unwrap().len(),
        before
    );
    let csrf = c.csrf.clone();
    let r = c
        .post(
            "/portal/setup/okta/token",
            &[("action", "issue"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"scim-token\">rst_"));
    assert_eq!(
        s.store.list_tokens(&s.directory).await.unwrap().len(),
        before + 1
    );
    // The token is shown once: the page does not show it again.
    let html = c.get("/portal/setup/okta").await.text().await.unwrap();
    assert!(!html.contains("rst_"));

    // No cookie, no portal.
    let r = c
        .client
        .get(format!("{}/portal", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Pages carry the strict policy.
    let r = c.get("/portal").await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
    assert_eq!(r.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn a_portal_session_sees_only_its_own_directory() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let (theirs, _) = s.other_directory().await;
    s.user("only-in-mine").await;
    let url = portal_link(&s, &key, json!({"directory_id": s.directory})).await;
    let c = Http::open(&s, &url).await;

    // The session names its directory; nothing in the portal takes another.
    let html = c.get("/portal/setup/okta").await.text().await.unwrap();
    assert!(html.contains(&format!("/scim/v2/{}", s.directory)));
    assert!(!html.contains(&theirs));
    let html = c
        .get(&format!("/portal/setup/okta?directory_id={theirs}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains(&theirs));
    // The portal cookie opens nothing outside the portal.
    for path in [
        format!("/api/v1/directories/{theirs}/users"),
        format!("/api/v1/directories/{}/users", s.directory),
        format!("/api/v1/directories/{theirs}/requests"),
    ] {
        let r = c.get(&path).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = c.get("/admin").await;
    assert_ne!(r.status(), StatusCode::OK);
    // A token issued in the portal belongs to its directory only.
    let csrf = c.csrf.clone();
    let html = c
        .post(
            "/portal/setup/generic/token",
            &[("action", "issue"), ("csrf", &csrf)],
        )
        .await
        .text()
        .await
        .unwrap();
    let at = html.find("id=\"scim-token\">").unwrap() + "id=\"scim-token\">".len();
    let token = html[at..].split('<').next().unwrap().to_owned();
    let r = reqwest::Client::new()
        .get(format!("http://{}/scim/v2/{theirs}/Users", s.addr))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // And a directory's name is shown as text, never markup.
    s.store
        .rename_directory(
            &roster_store::Actor::Cli,
            &s.directory,
            "<img src=x onerror=alert(1)>",
        )
        .await
        .unwrap();
    let html = c.get("/portal").await.text().await.unwrap();
    assert!(!html.contains("<img src=x"), "{html}");
    let at = html.find("onerror=alert(1)").unwrap();
    assert!(html[..at].ends_with("img src=x "), "{html}");
    assert!(
        html[..at - "img src=x ".len()].ends_with("&lt;")
            || html[..at - "img src=x ".len()].ends_with("&#60;"),
        "{html}"
    );
}
