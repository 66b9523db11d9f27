//! Users and Groups: create, read, replace, delete, uniqueness, the Enterprise extension.

use reqwest::StatusCode;
use roster_store::Kind;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_scim_error, enc};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn full_user() -> Value {
    json!({
        "schemas": [USER, ENT],
        "userName": "bjensen",
        "externalId": "ext-1",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs",
        "active": true,
        "password": "t1meMa$heen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@home.example", "type": "home"}
        ],
        ENT: {"employeeNumber": "701984", "department": "Tour Operations"}
    })
}

async fn stored_password(s: &TestServer, id: &str) -> Option<String> {
    s.store
        .get(&s.directory, Kind::User, id)
        .await
        .unwrap()
        .unwrap()
        .doc
        .get("password")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[tokio::test]
async fn create_user_answers_201_with_location_etag_and_meta() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s.post("/Users", full_user()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let b = &r.body;
    let id = b["id"].as_str().unwrap();
    let location = format!("{}/Users/{id}", s.base());
    assert_eq!(r.headers["location"], location.as_str());
    assert_eq!(b["meta"]["location"], location.as_str());
    assert_eq!(r.headers["etag"], "W/\"1\"");
    assert_eq!(b["meta"]["version"], "W/\"1\"");
    assert_eq!(b["meta"]["resourceType"], "User");
    assert_eq!(b["meta"]["created"], b["meta"]["lastModified"]);
    let created = b["meta"]["created"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.len() == "2024-01-01T00:00:00.000Z".len(),
        "RFC 3339 UTC with milliseconds: {created}"
    );
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/scim+json")
    );
    assert_eq!(b["schemas"], json!([USER, ENT]));
    assert_eq!(b["userName"], "bjensen");
    assert_eq!(b["name"]["familyName"], "Jensen");
    assert_eq!(b[ENT]["employeeNumber"], "701984");
    assert!(b.get("password").is_none());
    // The password is kept (hashed), only never shown.
    let hash = stored_password(&s, id).await.unwrap();
    assert!(hash.starts_with("$argon2"), "{hash}");

    let g = s.get(&format!("/Users/{id}")).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.headers["etag"], "W/\"1\"");
    assert_eq!(&g.body, b);
}

#[tokio::test]
async fn create_without_schemas_and_with_application_json_works() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s
        .raw(
            reqwest::Method::POST,
            "/Users",
            br#"{"userName":"plain"}"#.to_vec(),
            "application/json",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["schemas"], json!([USER]));
}

#[tokio::test]
async fn put_replaces_ignores_read_only_and_keeps_password() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let created = s.create("/Users", full_user()).await;
    let id = created["id"].as_str().unwrap();
    let hash = stored_password(&s, id).await.unwrap();

    let r = s
        .put(
            &format!("/Users/{id}"),
            json!({
                "schemas": [USER],
                "id": "not-the-id",
                "meta": {"resourceType": "Group", "created": "2000-01-01T00:00:00Z"},
                "groups": [],
                "userName": "bjensen",
                "displayName": "Barbara J",
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let b = &r.body;
    assert_eq!(b["id"], id);
    assert_eq!(b["meta"]["resourceType"], "User");
    assert_eq!(b["meta"]["created"], created["meta"]["created"]);
    assert_eq!(b["meta"]["version"], "W/\"2\"");
    assert_eq!(r.headers["etag"], "W/\"2\"");
    assert!(b["meta"]["lastModified"].as_str() > created["meta"]["lastModified"].as_str());
    assert_eq!(b["displayName"], "Barbara J");
    // Replace: what the body leaves out is gone.
    for gone in ["name", "emails", "externalId", "active", ENT, "groups"] {
        assert!(b.get(gone).is_none(), "{gone} survived a PUT: {b:?}");
    }
    assert_eq!(b["schemas"], json!([USER]));
    assert_eq!(
        stored_password(&s, id).await.as_deref(),
        Some(hash.as_str())
    );

    // Resending the same password changes nothing; a new one changes the hash.
    let body =
        json!({"userName": "bjensen", "displayName": "Barbara J", "password": "t1meMa$heen"});
    let r = s.put(&format!("/Users/{id}"), body).await;
    assert_eq!(r.body["meta"]["version"], "W/\"2\"", "{:?}", r.body);
    let body = json!({"userName": "bjensen", "displayName": "Barbara J", "password": "other"});
    let r = s.put(&format!("/Users/{id}"), body).await;
    assert_eq!(r.body["meta"]["version"], "W/\"3\"");
    assert_ne!(stored_password(&s, id).await.unwrap(), hash);
}

#[tokio::test]
async fn put_without_required_user_name_is_400_and_changes_nothing() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = s.user("keep").await;
    let r = s
        .put(&format!("/Users/{id}"), json!({"displayName": "x"}))
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    let g = s.get(&format!("/Users/{id}")).await;
    assert_eq!(g.body["userName"], "keep");
    assert_eq!(g.body["meta"]["version"], "W/\"1\"");
}

#[tokio::test]
async fn put_and_delete_of_a_missing_resource_are_404() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s
        .put(
            "/Users/0190dead-beef-7000-8000-000000000000",
            json!({"userName": "x"}),
        )
        .await;
    assert_scim_error(&r, 404, None);
    let r = s.delete("/Groups/nope").await;
    assert_scim_error(&r, 404, None);
    assert_eq!(s.ids("/Users").await.len(), 0);
}

