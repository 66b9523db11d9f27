//! Admin keys: their lifecycle under `/api/v1/admin_keys` and their scopes
//! (read-only, limited to directories) on every `/api/v1` route.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use roster_testkit::poll;
use serde_json::{Value, json};

use super::api_directories::{admin_key, api};
use crate::support::{Reply, TestServer};

/// Creates a key through the API with `key`, asserting 201; its id and secret.
async fn create_key(s: &TestServer, key: &str, body: Value) -> (String, String) {
    let r = api(s, key, Method::POST, "/admin_keys", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["key"].as_str().unwrap().to_owned(),
    )
}

fn assert_status(r: &Reply, status: StatusCode) {
    assert_eq!(r.status, status, "{:?}", r.body);
}

async fn status(
    s: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> StatusCode {
    api(s, key, method, path, body).await.status
}

fn ids(r: &Reply) -> Vec<String> {
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn keys_are_created_listed_rotated_and_revoked() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let root = admin_key(&s).await;
    let r = api(
        &s,
        &root,
        Method::POST,
        "/admin_keys",
        Some(json!({"name": "billing"})),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    assert_eq!(r.body["access"], "full");
    assert_eq!(r.body["directories"], Value::Null);
    let (id, first) = (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["key"].as_str().unwrap().to_owned(),
    );
    assert!(first.starts_with("rak_"));
    assert_eq!(
        status(&s, &first, Method::GET, "/directories", None).await,
        StatusCode::OK
    );

    // Listed with its metadata, never its secret.
    let r = api(&s, &root, Method::GET, "/admin_keys", None).await;
    assert_status(&r, StatusCode::OK);
    assert!(ids(&r).contains(&id));
    assert!(!r.body.to_string().contains(&first));
    assert!(
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("key").is_none())
    );

    // Rotation: same id, a new secret, the old one refused at once.
    let r = api(
        &s,
        &root,
        Method::POST,
        &format!("/admin_keys/{id}/rotate"),
        None,
    )
    .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["id"], id.as_str());
    assert!(r.body["rotated_at"].is_string());
    let second = r.body["key"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(
        status(&s, &first, Method::GET, "/directories", None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&s, &second, Method::GET, "/directories", None).await,
        StatusCode::OK
    );

    // Revocation: refused at once; a second revocation finds no live key.
    assert_eq!(
        status(
            &s,
            &root,
            Method::DELETE,
            &format!("/admin_keys/{id}"),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status(&s, &second, Method::GET, "/directories", None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(
            &s,
            &root,
            Method::DELETE,
            &format!("/admin_keys/{id}"),
            None
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(
            &s,
            &root,
            Method::POST,
            &format!("/admin_keys/{id}/rotate"),
            None
        )
        .await,
        StatusCode::NOT_FOUND
    );
    let r = api(&s, &root, Method::GET, "/admin_keys", None).await;
    let listed = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert!(listed["revoked_at"].is_string(), "{listed}");
}

#[tokio::test]
async fn bad_key_requests_are_400s() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let root = admin_key(&s).await;
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x", "directories": []}),
        json!({"name": "x", "scope": "all"}),
        json!({"name": "x", "directories": ["0190f5c2-0000-7000-8000-000000000000"]}),
        json!({"name": "x", "read_only": "yes"}),
    ] {
        let r = api(&s, &root, Method::POST, "/admin_keys", Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body} -> {:?}", r.body);
        assert_eq!(r.body["error"], "invalid_request");
    }
    let r = api(&s, &root, Method::GET, "/admin_keys", None).await;
    assert_eq!(ids(&r).len(), 1, "only the root key: {:?}", r.body);
}

#[tokio::test]
async fn a_read_only_key_reads_and_changes_nothing() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let root = admin_key(&s).await;
    let (_, ro) = create_key(&s, &root, json!({"name": "reports", "read_only": true})).await;
    let dir = s.directory.clone();
    let user = s.user("ro.reader").await;
    let webhook = api(
        &s,
        &root,
        Method::POST,
        "/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/x"})),
    )
    .await;
    let webhook = webhook.body["id"].as_str().unwrap().to_owned();

    for path in [
        "/directories".to_owned(),
        format!("/directories/{dir}"),
        format!("/directories/{dir}/settings"),
        format!("/directories/{dir}/tokens"),
        format!("/directories/{dir}/users"),
        format!("/directories/{dir}/groups"),
        format!("/users/{user}"),
        "/events".to_owned(),
        "/audit_log".to_owned(),
    ] {
        assert_eq!(
            status(&s, &ro, Method::GET, &path, None).await,
            StatusCode::OK,
            "GET {path}"
        );
    }
    let forbidden = [
        (
            Method::POST,
            "/directories".to_owned(),
            Some(json!({"name": "n"})),
        ),
        (
            Method::PATCH,
            format!("/directories/{dir}"),
            Some(json!({"name": "renamed"})),
        ),
        (
            Method::PUT,
            format!("/directories/{dir}/settings"),
            Some(json!({"deactivation": "delete"})),
        ),
        (Method::POST, format!("/directories/{dir}/tokens"), None),
        (Method::DELETE, format!("/directories/{dir}"), None),
        (
            Method::POST,
            "/webhooks".to_owned(),
            Some(json!({"url": "http://127.0.0.1:9/y"})),
        ),
        (Method::POST, format!("/webhooks/{webhook}/disable"), None),
        (Method::DELETE, format!("/webhooks/{webhook}"), None),
        (Method::GET, "/admin_keys".to_owned(), None),
        (
            Method::POST,
            "/admin_keys".to_owned(),
            Some(json!({"name": "escalate"})),
        ),
    ];
    for (method, path, body) in forbidden {
        let r = api(&s, &ro, method.clone(), &path, body).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {:?}",
            r.body
        );
        assert_eq!(r.body["error"], "forbidden");
    }
    // Nothing changed.
    let r = api(&s, &root, Method::GET, &format!("/directories/{dir}"), None).await;
    assert_eq!(r.body["name"], "test");
    let r = api(
        &s,
        &root,
        Method::GET,
        &format!("/directories/{dir}/tokens"),
        None,
    )
    .await;
    assert_eq!(ids(&r).len(), 1);
    let r = api(
        &s,
        &root,
        Method::GET,
        &format!("/webhooks/{webhook}"),
        None,
    )
    .await;
    assert_eq!(r.body["enabled"], true);
    assert_eq!(
        ids(&api(&s, &root, Method::GET, "/admin_keys", None).await).len(),
        2
    );
}

