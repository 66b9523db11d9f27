//! Size and shape limits: each is configurable, answered with a SCIM error
//! whose detail names the setting, and leaves nothing stored.

use reqwest::{Method, StatusCode};
use roster_server::ServerConfig;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_scim_error, enc};

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

async fn nothing_stored(s: &TestServer) {
    assert!(s.ids("/Users").await.is_empty(), "a user was stored");
    assert!(s.ids("/Groups").await.is_empty(), "a group was stored");
}

#[tokio::test]
async fn json_shape_limits_are_named_in_the_error() {
    let Some(s) = TestServer::start_with(ServerConfig {
        max_json_depth: 4,
        max_json_object_members: 20,
        max_json_array_len: 5,
        max_string_bytes: 200,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let emails = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"value": format!("u{i}@example.com")}))
            .collect()
    };
    let mut wide = serde_json::Map::new();
    wide.insert("userName".into(), json!("wide"));
    for i in 0..25 {
        wide.insert(format!("x{i}"), json!(1));
    }
    let cases = [
        (
            json!({"userName": "deep", "name": {"givenName": {"a": {"b": {"c": 1}}}}}),
            "max_json_depth",
        ),
        (Value::Object(wide), "max_json_object_members"),
        (
            json!({"userName": "many", "emails": emails(6)}),
            "max_json_array_len",
        ),
        (
            json!({"userName": "long", "title": "t".repeat(201)}),
            "max_string_bytes",
        ),
    ];
    for (body, setting) in cases {
        for path in ["/Users", "/Users/.search"] {
            let r = s.post(path, body.clone()).await;
            assert_scim_error(&r, 400, Some("invalidValue"));
            assert!(detail(&r.body).contains(setting), "{setting}: {:?}", r.body);
        }
    }
    // Just inside every limit is fine.
    let ok = json!({"userName": "ok", "emails": emails(5), "title": "t".repeat(200)});
    assert_eq!(s.post("/Users", ok).await.status, StatusCode::CREATED);
    // /Bulk reads its body with the same limits.
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "POST", "path": "/Users", "data": {"userName": "b", "title": "t".repeat(201)}}]
    });
    let r = s.post("/Bulk", bulk).await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert!(detail(&r.body).contains("max_string_bytes"));
    assert_eq!(s.ids("/Users").await.len(), 1);
}

#[tokio::test]
async fn duplicate_json_keys_are_refused() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let body = br#"{"userName": "alice", "active": true, "userName": "mallory"}"#.to_vec();
    for path in ["/Users", "/Bulk", "/Users/.search"] {
        let r = s
            .raw(Method::POST, path, body.clone(), "application/scim+json")
            .await;
        assert_scim_error(&r, 400, Some("invalidSyntax"));
        assert!(
            detail(&r.body).contains("\"userName\" appears twice"),
            "{:?}",
            r.body
        );
    }
    let id = s.user("bob").await;
    let patch = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"replace","path":"title","value":"a","value":"b"}]}"#;
    let r = s
        .raw(
            Method::PATCH,
            &format!("/Users/{id}"),
            patch.to_vec(),
            "application/scim+json",
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidSyntax"));
}

#[tokio::test]
async fn nul_and_control_characters_never_reach_the_store() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    // NUL anywhere in a body.
    for body in [
        json!({"userName": "a\u{0}b"}),
        json!({"userName": "ok", "title": "x\u{0}"}),
        json!({"userName": "ok", "emails": [{"value": "\u{0}@example.com"}]}),
    ] {
        let r = s.post("/Users", body.clone()).await;
        assert_scim_error(&r, 400, Some("invalidValue"));
        assert!(detail(&r.body).contains("NUL"), "{body}: {:?}", r.body);
    }
    // Line breaks and other controls in identifiers (they forge log lines).
    for body in [
        json!({"userName": "a\nINFO admin logged in"}),
        json!({"userName": "ok", "externalId": "x\ty"}),
    ] {
        let r = s.post("/Users", body.clone()).await;
        assert_scim_error(&r, 400, Some("invalidValue"));
        assert!(
            detail(&r.body).contains("control characters"),
            "{:?}",
            r.body
        );
    }
    let r = s.post("/Groups", json!({"displayName": "g\r\n"})).await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    // A NUL in a filter value or an id in the URL.
    let r = s
        .get(&format!("/Users?filter={}", enc("userName eq \"a\u{0}\"")))
        .await;
    assert_scim_error(&r, 400, Some("invalidFilter"));
    for path in ["/Users/abc%00def", "/Groups/%00"] {
        assert_scim_error(&s.get(path).await, 404, None);
        assert_scim_error(&s.delete(path).await, 404, None);
    }
    // Identifiers the store accepted still work alongside.
    s.user("plain").await;
    assert_eq!(s.ids("/Users").await.len(), 1);
}

