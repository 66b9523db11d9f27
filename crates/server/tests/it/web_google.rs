//! Google Workspace directories from the dashboard and the Admin Portal, in
//! a real browser against the real server and the test kit's stand-in of
//! Google (no test reaches Google), and their refusals over plain HTTP.

use std::time::Instant;

use reqwest::StatusCode;
use roster_testkit::browser::{Browser, WAIT};
use roster_testkit::google::{ADMIN, key_file, member, stand_in, user};
use serde_json::json;

use super::api_directories::admin_key;
use super::google::server;
use super::web_admin::{screenshot, sign_in};
use super::web_http::Http;
use super::web_portal::portal_link;

/// Loads `url` again until its text contains `needle` (polls run in the
/// background; the dashboard page has no refresh script).
async fn reload_until(b: &Browser, url: &str, needle: &str) -> String {
    let started = Instant::now();
    loop {
        b.goto(url).await;
        let body = b.body_text().await;
        if body.contains(needle) {
            return body;
        }
        assert!(
            started.elapsed() < WAIT * 2,
            "{needle:?} never showed on {url}:\n{body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// A key file for the stand-in at `base`, written where a browser can pick it.
fn key_path(dir: &tempfile::TempDir, base: &str) -> String {
    let path = dir.path().join("service-account.json");
    std::fs::write(&path, key_file(base).to_string()).unwrap();
    path.display().to_string()
}

/// Three users, two of them in one group.
fn populate(g: &roster_testkit::google::Shared) {
    let mut g = g.lock();
    g.users = vec![
        user("1", "ada@example.com", "Ada"),
        user("2", "bob@example.com", "Bob"),
        user("3", "cy@example.com", "Cy"),
    ];
    g.groups = vec![json!({"id": "g1", "email": "eng@example.com", "name": "Engineering"})];
    g.members
        .insert("g1".into(), vec![member("1"), member("2")]);
}

#[tokio::test]
async fn an_operator_creates_a_google_directory_from_a_key_file_and_follows_its_polls() {
    let (g, base) = stand_in().await;
    let Some(s) = server(&base).await else { return };
    populate(&g);
    let key = admin_key(&s).await;
    let files = tempfile::tempdir().unwrap();
    let b = Browser::start().await;
    sign_in(&b, &s, &key).await;

    b.click_to_page("#new-google").await;
    b.fill("#g-name", "Acme Google").await;
    b.find("#g-key-file")
        .await
        .send_keys(&key_path(&files, &base))
        .await
        .unwrap();
    b.fill("#g-admin", ADMIN).await;
    b.click_to_page("form[action='/admin/google-directories'] button[type=submit]")
        .await;
    b.wait_for_text("will not be shown again").await;
    let page = b.url().await;
    let page = page.split('?').next().unwrap().to_owned();
    let id = page.rsplit('/').next().unwrap().to_owned();
    // A pull directory takes no SCIM: no base URL, no tokens.
    assert!(b.find_all("#scim-base-url").await.is_empty());
    assert!(b.find_all("#tokens").await.is_empty());
    assert!(!b.body_text().await.contains("PRIVATE KEY"));

    // The first poll runs at once; the page says what it saw.
    let body = reload_until(&b, &page, "synced: 3 users, 1 group").await;
    assert!(
        body.contains("admin@example.com") && body.contains("1234567890"),
        "{body}"
    );
    assert_eq!(b.text("#users-link").await, "3 users");

    // A user joins at Google; Sync now brings it in.
    g.lock().users.push(user("4", "dee@example.com", "Dee"));
    b.click_to_page("#sync-now").await;
    b.wait_for_text("A poll was asked for").await;
    reload_until(&b, &page, "synced: 4 users, 1 group").await;
    assert_eq!(b.text("#poll-changes").await, "1");
    screenshot(&b, "admin-google-directory").await;
    b.click_to_page("#users-link").await;
    assert!(b.text("#resources").await.contains("dee@example.com"));

    // Google starts refusing (403): the page names the delegation fix.
    g.lock().forbid = true;
    b.goto(&page).await;
    b.click_to_page("#sync-now").await;
    let body = reload_until(&b, &page, "failing: Google denied access").await;
    let fix = b.text("#poll-fix").await;
    assert!(fix.contains("Domain-wide delegation"), "{fix}");
    assert!(fix.contains("client id 1234567890"), "{fix}");
    for scope in roster_testkit::google::SCOPES {
        assert!(fix.contains(scope), "{fix}");
    }
    assert!(
        body.contains("Not Authorized to access this resource/api"),
        "{body}"
    );
    screenshot(&b, "admin-google-failing").await;
    // The list shows the provider and the failing state.
    b.goto(&format!("http://{}/admin", s.addr)).await;
    let list = b.text("#directories").await;
    assert!(
        list.contains("Google Workspace (pulled)") && list.contains("polled from Google: failing"),
        "{list}"
    );
    b.close().await;
    assert!(s.store.google_source(&id).await.unwrap().is_some());
}

#[tokio::test]
async fn a_bad_key_file_a_forged_form_and_an_oversized_upload_are_refused() {
    let (_g, base) = stand_in().await;
    let Some(s) = server(&base).await else { return };
    let key = admin_key(&s).await;
    let c = Http::sign_in(&s, &key).await;
    let count = || async { s.store.list_directories().await.unwrap().len() };
    let before = count().await;

    // A file that is not a service-account key: the form comes back with
    // the reason and what was typed, never the key.
    let bad = br#"{"type": "service_account", "client_email": "x@y", "secret_marker": "s3cr3t"}"#;
    let r = c
        .post_multipart(
            "/admin/google-directories",
            &[
                ("csrf", &c.csrf),
                ("name", "Typed name"),
                ("admin_email", "it@acme.example"),
                ("customer", "C0abc"),
                ("domain", "acme.example"),
                ("poll_interval_secs", "900"),
            ],
            Some(("key_file", "key.json", bad)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Nothing was created") && html.contains("private_key"),
        "{html}"
    );
    for typed in [
        "Typed name",
        "it@acme.example",
        "C0abc",
        "acme.example",
        "900",
    ] {
        assert!(
            html.contains(&format!("value=\"{typed}\"")),
            "{typed}: {html}"
        );
    }
    assert!(!html.contains("s3cr3t"), "{html}");
    // Pasted text that is not JSON, and no key at all.
    for (pasted, want) in [
        ("not json", "not a service-account key file"),
        ("", "choose the service-account key file"),
    ] {
        let r = c
            .post_multipart(
                "/admin/google-directories",
                &[
                    ("csrf", &c.csrf),
                    ("name", "x"),
                    ("admin_email", ADMIN),
                    ("key_json", pasted),
                ],
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.text().await.unwrap().contains(want), "{want}");
    }

    // Without the session's form token nothing happens, key or not.
    let good = key_file(&base).to_string();
    for csrf in [None, Some("forged")] {
        let mut fields = vec![("name", "forged"), ("admin_email", ADMIN)];
        if let Some(t) = csrf {
            fields.push(("csrf", t));
        }
        let r = c
            .post_multipart(
                "/admin/google-directories",
                &fields,
                Some(("key_file", "key.json", good.as_bytes())),
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(count().await, before);

    // A file over 64 KiB is refused with the limit named.
    let big = vec![b' '; 65 * 1024];
    let r = c
        .post_multipart(
            "/admin/google-directories",
            &[("csrf", &c.csrf), ("name", "big"), ("admin_email", ADMIN)],
            Some(("key_file", "key.json", &big)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().await.unwrap().contains("at most 64 KiB"));
    assert_eq!(count().await, before);

    // The same form with a real key creates it; the key is replaced the same way.
    let r = c
        .post_multipart(
            "/admin/google-directories",
            &[
                ("csrf", &c.csrf),
                ("name", "Acme"),
                ("admin_email", ADMIN),
                ("key_json", &good),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    let id = to
        .trim_start_matches("/admin/directories/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let replace = format!("/admin/directories/{id}/google-key");
    let r = c
        .post_multipart(&replace, &[("csrf", &c.csrf), ("key_json", "{}")], None)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("The key was not replaced"));
    let r = c
        .post_multipart(&replace, &[("key_json", &good)], None)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post_multipart(
            &replace,
            &[("csrf", &c.csrf)],
            Some(("key_file", "k.json", good.as_bytes())),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let audit = s.recent_audit().await;
    assert!(
        audit
            .iter()
            .any(|a| a.action == "directory.credentials_replaced")
    );
    assert!(!format!("{audit:?}").contains("PRIVATE KEY"));
    // Sync now is for Google directories only.
    let r = c
        .post(
            &format!("/admin/directories/{}/sync", s.directory),
            &[("csrf", &c.csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_it_admin_connects_google_workspace_through_the_portal() {
    let (g, base) = stand_in().await;
    let Some(s) = server(&base).await else { return };
    populate(&g);
    let key = admin_key(&s).await;
    let files = tempfile::tempdir().unwrap();
    let url = portal_link(&s, &key, json!({"directory_id": s.directory})).await;
    let b = Browser::start().await;
    b.goto(&url).await;
    b.find("#connection-status").await;
    b.click_to_page("a[href='/portal/setup/google']").await;
    assert!(b.body_text().await.contains("Domain-wide delegation"));
    b.find("#g-key-file")
        .await
        .send_keys(&key_path(&files, &base))
        .await
        .unwrap();
    b.fill("#g-admin", ADMIN).await;
    b.click_to_page("#connect-google").await;
    b.wait_for_text("now read from Google Workspace").await;
    // The page's script follows the poll until it is synced.
    let started = Instant::now();
    loop {
        let body = b.body_text().await;
        if body.contains("synced: 3 users, 1 group, last poll") {
            break;
        }
        assert!(started.elapsed() < WAIT * 2, "never synced: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // No SCIM token is offered any more, and the old one stopped working.
    assert!(b.find_all("#scim-base-url").await.is_empty());
    assert_eq!(
        s.call(reqwest::Method::GET, "/Users", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    screenshot(&b, "portal-google").await;
    b.close().await;
    let source = s.store.google_source(&s.directory).await.unwrap().unwrap();
    assert_eq!(source.admin_email, ADMIN);
    let audit = s.recent_audit().await;
    assert!(
        audit
            .iter()
            .any(|a| a.action == "directory.converted" && a.actor.starts_with("portal:")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn the_portal_converts_only_an_unused_directory_and_only_with_its_form_token() {
    let (_g, base) = stand_in().await;
    let Some(s) = server(&base).await else { return };
    let key = admin_key(&s).await;
    s.user("already-here").await;
    let url = portal_link(&s, &key, json!({"directory_id": s.directory})).await;
    let c = Http::open(&s, &url).await;
    let good = key_file(&base).to_string();
    let path = "/portal/setup/google/directory-api";

    let r = c
        .post_multipart(
            path,
            &[("admin_email", ADMIN)],
            Some(("key_file", "k.json", good.as_bytes())),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post_multipart(
            path,
            &[("csrf", &c.csrf), ("admin_email", ADMIN)],
            Some(("key_file", "k.json", good.as_bytes())),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Nothing was changed") && html.contains("already receives SCIM"),
        "{html}"
    );
    assert!(s.store.google_source(&s.directory).await.unwrap().is_none());
    // Its SCIM token still works.
    assert_eq!(
        s.call(reqwest::Method::GET, "/Users", None).await.status,
        StatusCode::OK
    );
    // A bad key is refused with the reason, not a 500.
    let r = c
        .post_multipart(
            path,
            &[("csrf", &c.csrf), ("admin_email", ADMIN), ("key_json", "{")],
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not a service-account key file")
    );
}
