//! `attributes` / `excludedAttributes` on GET, list and both searches.

use serde_json::{Value, json};

use crate::support::TestServer;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

async fn user(s: &TestServer) -> String {
    s.create(
        "/Users",
        json!({
            "userName": "proj",
            "password": "pw",
            "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": "p@x.com", "type": "work"}],
            ENT: {"department": "D", "costCenter": "C"}
        }),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// The same projection through a GET by id, a GET list, /Users/.search and /.search.
async fn shown(s: &TestServer, id: &str, query: &str, search: Value) -> Value {
    let one = s.get(&format!("/Users/{id}?{query}")).await.body;
    let list = s.get(&format!("/Users?{query}")).await.body;
    assert_eq!(list["Resources"][0], one, "list vs get for {query}");
    let mut body = search;
    body["schemas"] = json!([SEARCH]);
    let r = s.post("/Users/.search", body.clone()).await;
    assert_eq!(r.body["Resources"][0], one, "/Users/.search for {body}");
    let r = s.post("/.search", body.clone()).await;
    assert_eq!(r.body["Resources"][0], one, "/.search for {body}");
    one
}

#[tokio::test]
async fn attributes_keep_id_and_schemas_and_never_password() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = user(&s).await;
    let b = shown(
        &s,
        &id,
        "attributes=userName",
        json!({"attributes": ["userName"]}),
    )
    .await;
    assert_eq!(keys(&b), ["schemas", "id", "userName"]);
    let b = shown(
        &s,
        &id,
        "attributes=name.givenName,password",
        json!({"attributes": ["name.givenName", "password"]}),
    )
    .await;
    assert_eq!(keys(&b), ["schemas", "id", "name"]);
    assert_eq!(b["name"], json!({"givenName": "G"}));
    let b = shown(
        &s,
        &id,
        "attributes=emails.value",
        json!({"attributes": "emails.value"}),
    )
    .await;
    assert_eq!(b["emails"], json!([{"value": "p@x.com"}]));
    let b = shown(
        &s,
        &id,
        &format!("attributes={ENT}:department"),
        json!({"attributes": [format!("{ENT}:department")]}),
    )
    .await;
    assert_eq!(b[ENT], json!({"department": "D"}));
    let b = shown(
        &s,
        &id,
        &format!("attributes={ENT}"),
        json!({"attributes": [ENT]}),
    )
    .await;
    assert_eq!(b[ENT], json!({"department": "D", "costCenter": "C"}));
    assert!(b.get("userName").is_none());
    let b = shown(
        &s,
        &id,
        "attributes=meta.lastModified",
        json!({"attributes": ["meta.lastModified"]}),
    )
    .await;
    assert_eq!(keys(&b["meta"]), ["lastModified"]);
    // Case-insensitive names.
    let b = shown(
        &s,
        &id,
        "attributes=USERNAME",
        json!({"attributes": ["USERNAME"]}),
    )
    .await;
    assert_eq!(b["userName"], "proj");
}

#[tokio::test]
async fn excluded_attributes() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = user(&s).await;
    let b = shown(
        &s,
        &id,
        "excludedAttributes=id,schemas,emails",
        json!({"excludedAttributes": ["id", "schemas", "emails"]}),
    )
    .await;
    assert!(b.get("id").is_some() && b.get("schemas").is_some());
    assert!(b.get("emails").is_none());
    assert_eq!(b["userName"], "proj");
    let b = shown(
        &s,
        &id,
        "excludedAttributes=name.givenName",
        json!({"excludedAttributes": ["name.givenName"]}),
    )
    .await;
    assert_eq!(b["name"], json!({"familyName": "F"}));
    let b = shown(
        &s,
        &id,
        &format!("excludedAttributes={ENT}"),
        json!({"excludedAttributes": [ENT]}),
    )
    .await;
    assert!(b.get(ENT).is_none());
    // Both given: attributes wins.
    let b = shown(
        &s,
        &id,
        "attributes=userName&excludedAttributes=userName",
        json!({"attributes": ["userName"], "excludedAttributes": ["userName"]}),
    )
    .await;
    assert_eq!(b["userName"], "proj");
    // Unknown names are ignored.
    let b = shown(
        &s,
        &id,
        "attributes=userName,urn:other:vendor:thing",
        json!({"attributes": ["userName", "urn:other:vendor:thing"]}),
    )
    .await;
    assert_eq!(keys(&b), ["schemas", "id", "userName"]);
}

#[tokio::test]
async fn group_members_projection() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let u = s.user("m").await;
    let g = s.group("G", &[&u]).await;
    let r = s
        .get(&format!("/Groups/{g}?attributes=members.value"))
        .await;
    assert_eq!(r.body["members"], json!([{"value": u}]));
    let r = s.get(&format!("/Groups/{g}?attributes=displayName")).await;
    assert!(r.body.get("members").is_none());
    let r = s
        .post(
            "/Groups/.search",
            json!({"schemas": [SEARCH], "excludedAttributes": ["members"]}),
        )
        .await;
    assert!(r.body["Resources"][0].get("members").is_none());
    assert_eq!(r.body["Resources"][0]["displayName"], "G");
    let r = s.get(&format!("/Users/{u}?attributes=groups")).await;
    assert_eq!(r.body["groups"][0]["value"], g.as_str());
    let r = s
        .get(&format!("/Users/{u}?excludedAttributes=groups"))
        .await;
    assert!(r.body.get("groups").is_none());
}
