//! WorkOS-format webhooks: deliveries signed as the WorkOS SDKs verify them,
//! and the `/webhook_endpoints` routes that manage such endpoints.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use roster_server::ServerConfig;
use serde_json::{Value, json};
use sha2::Sha256;

use super::api_directories::{admin_key, api};
use crate::support::{Reply, TestServer};

type Got = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver answering 200 to everything, keeping what it got.
async fn receiver() -> (String, Got) {
    let got: Got = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |axum::extract::State(got): axum::extract::State<Got>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    got.lock().unwrap().push((headers, body));
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn fast() -> ServerConfig {
    ServerConfig {
        webhook_poll_ms: 20,
        webhook_timeout_secs: 5,
        ..ServerConfig::default()
    }
}

/// The deliveries once there are at least `n` (waits at most 10 s).
async fn deliveries(got: &Got, n: usize) -> Vec<(HeaderMap, Bytes)> {
    for _ in 0..400 {
        let g = got.lock().unwrap().clone();
        if g.len() >= n {
            return g;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {n} deliveries within 10 s");
}

/// Checks a `WorkOS-Signature` the way the Python SDK does: exactly
/// `t=<ms>, v1=<hex>`, the time within 180 s of now, the HMAC over `t.body`.
fn verify_workos(secret: &str, header: &str, body: &[u8]) {
    let (t, v1) = header.split_once(", ").expect("t=..., v1=...");
    let t = t.strip_prefix("t=").expect("t=");
    let v1 = v1.strip_prefix("v1=").expect("v1=");
    assert!(t.bytes().all(|b| b.is_ascii_digit()), "{header}");
    assert!(
        v1.len() == 64 && v1.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{header}"
    );
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let skew = (now_ms - t.parse::<i64>().unwrap()).abs();
    assert!(skew < 180_000, "t is milliseconds near now: {header}");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    assert_eq!(v1, hex::encode(mac.finalize().into_bytes()), "{header}");
}

async fn workos(
    s: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let url = format!("http://{}{path}", s.addr);
    s.call_with(method, &url, body, key, &[]).await
}

#[tokio::test]
async fn a_workos_format_endpoint_receives_workos_events_signed_in_milliseconds() {
    let Some(s) = TestServer::start_with(fast()).await else {
        return;
    };
    let key = admin_key(&s).await;
    let (url, got) = receiver().await;
    let r = api(
        &s,
        &key,
        Method::POST,
        "/webhooks",
        Some(json!({"url": url, "format": "workos"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["format"], "workos");
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let listed = api(
        &s,
        &key,
        Method::GET,
        &format!("/webhooks/{}", r.body["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(listed.body["format"], "workos");

    s.user("alice").await;
    let g = deliveries(&got, 1).await;
    let (headers, body) = &g[0];
    assert!(headers.get("roster-signature").is_none());
    assert_eq!(headers["content-type"], "application/json");
    verify_workos(&secret, headers["workos-signature"].to_str().unwrap(), body);
    let event: Value = serde_json::from_slice(body).unwrap();
    // Compact, and written back unchanged: what JSON.stringify(JSON.parse(body)) gives.
    assert_eq!(event.to_string().as_bytes(), &body[..]);
    assert_eq!(event["object"], "event");
    assert_eq!(event["event"], "dsync.user.created");
    assert_eq!(event["data"]["object"], "directory_user");
    assert!(event["data"].get("organization_id").is_some(), "{event}");
    // The same event, by id, as the events API lists it.
    let listed = api(&s, &key, Method::GET, "/events", None).await;
    assert!(
        listed.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == event["id"]),
        "{:?}",
        listed.body
    );
}

#[tokio::test]
async fn the_default_format_stays_roster_and_unknown_formats_are_refused() {
    let Some(s) = TestServer::start_with(fast()).await else {
        return;
    };
    let key = admin_key(&s).await;
    let (url, got) = receiver().await;
    let r = api(
        &s,
        &key,
        Method::POST,
        "/webhooks",
        Some(json!({"url": url})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["format"], "roster");
    let bad = api(
        &s,
        &key,
        Method::POST,
        "/webhooks",
        Some(json!({"url": url, "format": "svix"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{:?}", bad.body);
    assert!(bad.body["message"].as_str().unwrap().contains("workos"));
    s.user("bob").await;
    let g = deliveries(&got, 1).await;
    assert!(g[0].0.get("workos-signature").is_none());
    let sig = g[0].0["roster-signature"].to_str().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let secret = r.body["secret"].as_str().unwrap();
    roster_client::webhook::verify(secret, sig, &g[0].1, now, 300).unwrap();
}

#[tokio::test]
async fn webhook_endpoints_are_created_listed_changed_and_deleted_as_the_sdks_expect() {
    let Some(s) = TestServer::start_with(fast()).await else {
        return;
    };
    let key = admin_key(&s).await;
    let (url, got) = receiver().await;
    // A Roster-format endpoint is not one of these.
    api(
        &s,
        &key,
        Method::POST,
        "/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/roster"})),
    )
    .await;

    let created = workos(
        &s,
        &key,
        Method::POST,
        "/webhook_endpoints",
        Some(json!({"endpoint_url": url, "events": ["dsync.user.created", "dsync.group.created"]})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let ep = &created.body;
    assert_eq!(ep["object"], "webhook_endpoint");
    assert_eq!(ep["endpoint_url"], url.as_str());
    assert_eq!(ep["status"], "enabled");
    assert_eq!(
        ep["events"],
        json!(["dsync.user.created", "dsync.group.created"])
    );
    for k in ["created_at", "updated_at"] {
        assert!(ep[k].as_str().unwrap().ends_with('Z'), "{ep}");
    }
    let id = ep["id"].as_str().unwrap().to_owned();
    let secret = ep["secret"].as_str().unwrap().to_owned();
    assert!(!secret.is_empty());

    let list = workos(&s, &key, Method::GET, "/webhook_endpoints", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["object"], "list");
    assert_eq!(list.body["data"], json!([ep]));
    assert_eq!(
        list.body["list_metadata"],
        json!({"before": null, "after": null})
    );

    // It delivers WorkOS events, only of its types.
    s.user("carol").await;
    let g = deliveries(&got, 1).await;
    verify_workos(
        &secret,
        g[0].0["workos-signature"].to_str().unwrap(),
        &g[0].1,
    );
    let event: Value = serde_json::from_slice(&g[0].1).unwrap();
    assert_eq!(event["event"], "dsync.user.created");

    let changed = workos(
        &s,
        &key,
        Method::PATCH,
        &format!("/webhook_endpoints/{id}"),
        Some(json!({"status": "disabled", "events": ["dsync.user.deleted"]})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(changed.body["status"], "disabled");
    assert_eq!(changed.body["events"], json!(["dsync.user.deleted"]));
    assert_eq!(changed.body["secret"], secret.as_str());
    assert_eq!(changed.body["endpoint_url"], url.as_str());

    let bad = workos(
        &s,
        &key,
        Method::PATCH,
        &format!("/webhook_endpoints/{id}"),
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["code"], "unprocessable_entity");
    assert!(bad.body.get("error").is_none());

    for body in [
        json!({"endpoint_url": "ftp://x", "events": ["dsync.user.created"]}),
        json!({"endpoint_url": url, "events": ["user.created"]}),
        json!({"endpoint_url": url}),
    ] {
        let r = workos(
            &s,
            &key,
            Method::POST,
            "/webhook_endpoints",
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            r.body
        );
        assert!(r.body["message"].is_string());
    }
    let again = workos(
        &s,
        &key,
        Method::POST,
        "/webhook_endpoints",
        Some(json!({"endpoint_url": url, "events": ["dsync.user.created"]})),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);

    let unauthorized = workos(&s, "nope", Method::GET, "/webhook_endpoints", None).await;
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);
    // A directory's SCIM token is not an admin key.
    let scim = workos(&s, &s.token, Method::GET, "/webhook_endpoints", None).await;
    assert_eq!(scim.status, StatusCode::UNAUTHORIZED);

    let deleted = workos(
        &s,
        &key,
        Method::DELETE,
        &format!("/webhook_endpoints/{id}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = workos(
        &s,
        &key,
        Method::DELETE,
        &format!("/webhook_endpoints/{id}"),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body["code"], "entity_not_found");
    assert!(gone.body["message"].is_string());
    let list = workos(&s, &key, Method::GET, "/webhook_endpoints", None).await;
    assert_eq!(list.body["data"], json!([]));
}

#[tokio::test]
async fn webhook_endpoints_page_in_both_orders() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = workos(
            &s,
            &key,
            Method::POST,
            "/webhook_endpoints",
            Some(json!({"endpoint_url": format!("http://127.0.0.1:9/h{i}"), "events": ["dsync.user.created"]})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    for (order, expected) in [
        ("asc", ids.clone()),
        ("desc", ids.iter().rev().cloned().collect()),
    ] {
        let mut seen = Vec::new();
        let mut after = String::new();
        let last = loop {
            let r = workos(
                &s,
                &key,
                Method::GET,
                &format!("/webhook_endpoints?limit=2&order={order}&after={after}"),
                None,
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            seen.extend(
                r.body["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["id"].as_str().unwrap().to_owned()),
            );
            match r.body["list_metadata"]["after"].as_str() {
                Some(a) => after = a.to_owned(),
                None => break r.body,
            }
        };
        assert_eq!(seen, expected, "{order}");
        // Back from the last page with `before`.
        let before = last["list_metadata"]["before"].as_str().unwrap();
        let r = workos(
            &s,
            &key,
            Method::GET,
            &format!("/webhook_endpoints?limit=2&order={order}&before={before}"),
            None,
        )
        .await;
        let back: Vec<&str> = r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            back,
            expected[2..4]
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            "{order}"
        );
    }
    let r = workos(&s, &key, Method::GET, "/webhook_endpoints?limit=500", None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["message"].as_str().unwrap().starts_with("limit"));
}
