//! `GET /api/v1/openapi.json`: public, OpenAPI 3.1, and true of the server
//! that serves it: every operation is served, and what the server answers
//! is among the statuses the document gives.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::api_directories::admin_key;
use crate::support::TestServer;

#[tokio::test]
async fn the_document_is_public_and_every_operation_is_served() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let url = format!("http://{}/api/v1/openapi.json", s.addr);
    let resp = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    let key = admin_key(&s).await;
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if path.ends_with("openapi.json") {
                continue;
            }
            operations += 1;
            let concrete = path
                .replace("{id}", "0190c0de-0000-7000-8000-000000000001")
                .replace("{user_id}", "0190c0de-0000-7000-8000-000000000002")
                .replace("{group_id}", "0190c0de-0000-7000-8000-000000000003")
                .replace("{token_id}", "0190c0de-0000-7000-8000-000000000004");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let url = format!("http://{}{concrete}", s.addr);
            // Without a key: a 401 the document gives, so the route exists
            // (an unknown route would be a 404) and takes admin keys.
            let r = s.call_with(method.clone(), &url, None, "", &[]).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path}: {:?}",
                r.body
            );
            assert!(op["responses"]["401"].is_object(), "{method} {path}");
            // With a key and unknown ids: a documented answer, never a 5xx.
            let body = matches!(method, Method::POST | Method::PUT | Method::PATCH)
                .then(|| serde_json::json!({}));
            let r = s.call_with(method.clone(), &url, body, &key, &[]).await;
            assert!(!r.status.is_server_error(), "{method} {path}: {:?}", r.body);
            let status = r.status.as_u16().to_string();
            assert!(
                op["responses"][&status].is_object(),
                "{method} {path} answered {status}, which the document does not give: {:?}",
                r.body
            );
        }
    }
    assert!(operations >= 48, "{operations} operations");
}

/// What no handler answers (an unknown route, a wrong method) is still in
/// the error body of the API the path belongs to.
#[tokio::test]
async fn unrouted_answers_keep_each_apis_error_body() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let key = admin_key(&s).await;
    for (method, path, status, field) in [
        (Method::GET, "/directories/", 404, "code"),
        (Method::PUT, "/events", 405, "code"),
        (Method::GET, "/webhook_endpoints/a/b", 404, "code"),
        (Method::GET, "/api/v1/nothing", 404, "error"),
        (Method::PUT, "/api/v1/events", 405, "error"),
        (Method::GET, "/nothing", 404, "schemas"),
    ] {
        let url = format!("http://{}{path}", s.addr);
        let r = s.call_with(method.clone(), &url, None, &key, &[]).await;
        assert_eq!(r.status.as_u16(), status, "{method} {path}: {:?}", r.body);
        assert!(r.body.get(field).is_some(), "{method} {path}: {:?}", r.body);
        assert!(
            r.body["message"].is_string() || field == "schemas",
            "{method} {path}: {:?}",
            r.body
        );
    }
}