#[tokio::test]
async fn identifiers_have_a_maximum_length() {
    let Some(s) = TestServer::start_with(ServerConfig {
        max_identifier_bytes: 64,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let long = "u".repeat(65);
    for (path, body) in [
        ("/Users", json!({"userName": long})),
        ("/Users", json!({"userName": "ok", "externalId": long})),
        ("/Groups", json!({"displayName": long})),
    ] {
        let r = s.post(path, body).await;
        assert_scim_error(&r, 400, Some("invalidValue"));
        assert!(
            detail(&r.body).contains("max_identifier_bytes"),
            "{:?}",
            r.body
        );
    }
    nothing_stored(&s).await;
    // PUT and PATCH are held to it too.
    let id = s.user(&"u".repeat(64)).await;
    let r = s
        .put(&format!("/Users/{id}"), json!({"userName": long}))
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    let r = s
        .patch(
            &format!("/Users/{id}"),
            json!({"Operations": [{"op": "replace", "path": "userName", "value": long}]}),
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    let r = s.get(&format!("/Users/{id}")).await;
    assert_eq!(r.body["userName"], "u".repeat(64));
}

#[tokio::test]
async fn patch_operation_count_is_limited() {
    let Some(s) = TestServer::start_with(ServerConfig {
        max_patch_operations: 3,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let id = s.user("p").await;
    let ops = |n: usize| -> Value {
        let ops: Vec<Value> = (0..n)
            .map(|i| json!({"op": "replace", "path": "title", "value": format!("t{i}")}))
            .collect();
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
    };
    let r = s.patch(&format!("/Users/{id}"), ops(4)).await;
    assert_scim_error(&r, 413, None);
    assert!(
        detail(&r.body).contains("max_patch_operations"),
        "{:?}",
        r.body
    );
    assert_eq!(s.get(&format!("/Users/{id}")).await.body.get("title"), None);
    let r = s.patch(&format!("/Users/{id}"), ops(3)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Inside /Bulk the operation fails alone.
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "PATCH", "path": format!("/Users/{id}"), "data": ops(4)},
            {"method": "POST", "path": "/Users", "data": {"userName": "q"}}
        ]
    });
    let r = s.post("/Bulk", bulk).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["Operations"][0]["status"], "413", "{:?}", r.body);
    assert_eq!(r.body["Operations"][1]["status"], "201", "{:?}", r.body);
}

#[tokio::test]
async fn filter_length_and_depth_are_limited() {
    let Some(s) = TestServer::start_with(ServerConfig {
        max_filter_bytes: 200,
        max_filter_depth: 3,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let long = format!("userName eq \"{}\"", "x".repeat(200));
    let r = s.get(&format!("/Users?filter={}", enc(&long))).await;
    assert_scim_error(&r, 400, Some("invalidFilter"));
    assert!(detail(&r.body).contains("max_filter_bytes"), "{:?}", r.body);
    let r = s.post("/Users/.search", json!({"filter": long})).await;
    assert_scim_error(&r, 400, Some("invalidFilter"));

    let deep = "((((userName eq \"a\"))))";
    let r = s.get(&format!("/Users?filter={}", enc(deep))).await;
    assert_scim_error(&r, 400, Some("invalidFilter"));
    assert!(detail(&r.body).contains("max_filter_depth"), "{:?}", r.body);
    let shallow = "(((userName eq \"a\")))";
    let r = s.get(&format!("/Users?filter={}", enc(shallow))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn url_and_header_size_limits_are_scim_errors() {
    let Some(s) = TestServer::start_with(ServerConfig {
        max_url_bytes: 2048,
        max_header_bytes: 4096,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let r = s
        .get(&format!("/Users?attributes={}", "a".repeat(3000)))
        .await;
    assert_scim_error(&r, 414, None);
    assert!(detail(&r.body).contains("max_url_bytes"), "{:?}", r.body);

    let big = "v".repeat(5000);
    let r = s
        .call_with(
            Method::GET,
            "/Users",
            None,
            &s.token,
            &[("x-padding", &big)],
        )
        .await;
    assert_scim_error(&r, 431, None);
    assert!(detail(&r.body).contains("max_header_bytes"), "{:?}", r.body);

    // Far past the limits hyper refuses the head itself; still no 500 or hang.
    let huge = "v".repeat(200_000);
    let resp = s
        .client
        .get(format!("{}/Users", s.base()))
        .bearer_auth(&s.token)
        .header("x-padding", huge)
        .send()
        .await;
    if let Ok(resp) = resp {
        assert_eq!(resp.status().as_u16(), 431);
    }
    assert_eq!(s.get("/Users").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_resource_body_limit_names_its_setting() {
    let Some(s) = TestServer::start_with(ServerConfig {
        max_body_bytes: 1024,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let r = s
        .post(
            "/Users",
            json!({"userName": "big", "title": "x".repeat(2000)}),
        )
        .await;
    assert_scim_error(&r, 413, None);
    assert!(detail(&r.body).contains("max_body_bytes"), "{:?}", r.body);
}
