//! What the HTTP stack answers by itself is a SCIM error too (or the app
//! API's own error format under /api/v1), with the right status, and no
//! error body carries a trace, a source path or SQL.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestServer, assert_scim_error, enc};

/// Fails when an error body looks like it leaks internals.
fn assert_no_internals(body: &Value) {
    let text = body.to_string();
    for leak in [
        "panicked",
        "backtrace",
        ".rs:",
        "/src/",
        "/home/",
        "SELECT ",
        "INSERT ",
        "sqlite",
        "rusqlite",
        "stack",
    ] {
        assert!(
            !text
                .to_ascii_lowercase()
                .contains(&leak.to_ascii_lowercase()),
            "{leak:?} in an error body: {text}"
        );
    }
}

#[tokio::test]
async fn a_401_carries_www_authenticate_bearer() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let url = format!("{}/Users", s.base());
    for req in [
        s.client.get(&url),
        s.client.get(&url).bearer_auth("rst_not-a-real-token"),
        s.client.get(&url).header("authorization", "Basic YTpi"),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        assert_eq!(v["status"], "401");
    }
    let r = s
        .client
        .get(format!("http://{}/api/v1/directories", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
}

#[tokio::test]
async fn framework_rejections_are_scim_errors() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    // An id that is not valid UTF-8 once percent-decoded: axum's Path rejects it in plain text.
    let r = s.get("/Users/%FF%FE").await;
    assert!(r.status.is_client_error(), "{:?}", r.status);
    assert_eq!(r.headers["content-type"], "application/scim+json");
    assert_eq!(r.body["status"], r.status.as_u16().to_string());
    assert_no_internals(&r.body);

    // Unknown routes and methods, anywhere.
    for (method, url) in [
        (Method::GET, format!("http://{}/", s.addr)),
        (Method::GET, format!("http://{}/scim/v2", s.addr)),
        (Method::PATCH, format!("{}/Users", s.base())),
        (Method::TRACE, format!("{}/Users", s.base())),
    ] {
        let r = s.call(method.clone(), &url, None).await;
        assert!(
            r.status == StatusCode::NOT_FOUND || r.status == StatusCode::METHOD_NOT_ALLOWED,
            "{method} {url}: {:?}",
            r.status
        );
        assert_scim_error(&r, r.status.as_u16(), None);
    }

    // Unsupported media type on every body-taking SCIM endpoint.
    let id = s.user("m").await;
    for (method, path) in [
        (Method::POST, "/Users".to_owned()),
        (Method::PUT, format!("/Users/{id}")),
        (Method::PATCH, format!("/Users/{id}")),
        (Method::POST, "/Bulk".to_owned()),
        (Method::POST, "/.search".to_owned()),
    ] {
        let r = s
            .raw(method, &path, b"<x/>".to_vec(), "application/xml")
            .await;
        assert_scim_error(&r, 415, None);
    }

    // JSON syntax errors say where, and nothing else.
    let r = s
        .raw(
            Method::POST,
            "/Bulk",
            b"{\"Operations\": [".to_vec(),
            "application/scim+json",
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidSyntax"));
    assert!(r.body["detail"].as_str().unwrap().contains("line 1"));
    assert_no_internals(&r.body);
}

#[tokio::test]
async fn app_api_rejections_keep_the_app_api_format() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let (_, key) = s
        .store
        .create_admin_key(&roster_store::Actor::Cli, "ops", &Default::default())
        .await
        .unwrap();
    let api = |path: &str| format!("http://{}/api/v1{path}", s.addr);
    // axum's Json extractor: wrong content type and broken JSON.
    for (ct, body) in [
        ("text/xml", "<x/>"),
        ("application/json", "{\"url\": "),
        ("application/json", "{\"nourl\": 1}"),
    ] {
        let r = s
            .client
            .post(api("/webhooks"))
            .bearer_auth(&key)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert!(status.is_client_error(), "{ct} {body}: {status}");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
        assert_no_internals(&v);
    }
    let r = s
        .client
        .get(api("/nowhere"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn client_errors_never_echo_internals() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = s.user("e").await;
    let probes = [
        s.get(&format!("/Users?filter={}", enc("userName eq \"x\" or")))
            .await,
        s.get(&format!(
            "/Users?filter={}",
            enc("userName eq 'x' OR 1=1 --")
        ))
        .await,
        s.get("/Users?sortBy=nosuch.attr").await,
        s.get("/Users?cursor=!!!").await,
        s.get(&format!("/Users?cursor={}", "A".repeat(500))).await,
        s.get("/Users/does-not-exist").await,
        s.patch(
            &format!("/Users/{id}"),
            json!({"Operations": [{"op": "nope"}]}),
        )
        .await,
        s.patch(
            &format!("/Users/{id}"),
            json!({"Operations": [{"op": "replace", "path": "emails[type eq", "value": 1}]}),
        )
        .await,
        s.post("/Bulk", json!({"Operations": "x"})).await,
    ];
    for r in probes {
        assert!(r.status.is_client_error(), "{:?}: {:?}", r.status, r.body);
        assert_eq!(
            r.body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        assert_no_internals(&r.body);
    }
}

/// A cursor is client text: one forged with an extreme issue time must be
/// refused as a cursor, not crash the handler. Found by the `cursor` fuzz
/// target (fuzz/known/): `Cursor::decode` in crates/store computes
/// `now - cursor.issued`, which overflowed (a panic with overflow checks, a
/// wrap-around to "not expired" without); it now uses checked arithmetic.
#[tokio::test]
async fn a_forged_cursor_with_an_extreme_issue_time_is_refused() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Some(s) = TestServer::start().await else {
        return;
    };
    s.user("c1").await;
    s.user("c2").await;
    let r = s.get("/Users?count=1&cursor=").await;
    let cursor = r.body["nextCursor"].as_str().unwrap().to_owned();
    let mut decoded: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&cursor).unwrap()).unwrap();
    for issued in [i64::MIN, i64::MAX] {
        decoded["t"] = json!(issued);
        let forged = URL_SAFE_NO_PAD.encode(decoded.to_string());
        let r = s.get(&format!("/Users?count=1&cursor={forged}")).await;
        assert!(
            r.status == StatusCode::BAD_REQUEST,
            "issued {issued}: {:?} {:?}",
            r.status,
            r.body
        );
        assert!(
            r.body["scimType"] == "invalidCursor" || r.body["scimType"] == "expiredCursor",
            "{:?}",
            r.body
        );
    }
}