#[tokio::test]
async fn a_directory_key_sees_and_changes_only_its_directories() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let root = admin_key(&s).await;
    let mine = s.directory.clone();
    let (theirs, their_token) = s.other_directory().await;
    let my_user = s.user("mine").await;
    let r = s
        .call_with(
            Method::POST,
            &format!("http://{}/scim/v2/{theirs}/Users", s.addr),
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "theirs"})),
            &their_token,
            &[],
        )
        .await;
    assert_status(&r, StatusCode::CREATED);
    let their_user = r.body["id"].as_str().unwrap().to_owned();
    let global = api(
        &s,
        &root,
        Method::POST,
        "/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/all"})),
    )
    .await;
    let global = global.body["id"].as_str().unwrap().to_owned();
    let (_, key) = create_key(&s, &root, json!({"name": "tenant", "directories": [mine]})).await;

    // Lists are filtered.
    let r = api(&s, &key, Method::GET, "/directories", None).await;
    assert_eq!(ids(&r), vec![mine.clone()]);
    let r = api(&s, &key, Method::GET, "/webhooks", None).await;
    assert!(ids(&r).is_empty(), "{:?}", r.body);
    let events = super::api_directories::events_until(&s, &key, "/events", |e| !e.is_empty()).await;
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|e| e["directory_id"] == mine.as_str()),
        "{events:?}"
    );
    let all = api(&s, &root, Method::GET, "/events", None).await;
    assert!(
        all.body["data"].as_array().unwrap().len() > events.len(),
        "the other directory has events too"
    );

    // Another directory, and whatever is in it, does not exist: 404, not 403.
    for (method, path, body) in [
        (Method::GET, format!("/directories/{theirs}"), None),
        (Method::GET, format!("/directories/{theirs}/settings"), None),
        (Method::GET, format!("/directories/{theirs}/tokens"), None),
        (Method::GET, format!("/directories/{theirs}/users"), None),
        (Method::GET, format!("/directories/{theirs}/groups"), None),
        (Method::GET, format!("/users/{their_user}"), None),
        (Method::GET, format!("/events?directory_id={theirs}"), None),
        (Method::GET, format!("/webhooks/{global}"), None),
        (Method::DELETE, format!("/webhooks/{global}"), None),
        (
            Method::PATCH,
            format!("/directories/{theirs}"),
            Some(json!({"name": "x"})),
        ),
        (Method::POST, format!("/directories/{theirs}/tokens"), None),
        (Method::DELETE, format!("/directories/{theirs}"), None),
    ] {
        let r = api(&s, &key, method.clone(), &path, body).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {:?}",
            r.body
        );
    }
    assert_eq!(
        status(
            &s,
            &root,
            Method::GET,
            &format!("/directories/{theirs}"),
            None
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        status(&s, &root, Method::GET, &format!("/webhooks/{global}"), None).await,
        StatusCode::OK
    );

    // What spans directories needs an unlimited key.
    for (method, path, body) in [
        (Method::POST, "/directories", Some(json!({"name": "new"}))),
        (
            Method::POST,
            "/webhooks",
            Some(json!({"url": "http://127.0.0.1:9/mine"})),
        ),
        (Method::GET, "/audit_log", None),
        (Method::GET, "/admin_keys", None),
    ] {
        let r = api(&s, &key, method.clone(), path, body).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {:?}",
            r.body
        );
    }
    let r = api(
        &s,
        &key,
        Method::POST,
        "/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/t", "directory_id": theirs})),
    )
    .await;
    assert_status(&r, StatusCode::BAD_REQUEST);

    // Its own directory it reads and changes.
    assert_eq!(
        status(&s, &key, Method::GET, &format!("/users/{my_user}"), None).await,
        StatusCode::OK
    );
    let r = api(
        &s,
        &key,
        Method::PATCH,
        &format!("/directories/{mine}"),
        Some(json!({"name": "mine"})),
    )
    .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(
        status(
            &s,
            &key,
            Method::POST,
            &format!("/directories/{mine}/tokens"),
            None
        )
        .await,
        StatusCode::CREATED
    );
    let r = api(
        &s,
        &key,
        Method::POST,
        "/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/m", "directory_id": mine})),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    let r = api(&s, &key, Method::GET, "/webhooks", None).await;
    assert_eq!(ids(&r).len(), 1);
}

