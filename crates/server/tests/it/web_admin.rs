//! The operator dashboard in a real browser (headless Chromium through
//! chromedriver) against the real server, and its refusals over plain HTTP.

use std::path::PathBuf;

use reqwest::StatusCode;
use roster_testkit::browser::Browser;

use super::api_directories::admin_key;
use super::web_http::Http;
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

pub(crate) async fn screenshot(b: &Browser, name: &str) {
    if let Some(p) = screenshot_path(name) {
        b.screenshot(&p).await;
    }
}

/// Signs the browser in with `key` on server `s`.
pub async fn sign_in(b: &Browser, s: &TestServer, key: &str) {
    b.goto(&format!("http://{}/admin", s.addr)).await;
    b.find("#key").await;
    b.fill("#key", key).await;
    b.click_to_page("form[action='/admin/sign-in'] button[type=submit]")
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
    b.click_to_page("form[action='/admin/sign-in'] button[type=submit]")
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

    b.click_to_page("header form[action='/admin/sign-out'] button")
        .await;
    b.find("#key").await;
    // Signed out, the dashboard is closed again.
    b.goto(&format!("http://{}/admin", s.addr)).await;
    b.find("#key").await;
    b.close().await;
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
    // A page that does not exist is a page too, with the same headers.
    let r = c.get("/admin/no-such-page").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.headers().contains_key("content-security-policy"));
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

