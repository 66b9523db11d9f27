//! `/health/live` and `/health/ready`: unauthenticated, no data, not cached;
//! ready names each failing check. The database outages are in `db_outage`.

use std::sync::Arc;

use reqwest::StatusCode;
use roster_server::health::{Liveness, stale_after_ms};
use roster_server::{AppState, ServerConfig, build_registry};
use roster_store::now_ms;
use serde_json::{Value, json};

use crate::support::TestServer;

async fn get(url: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap())
}

#[tokio::test]
async fn live_and_ready_answer_200_without_credentials() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let (status, headers, body) = get(&format!("http://{}/health/live", s.addr)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
    assert_eq!(headers["cache-control"], "no-store");

    let (status, headers, body) = get(&format!("http://{}/health/ready", s.addr)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"status": "ok", "checks": {
            "database": "ok", "migrations": "ok", "writer": "ok", "webhooks": "ok"}})
    );
    assert_eq!(headers["cache-control"], "no-store");

    let head = s
        .client
        .head(format!("http://{}/health/ready", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
}

#[tokio::test]
async fn ready_says_webhooks_disabled_when_the_dispatcher_is_off() {
    let Some(s) = TestServer::start_with(ServerConfig {
        webhooks_enabled: false,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let (status, _, body) = get(&format!("http://{}/health/ready", s.addr)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["webhooks"], "disabled");
}

#[tokio::test]
async fn ready_is_503_naming_webhooks_when_the_dispatcher_heartbeat_is_stale() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let config = ServerConfig::default();
    let reg = Arc::new(build_registry(&config).unwrap());
    let liveness = Arc::new(Liveness::default());
    // The dispatcher's loop last went round just past the allowed age.
    liveness.set_webhooks_last(now_ms() - stale_after_ms(&config) - 5_000);
    let state = AppState::new(s.store.clone(), reg, Arc::new(config), liveness);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, roster_server::router(state))
            .await
            .unwrap();
    });
    let (status, headers, body) = get(&format!("http://{addr}/health/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["status"], "failing");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["webhooks"]["status"], "failing", "{body}");
    let reason = body["checks"]["webhooks"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("webhook dispatcher has not run"),
        "{reason}"
    );
    // Live does not depend on the loops.
    let (status, _, _) = get(&format!("http://{addr}/health/live")).await;
    assert_eq!(status, StatusCode::OK);
    server.abort();
}
