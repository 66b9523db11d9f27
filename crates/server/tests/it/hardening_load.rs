//! Abuse and load: per-token rate limits (429 with Retry-After) and load
//! shedding past the concurrency limit (503 with Retry-After).

use std::time::Duration;

use reqwest::StatusCode;
use roster_server::ServerConfig;
use tokio::io::AsyncWriteExt;

use super::hardening_sockets::{connect, read_reply};
use crate::support::{TestServer, assert_scim_error};

#[tokio::test]
async fn a_token_over_its_rate_gets_429_with_retry_after() {
    let Some(s) = TestServer::start_with(ServerConfig {
        rate_limit_per_sec: 0.5,
        rate_limit_burst: 3.0,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    for _ in 0..3 {
        assert_eq!(s.get("/Users").await.status, StatusCode::OK);
    }
    let r = s.get("/Users").await;
    assert_scim_error(&r, 429, None);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("rate_limit_per_sec")
    );
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");

    // Another token, even of the same directory, has its own bucket.
    let (_, second) = s
        .store
        .issue_token(&roster_store::Actor::Cli, &s.directory)
        .await
        .unwrap();
    let r = s
        .call_with(reqwest::Method::GET, "/Users", None, &second, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Another directory's token too.
    let (dir, token) = s.other_directory().await;
    let url = format!("http://{}/scim/v2/{dir}/Users", s.addr);
    let r = s
        .call_with(reqwest::Method::GET, &url, None, &token, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Unauthenticated requests are never counted against a token: still 401, not 429.
    let r = s
        .call_with(reqwest::Method::GET, "/Users", None, "rst_bogus", &[])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // After Retry-After the token works again.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(s.get("/Users").await.status, StatusCode::OK);
}

#[tokio::test]
async fn past_max_concurrent_requests_requests_are_shed_with_503() {
    let Some(s) = TestServer::start_with(ServerConfig {
        max_concurrent_requests: 2,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    // Two requests in flight: their bodies never finish arriving.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = connect(&s).await;
        let head = format!(
            "POST /scim/v2/{}/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{{",
            s.directory, s.token
        );
        c.write_all(head.as_bytes()).await.unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = s.get("/Users").await;
    assert_scim_error(&r, 503, None);
    assert!(r.headers.contains_key("retry-after"));
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("max_concurrent_requests")
    );
    // The held requests still complete normally.
    let mut first = held.remove(0);
    let rest = format!("\"userName\":\"held\"}}{}", " ".repeat(100 - 1 - 18));
    first.write_all(rest.as_bytes()).await.unwrap();
    let reply = read_reply(&mut first, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(reply.status, 201, "{reply:?}");
    // With a slot free again, requests are served.
    assert_eq!(s.get("/Users").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_admin_key_over_its_rate_gets_429_with_retry_after() {
    let Some(s) = TestServer::start_with(ServerConfig {
        admin_rate_limit_per_sec: 0.5,
        admin_rate_limit_burst: 3.0,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let key = s
        .store
        .create_admin_key(&roster_store::Actor::Cli, "ops", &Default::default())
        .await
        .unwrap()
        .1;
    let url = format!("http://{}/api/v1/directories", s.addr);
    let get = |key: String| {
        let url = url.clone();
        let c = s.client.clone();
        async move { c.get(url).bearer_auth(key).send().await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(get(key.clone()).await.status(), StatusCode::OK);
    }
    let r = get(key.clone()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("admin_rate_limit_per_sec"),
        "{body}"
    );
    // Every admin endpoint draws on the same bucket.
    let r = s
        .client
        .get(format!("http://{}/api/v1/events", s.addr))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // Another admin key has its own bucket; SCIM tokens are limited apart.
    let other = s
        .store
        .create_admin_key(&roster_store::Actor::Cli, "ci", &Default::default())
        .await
        .unwrap()
        .1;
    assert_eq!(get(other).await.status(), StatusCode::OK);
    assert_eq!(s.get("/Users").await.status, StatusCode::OK);
    // A guessed key is a 401, never a 429, and takes no bucket.
    assert_eq!(
        get("rak_bogus".into()).await.status(),
        StatusCode::UNAUTHORIZED
    );

    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(get(key).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_zero_admin_rate_turns_the_admin_limit_off() {
    let Some(s) = TestServer::start_with(ServerConfig {
        admin_rate_limit_per_sec: 0.0,
        admin_rate_limit_burst: 1.0,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let key = s
        .store
        .create_admin_key(&roster_store::Actor::Cli, "ops", &Default::default())
        .await
        .unwrap()
        .1;
    for _ in 0..20 {
        let r = s
            .client
            .get(format!("http://{}/api/v1/directories", s.addr))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}
