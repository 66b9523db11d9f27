//! Portal links: made over `/api/v1/portal_links` under admin-key scopes,
//! audited, opening once before they expire.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::api_directories::{admin_key, api};
use crate::support::TestServer;

/// Makes a link with `key`; the reply.
pub async fn link(s: &TestServer, key: &str, body: Value) -> crate::support::Reply {
    api(s, key, Method::POST, "/portal_links", Some(body)).await
}

/// The secret at the end of a link's URL.
pub fn secret_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_link_is_made_audited_and_opens_once() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let r = link(
        &s,
        &key,
        json!({"directory_id": s.directory, "return_url": "https://app.example.com/settings"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let url = r.body["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("http://{}/portal/open/rpl_", s.addr)),
        "{url}"
    );
    assert!(r.body["expires_at"].is_string());
    let secret = secret_of(url);

    let audit = api(&s, &key, Method::GET, "/audit_log?limit=1000", None).await;
    let records = audit.body["data"].as_array().unwrap();
    let made = records
        .iter()
        .find(|r| r["action"] == "portal_link.created")
        .unwrap();
    assert!(made["actor"].as_str().unwrap().starts_with("admin_key:"));
    assert_eq!(made["target"]["directory_id"], s.directory.as_str());
    assert!(
        !audit.body.to_string().contains(&secret),
        "the secret reached the audit log"
    );

    let opened = s.store.open_portal_link(&secret).await.unwrap().unwrap();
    assert_eq!(opened.directory_id, s.directory);
    assert_eq!(
        opened.return_url.as_deref(),
        Some("https://app.example.com/settings")
    );
    assert!(s.store.open_portal_link(&secret).await.unwrap().is_none());
    assert!(
        s.store
            .open_portal_link("rpl_unknown")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_expired_link_does_not_open() {
    let Some(s) = TestServer::start().await else {
        return;
    };
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
    assert!(s.store.open_portal_link(&secret).await.unwrap().is_none());
}

#[tokio::test]
async fn links_follow_key_scopes_and_refuse_bad_input() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let root = admin_key(&s).await;
    let (theirs, _) = s.other_directory().await;
    let mk = |body: Value| {
        let root = root.clone();
        let s = &s;
        async move { api(s, &root, Method::POST, "/admin_keys", Some(body)).await }
    };
    let scoped = mk(json!({"name": "a", "directories": [s.directory]})).await;
    assert_eq!(scoped.status, StatusCode::CREATED, "{:?}", scoped.body);
    let scoped = scoped.body["key"].as_str().unwrap().to_owned();
    let ro = mk(json!({"name": "r", "read_only": true})).await;
    let ro = ro.body["key"].as_str().unwrap().to_owned();

    let mine = json!({"directory_id": s.directory});
    assert_eq!(
        link(&s, &scoped, mine.clone()).await.status,
        StatusCode::CREATED
    );
    let r = link(&s, &scoped, json!({"directory_id": theirs})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(link(&s, &ro, mine).await.status, StatusCode::FORBIDDEN);
    let r = link(&s, &root, json!({"directory_id": "nope"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    for bad in [
        json!({"directory_id": s.directory, "expires_in_secs": 0}),
        json!({"directory_id": s.directory, "expires_in_secs": 10_000_000}),
        json!({"directory_id": s.directory, "return_url": "javascript:alert(1)"}),
        json!({"directory_id": s.directory, "return_url": "/relative"}),
        json!({"directory_id": s.directory, "return_url": "https://u:p@app.example.com/"}),
        json!({"directory_id": s.directory, "extra": 1}),
        json!({}),
    ] {
        let r = link(&s, &root, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        assert_eq!(r.body["error"], "invalid_request", "{:?}", r.body);
    }
    let r = api(
        &s,
        "rak_wrong",
        Method::POST,
        "/portal_links",
        Some(json!({"directory_id": s.directory})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
