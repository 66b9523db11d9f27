//! /Bulk limits (maxOperations, maxPayloadSize) and Idempotency-Key on /Bulk and POST.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use roster_server::ServerConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::bulk::{BULK_REQUEST, by_bulk_id, count, count_with, ok_id, op_error, request};
use crate::support::{Reply, TestServer, assert_scim_error};

fn limited(max_operations: usize, max_payload: usize) -> ServerConfig {
    ServerConfig {
        bulk_max_operations: max_operations,
        bulk_max_payload_bytes: max_payload,
        ..ServerConfig::default()
    }
}

fn users(n: usize, prefix: &str) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("{prefix}{i}"),
                       "data": {"userName": format!("{prefix}{i}")}})
            })
            .collect(),
    )
}

#[tokio::test]
async fn service_provider_config_advertises_the_configured_limits() {
    let Some(s) = TestServer::start_with(limited(7, 12_345)).await else {
        return;
    };
    let r = s.get("/ServiceProviderConfig").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["bulk"],
        json!({"supported": true, "maxOperations": 7, "maxPayloadSize": 12_345})
    );
}

#[tokio::test]
async fn more_than_max_operations_is_413_and_nothing_is_applied() {
    let Some(s) = TestServer::start_with(limited(3, 1 << 20)).await else {
        return;
    };
    let r = s.post("/Bulk", request(users(4, "u"))).await;
    assert_scim_error(&r, 413, None);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("maxOperations") && detail.contains('3'),
        "{detail}"
    );
    assert_eq!(count(&s, "/Users").await, 0);
    // Exactly the limit is fine.
    let r = s.post("/Bulk", request(users(3, "u"))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(count(&s, "/Users").await, 3);
}

/// A body of `users` operations padded with whitespace to exactly `len` bytes.
fn body_of_len(ops: Value, len: usize) -> String {
    let text = request(ops).to_string();
    assert!(text.len() <= len, "{} > {len}", text.len());
    format!("{text}{}", " ".repeat(len - text.len()))
}

/// Sends a raw HTTP/1.1 request and returns (status, body text); the server's
/// answer is read even when the client has not sent (all of) the body.
async fn raw(s: &TestServer, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let path = format!("/scim/v2/{}/Bulk", s.directory);
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json\r\nConnection: close\r\n{head}\r\n",
        s.addr, s.token
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    // The server may answer and close before taking all of the body.
    let _ = stream.write_all(body).await;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .expect("the server did not answer")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn chunked(body: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.as_bytes().chunks(300) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test]
async fn a_payload_over_max_payload_size_is_413_and_nothing_is_applied() {
    let limit = 2_000;
    let Some(s) = TestServer::start_with(ServerConfig {
        // Below the bulk limit, to show /Bulk is held to maxPayloadSize and nothing smaller.
        max_body_bytes: 500,
        ..limited(100, limit)
    })
    .await
    else {
        return;
    };

    // Declared too large: refused from the headers alone, before any body arrives.
    let (status, body) = raw(&s, &format!("Content-Length: {}\r\n", limit + 1), b"").await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("maxPayloadSize") && body.contains("2000"),
        "{body}"
    );
    assert!(
        body.contains("urn:ietf:params:scim:api:messages:2.0:Error"),
        "{body}"
    );

    // Declared too large, with the body sent, through an ordinary client.
    let over = body_of_len(users(3, "a"), limit + 1);
    let r = s
        .client
        .post(format!("{}/Bulk", s.base()))
        .bearer_auth(&s.token)
        .header("content-type", "application/scim+json")
        .body(over.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "413");
    assert!(
        v["detail"].as_str().unwrap().contains("maxPayloadSize"),
        "{v:?}"
    );

    // No Content-Length (chunked): cut off at the limit while reading.
    let (status, body) = raw(&s, "Transfer-Encoding: chunked\r\n", &chunked(&over)).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("maxPayloadSize"), "{body}");
    assert_eq!(count(&s, "/Users").await, 0);

    // Exactly the limit, chunked or not, is accepted.
    let exact = body_of_len(users(3, "b"), limit);
    let (status, body) = raw(&s, "Transfer-Encoding: chunked\r\n", &chunked(&exact)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&s, "/Users").await, 3);
    let exact = body_of_len(users(3, "c"), limit);
    let (status, body) = raw(
        &s,
        &format!("Content-Length: {limit}\r\n"),
        exact.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&s, "/Users").await, 6);
}

async fn post_keyed(s: &TestServer, path: &str, body: &Value, key: &str, token: &str) -> Reply {
    s.call_with(
        Method::POST,
        path,
        Some(body.clone()),
        token,
        &[("Idempotency-Key", key)],
    )
    .await
}

