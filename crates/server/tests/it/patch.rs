//! PATCH (RFC 7644 §3.5.2) against the running server.

use reqwest::StatusCode;
use roster_server::ServerConfig;
use serde_json::{Value, json};

use crate::support::{Reply, TestServer, assert_scim_error, enc};

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn ops(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

async fn patch(s: &TestServer, path: &str, o: Value) -> Reply {
    s.patch(path, ops(o)).await
}

async fn new_user(s: &TestServer) -> String {
    s.create(
        "/Users",
        json!({
            "userName": "pat",
            "name": {"givenName": "Pat", "familyName": "Smith"},
            "active": true,
            "emails": [
                {"value": "pat@work.com", "type": "work", "primary": true},
                {"value": "pat@home.com", "type": "home"}
            ]
        }),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn member_ids(body: &Value) -> Vec<String> {
    let mut v: Vec<String> = body
        .get("members")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).clone()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn add_replace_remove_with_paths() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = new_user(&s).await;
    let p = format!("/Users/{id}");
    let r = patch(
        &s,
        &p,
        json!([
            {"op": "add", "path": "title", "value": "Boss"},
            {"op": "replace", "path": "name.givenName", "value": "Patricia"},
            {"op": "remove", "path": "name.familyName"},
            {"op": "add", "path": "phoneNumbers", "value": [{"value": "555", "type": "work"}]},
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.headers["etag"], "W/\"2\"");
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");
    assert_eq!(r.body["title"], "Boss");
    assert_eq!(r.body["name"], json!({"givenName": "Patricia"}));
    assert_eq!(r.body["phoneNumbers"][0]["value"], "555");
    // The response is what a GET shows.
    let g = s.get(&p).await;
    assert_eq!(g.body, r.body);
}

#[tokio::test]
async fn pathless_add_and_replace() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = new_user(&s).await;
    let p = format!("/Users/{id}");
    let r = patch(
        &s,
        &p,
        json!([{"op": "replace", "value": {"active": false, "displayName": "P", "name": {"givenName": "X"}}}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(r.body["displayName"], "P");
    // replace of a complex attribute replaces its sub-attributes given, keeps the rest.
    assert_eq!(r.body["name"]["givenName"], "X");
    let r = patch(
        &s,
        &p,
        json!([{"op": "add", "value": {"nickName": "pp", ENT: {"department": "D"}, format!("{ENT}:costCenter"): "C"}}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["nickName"], "pp");
    assert_eq!(r.body[ENT]["department"], "D");
    assert_eq!(r.body[ENT]["costCenter"], "C");
    assert!(r.body["schemas"].as_array().unwrap().contains(&json!(ENT)));
    // Removing the last extension attribute drops the extension from schemas.
    let r = patch(
        &s,
        &p,
        json!([{"op": "remove", "path": format!("{ENT}:department")}, {"op": "remove", "path": format!("{ENT}:costCenter")}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body.get(ENT).is_none());
    assert!(!r.body["schemas"].as_array().unwrap().contains(&json!(ENT)));
}

#[tokio::test]
async fn entra_style_capitalised_ops_and_string_booleans() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = new_user(&s).await;
    let p = format!("/Users/{id}");
    let r = patch(
        &s,
        &p,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["active"], false);
    let r = patch(&s, &p, json!([{"op": "Add", "value": {"active": "True"}}])).await;
    assert_eq!(r.body["active"], true);
    let f = format!("/Users?filter={}", enc("active eq true"));
    assert_eq!(s.ids(&f).await, [id.as_str()]);
    // Operations and op may be spelled in other cases too.
    let r = s
        .patch(
            &p,
            json!({"schemas": [PATCH], "operations": [{"OP": "REMOVE", "PATH": "active"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body.get("active").is_none());
}

#[tokio::test]
async fn value_filter_paths() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = new_user(&s).await;
    let p = format!("/Users/{id}");
    let r = patch(
        &s,
        &p,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@work.com"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let emails = r.body["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 2);
    let work = emails.iter().find(|e| e["type"] == "work").unwrap();
    assert_eq!(work["value"], "new@work.com");
    assert_eq!(work["primary"], true);
    // The index follows: the new address is searchable, the old one is not.
    let f = |v: &str| format!("/Users?filter={}", enc(&format!("emails.value eq \"{v}\"")));
    assert_eq!(s.ids(&f("NEW@work.com")).await, [id.as_str()]);
    assert!(s.ids(&f("pat@work.com")).await.is_empty());

    let r = patch(
        &s,
        &p,
        json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
    )
    .await;
    assert_eq!(r.body["emails"].as_array().unwrap().len(), 1);
    assert!(s.ids(&f("pat@home.com")).await.is_empty());

    // A filter that matches nothing, with eq tests and a sub-attribute, creates the element.
    let r = patch(
        &s,
        &p,
        json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "o@x.com"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(
        r.body["emails"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "other" && e["value"] == "o@x.com")
    );
}

#[tokio::test]
async fn errors_no_target_invalid_path_mutability() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = new_user(&s).await;
    let p = format!("/Users/{id}");
    let cases = [
        (
            json!([{"op": "replace", "path": "emails[type co \"x\"].value", "value": "a"}]),
            "noTarget",
        ),
        (
            json!([{"op": "replace", "path": "nosuch", "value": "a"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "emails[", "value": "a"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "emails[nosuch eq \"x\"].value", "value": "a"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "meta.created", "value": "2000-01-01T00:00:00Z"}]),
            "mutability",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "active", "value": "maybe"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "move", "path": "title", "value": "x"}]),
            "invalidSyntax",
        ),
    ];
    for (o, scim_type) in cases {
        let r = patch(&s, &p, o.clone()).await;
        assert_scim_error(&r, 400, Some(scim_type));
        assert!(r.body["detail"].is_string(), "{o}");
    }
    // Bad envelopes.
    let r = s
        .patch(
            &p,
            json!({"schemas": ["urn:wrong"], "Operations": [{"op": "remove", "path": "title"}]}),
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidSyntax"));
    let r = s
        .patch(&p, json!({"schemas": [PATCH], "Operations": []}))
        .await;
    assert_scim_error(&r, 400, Some("invalidSyntax"));
    // A failing operation leaves everything as it was, earlier operations included.
    let r = patch(
        &s,
        &p,
        json!([{"op": "add", "path": "title", "value": "T"}, {"op": "replace", "path": "nosuch", "value": 1}]),
    )
    .await;
    assert_scim_error(&r, 400, Some("invalidPath"));
    let g = s.get(&p).await;
    assert!(g.body.get("title").is_none());
    assert_eq!(g.body["meta"]["version"], "W/\"1\"");
    assert_scim_error(
        &patch(
            &s,
            "/Users/nope",
            json!([{"op": "remove", "path": "title"}]),
        )
        .await,
        404,
        None,
    );
}

#[tokio::test]
async fn a_patch_that_changes_nothing_keeps_the_version() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = new_user(&s).await;
    let p = format!("/Users/{id}");
    let before = s.get(&p).await.body;
    for o in [
        json!([{"op": "replace", "path": "active", "value": true}]),
        json!([{"op": "remove", "path": "title"}]),
        json!([{"op": "replace", "value": {"userName": "pat", "id": id, "meta": {"resourceType": "User"}}}]),
        json!([{"op": "add", "path": "emails", "value": [{"value": "pat@home.com", "type": "home"}]}]),
    ] {
        let r = patch(&s, &p, o.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{o}: {:?}", r.body);
        assert_eq!(r.headers["etag"], "W/\"1\"", "{o}");
        assert_eq!(r.body, before, "{o}");
    }
}

#[tokio::test]
async fn patch_response_honours_attributes() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = new_user(&s).await;
    let r = patch(
        &s,
        &format!("/Users/{id}?attributes=title"),
        json!([{"op": "add", "path": "title", "value": "T"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["schemas", "id", "title"], "{:?}", r.body);
    let r = patch(
        &s,
        &format!("/Users/{id}?excludedAttributes=emails,name"),
        json!([{"op": "add", "path": "nickName", "value": "n"}]),
    )
    .await;
    assert!(r.body.get("emails").is_none() && r.body.get("name").is_none());
    assert_eq!(r.body["nickName"], "n");
}

#[tokio::test]
async fn group_members_add_remove_replace() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let a = s.user("a").await;
    let b = s.user("b").await;
    let c = s.user("c").await;
    let g = s.group("G", &[]).await;
    let p = format!("/Groups/{g}");

    let r = patch(
        &s,
        &p,
        json!([{"op": "add", "path": "members", "value": [{"value": a}, {"value": b}]}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(member_ids(&r.body), sorted(&[&a, &b]));
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");
    // Adding an existing member again changes nothing.
    let r = patch(
        &s,
        &p,
        json!([{"op": "add", "path": "members", "value": [{"value": a}]}]),
    )
    .await;
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");

    // Pathless add of members (Okta).
    let r = patch(
        &s,
        &p,
        json!([{"op": "add", "value": {"members": [{"value": c}]}}]),
    )
    .await;
    assert_eq!(member_ids(&r.body), sorted(&[&a, &b, &c]));

    // members[value eq "id"]
    let r = patch(
        &s,
        &p,
        json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(member_ids(&r.body), sorted(&[&b, &c]));

    // Entra: remove with a value list removes only those.
    let r = patch(
        &s,
        &p,
        json!([{"op": "Remove", "path": "members", "value": [{"value": b}]}]),
    )
    .await;
    assert_eq!(member_ids(&r.body), sorted(&[&c]));

    // Replace sets the exact list.
    let r = patch(
        &s,
        &p,
        json!([{"op": "replace", "path": "members", "value": [{"value": a}, {"value": b}]}]),
    )
    .await;
    assert_eq!(member_ids(&r.body), sorted(&[&a, &b]));

    // A filter on display.
    let r = patch(
        &s,
        &p,
        json!([{"op": "remove", "path": "members[display eq \"A\"]"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(member_ids(&r.body), sorted(&[&b]));

    // remove without a value empties the group.
    let r = patch(&s, &p, json!([{"op": "remove", "path": "members"}])).await;
    assert!(r.body.get("members").is_none(), "{:?}", r.body);

    // Unknown member: 400 and nothing changes.
    let r = patch(
        &s,
        &p,
        json!([{"op": "add", "path": "members", "value": [{"value": a}, {"value": "0190dead-beef-7000-8000-000000000000"}]}]),
    )
    .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert!(s.get(&p).await.body.get("members").is_none());

    // members.<sub> and add through a filter are refused.
    let r = patch(
        &s,
        &p,
        json!([{"op": "replace", "path": "members.display", "value": "x"}]),
    )
    .await;
    assert_scim_error(&r, 400, Some("mutability"));
    let r = patch(
        &s,
        &p,
        json!([{"op": "add", "path": format!("members[value eq \"{a}\"]"), "value": {"value": a}}]),
    )
    .await;
    assert_scim_error(&r, 400, Some("invalidPath"));
}

#[tokio::test]
async fn member_display_follows_the_member() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let u = s
        .create("/Users", json!({"userName": "u", "displayName": "Old"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let inner = s.group("Inner", &[]).await;
    let g = s.group("G", &[&u, &inner]).await;
    patch(
        &s,
        &format!("/Users/{u}"),
        json!([{"op": "replace", "path": "displayName", "value": "New"}]),
    )
    .await;
    let r = s.get(&format!("/Groups/{g}")).await;
    let members = r.body["members"].as_array().unwrap();
    let user = members.iter().find(|m| m["value"] == u.as_str()).unwrap();
    assert_eq!(user["display"], "New");
    assert_eq!(user["type"], "User");
    let group = members
        .iter()
        .find(|m| m["value"] == inner.as_str())
        .unwrap();
    assert_eq!(group["display"], "Inner");
    assert_eq!(group["type"], "Group");
    assert_eq!(
        group["$ref"],
        format!("{}/Groups/{inner}", s.base()).as_str()
    );
    // excludedAttributes=members on groups.
    let r = s
        .get(&format!("/Groups/{g}?excludedAttributes=members"))
        .await;
    assert!(r.body.get("members").is_none());
    assert_eq!(r.body["displayName"], "G");
    let r = s.get("/Groups?excludedAttributes=members").await;
    assert!(
        r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g.get("members").is_none())
    );
}

#[tokio::test]
async fn group_patch_can_answer_204() {
    let Some(s) = TestServer::start_with(ServerConfig {
        group_patch_no_content: true,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let u = s.user("u").await;
    let g = s.group("G", &[]).await;
    let r = patch(
        &s,
        &format!("/Groups/{g}"),
        json!([{"op": "add", "path": "members", "value": [{"value": u}]}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.headers["etag"], "W/\"2\"");
    assert_eq!(member_ids(&s.get(&format!("/Groups/{g}")).await.body), [u]);
}

#[tokio::test]
async fn patching_password_stores_a_new_hash_and_never_returns_it() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = new_user(&s).await;
    let r = patch(
        &s,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "password", "value": "s3cret"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");
    // Same password again: no change.
    let r = patch(
        &s,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "value": {"password": "s3cret"}}]),
    )
    .await;
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");
    let r = s.get(&format!("/Users/{id}?attributes=password")).await;
    assert!(r.body.get("password").is_none());
}
