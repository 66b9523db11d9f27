//! Tenant isolation between directories, and authentication.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestServer, assert_scim_error, enc, ids};

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[tokio::test]
async fn another_directory_sees_nothing_of_this_one() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let u = s.user("alice").await;
    let g = s.group("Admins", &[&u]).await;
    let (other, tok) = s.other_directory().await;
    let base = format!("http://{}/scim/v2/{other}", s.addr);
    let call = |m: Method, p: String, b: Option<Value>| {
        let tok = tok.clone();
        let base = base.clone();
        let s = &s;
        async move { s.call_with(m, &format!("{base}{p}"), b, &tok, &[]).await }
    };

    // By id, through the other directory's own base URL.
    for p in [format!("/Users/{u}"), format!("/Groups/{g}")] {
        assert_scim_error(&call(Method::GET, p.clone(), None).await, 404, None);
        assert_scim_error(&call(Method::DELETE, p.clone(), None).await, 404, None);
        let r = call(
            Method::PUT,
            p.clone(),
            Some(json!({"userName": "x", "displayName": "x"})),
        )
        .await;
        assert_scim_error(&r, 404, None);
        let r = call(
            Method::PATCH,
            p.clone(),
            Some(json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": "title"}]})),
        )
        .await;
        assert_scim_error(&r, 404, None);
    }
    // By filter and search.
    let r = call(
        Method::GET,
        format!("/Users?filter={}", enc("userName eq \"alice\"")),
        None,
    )
    .await;
    assert_eq!(r.body["totalResults"], 0);
    let r = call(
        Method::GET,
        format!("/Users?filter={}", enc(&format!("id eq \"{u}\""))),
        None,
    )
    .await;
    assert_eq!(r.body["totalResults"], 0);
    let r = call(
        Method::GET,
        format!(
            "/Groups?filter={}",
            enc(&format!("members.value eq \"{u}\""))
        ),
        None,
    )
    .await;
    assert_eq!(r.body["totalResults"], 0);
    let r = call(Method::GET, "/Users".into(), None).await;
    assert_eq!(r.body["totalResults"], 0);
    let r = call(Method::POST, "/.search".into(), Some(json!({}))).await;
    assert_eq!(r.body["totalResults"], 0);
    let r = call(
        Method::POST,
        "/Users/.search".into(),
        Some(json!({"filter": "userName pr"})),
    )
    .await;
    assert_eq!(r.body["totalResults"], 0);

    // Names are unique per directory only.
    let r = call(
        Method::POST,
        "/Users".into(),
        Some(json!({"userName": "alice"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let mine = r.body["id"].as_str().unwrap().to_owned();

    // Its groups cannot take the first directory's users as members.
    let r = call(
        Method::POST,
        "/Groups".into(),
        Some(json!({"displayName": "G", "members": [{"value": u}]})),
    )
    .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    let r = call(
        Method::POST,
        "/Groups".into(),
        Some(json!({"displayName": "G", "members": [{"value": mine}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let og = r.body["id"].as_str().unwrap().to_owned();
    for o in [
        json!({"op": "add", "path": "members", "value": [{"value": u}]}),
        json!({"op": "replace", "path": "members", "value": [{"value": u}]}),
        json!({"op": "add", "value": {"members": [{"value": g}]}}),
    ] {
        let r = call(
            Method::PATCH,
            format!("/Groups/{og}"),
            Some(json!({"schemas": [PATCH], "Operations": [o]})),
        )
        .await;
        assert_scim_error(&r, 400, Some("invalidValue"));
    }
    let r = call(
        Method::PUT,
        format!("/Groups/{og}"),
        Some(json!({"displayName": "G", "members": [{"value": u}]})),
    )
    .await;
    assert_scim_error(&r, 400, Some("invalidValue"));

    // The first directory is untouched.
    assert_eq!(s.ids("/Users").await, [u.as_str()]);
    let r = s.get(&format!("/Groups/{g}")).await;
    assert_eq!(r.body["members"][0]["value"], u.as_str());
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    let r = s.get(&format!("/Users/{u}")).await;
    assert_eq!(r.body["groups"].as_array().unwrap().len(), 1);
    let f = format!(
        "/Users?filter={}",
        enc(&format!("groups.value eq \"{og}\""))
    );
    assert!(s.ids(&f).await.is_empty());
}

#[tokio::test]
async fn a_token_on_another_directorys_path_is_404() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let u = s.user("alice").await;
    let (_, tok) = s.other_directory().await;
    for p in [
        format!("/Users/{u}"),
        "/Users".to_owned(),
        "/Groups".to_owned(),
        "/ServiceProviderConfig".to_owned(),
        "/Schemas".to_owned(),
    ] {
        let r = s.call_with(Method::GET, &p, None, &tok, &[]).await;
        assert_scim_error(&r, 404, None);
    }
    let r = s
        .call_with(
            Method::POST,
            "/Users",
            Some(json!({"userName": "intruder"})),
            &tok,
            &[],
        )
        .await;
    assert_scim_error(&r, 404, None);
    let r = s
        .call_with(Method::DELETE, &format!("/Users/{u}"), None, &tok, &[])
        .await;
    assert_scim_error(&r, 404, None);
    assert_eq!(ids(&s.get("/Users").await.body), [u]);
}

#[tokio::test]
async fn missing_or_invalid_tokens_are_401_with_www_authenticate() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let u = s.user("alice").await;
    let url = format!("{}/Users/{u}", s.base());
    let client = &s.client;
    for req in [
        client.get(&url),
        client.get(&url).header("authorization", "Bearer"),
        client
            .get(&url)
            .header("authorization", "Basic dXNlcjpwYXNz"),
        client.get(&url).bearer_auth("rst_nope"),
        client.delete(&url).bearer_auth(format!("{}x", s.token)),
        client.get(format!("{}/Users", s.base())),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let www = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(www.starts_with("Bearer"), "{www}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "401");
    }
    // The user is still there.
    assert_eq!(s.get(&format!("/Users/{u}")).await.status, StatusCode::OK);
    // A token revoked elsewhere (another instance, the CLI: straight in the
    // database here) stops working within token_cache_secs.
    let tokens = s.store.list_tokens(&s.directory).await.unwrap();
    assert!(
        s.store
            .revoke_token(&roster_store::Actor::Cli, &tokens[0].id)
            .await
            .unwrap()
    );
    let ttl = roster_server::ServerConfig::default().token_cache_secs;
    tokio::time::sleep(std::time::Duration::from_secs_f64(ttl + 0.1)).await;
    assert_scim_error(&s.get("/Users").await, 401, None);
}