#[tokio::test]
async fn an_idempotent_bulk_retry_replays_the_response_and_applies_nothing_again() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let body = request(json!([
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"userName": "idem"}},
        {"method": "POST", "path": "/Groups", "bulkId": "g1",
         "data": {"displayName": "idem-g", "members": [{"value": "bulkId:u1"}]}}
    ]));
    let first = post_keyed(&s, "/Bulk", &body, "key-1", &s.token).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let ops = first.body["Operations"].as_array().unwrap();
    ok_id(by_bulk_id(ops, "u1"), "201");
    ok_id(by_bulk_id(ops, "g1"), "201");

    let again = post_keyed(&s, "/Bulk", &body, "key-1", &s.token).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, first.body);
    assert_eq!(count(&s, "/Users").await, 1);
    assert_eq!(count(&s, "/Groups").await, 1);

    // Same key, other body: refused, and not applied.
    let other = request(json!([
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"userName": "idem-2"}}
    ]));
    let r = post_keyed(&s, "/Bulk", &other, "key-1", &s.token).await;
    assert_scim_error(&r, 422, None);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
    assert_eq!(count(&s, "/Users").await, 1);

    // Without a key the same body runs again (and its creates now conflict).
    let r = s.post("/Bulk", body.clone()).await;
    op_error(
        by_bulk_id(r.body["Operations"].as_array().unwrap(), "u1"),
        409,
        Some("uniqueness"),
    );

    // Keys are per directory: the same key and body elsewhere is a first request.
    let (other, other_token) = s.other_directory().await;
    let url = format!("http://{}/scim/v2/{other}/Bulk", s.addr);
    let r = post_keyed(&s, &url, &body, "key-1", &other_token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    ok_id(
        by_bulk_id(r.body["Operations"].as_array().unwrap(), "u1"),
        "201",
    );
    assert_eq!(count_with(&s, &other, "/Users", &other_token).await, 1);
    assert_eq!(count(&s, "/Users").await, 1);
}

#[tokio::test]
async fn an_idempotency_key_expires_after_the_configured_window() {
    let Some(s) = TestServer::start_with(ServerConfig {
        idempotency_window_secs: 1,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let body = request(json!([
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"userName": "w"}}
    ]));
    let first = post_keyed(&s, "/Bulk", &body, "k", &s.token).await;
    ok_id(&first.body["Operations"][0], "201");
    let again = post_keyed(&s, "/Bulk", &body, "k", &s.token).await;
    assert_eq!(again.body, first.body);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // Past the window it is a new request: it runs, and its create conflicts with the first.
    let late = post_keyed(&s, "/Bulk", &body, "k", &s.token).await;
    op_error(&late.body["Operations"][0], 409, Some("uniqueness"));
    assert_eq!(count(&s, "/Users").await, 1);
}

#[tokio::test]
async fn an_idempotent_post_to_users_replays_the_same_resource() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let body = json!({"userName": "keyed", "displayName": "K"});
    let first = post_keyed(&s, "/Users", &body, "pk", &s.token).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let id = first.body["id"].as_str().unwrap();

    let again = post_keyed(&s, "/Users", &body, "pk", &s.token).await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    assert_eq!(again.body["id"], id);
    assert_eq!(again.headers["location"], first.headers["location"]);
    assert_eq!(again.headers["etag"], first.headers["etag"]);
    assert_eq!(count(&s, "/Users").await, 1);

    let r = post_keyed(
        &s,
        "/Users",
        &json!({"userName": "keyed-2"}),
        "pk",
        &s.token,
    )
    .await;
    assert_scim_error(&r, 422, None);
    assert_eq!(count(&s, "/Users").await, 1);

    // The same key on another endpoint is another request.
    let r = post_keyed(
        &s,
        "/Groups",
        &json!({"displayName": "keyed"}),
        "pk",
        &s.token,
    )
    .await;
    assert_scim_error(&r, 422, None);
    assert_eq!(count(&s, "/Groups").await, 0);

    let (other, other_token) = s.other_directory().await;
    let url = format!("http://{}/scim/v2/{other}/Users", s.addr);
    let r = post_keyed(&s, &url, &body, "pk", &other_token).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_ne!(r.body["id"], id);
    assert_eq!(count_with(&s, &other, "/Users", &other_token).await, 1);
}

#[tokio::test]
async fn an_idempotency_key_is_not_spent_by_a_refused_request() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    s.user("taken").await;
    // A failed create stores nothing, so the same key can be used for the corrected request.
    let r = post_keyed(&s, "/Users", &json!({"userName": "taken"}), "k2", &s.token).await;
    assert_scim_error(&r, 409, Some("uniqueness"));
    let r = post_keyed(&s, "/Users", &json!({"userName": "fresh"}), "k2", &s.token).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // A whole-request 400 on /Bulk stores nothing either.
    let dup = request(json!([
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "x"}},
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "y"}}
    ]));
    assert_scim_error(
        &post_keyed(&s, "/Bulk", &dup, "k3", &s.token).await,
        400,
        Some("invalidValue"),
    );
    let ok = json!({"schemas": [BULK_REQUEST], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "x"}}
    ]});
    let r = post_keyed(&s, "/Bulk", &ok, "k3", &s.token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    ok_id(&r.body["Operations"][0], "201");
}
