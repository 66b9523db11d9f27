//! The admin API for directories and their SCIM tokens.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use roster_testkit::poll;
use serde_json::{Value, json};

use crate::support::{Reply, TestServer};

pub async fn admin_key(s: &TestServer) -> String {
    s.store
        .create_admin_key(&roster_store::Actor::Cli, "test", &Default::default())
        .await
        .unwrap()
        .1
}

/// Calls `/api/v1{path}` with `key` as the bearer.
pub async fn api(
    s: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let url = format!("http://{}/api/v1{path}", s.addr);
    s.call_with(method, &url, body, key, &[]).await
}

/// Events as the events API lists them, read until `done` holds (at most
/// 5 s). On PostgreSQL a reader sees events only below the oldest transaction
/// that may still add some (`rows::visible_events`), which, while another
/// test's transaction commits, can briefly leave out events already seen.
pub async fn events_until(
    s: &TestServer,
    key: &str,
    path: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    poll::until_or_last(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || async {
            let r = api(s, key, Method::GET, path, None).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            r.body["data"].as_array().cloned().unwrap_or_default()
        },
        |data| done(data),
    )
    .await
}

/// A SCIM request to `directory` with `token`.
async fn scim(
    s: &TestServer,
    directory: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let url = format!("http://{}/scim/v2/{directory}{path}", s.addr);
    s.call_with(method, &url, body, token, &[]).await
}

async fn scim_status(s: &TestServer, directory: &str, token: &str) -> StatusCode {
    scim(s, directory, token, Method::GET, "/Users", None)
        .await
        .status
}

fn assert_api_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.body["error"], code, "{:?}", r.body);
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

