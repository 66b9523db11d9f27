//! A directory's custom-attribute mapping: what `custom_attributes` of user
//! events and of the app-facing users API holds.

use reqwest::{Method, StatusCode};
use roster_server::{ExtensionConfig, ServerConfig};
use serde_json::{Value, json};

use super::api_directories::{admin_key, api};
use crate::support::TestServer;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ACME: &str = "urn:acme:params:scim:schemas:extension:acme:2.0:User";

/// A server whose users have the Enterprise extension and Acme's `costCenter`.
async fn server() -> Option<(TestServer, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.json");
    let ext = json!({"id": ACME, "name": "AcmeUser", "attributes": [
        {"name": "costCenter", "type": "string"},
        {"name": "badge", "type": "string", "mutability": "readOnly"}
    ]});
    std::fs::write(&file, ext.to_string()).unwrap();
    let s = TestServer::start_with(ServerConfig {
        extensions: vec![ExtensionConfig {
            file,
            resource_type: "User".into(),
            required: false,
        }],
        ..ServerConfig::default()
    })
    .await?;
    Some((s, dir))
}

fn mapping() -> Value {
    json!({
        "department": format!("{ENT}:department"),
        "cost_center": format!("{ACME}:costCenter"),
        "manager_id": format!("{ENT}:manager.value"),
        "first": "name.givenName",
    })
}

fn user(name: &str, department: &str) -> Value {
    json!({
        "userName": name,
        "name": {"givenName": "Barbara"},
        ENT: {"department": department, "employeeNumber": "42", "manager": {"value": "m-1"}},
        ACME: {"costCenter": "CC-1"}
    })
}