#[tokio::test]
async fn delete_is_204_then_404() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let id = s.user("gone").await;
    let r = s.delete(&format!("/Users/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.body, Value::Null);
    assert_scim_error(&s.get(&format!("/Users/{id}")).await, 404, None);
    assert_scim_error(&s.delete(&format!("/Users/{id}")).await, 404, None);
    // The name is free again.
    s.user("gone").await;
}

#[tokio::test]
async fn user_name_is_unique_case_insensitively() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let a = s.user("Alice").await;
    let r = s.post("/Users", json!({"userName": "aLICE"})).await;
    assert_scim_error(&r, 409, Some("uniqueness"));
    let b = s.user("bob").await;
    let r = s
        .put(&format!("/Users/{b}"), json!({"userName": "ALICE"}))
        .await;
    assert_scim_error(&r, 409, Some("uniqueness"));
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "alice"}]
    });
    let r = s.patch(&format!("/Users/{b}"), patch).await;
    assert_scim_error(&r, 409, Some("uniqueness"));
    // A user may change the case of its own name.
    let r = s
        .put(&format!("/Users/{a}"), json!({"userName": "ALICE"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(s.ids("/Users").await.len(), 2);
    let r = s.get(&format!("/Users/{b}")).await;
    assert_eq!(r.body["userName"], "bob");
}

#[tokio::test]
async fn group_display_name_is_unique() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    s.group("Admins", &[]).await;
    let r = s.post("/Groups", json!({"displayName": "admins"})).await;
    assert_scim_error(&r, 409, Some("uniqueness"));
    let g = s.group("Other", &[]).await;
    let r = s
        .put(&format!("/Groups/{g}"), json!({"displayName": "ADMINS"}))
        .await;
    assert_scim_error(&r, 409, Some("uniqueness"));
    assert_eq!(s.ids("/Groups").await.len(), 2);
}

#[tokio::test]
async fn a_user_and_a_group_may_share_a_name() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    s.user("ops").await;
    s.group("ops", &[]).await;
}

