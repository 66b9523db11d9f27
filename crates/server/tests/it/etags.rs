//! ETags and preconditions on `meta.version`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{TestServer, assert_scim_error};

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[tokio::test]
async fn if_match_guards_put_patch_and_delete() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = s.user("e").await;
    let p = format!("/Users/{id}");
    let t = s.token.clone();
    let put = json!({"userName": "e", "title": "t"});
    let patch = json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "nickName", "value": "n"}]});

    for stale in ["W/\"7\"", "\"0\"", "bogus"] {
        let r = s
            .call_with(
                Method::PUT,
                &p,
                Some(put.clone()),
                &t,
                &[("if-match", stale)],
            )
            .await;
        assert_scim_error(&r, 412, None);
        let r = s
            .call_with(
                Method::PATCH,
                &p,
                Some(patch.clone()),
                &t,
                &[("if-match", stale)],
            )
            .await;
        assert_scim_error(&r, 412, None);
        let r = s
            .call_with(Method::DELETE, &p, None, &t, &[("if-match", stale)])
            .await;
        assert_scim_error(&r, 412, None);
    }
    // Nothing changed.
    assert_eq!(s.get(&p).await.headers["etag"], "W/\"1\"");

    let r = s
        .call_with(Method::PUT, &p, Some(put), &t, &[("if-match", "W/\"1\"")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.headers["etag"], "W/\"2\"");
    let r = s
        .call_with(
            Method::PATCH,
            &p,
            Some(patch),
            &t,
            &[("if-match", "W/\"2\"")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.headers["etag"], "W/\"3\"");
    let r = s
        .call_with(Method::DELETE, &p, None, &t, &[("if-match", "W/\"2\"")])
        .await;
    assert_scim_error(&r, 412, None);
    let r = s
        .call_with(Method::DELETE, &p, None, &t, &[("if-match", "*")])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn if_none_match_on_get_is_304_for_the_current_version() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let g = s.group("G", &[]).await;
    let p = format!("/Groups/{g}");
    let t = s.token.clone();
    let r = s.get(&p).await;
    assert_eq!(r.headers["etag"], "W/\"1\"");
    let r = s
        .call_with(Method::GET, &p, None, &t, &[("if-none-match", "W/\"1\"")])
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers["etag"], "W/\"1\"");
    assert_eq!(r.body, serde_json::Value::Null);
    let r = s
        .call_with(Method::GET, &p, None, &t, &[("if-none-match", "W/\"0\"")])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], g.as_str());
    // After a change the old tag no longer matches.
    s.put(&p, json!({"displayName": "G2"})).await;
    let r = s
        .call_with(Method::GET, &p, None, &t, &[("if-none-match", "W/\"1\"")])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["etag"], "W/\"2\"");
    // A missing resource is 404 whatever the precondition.
    let r = s
        .call_with(
            Method::GET,
            "/Groups/nope",
            None,
            &t,
            &[("if-none-match", "*")],
        )
        .await;
    assert_scim_error(&r, 404, None);
}

#[tokio::test]
async fn every_single_resource_response_carries_the_etag() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s.post("/Groups", json!({"displayName": "G"})).await;
    assert_eq!(r.headers["etag"], "W/\"1\"");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let p = format!("/Groups/{id}");
    assert_eq!(
        s.get(&p).await.headers["etag"],
        r.body["meta"]["version"].as_str().unwrap()
    );
    let r = s.put(&p, json!({"displayName": "H"})).await;
    assert_eq!(r.headers["etag"], "W/\"2\"");
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");
    let r = s
        .patch(&p, json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "I"}]}))
        .await;
    assert_eq!(r.headers["etag"], "W/\"3\"");
    assert_eq!(r.body["meta"]["version"], "W/\"3\"");
}