async fn settings(s: &TestServer, key: &str, dir: &str) -> Value {
    let r = api(
        s,
        key,
        Method::GET,
        &format!("/directories/{dir}/settings"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

async fn put_settings(s: &TestServer, key: &str, dir: &str, body: Value) -> crate::support::Reply {
    api(
        s,
        key,
        Method::PUT,
        &format!("/directories/{dir}/settings"),
        Some(body),
    )
    .await
}

/// Every event but the directories' activations, oldest first, once `done`
/// holds for them (at most 5 s): on PostgreSQL an event shows only once no
/// Roster transaction that began before it is still running, so a
/// background write can hold the newest back for a moment.
async fn events(s: &TestServer, key: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let after_activation = |data: &[Value]| -> Vec<Value> {
        data.iter()
            .filter(|e| e["event"] != "dsync.activated")
            .cloned()
            .collect()
    };
    let data = super::api_directories::events_until(s, key, "/events?limit=1000", |d| {
        done(&after_activation(d))
    })
    .await;
    after_activation(&data)
}

fn some(e: &[Value]) -> bool {
    !e.is_empty()
}

async fn app_user(s: &TestServer, key: &str, id: &str) -> Value {
    let r = api(s, key, Method::GET, &format!("/users/{id}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

#[tokio::test]
async fn without_a_mapping_custom_attributes_are_the_enterprise_attributes() {
    let Some((s, _dir)) = server().await else {
        return;
    };
    let key = admin_key(&s).await;
    let got = settings(&s, &key, &s.directory).await;
    assert_eq!(
        got,
        json!({"directory_id": s.directory, "deactivation": "update", "custom_attributes": null})
    );
    let id = s.create("/Users", user("a", "Tours")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let default = json!({"department": "Tours", "employee_number": "42", "manager_id": "m-1"});
    assert_eq!(app_user(&s, &key, &id).await["custom_attributes"], default);
    assert_eq!(
        events(&s, &key, some).await[0]["data"]["custom_attributes"],
        default
    );
}

#[tokio::test]
async fn a_mapping_shapes_new_events_and_the_users_api_but_never_old_events() {
    let Some((s, _dir)) = server().await else {
        return;
    };
    let key = admin_key(&s).await;
    let a = s.create("/Users", user("a", "Tours")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = put_settings(
        &s,
        &key,
        &s.directory,
        json!({"custom_attributes": mapping()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Canonical spelling; the deactivation setting is left as it was.
    assert_eq!(r.body["custom_attributes"], mapping());
    assert_eq!(r.body["deactivation"], "update");
    assert_eq!(settings(&s, &key, &s.directory).await, r.body);
    let mapped = json!({"department": "Tours", "cost_center": "CC-1", "manager_id": "m-1", "first": "Barbara"});
    assert_eq!(app_user(&s, &key, &a).await["custom_attributes"], mapped);
    let list = api(
        &s,
        &key,
        Method::GET,
        &format!("/directories/{}/users", s.directory),
        None,
    )
    .await;
    assert_eq!(list.body["data"][0]["custom_attributes"], mapped);

    // Setting a mapping writes no event, and the event written before keeps its data.
    let before = events(&s, &key, some).await;
    assert_eq!(before.len(), 1);
    assert_eq!(
        before[0]["data"]["custom_attributes"],
        json!({"department": "Tours", "employee_number": "42", "manager_id": "m-1"})
    );

    // An update reports the mapped attributes, and what changed of them.
    let r = s
        .patch(
            &format!("/Users/{a}"),
            json!({"Operations": [{"op": "replace", "path": format!("{ENT}:department"), "value": "Sales"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Creates in one transaction (a bulk request), a membership, a user with no values.
    let ops: Vec<Value> = (0..3)
        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": user(&format!("bulk{i}"), "Bulk")}))
        .chain([json!({"method": "POST", "path": "/Users", "bulkId": "bare", "data": {"userName": "bare"}})])
        .collect();
    let r = s
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    s.group("Guides", &[&a]).await;

    let all = events(&s, &key, |e| {
        e.iter().any(|x| x["event"] == "dsync.group.user_added")
    })
    .await;
    assert_eq!(all[0], before[0], "an event never changes");
    let updated = &all[1];
    assert_eq!(updated["event"], "dsync.user.updated");
    assert_eq!(updated["data"]["custom_attributes"]["department"], "Sales");
    assert_eq!(
        updated["data"]["previous_attributes"]["custom_attributes"],
        mapped
    );
    let created: Vec<&Value> = all
        .iter()
        .filter(|e| e["event"] == "dsync.user.created")
        .skip(1)
        .collect();
    assert_eq!(created.len(), 4);
    for e in &created[..3] {
        assert_eq!(
            e["data"]["custom_attributes"],
            json!({"department": "Bulk", "cost_center": "CC-1", "manager_id": "m-1", "first": "Barbara"})
        );
    }
    assert_eq!(
        created[3]["data"]["custom_attributes"],
        json!({"department": null, "cost_center": null, "manager_id": null, "first": null})
    );
    let added = all
        .iter()
        .find(|e| e["event"] == "dsync.group.user_added")
        .unwrap();
    assert_eq!(
        added["data"]["user"]["custom_attributes"]["department"],
        "Sales"
    );
    assert_eq!(
        added["data"]["user"]["custom_attributes"]["cost_center"],
        "CC-1"
    );

    // Another directory keeps the default.
    let (other, token) = s.other_directory().await;
    let url = format!("http://{}/scim/v2/{other}/Users", s.addr);
    let r = s
        .call_with(Method::POST, &url, Some(user("o", "Other")), &token, &[])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let o = app_user(&s, &key, r.body["id"].as_str().unwrap()).await;
    assert_eq!(o["custom_attributes"]["employee_number"], "42");

    // Removing the mapping restores the default; again no event.
    let count = events(&s, &key, |e| {
        e.iter()
            .any(|x| x["event"] == "dsync.user.created" && x["data"]["username"] == "o")
    })
    .await
    .len();
    let r = put_settings(&s, &key, &s.directory, json!({"custom_attributes": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["custom_attributes"].is_null());
    assert_eq!(
        app_user(&s, &key, &a).await["custom_attributes"],
        json!({"department": "Sales", "employee_number": "42", "manager_id": "m-1"})
    );
    assert_eq!(events(&s, &key, |_| true).await.len(), count);
}

#[tokio::test]
async fn a_mapping_is_checked_against_the_schemas() {
    let Some((s, _dir)) = server().await else {
        return;
    };
    let key = admin_key(&s).await;
    let dir = s.directory.clone();
    for (body, named) in [
        (
            json!({"custom_attributes": {"x": format!("{ENT}:costCentre")}}),
            "costCentre",
        ),
        (
            json!({"custom_attributes": {"x": "urn:acme:nope:2.0:User:costCenter"}}),
            "urn:acme:nope",
        ),
        (
            json!({"custom_attributes": {"x": format!("{ACME}:badge")}}),
            "badge",
        ),
        (json!({"custom_attributes": {"x": "password"}}), "password"),
        (json!({"custom_attributes": {"x": "groups"}}), "groups"),
        (json!({"custom_attributes": {"x": 7}}), "\"x\""),
        (
            json!({"custom_attributes": ["department"]}),
            "custom_attributes",
        ),
        (json!({"custom_attributes": {}, "colour": "blue"}), "colour"),
        (json!({"deactivation": "archive"}), "deactivation"),
        (json!({}), "custom_attributes"),
    ] {
        let r = put_settings(&s, &key, &dir, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        assert_eq!(r.body["error"], "invalid_request", "{:?}", r.body);
        let message = r.body["message"].as_str().unwrap();
        assert!(message.contains(named), "{body}: {message}");
    }
    // Nothing was changed by the refused requests, even in part.
    assert!(settings(&s, &key, &dir).await["custom_attributes"].is_null());
    let r = put_settings(
        &s,
        &key,
        &dir,
        json!({"deactivation": "delete", "custom_attributes": {"x": "nope"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(settings(&s, &key, &dir).await["deactivation"], "update");
    // Both at once, and an empty mapping (custom_attributes is then always {}).
    let r = put_settings(
        &s,
        &key,
        &dir,
        json!({"deactivation": "delete", "custom_attributes": {}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["deactivation"], "delete");
    assert_eq!(r.body["custom_attributes"], json!({}));
    let id = s.create("/Users", user("a", "Tours")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app_user(&s, &key, &id).await["custom_attributes"],
        json!({})
    );
    // Unknown directories.
    let r = put_settings(&s, &key, "nope", json!({"custom_attributes": mapping()})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = api(&s, &key, Method::GET, "/directories/nope/settings", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
}

/// A PostgreSQL database at schema version 1 (before `custom_attributes`)
/// is upgraded in place when Roster starts on it.
#[tokio::test]
async fn a_postgres_schema_1_database_is_upgraded() {
    use crate::support::{Place, StoreKind, place, postgres_url};
    if crate::STORE != StoreKind::Postgres {
        return;
    }
    let Some(place) = place() else {
        return;
    };
    let Place::Postgres(schema) = &place else {
        unreachable!()
    };
    let schema = schema.name();
    let setup = format!(
        "SET search_path TO \"{schema}\", public;
         {}
         CREATE TABLE roster_schema (version BIGINT NOT NULL);
         INSERT INTO roster_schema VALUES (1);
         INSERT INTO directories (id, name, created_at, deactivation) VALUES ('d', 'old', 0, 'delete');",
        include_str!("../../../store/src/postgres/schema.sql")
    );
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&postgres_url(), postgres::NoTls).unwrap();
        c.batch_execute(&setup).unwrap();
    })
    .await
    .unwrap();
    let reg = std::sync::Arc::new(roster_scim::schema::SchemaRegistry::core());
    let store = place.open(reg).await;
    let s = store.settings("d").await.unwrap().unwrap();
    assert_eq!(s.deactivation, roster_store::Deactivation::Delete);
    assert_eq!(s.custom_attributes, None);
    let change = roster_store::SettingsChange {
        custom_attributes: Some(Some(
            roster_store::events::CustomAttributes::parse(
                &roster_scim::schema::SchemaRegistry::core(),
                &json!({"t": "title"}),
            )
            .unwrap(),
        )),
        ..Default::default()
    };
    let s = store
        .update_settings(&roster_store::Actor::Cli, "d", change)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.custom_attributes.unwrap().to_json(),
        json!({"t": "title"})
    );
}