#[tokio::test]
async fn group_lifecycle_with_members() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let u = s
        .create(
            "/Users",
            json!({"userName": "u1", "displayName": "User One"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .post(
            "/Groups",
            json!({"displayName": "Eng", "externalId": "g-ext", "members": [{"value": u}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let g = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["etag"], "W/\"1\"");
    assert_eq!(r.body["meta"]["resourceType"], "Group");
    assert_eq!(
        r.headers["location"],
        format!("{}/Groups/{g}", s.base()).as_str()
    );
    let m = &r.body["members"][0];
    assert_eq!(m["value"], u.as_str());
    assert_eq!(m["display"], "User One");
    assert_eq!(m["type"], "User");
    assert_eq!(m["$ref"], format!("{}/Users/{u}", s.base()).as_str());

    // The user shows its group.
    let ur = s.get(&format!("/Users/{u}")).await;
    assert_eq!(ur.body["groups"][0]["value"], g.as_str());
    assert_eq!(ur.body["groups"][0]["display"], "Eng");

    // PUT without members keeps them; with [] empties.
    let r = s
        .put(
            &format!("/Groups/{g}"),
            json!({"displayName": "Engineering"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    assert!(r.body.get("externalId").is_none());
    let r = s
        .put(
            &format!("/Groups/{g}"),
            json!({"displayName": "Engineering", "members": []}),
        )
        .await;
    assert!(r.body.get("members").is_none(), "{:?}", r.body);

    assert_eq!(s.delete(&format!("/Groups/{g}")).await.status, 204);
    assert_scim_error(&s.get(&format!("/Groups/{g}")).await, 404, None);
    assert!(
        s.get(&format!("/Users/{u}"))
            .await
            .body
            .get("groups")
            .is_none()
    );
}

#[tokio::test]
async fn group_with_a_nonexistent_member_is_400_and_not_stored() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s
        .post(
            "/Groups",
            json!({"displayName": "G", "members": [{"value": "0190dead-beef-7000-8000-000000000000"}]}),
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert!(s.ids("/Groups").await.is_empty());
}

#[tokio::test]
async fn deleting_a_user_removes_it_from_groups() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let a = s.user("a").await;
    let b = s.user("b").await;
    let g = s.group("G", &[&a, &b]).await;
    assert_eq!(s.delete(&format!("/Users/{a}")).await.status, 204);
    let r = s.get(&format!("/Groups/{g}")).await;
    let members: Vec<&str> = r.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members, [b.as_str()]);
    let f = format!(
        "/Groups?filter={}",
        enc(&format!("members.value eq \"{a}\""))
    );
    assert!(s.ids(&f).await.is_empty());
}

#[tokio::test]
async fn enterprise_extension_nested_and_urn_keyed() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let manager = s.user("boss").await;
    let r = s
        .post(
            "/Users",
            json!({
                "userName": "emp",
                format!("{ENT}:employeeNumber"): "42",
                format!("{ENT}:manager"): {"value": manager, "displayName": "ignored"},
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let b = &r.body;
    assert_eq!(b["schemas"], json!([USER, ENT]));
    assert_eq!(b[ENT]["employeeNumber"], "42");
    assert_eq!(b[ENT]["manager"]["value"], manager.as_str());
    assert!(b.get(format!("{ENT}:employeeNumber")).is_none());

    let f = format!(
        "/Users?filter={}",
        enc(&format!("{ENT}:employeeNumber eq \"42\""))
    );
    assert_eq!(s.ids(&f).await, [b["id"].as_str().unwrap()]);
    let f = format!(
        "/Users?filter={}",
        enc(&format!("{ENT}:manager.value eq \"{manager}\""))
    );
    assert_eq!(s.ids(&f).await, [b["id"].as_str().unwrap()]);

    // Both spellings at once must agree.
    let r = s
        .post(
            "/Users",
            json!({
                "userName": "emp2",
                ENT: {"employeeNumber": "1"},
                format!("{ENT}:employeeNumber"): "2",
            }),
        )
        .await;
    assert_scim_error(&r, 400, Some("invalidSyntax"));
}

#[tokio::test]
async fn password_is_stored_hashed_whatever_its_spelling() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s
        .post(
            "/Users",
            json!({"userName": "a", format!("{USER}:password"): "plain-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let hash = stored_password(&s, &id).await.unwrap();
    assert!(hash.starts_with("$argon2"), "stored in plaintext: {hash}");
    let r = s
        .put(
            &format!("/Users/{id}"),
            json!({"userName": "a", "PassWord": "plain-2"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let hash = stored_password(&s, &id).await.unwrap();
    assert!(hash.starts_with("$argon2"), "stored in plaintext: {hash}");

    let patch = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    for (i, op) in [
        json!({"op": "replace", "path": " password ", "value": "p3"}),
        json!({"op": "replace", "path": format!("{USER}:Password"), "value": "p4"}),
        json!({"op": "replace", "value": {format!("{USER}:password"): "p5"}}),
        json!({"op": "replace", "value": {USER: {"password": "p6"}}}),
        json!({"op": "add", "value": {"PASSWORD": "p7"}}),
    ]
    .into_iter()
    .enumerate()
    {
        let r = s
            .patch(
                &format!("/Users/{id}"),
                json!({"schemas": [patch], "Operations": [op.clone()]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{op}: {:?}", r.body);
        let now = stored_password(&s, &id).await.unwrap();
        assert!(now.starts_with("$argon2"), "{op} stored plaintext: {now}");
        assert_ne!(now, hash, "{op} did not change the password");
        assert_eq!(r.body["meta"]["version"], format!("W/\"{}\"", i + 3));
    }
}

#[tokio::test]
async fn create_with_attributes_still_sends_location_and_etag() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s
        .post("/Users?attributes=userName", json!({"userName": "loc"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(
        r.headers["location"],
        format!("{}/Users/{id}", s.base()).as_str()
    );
    assert_eq!(r.headers["etag"], "W/\"1\"");
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["schemas", "id", "userName"]);
}
