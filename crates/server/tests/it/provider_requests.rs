//! The provider request log and the connection status read from it: what a
//! directory's provider asked and what Roster answered, failures with their
//! detail, never a secret, bounded per directory.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use roster_server::ServerConfig;
use roster_testkit::poll;
use serde_json::{Value, json};

use super::api_directories::{admin_key, api};
use crate::support::TestServer;

/// The directory's logged requests (newest first) once `done` holds (at most 5 s):
/// the log is written in batches, off the request path.
pub async fn requests_until(
    s: &TestServer,
    key: &str,
    dir: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let path = format!("/directories/{dir}/requests?limit=1000");
    poll::until(
        "the request log",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            let r = api(s, key, Method::GET, &path, None).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            let data = r.body["data"].as_array().cloned().unwrap_or_default();
            if done(&data) {
                Ok(data)
            } else {
                Err(format!("{data:#?}"))
            }
        },
    )
    .await
}

async fn connection(s: &TestServer, key: &str) -> Value {
    let r = api(
        s,
        key,
        Method::GET,
        &format!("/directories/{}/connection", s.directory),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})
}

#[tokio::test]
async fn failures_are_logged_with_their_detail_and_never_a_password() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    assert_eq!(connection(&s, &key).await["state"], "waiting");

    // A wrong token on this directory's URL.
    let r = s
        .call_with(
            Method::GET,
            "/Users",
            None,
            "rst_not-the-token",
            &[("user-agent", "Okta SCIM Client 1.0")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let data = requests_until(&s, &key, &s.directory, |d| !d.is_empty()).await;
    assert_eq!(data[0]["status"], 401);
    assert_eq!(data[0]["authenticated"], false);
    assert_eq!(data[0]["error"], "the bearer token is unknown or revoked");
    assert_eq!(data[0]["provider"], "okta scim v2.0");
    let c = connection(&s, &key).await;
    assert_eq!(c["state"], "failing", "{c}");
    assert_eq!(c["failure"]["code"], "token");

    // A bad body carrying a password.
    let r = s
        .post(
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                   "password": "hunter2-secret", "name": {"givenName": "x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let data = requests_until(&s, &key, &s.directory, |d| d.len() >= 2).await;
    let bad = &data[0];
    assert_eq!(bad["status"], 400);
    assert_eq!(bad["method"], "POST");
    assert_eq!(bad["authenticated"], true);
    assert!(bad["error"].as_str().unwrap().contains("userName"), "{bad}");
    let body = bad["request_body"].as_str().unwrap();
    assert!(body.contains("givenName"), "{body}");
    assert!(body.contains("[redacted]"), "{body}");
    assert!(bad["response_body"].as_str().unwrap().contains("userName"));
    let c = connection(&s, &key).await;
    assert_eq!(c["failure"]["code"], "refused", "{c}");

    // A password PATCHed by path, and the whole log, hold no password.
    let id = s.user("alice").await;
    let r = s
        .patch(
            &format!("/Users/{id}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "password", "value": "hunter2-secret"},
                                  {"op": "bogus"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let data = requests_until(&s, &key, &s.directory, |d| d.len() >= 4).await;
    let all = Value::Array(data.clone()).to_string();
    assert!(!all.contains("hunter2"), "{all}");
    assert!(!all.contains(&s.token), "a token reached the log");

    // Successes keep no body; the provider is connected again.
    let ok = data.iter().find(|d| d["status"] == 201).unwrap();
    assert_eq!(ok["request_body"], Value::Null);
    assert_eq!(ok["response_body"], Value::Null);
    s.get("/Users").await;
    requests_until(&s, &key, &s.directory, |d| d[0]["status"] == 200).await;
    let c = connection(&s, &key).await;
    assert_eq!(c["state"], "connected", "{c}");
    assert_eq!(c["users"], 1);
    assert!(c["requests_24h"].as_i64().unwrap() >= 5, "{c}");
    assert!(c["errors_24h"].as_i64().unwrap() >= 3, "{c}");
    assert!(c["last_request_at"].is_string());
}

#[tokio::test]
async fn a_live_token_on_a_cut_url_is_logged_as_a_base_url_failure() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    let cut = &s.directory[..s.directory.len() - 4];
    let r = s
        .call_with(
            Method::GET,
            &format!("http://{}/scim/v2/{cut}/Users", s.addr),
            None,
            &s.token,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let data = requests_until(&s, &key, &s.directory, |d| !d.is_empty()).await;
    assert_eq!(data[0]["status"], 404);
    assert_eq!(data[0]["authenticated"], false);
    let c = connection(&s, &key).await;
    assert_eq!(c["failure"]["code"], "base_url", "{c}");
    assert!(
        c["failure"]["fix"]
            .as_str()
            .unwrap()
            .contains("base URL was cut")
    );
}

#[tokio::test]
async fn the_log_keeps_the_newest_requests_up_to_its_bound_and_pages_back() {
    let Some(s) = TestServer::start_with(ServerConfig {
        request_log_max_per_directory: 5,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let key = admin_key(&s).await;
    for i in 0..12 {
        let r = s.post("/Users", user(&format!("u{i}"))).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    // The newest request is the 12th create; at most 5 are kept.
    let data = requests_until(&s, &key, &s.directory, |d| {
        d.first()
            .is_some_and(|r| r["path"].as_str().is_some() && d.len() <= 5)
    })
    .await;
    let summary = poll::until_or_last(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || connection(&s, &key),
        |summary| summary["requests_24h"] == 12,
    )
    .await;
    assert_eq!(
        summary["requests_24h"], 12,
        "counts outlive the cut: {summary}"
    );
    assert_eq!(summary["users"], 12);
    let all = requests_until(&s, &key, &s.directory, |d| d.len() == 5).await;
    assert!(data.len() <= 5);
    // Paging back by `before`.
    let r = api(
        &s,
        &key,
        Method::GET,
        &format!("/directories/{}/requests?limit=2", s.directory),
        None,
    )
    .await;
    let first: Vec<Value> = r.body["data"].as_array().unwrap().clone();
    assert_eq!(first.len(), 2);
    let before = r.body["list_metadata"]["before"].as_str().unwrap();
    let r = api(
        &s,
        &key,
        Method::GET,
        &format!(
            "/directories/{}/requests?limit=2&before={before}",
            s.directory
        ),
        None,
    )
    .await;
    let second = r.body["data"].as_array().unwrap();
    assert_eq!(second[0]["id"], all[2]["id"]);
    // Bad parameters are 400s; another directory's key sees nothing.
    let r = api(
        &s,
        &key,
        Method::GET,
        &format!("/directories/{}/requests?before=x", s.directory),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api(&s, &key, Method::GET, "/directories/nope/requests", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