async fn new_directory(s: &TestServer, key: &str, name: &str) -> (String, String) {
    let r = api(
        s,
        key,
        Method::POST,
        "/directories",
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn create_get_list_rename_directories() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;

    let r = api(
        &s,
        &key,
        Method::POST,
        "/directories",
        Some(json!({"name": "Acme Okta"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["object"], "directory");
    assert_eq!(r.body["name"], "Acme Okta");
    assert_eq!(r.body["scim_base_path"], format!("/scim/v2/{id}"));
    assert!(r.body["created_at"].as_str().unwrap().ends_with('Z'));
    let token = r.body["token"].as_str().unwrap();
    assert_eq!(
        scim_status(&s, &id, token).await,
        StatusCode::OK,
        "the first token works"
    );

    let r = api(&s, &key, Method::GET, &format!("/directories/{id}"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], "Acme Okta");
    assert!(
        r.body.get("token").is_none(),
        "the token is shown only once"
    );

    let r = api(
        &s,
        &key,
        Method::PATCH,
        &format!("/directories/{id}"),
        Some(json!({"name": "Acme Entra"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["name"], "Acme Entra");
    let r = api(&s, &key, Method::GET, &format!("/directories/{id}"), None).await;
    assert_eq!(r.body["name"], "Acme Entra");

    // Bad bodies.
    for body in [
        json!({"name": ""}),
        json!({}),
        json!({"name": "x", "extra": 1}),
        json!([1]),
    ] {
        let r = api(&s, &key, Method::POST, "/directories", Some(body)).await;
        assert_api_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let r = api(
        &s,
        &key,
        Method::PATCH,
        &format!("/directories/{id}"),
        Some(json!({"name": "  "})),
    )
    .await;
    assert_api_error(&r, StatusCode::BAD_REQUEST, "invalid_request");

    // Unknown ids.
    for method in [Method::GET, Method::DELETE] {
        let r = api(&s, &key, method, "/directories/nope", None).await;
        assert_api_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
    let r = api(
        &s,
        &key,
        Method::PATCH,
        "/directories/nope",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_api_error(&r, StatusCode::NOT_FOUND, "not_found");

    // Paging: the harness directory, Acme, and five more.
    let mut all = vec![s.directory.clone(), id.clone()];
    for i in 0..5 {
        all.push(new_directory(&s, &key, &format!("d{i}")).await.0);
    }
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let r = api(
            &s,
            &key,
            Method::GET,
            &format!("/directories?limit=3&after={after}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["object"], "list");
        let data = r.body["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        seen.extend(data.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        match r.body["list_metadata"]["after"].as_str() {
            Some(a) => after = a.to_owned(),
            None => break,
        }
    }
    all.sort();
    assert_eq!(seen, all, "every directory once, in id order");
    let r = api(&s, &key, Method::GET, "/directories?limit=0", None).await;
    assert_api_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    let r = api(&s, &key, Method::GET, "/directories?after=garbage", None).await;
    assert_api_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn every_endpoint_wants_an_admin_key() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let d = s.directory.clone();
    let g = s.post("/Groups", json!({"displayName": "G"})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let u = s.user("u").await;
    let (tid, _) = {
        let t = s.store.list_tokens(&d).await.unwrap();
        (t[0].id.clone(), ())
    };
    let endpoints = [
        (
            Method::POST,
            "/directories".to_owned(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, "/directories".to_owned(), None),
        (Method::GET, format!("/directories/{d}"), None),
        (
            Method::PATCH,
            format!("/directories/{d}"),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("/directories/{d}"), None),
        (Method::POST, format!("/directories/{d}/tokens"), None),
        (Method::GET, format!("/directories/{d}/tokens"), None),
        (
            Method::DELETE,
            format!("/directories/{d}/tokens/{tid}"),
            None,
        ),
        (
            Method::POST,
            format!("/directories/{d}/tokens/{tid}/rotate"),
            Some(json!({})),
        ),
        (Method::GET, format!("/directories/{d}/users"), None),
        (Method::GET, format!("/directories/{d}/groups"), None),
        (Method::GET, format!("/users/{u}"), None),
        (Method::GET, format!("/groups/{g}"), None),
        (Method::GET, format!("/groups/{g}/users"), None),
        (Method::GET, "/admin_keys".to_owned(), None),
        (
            Method::POST,
            "/admin_keys".to_owned(),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("/admin_keys/{d}"), None),
        (Method::POST, format!("/admin_keys/{d}/rotate"), None),
        (Method::GET, "/audit_log".to_owned(), None),
    ];
    for (method, path, body) in &endpoints {
        // No key at all.
        let url = format!("http://{}/api/v1{path}", s.addr);
        let mut req = s.client.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a key"
        );
        // A SCIM token is not an admin key; neither is a made-up key.
        for wrong in [s.token.as_str(), "rak_wrong"] {
            let r = api(&s, wrong, method.clone(), path, body.clone()).await;
            assert_api_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
        }
    }
    // Nothing above changed anything.
    assert_eq!(scim_status(&s, &d, &s.token).await, StatusCode::OK);
    let r = api(&s, &key, Method::GET, &format!("/directories/{d}"), None).await;
    assert_eq!(r.body["name"], "test");
}

#[tokio::test]
async fn tokens_issue_list_revoke() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let d = s.directory.clone();
    let path = format!("/directories/{d}/tokens");

    let r = api(&s, &key, Method::POST, &path, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let tid = r.body["id"].as_str().unwrap().to_owned();
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert!(r.body["created_at"].is_string());
    assert_eq!(scim_status(&s, &d, &token).await, StatusCode::OK);

    let r = api(&s, &key, Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.body["data"].as_array().unwrap();
    assert_eq!(list.len(), 2, "the harness token and the new one");
    for t in list {
        assert!(t.get("token").is_none(), "never the token: {t}");
        assert!(t["revoked_at"].is_null());
        assert!(t["expires_at"].is_null());
        assert!(t["created_at"].is_string());
    }

    let r = api(&s, &key, Method::DELETE, &format!("{path}/{tid}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(scim_status(&s, &d, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        scim_status(&s, &d, &s.token).await,
        StatusCode::OK,
        "the other token still works"
    );
    let r = api(&s, &key, Method::DELETE, &format!("{path}/{tid}"), None).await;
    assert_api_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = api(&s, &key, Method::GET, &path, None).await;
    let revoked = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == tid.as_str())
        .unwrap()
        .clone();
    assert!(revoked["revoked_at"].is_string());

    // A token is reachable only under its own directory.
    let (other, other_token) = new_directory(&s, &key, "other").await;
    let other_tid = api(
        &s,
        &key,
        Method::GET,
        &format!("/directories/{other}/tokens"),
        None,
    )
    .await
    .body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = api(
        &s,
        &key,
        Method::DELETE,
        &format!("{path}/{other_tid}"),
        None,
    )
    .await;
    assert_api_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = api(
        &s,
        &key,
        Method::POST,
        &format!("{path}/{other_tid}/rotate"),
        Some(json!({})),
    )
    .await;
    assert_api_error(&r, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(scim_status(&s, &other, &other_token).await, StatusCode::OK);

    for method in [Method::GET, Method::POST] {
        let r = api(&s, &key, method, "/directories/nope/tokens", None).await;
        assert_api_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn rotation_keeps_the_old_token_for_the_overlap_only() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let d = s.directory.clone();
    let old_id = s.store.list_tokens(&d).await.unwrap()[0].id.clone();
    let rotate = format!("/directories/{d}/tokens/{old_id}/rotate");

    let r = api(
        &s,
        &key,
        Method::POST,
        &rotate,
        Some(json!({"overlap_seconds": 1})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let new_id = r.body["id"].as_str().unwrap().to_owned();
    let new_token = r.body["token"].as_str().unwrap().to_owned();
    assert_ne!(new_id, old_id);
    assert_eq!(r.body["previous"]["id"], old_id.as_str());
    assert!(r.body["previous"]["expires_at"].is_string());
    assert!(r.body["expires_at"].is_null());

    // Inside the window both work.
    assert_eq!(scim_status(&s, &d, &s.token).await, StatusCode::OK);
    assert_eq!(scim_status(&s, &d, &new_token).await, StatusCode::OK);
    let r = api(
        &s,
        &key,
        Method::GET,
        &format!("/directories/{d}/tokens"),
        None,
    )
    .await;
    let old = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == old_id.as_str())
        .unwrap()
        .clone();
    assert!(old["expires_at"].is_string());

    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        scim_status(&s, &d, &s.token).await,
        StatusCode::UNAUTHORIZED,
        "refused after the window"
    );
    assert_eq!(scim_status(&s, &d, &new_token).await, StatusCode::OK);
    // An expired token cannot be rotated or revoked again.
    let r = api(&s, &key, Method::POST, &rotate, Some(json!({}))).await;
    assert_api_error(&r, StatusCode::NOT_FOUND, "not_found");

    // overlap_seconds 0: the old token stops at once.
    let r = api(
        &s,
        &key,
        Method::POST,
        &format!("/directories/{d}/tokens/{new_id}/rotate"),
        Some(json!({"overlap_seconds": 0})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let newest = r.body["token"].as_str().unwrap().to_owned();
    let newest_id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        scim_status(&s, &d, &new_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(scim_status(&s, &d, &newest).await, StatusCode::OK);

    // No body: the default overlap of an hour.
    let r = api(
        &s,
        &key,
        Method::POST,
        &format!("/directories/{d}/tokens/{newest_id}/rotate"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let expires = time::OffsetDateTime::parse(
        r.body["previous"]["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(59) && left <= time::Duration::minutes(60),
        "{left}"
    );
    assert_eq!(scim_status(&s, &d, &newest).await, StatusCode::OK);

    for bad in [
        json!({"overlap_seconds": -1}),
        json!({"overlap_seconds": "x"}),
        json!({"overlap_seconds": 99_999_999}),
    ] {
        let r = api(
            &s,
            &key,
            Method::POST,
            &format!("/directories/{d}/tokens/{newest_id}/rotate"),
            Some(bad),
        )
        .await;
        assert_api_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

#[tokio::test]
async fn deleting_a_directory_removes_its_data_and_keeps_its_events() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let (d, token) = new_directory(&s, &key, "doomed").await;
    let r = scim(
        &s,
        &d,
        &token,
        Method::POST,
        "/Users",
        Some(json!({"userName": "alice"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let alice = r.body["id"].as_str().unwrap().to_owned();
    let r = scim(
        &s,
        &d,
        &token,
        Method::POST,
        "/Groups",
        Some(json!({"displayName": "G", "members": [{"value": alice}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let g = r.body["id"].as_str().unwrap().to_owned();
    let r = scim(
        &s,
        &d,
        &token,
        Method::POST,
        "/Users",
        Some(json!({"userName": "bob"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Remembered under an Idempotency-Key, which must go too.
    let url = format!("http://{}/scim/v2/{d}/Users", s.addr);
    let r = s
        .call_with(
            Method::POST,
            &url,
            Some(json!({"userName": "carol"})),
            &token,
            &[("Idempotency-Key", "k1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let r = api(&s, &key, Method::DELETE, &format!("/directories/{d}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);

    assert_eq!(
        scim_status(&s, &d, &token).await,
        StatusCode::UNAUTHORIZED,
        "its tokens stop working"
    );
    assert!(s.store.list_tokens(&d).await.unwrap().is_empty());
    let r = api(&s, &key, Method::GET, &format!("/directories/{d}"), None).await;
    assert_api_error(&r, StatusCode::NOT_FOUND, "not_found");
    for path in [
        format!("/users/{alice}"),
        format!("/groups/{g}"),
        format!("/directories/{d}/users"),
        format!("/groups/{g}/users"),
    ] {
        let r = api(&s, &key, Method::GET, &path, None).await;
        assert_api_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
    let r = api(&s, &key, Method::DELETE, &format!("/directories/{d}"), None).await;
    assert_api_error(&r, StatusCode::NOT_FOUND, "not_found");
    // The harness directory is untouched.
    assert_eq!(
        scim_status(&s, &s.directory, &s.token).await,
        StatusCode::OK
    );

    // Its events are kept for readers, and bracketed by activated and deleted.
    let events = events_until(
        &s,
        &key,
        &format!("/events?directory_id={d}&limit=1000"),
        |ev| ev.last().is_some_and(|e| e["event"] == "dsync.deleted"),
    )
    .await;
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"dsync.activated"), "{types:?}");
    assert_eq!(types.last(), Some(&"dsync.deleted"), "{types:?}");
    assert!(types.contains(&"dsync.user.created"));
    assert!(types.contains(&"dsync.group.user_added"));
    for e in [&events[0], &events[events.len() - 1]] {
        assert_eq!(e["directory_id"], d.as_str());
        assert_eq!(e["data"]["object"], "directory");
        assert_eq!(e["data"]["id"], d.as_str());
        assert_eq!(e["data"]["name"], "doomed");
        assert_eq!(e["data"]["type"], "generic scim v2.0");
    }
    let activated =
        events_until(&s, &key, "/events?events=dsync.activated", |d| d.len() >= 2).await;
    let activated: Vec<&str> = activated
        .iter()
        .map(|e| e["data"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(activated, [s.directory.as_str(), d.as_str()]);
}