/// A second server over the same database: another instance.
async fn second_instance(
    s: &TestServer,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let config = roster_server::ServerConfig::default();
    let reg = Arc::new(roster_server::build_registry(&config).unwrap());
    let store = s.place().open(reg.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = config;
    config.listen = addr;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(roster_server::serve(listener, store, reg, config, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

async fn status_at(s: &TestServer, addr: std::net::SocketAddr, key: &str) -> StatusCode {
    let url = format!("http://{addr}/api/v1/directories");
    s.call_with(Method::GET, &url, None, key, &[]).await.status
}

#[tokio::test]
async fn a_revoked_key_stops_at_once_on_every_instance() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let root = admin_key(&s).await;
    let (other, _stop) = second_instance(&s).await;
    let (id, key) = create_key(&s, &root, json!({"name": "app"})).await;
    let (rotated_id, old) = create_key(&s, &root, json!({"name": "rotated"})).await;
    for k in [&key, &old] {
        assert_eq!(status_at(&s, s.addr, k).await, StatusCode::OK);
        assert_eq!(status_at(&s, other, k).await, StatusCode::OK);
    }
    // Changed through this instance; the other instance's next request refuses.
    assert_eq!(
        status(
            &s,
            &root,
            Method::DELETE,
            &format!("/admin_keys/{id}"),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let r = api(
        &s,
        &root,
        Method::POST,
        &format!("/admin_keys/{rotated_id}/rotate"),
        None,
    )
    .await;
    let new = r.body["key"].as_str().unwrap().to_owned();
    for k in [&key, &old] {
        assert_eq!(status_at(&s, other, k).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status_at(&s, s.addr, k).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(status_at(&s, other, &new).await, StatusCode::OK);
    // Revoked by the CLI (the store, no server involved): refused everywhere.
    s.store
        .revoke_admin_key(&roster_store::Actor::Cli, &rotated_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status_at(&s, s.addr, &new).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_at(&s, other, &new).await, StatusCode::UNAUTHORIZED);
}

/// A WorkOS-compatible route (at the root) with `key` as the bearer.
async fn workos(s: &TestServer, key: &str, method: Method, path: &str) -> Reply {
    workos_with(s, key, method, path, None).await
}

async fn workos_with(
    s: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let url = format!("http://{}{path}", s.addr);
    s.call_with(method, &url, body, key, &[]).await
}

/// A refusal in the WorkOS error shape: `code`, never `error`.
fn assert_workos_error(r: &Reply, status: StatusCode, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {:?}", r.body);
    assert_eq!(r.body["code"], code, "{what}: {:?}", r.body);
    assert!(r.body.get("error").is_none(), "{what}: {:?}", r.body);
}

#[tokio::test]
async fn the_workos_routes_keep_a_keys_scope() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let root = admin_key(&s).await;
    let mine = s.directory.clone();
    let my_user = s.user("mine").await;
    let (theirs, their_token) = s.other_directory().await;
    let r = s
        .call_with(
            Method::POST,
            &format!("http://{}/scim/v2/{theirs}/Users", s.addr),
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "theirs"})),
            &their_token,
            &[],
        )
        .await;
    assert_status(&r, StatusCode::CREATED);
    let their_user = r.body["id"].as_str().unwrap().to_owned();
    let r = s
        .call_with(
            Method::POST,
            &format!("http://{}/scim/v2/{theirs}/Groups", s.addr),
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "theirs", "members": [{"value": their_user}]})),
            &their_token,
            &[],
        )
        .await;
    assert_status(&r, StatusCode::CREATED);
    let their_group = r.body["id"].as_str().unwrap().to_owned();
    let (_, key) = create_key(&s, &root, json!({"name": "tenant", "directories": [mine]})).await;
    let (_, ro) = create_key(&s, &root, json!({"name": "reader", "read_only": true})).await;

    // Lists show only the key's directories and what is in them.
    let r = workos(&s, &key, Method::GET, "/directories").await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(ids(&r), vec![mine.clone()]);
    let r = workos(&s, &root, Method::GET, "/directories").await;
    assert_eq!(ids(&r).len(), 2, "{:?}", r.body);
    let events = poll::until_or_last(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || async {
            let r = workos(&s, &key, Method::GET, "/events?events=dsync.user.created").await;
            assert_status(&r, StatusCode::OK);
            r.body["data"].as_array().cloned().unwrap_or_default()
        },
        |data| !data.is_empty(),
    )
    .await;
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e["data"]["directory_id"] == mine.as_str()),
        "{events:?}"
    );

    // Another directory, and whatever is in it, does not exist: 404.
    for path in [
        format!("/directories/{theirs}"),
        format!("/directories/{theirs}/users"),
        format!("/directories/{theirs}/users/{their_user}"),
        format!("/directories/{theirs}/groups"),
        format!("/directories/{theirs}/groups/{their_group}"),
        format!("/directory_users?directory={theirs}"),
        format!("/directory_users?group={their_group}"),
        format!("/directory_users/{their_user}"),
        format!("/directory_groups?directory={theirs}"),
        format!("/directory_groups?user={their_user}"),
        format!("/directory_groups/{their_group}"),
        format!("/events?events=dsync.user.created&directory_id={theirs}"),
    ] {
        let r = workos(&s, &key, Method::GET, &path).await;
        assert_workos_error(&r, StatusCode::NOT_FOUND, "entity_not_found", &path);
        assert!(
            !r.body.to_string().contains(&theirs) || path.contains(&theirs),
            "{path}: the refusal names a directory the key does not see: {:?}",
            r.body
        );
        assert_status(&workos(&s, &root, Method::GET, &path).await, StatusCode::OK);
    }
    let r = workos(&s, &key, Method::DELETE, &format!("/directories/{theirs}")).await;
    assert_workos_error(&r, StatusCode::NOT_FOUND, "entity_not_found", "DELETE");

    // Its own directory it reads.
    for path in [
        format!("/directories/{mine}"),
        format!("/directories/{mine}/users"),
        format!("/directory_users?directory={mine}"),
        format!("/directory_users/{my_user}"),
    ] {
        let r = workos(&s, &key, Method::GET, &path).await;
        assert_status(&r, StatusCode::OK);
    }

    // Deleting needs a writing key.
    let r = workos(&s, &ro, Method::DELETE, &format!("/directories/{theirs}")).await;
    assert_workos_error(&r, StatusCode::FORBIDDEN, "forbidden", "read-only DELETE");
    assert_status(
        &workos(&s, &ro, Method::GET, &format!("/directories/{theirs}")).await,
        StatusCode::OK,
    );
    let r = workos(&s, &root, Method::DELETE, &format!("/directories/{theirs}")).await;
    assert_status(&r, StatusCode::NO_CONTENT);

    // WorkOS webhook endpoints span every directory: a limited key sees
    // none and makes none, a read-only key changes none; a full key's
    // changes are audited under its id.
    let hook = json!({"endpoint_url": "http://127.0.0.1:9/w", "events": ["dsync.user.created"]});
    let r = workos_with(
        &s,
        &root,
        Method::POST,
        "/webhook_endpoints",
        Some(hook.clone()),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    let endpoint = r.body["id"].as_str().unwrap().to_owned();
    let r = workos(&s, &key, Method::GET, "/webhook_endpoints").await;
    assert_status(&r, StatusCode::OK);
    assert!(ids(&r).is_empty(), "{:?}", r.body);
    assert_eq!(
        ids(&workos(&s, &ro, Method::GET, "/webhook_endpoints").await),
        vec![endpoint.clone()]
    );
    for (k, status, code) in [
        (&key, StatusCode::FORBIDDEN, "forbidden"),
        (&ro, StatusCode::FORBIDDEN, "forbidden"),
    ] {
        let r = workos_with(
            &s,
            k,
            Method::POST,
            "/webhook_endpoints",
            Some(hook.clone()),
        )
        .await;
        assert_workos_error(&r, status, code, "POST /webhook_endpoints");
    }
    let path = format!("/webhook_endpoints/{endpoint}");
    let r = workos(&s, &key, Method::DELETE, &path).await;
    assert_workos_error(
        &r,
        StatusCode::NOT_FOUND,
        "entity_not_found",
        "limited DELETE",
    );
    let r = workos(&s, &ro, Method::DELETE, &path).await;
    assert_workos_error(&r, StatusCode::FORBIDDEN, "forbidden", "read-only DELETE");
    let r = workos_with(
        &s,
        &root,
        Method::PATCH,
        &path,
        Some(json!({"status": "disabled"})),
    )
    .await;
    assert_status(&r, StatusCode::OK);
    let r = workos(&s, &root, Method::DELETE, &path).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let r = api(
        &s,
        &root,
        Method::GET,
        &format!("/audit_log?target_id={endpoint}"),
        None,
    )
    .await;
    let actions: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["webhook.created", "webhook.updated", "webhook.deleted"]
    );
    assert_eq!(r.body["data"][1]["details"], json!({"enabled": false}));

    // ... and is audited like the same change through /api/v1.
    let r = api(
        &s,
        &root,
        Method::GET,
        &format!("/audit_log?target_id={theirs}"),
        None,
    )
    .await;
    let last = r.body["data"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(last["action"], "directory.deleted", "{last}");
    assert!(
        last["actor"].as_str().unwrap().starts_with("admin_key:"),
        "{last}"
    );
}