/// A webhook receiver that answers its first request 500, echoing the
/// signature it was sent (which the delivery log must not keep), and every
/// later one 200. Counts what it got.
async fn flaky_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                if n == 0 {
                    let sig = headers
                        .get("roster-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        format!("busy, try later (got {sig})"),
                    )
                } else {
                    (axum::http::StatusCode::OK, "ok".to_owned())
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

async fn scim_post(base: &str, token: &str, path: &str, body: serde_json::Value) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

async fn scim_status(base: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{base}/Users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

const XSS: &str = "<img src=x onerror=alert(1)>";

#[tokio::test]
async fn an_operator_connects_a_directory_and_follows_it_in_the_browser() {
    let config = roster_server::ServerConfig {
        webhook_poll_ms: 20,
        webhook_backoff_base_ms: 20,
        webhook_backoff_max_secs: 1,
        webhook_timeout_secs: 5,
        ..roster_server::ServerConfig::default()
    };
    let Some(s) = TestServer::start_with(config).await else {
        return;
    };
    let key = admin_key(&s).await;
    let (hook_url, received) = flaky_receiver().await;
    let b = Browser::start().await;
    sign_in(&b, &s, &key).await;

    // A new directory: its base URL and token, shown once.
    b.fill("#new-name", "Acme Okta").await;
    b.fill("#new-org", "org_acme").await;
    b.click_to_page("form[action='/admin/directories'] button[type=submit]")
        .await;
    let token = b.text("#scim-token").await;
    let base = b.text("#scim-base-url").await;
    assert!(token.starts_with("rst_"), "{token}");
    let dir = base.rsplit('/').next().unwrap().to_owned();
    assert!(base.ends_with(&format!("/scim/v2/{dir}")), "{base}");
    screenshot(&b, "admin-directory-created").await;

    // A webhook endpoint for it, its secret shown once.
    b.goto(&format!("http://{}/admin/webhooks", s.addr)).await;
    b.fill("#wh-url", &hook_url).await;
    b.fill("#wh-dir", &dir).await;
    b.click_to_page("form[action='/admin/webhooks'] button[type=submit]")
        .await;
    assert!(b.text("#webhook-secret").await.starts_with("whsec_"));

    // The provider provisions with exactly what the page showed.
    for name in ["ada@example.com", "grace@example.com", XSS] {
        scim_post(
            &base,
            &token,
            "/Users",
            serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
                "displayName": name,
                "emails": [{"value": "x@example.com", "primary": true}],
            }),
        )
        .await;
    }
    scim_post(
        &base,
        &token,
        "/Groups",
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Engineering",
        }),
    )
    .await;

    b.goto(&format!("http://{}/admin/directories/{dir}", s.addr))
        .await;
    b.wait_for_text("3 users").await;
    screenshot(&b, "admin-directory").await;
    b.click_to_page("#users-link").await;
    let table = b.text("#resources").await;
    assert!(table.contains("ada@example.com") && table.contains("grace@example.com"));
    // A provider may send any name: it shows as text, never as markup.
    assert!(table.contains(XSS), "{table}");
    assert!(b.find_all("img").await.is_empty());
    screenshot(&b, "admin-users").await;

    // Plain text searches names; a SCIM filter is used as typed.
    b.fill("#q", "grace").await;
    b.click_to_page("form[role=search] button").await;
    let table = b.text("#resources").await;
    assert!(table.contains("grace@example.com") && !table.contains("ada@example.com"));
    b.fill("#q", "userName sw \"ada\"").await;
    b.click_to_page("form[role=search] button").await;
    let table = b.text("#resources").await;
    assert!(table.contains("ada@example.com") && !table.contains("grace@example.com"));

    // The user named like markup: its page shows the raw resource as text.
    b.fill("#q", "onerror").await;
    b.click_to_page("form[role=search] button").await;
    b.click_to_page("#resources tbody a").await;
    assert_eq!(b.text("#user-name").await, XSS);
    assert!(b.text("#raw-scim").await.contains(XSS));
    assert!(b.find_all("img").await.is_empty());
    screenshot(&b, "admin-user").await;

    // Rotating: a new token, shown once; the old one works for the overlap.
    b.goto(&format!("http://{}/admin/directories/{dir}", s.addr))
        .await;
    b.click_to_page("#tokens button.rotate").await;
    let new_token = b.text("#scim-token").await;
    assert_ne!(new_token, token);
    assert_eq!(scim_status(&base, &new_token).await, StatusCode::OK);
    assert_eq!(scim_status(&base, &token).await, StatusCode::OK);

    // The receiver failed the first delivery and took the retry; the
    // operator sends one event again.
    let endpoint = s.store.list_webhooks().await.unwrap().remove(0).id;
    let page = format!("http://{}/admin/webhooks/{endpoint}", s.addr);
    let started = std::time::Instant::now();
    loop {
        b.goto(&page).await;
        let log = b.text("#deliveries").await;
        if log.contains("500") && log.contains("succeeded") {
            // The receiver's answer is kept, without the signature it echoed.
            assert!(log.contains("busy, try later"), "{log}");
            assert!(log.contains("[redacted]") && !log.contains("v1="), "{log}");
            break;
        }
        assert!(
            started.elapsed() < roster_testkit::browser::WAIT,
            "no failed and retried delivery: {log}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    screenshot(&b, "admin-webhook").await;
    let before = received.load(std::sync::atomic::Ordering::SeqCst);
    b.click_to_page("#deliveries button.redeliver").await;
    b.wait_for_text("The event is queued").await;
    let started = std::time::Instant::now();
    while received.load(std::sync::atomic::Ordering::SeqCst) <= before {
        assert!(
            started.elapsed() < roster_testkit::browser::WAIT,
            "the redelivery never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    b.goto(&format!("http://{}/admin/events?directory={dir}", s.addr))
        .await;
    let events = b.text("#events").await;
    assert!(events.contains("dsync.user.created"), "{events}");
    screenshot(&b, "admin-events").await;
    b.goto(&format!("http://{}/admin/keys", s.addr)).await;
    b.find("#keys").await;
    screenshot(&b, "admin-keys").await;
    b.close().await;

    // The same pages at the narrowest supported width.
    let phone = Browser::start_sized(roster_testkit::browser::PHONE).await;
    sign_in(&phone, &s, &key).await;
    screenshot(&phone, "admin-directories-360").await;
    phone
        .goto(&format!("http://{}/admin/directories/{dir}/users", s.addr))
        .await;
    phone.find("#resources").await;
    screenshot(&phone, "admin-users-360").await;
    phone.close().await;
}

#[tokio::test]
async fn a_read_only_keys_session_sees_but_changes_nothing() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let scope = roster_store::AdminKeyScope {
        read_only: true,
        directories: None,
    };
    let key = s
        .store
        .create_admin_key(&roster_store::Actor::Cli, "viewer", &scope)
        .await
        .unwrap()
        .1;
    let c = Http::sign_in(&s, &key).await;
    let page = c.get(&format!("/admin/directories/{}", s.directory)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(!html.contains("Issue a new token"));
    let r = c
        .post(
            &format!("/admin/directories/{}/tokens", s.directory),
            &[("csrf", &c.csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.store.list_tokens(&s.directory).await.unwrap().len(), 1);
    // Admin keys are for full keys only.
    assert_eq!(c.get("/admin/keys").await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_directory_limited_keys_session_sees_only_its_directories() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let (other, _) = s.other_directory().await;
    let scope = roster_store::AdminKeyScope {
        read_only: false,
        directories: Some(vec![s.directory.clone()]),
    };
    let key = s
        .store
        .create_admin_key(&roster_store::Actor::Cli, "limited", &scope)
        .await
        .unwrap()
        .1;
    let c = Http::sign_in(&s, &key).await;
    let list = c.get("/admin").await.text().await.unwrap();
    assert!(list.contains(&s.directory) && !list.contains(&other));
    assert_eq!(
        c.get(&format!("/admin/directories/{other}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = c
        .post(
            &format!("/admin/directories/{other}/delete"),
            &[("csrf", &c.csrf), ("confirm", "other")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(s.store.get_directory(&other).await.unwrap().is_some());
}

#[tokio::test]
async fn deleting_a_directory_needs_its_name_typed_and_is_audited() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let c = Http::sign_in(&s, &key).await;
    let path = format!("/admin/directories/{}/delete", s.directory);
    let r = c
        .post(&path, &[("csrf", &c.csrf), ("confirm", "tes")])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(s.store.get_directory(&s.directory).await.unwrap().is_some());
    let r = c
        .post(&path, &[("csrf", &c.csrf), ("confirm", "test")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(s.store.get_directory(&s.directory).await.unwrap().is_none());
    let key_id = s.store.authenticate_admin(&key).await.unwrap().unwrap().id;
    let audit = s.recent_audit().await;
    assert!(
        audit
            .iter()
            .any(|r| r.action == "directory.deleted" && r.actor.contains(&key_id)),
        "{audit:?}"
    );
}

#[tokio::test]
async fn settings_are_checked_like_the_api_checks_them() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let c = Http::sign_in(&s, &key).await;
    let path = format!("/admin/directories/{}/settings", s.directory);
    let r = c
        .post(
            &path,
            &[
                ("csrf", &c.csrf),
                ("deactivation", "delete"),
                ("custom_attributes", "{\"dept\": \"noSuchAttribute\"}"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("Nothing was saved"));
    let r = c
        .post(
            &path,
            &[
                ("csrf", &c.csrf),
                ("deactivation", "delete"),
                (
                    "custom_attributes",
                    "{\"department\": \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department\"}",
                ),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let settings = s.store.settings(&s.directory).await.unwrap().unwrap();
    assert_eq!(settings.deactivation.as_str(), "delete");
    assert!(settings.custom_attributes.is_some());
}

#[tokio::test]
async fn the_request_log_explains_a_failing_provider_on_the_dashboard() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    // A provider that pasted a token cut short, then one that sends a user
    // without a userName.
    let r = s
        .call_with(
            reqwest::Method::GET,
            "/Users",
            None,
            "rst_cut-short",
            &[("user-agent", "Okta SCIM Client 1.0")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let bad = serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "displayName": "<b>no name</b>"});
    assert_eq!(
        s.call(reqwest::Method::POST, "/Users", Some(bad))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    super::provider_requests::requests_until(&s, &key, &s.directory, |d| d.len() >= 2).await;

    let c = Http::sign_in(&s, &key).await;
    let list = c.get("/admin").await.text().await.unwrap();
    assert!(list.contains("Errors (24 h)"), "{list}");
    assert!(
        list.contains(&format!(
            "/admin/directories/{}/requests?failed=true\">2</a>",
            s.directory
        )),
        "{list}"
    );
    let dir = c
        .get(&format!("/admin/directories/{}", s.directory))
        .await
        .text()
        .await
        .unwrap();
    assert!(dir.contains("id=\"requests-link\""), "{dir}");

    let log = c
        .get(&format!("/admin/directories/{}/requests", s.directory))
        .await;
    assert_eq!(log.status(), StatusCode::OK);
    let html = log.text().await.unwrap();
    assert!(html.contains("GET /scim/v2/"), "{html}");
    assert!(html.contains(">401<"), "{html}");
    assert!(html.contains(">400<"), "{html}");
    assert!(html.contains("Okta SCIM Client 1.0"), "{html}");
    // The failed POST's body is kept, and shown as text.
    assert!(html.contains("&#60;b&#62;no name&#60;/b&#62;"), "{html}");
    assert!(!html.contains("<b>no name</b>"), "{html}");
    assert!(!html.contains("rst_cut-short"), "{html}");

    // Only failures, and a malformed cursor is a 400 page, not a 500.
    let failed = c
        .get(&format!(
            "/admin/directories/{}/requests?failed=true",
            s.directory
        ))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(failed.matches("<tr id=\"req_").count(), 2, "{failed}");
    let bad_cursor = c
        .get(&format!(
            "/admin/directories/{}/requests?before=nope",
            s.directory
        ))
        .await;
    assert_eq!(bad_cursor.status(), StatusCode::BAD_REQUEST);
}
