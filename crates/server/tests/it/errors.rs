//! HTTP details: content types, malformed bodies, limits, unknown routes — and
//! that nothing is stored after any error.

use reqwest::{Method, StatusCode};
use roster_server::ServerConfig;
use serde_json::json;

use crate::support::{TestServer, assert_scim_error};

async fn nothing_stored(s: &TestServer) {
    assert!(s.ids("/Users").await.is_empty(), "a user was stored");
    assert!(s.ids("/Groups").await.is_empty(), "a group was stored");
}

#[tokio::test]
async fn malformed_json_and_invalid_utf8_are_400_invalid_syntax() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    for body in [
        b"{\"userName\": ".to_vec(),
        b"not json".to_vec(),
        b"".to_vec(),
        b"{\"userName\": \"a\"} trailing".to_vec(),
        b"{\"userName\": \"\xff\xfe\"}".to_vec(),
    ] {
        for path in ["/Users", "/Groups", "/Users/.search", "/.search"] {
            let r = s
                .raw(Method::POST, path, body.clone(), "application/scim+json")
                .await;
            assert_scim_error(&r, 400, Some("invalidSyntax"));
        }
    }
    let id = s.user("u").await;
    let r = s
        .raw(
            Method::PUT,
            &format!("/Users/{id}"),
            b"{".to_vec(),
            "application/json",
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidSyntax"));
    let r = s
        .raw(
            Method::PATCH,
            &format!("/Users/{id}"),
            b"[]".to_vec(),
            "application/json",
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidSyntax"));
    s.delete(&format!("/Users/{id}")).await;
    nothing_stored(&s).await;
}

#[tokio::test]
async fn wrong_types_and_unknown_attributes_are_400() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    for body in [
        json!({"userName": 5}),
        json!({"userName": "a", "active": "perhaps"}),
        json!({"userName": "a", "name": "Barbara"}),
        json!({"userName": "a", "emails": [{"value": 7}]}),
        json!({"userName": "a", "nosuch": 1}),
        json!({"userName": "a", "name": {"nosuch": "x"}}),
        json!({"userName": "a", "urn:example:unknown:2.0:User": {"x": 1}}),
        json!({"userName": "a", "schemas": "urn:ietf:params:scim:schemas:core:2.0:User"}),
        json!({"userName": ""}),
        json!({}),
        json!([{"userName": "a"}]),
        json!({"userName": "a", "password": "$argon2id$v=19$m=19456,t=2,p=1$abc$def"}),
    ] {
        let r = s.post("/Users", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        assert_scim_error(&r, 400, r.body["scimType"].as_str());
        assert!(r.body["scimType"].is_string(), "{body}: {:?}", r.body);
    }
    for body in [
        json!({"displayName": 5}),
        json!({"displayName": "g", "members": "x"}),
        json!({}),
    ] {
        let r = s.post("/Groups", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
    }
    nothing_stored(&s).await;
}

#[tokio::test]
async fn responses_are_scim_json_and_json_is_accepted() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s
        .raw(
            Method::POST,
            "/Users",
            br#"{"userName":"j"}"#.to_vec(),
            "application/json; charset=utf-8",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    for path in [
        "/Users",
        "/Groups",
        "/ServiceProviderConfig",
        "/Schemas",
        "/ResourceTypes",
        "/Users/nope",
    ] {
        let r = s.get(path).await;
        assert_eq!(
            r.headers["content-type"].to_str().unwrap(),
            "application/scim+json",
            "{path}"
        );
    }
    let r = s
        .raw(
            Method::POST,
            "/Users",
            br#"<user/>"#.to_vec(),
            "application/xml",
        )
        .await;
    assert_scim_error(&r, 415, None);
}

#[tokio::test]
async fn body_over_the_limit_is_413_scim_error() {
    let Some(s) = TestServer::start_with(ServerConfig {
        max_body_bytes: 1024,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let big = json!({"userName": "big", "title": "x".repeat(2000)});
    let r = s.post("/Users", big).await;
    assert_scim_error(&r, 413, None);
    let small = json!({"userName": "small", "title": "x".repeat(500)});
    assert_eq!(s.post("/Users", small).await.status, StatusCode::CREATED);
    let r = s
        .post(
            "/Users/.search",
            json!({"filter": format!("userName eq \"{}\"", "y".repeat(2000))}),
        )
        .await;
    assert_scim_error(&r, 413, None);
    assert_eq!(s.ids("/Users").await.len(), 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_scim_errors() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s.get("/Widgets").await;
    assert_scim_error(&r, 404, None);
    assert_eq!(r.headers["content-type"], "application/scim+json");
    let r = s.get(&format!("http://{}/nowhere", s.addr)).await;
    assert_scim_error(&r, 404, None);
    let r = s.call(Method::DELETE, "/Users", None).await;
    assert_scim_error(&r, 405, None);
    assert_eq!(r.headers["content-type"], "application/scim+json");
    let r = s.call(Method::POST, "/Users/abc", Some(json!({}))).await;
    assert_scim_error(&r, 405, None);
    let r = s.call(Method::GET, "/Users/.search", None).await;
    assert!(r.status == 404 || r.status == 405, "{:?}", r.status);
    assert_eq!(
        r.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    let r = s
        .call(Method::PUT, "/ServiceProviderConfig", Some(json!({})))
        .await;
    assert_scim_error(&r, 405, None);
}

#[tokio::test]
async fn bad_query_parameters_are_400() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    assert_scim_error(
        &s.get("/Users?startIndex=one").await,
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &s.get("/Users?attributes=name[").await,
        400,
        Some("invalidPath"),
    );
    let r = s
        .post("/Users/.search", json!({"schemas": ["urn:wrong"]}))
        .await;
    assert_scim_error(&r, 400, Some("invalidSyntax"));
    let r = s.post("/Users/.search", json!({"count": "ten"})).await;
    assert_scim_error(&r, 400, Some("invalidSyntax"));
    let r = s.post("/Users/.search", json!({"filter": 5})).await;
    assert_scim_error(&r, 400, Some("invalidSyntax"));
}
