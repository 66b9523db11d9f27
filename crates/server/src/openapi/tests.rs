use std::collections::BTreeSet;

use roster_store::webhooks::{DeliveryOptions, DeliveryRecord, WebhookEndpoint, WebhookFormat};
use roster_store::{AdminKeyInfo, AdminKeyScope, AuditRecord, Kind, Stored};
use serde_json::{Value, json};

use super::*;

fn doc() -> Value {
    serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap()
}

/// (method, path) of every operation the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn the_document_is_openapi_3_1_with_a_bearer_scheme() {
    let text = ApiDoc::openapi().to_pretty_json().unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let scheme = &doc["components"]["securitySchemes"]["admin_key"];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"]),
        (&json!("http"), &json!("bearer"))
    );
    assert_eq!(doc["security"], json!([{"admin_key": []}]));
    // Every schema a path refers to is among the components.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for r in text
        .lines()
        .filter_map(|l| l.split("\"#/components/schemas/").nth(1))
    {
        let name = r.split('"').next().unwrap();
        assert!(
            schemas.contains_key(name),
            "{name} is referred to but not defined"
        );
    }
}

#[test]
fn every_route_served_is_documented_and_nothing_else() {
    let served: BTreeSet<(String, String)> = routes()
        .served()
        .iter()
        .map(|(m, p)| (m.as_str().to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        served.len(),
        routes().served().len(),
        "a route is added twice"
    );
    let documented = documented(&doc());
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served without a description: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "described but not served: {unserved:?}"
    );
    // The WorkOS routes the SDKs call, whatever the route table says.
    for (method, path) in [
        ("GET", "/directories"),
        ("GET", "/directories/{id}"),
        ("DELETE", "/directories/{id}"),
        ("GET", "/directory_users"),
        ("GET", "/directory_users/{id}"),
        ("GET", "/directory_groups"),
        ("GET", "/directory_groups/{id}"),
        ("GET", "/directories/{id}/users"),
        ("GET", "/directories/{id}/users/{user_id}"),
        ("GET", "/directories/{id}/groups"),
        ("GET", "/directories/{id}/groups/{group_id}"),
        ("GET", "/events"),
        ("GET", "/webhook_endpoints"),
        ("POST", "/webhook_endpoints"),
        ("PATCH", "/webhook_endpoints/{id}"),
        ("DELETE", "/webhook_endpoints/{id}"),
    ] {
        assert!(
            documented.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} is not described"
        );
    }
}

#[test]
fn every_operation_answers_its_errors_in_its_api_shape() {
    let doc = doc();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if path == "/api/v1/openapi.json" {
                continue;
            }
            let wanted = if path.starts_with("/api/v1/") {
                "#/components/schemas/ErrorBody"
            } else {
                "#/components/schemas/workos.Error"
            };
            for status in ["400", "401", "404"] {
                let schema = &op["responses"][status]["content"]["application/json"]["schema"];
                assert_eq!(schema["$ref"], wanted, "{method} {path} {status}");
            }
        }
    }
}

/// Holds a rendered object against the component schema `name`: it has
/// every required property and no property the schema lacks.
fn conforms(doc: &Value, name: &str, object: &Value) {
    let schema = &doc["components"]["schemas"][name];
    let properties = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {name}"));
    let keys: BTreeSet<&str> = object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let known: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        keys.is_subset(&known),
        "{name}: {:?} not in the schema",
        keys.difference(&known)
    );
    assert!(
        required.is_subset(&keys),
        "{name}: {:?} missing",
        required.difference(&keys)
    );
}

fn stored(kind: Kind, doc: Value) -> Stored {
    Stored {
        id: "0190c0de-0000-7000-8000-000000000001".into(),
        kind,
        doc,
        version: 1,
        created: 1_700_000_000_000,
        last_modified: 1_700_000_000_000,
    }
}

#[test]
fn objects_the_store_renders_match_their_schemas() {
    let doc = doc();
    let user = roster_store::events::user_data(
        "d1",
        &stored(
            Kind::User,
            json!({"userName": "b", "externalId": "x", "name": {"givenName": "B"},
                   "emails": [{"value": "b@x.test", "type": "work", "primary": true}]}),
        ),
        &[roster_store::events::GroupRef {
            id: "g1".into(),
            name: "Eng".into(),
        }],
        None,
    );
    conforms(&doc, "User", &user);
    conforms(&doc, "Email", &user["emails"][0]);
    conforms(&doc, "GroupRef", &user["groups"][0]);
    let group =
        roster_store::events::group_data("d1", &stored(Kind::Group, json!({"displayName": "Eng"})));
    conforms(&doc, "Group", &group);
    let event = roster_store::events::Event {
        seq: 1,
        directory_id: "d1".into(),
        event: "dsync.user.created".into(),
        created_at: 1_700_000_000_000,
        data: user,
    };
    conforms(&doc, "Event", &event.to_json());
    let key = AdminKeyInfo {
        id: "k1".into(),
        name: "app".into(),
        created_at: 1,
        revoked_at: None,
        rotated_at: Some(2),
        scope: AdminKeyScope {
            read_only: true,
            directories: Some(vec!["d1".into()]),
        },
    };
    conforms(&doc, "AdminKey", &key.to_json());
    let record = AuditRecord {
        seq: 1,
        at: 1,
        actor: "cli".into(),
        action: "directory.created".into(),
        target_type: "directory".into(),
        target_id: "d1".into(),
        directory_id: Some("d1".into()),
        details: json!({"name": "Acme"}),
    };
    conforms(&doc, "AuditRecord", &record.to_json());
    conforms(&doc, "AuditTarget", &record.to_json()["target"]);
    let endpoint = WebhookEndpoint {
        id: "w1".into(),
        url: "https://example.com/hook".into(),
        format: WebhookFormat::Roster,
        event_types: vec![],
        directory_id: None,
        enabled: true,
        state: "healthy".into(),
        cursor: 3,
        attempts: 0,
        first_failure: None,
        retry_at: 0,
        created_at: 1,
        updated_at: 1,
        options: DeliveryOptions::default(),
        sent_through: 0,
    };
    conforms(&doc, "WebhookEndpoint", &endpoint.to_json());
    let delivery = DeliveryRecord {
        id: 1,
        event_seq: 1,
        attempt: 1,
        status: "delivered".into(),
        response_code: Some(200),
        latency_ms: 3,
        error: None,
        response_excerpt: Some("ok".into()),
        created_at: 1,
    };
    conforms(&doc, "WebhookDelivery", &delivery.to_json());
    let request = roster_domain::requests::LoggedRequest {
        seq: 1,
        record: roster_domain::requests::RequestRecord {
            directory_id: "d1".into(),
            at: 1,
            method: "POST".into(),
            path: "/scim/v2/d1/Users".into(),
            status: 400,
            latency_ms: 2,
            authenticated: true,
            error: Some("userName is required".into()),
            user_agent: Some("Okta SCIM Client".into()),
            provider: Some("okta scim v2.0".into()),
            request_body: Some("{}".into()),
            response_body: Some("{}".into()),
        },
    };
    conforms(&doc, "ProviderRequest", &request.to_json());
    let failing = roster_domain::requests::ConnectionStatus::Failing {
        failure: roster_domain::requests::Failure::Token,
        last_request_secs: 3,
    };
    let mut connection = failing.to_json();
    connection["object"] = json!("connection");
    connection["directory_id"] = json!("d1");
    connection["last_request_at"] = json!(null);
    connection["requests_24h"] = json!(1);
    connection["errors_24h"] = json!(1);
    conforms(&doc, "Connection", &connection);
    conforms(&doc, "ConnectionFailure", &connection["failure"]);
    let source = roster_store::google::GoogleSource {
        directory_id: "d1".into(),
        admin_email: "a@x.test".into(),
        customer: "my_customer".into(),
        domain: None,
        interval_secs: 600,
        next_poll_at: 0,
        last_poll_at: Some(1),
        last_result: Some("ok".into()),
        last_error: None,
        client_id: Some("1234".into()),
        last_poll_started_at: Some(1),
        users_seen: Some(3),
        groups_seen: Some(1),
        changes_applied: Some(4),
        last_error_kind: None,
    };
    conforms(&doc, "GoogleSource", &crate::google::source_json(&source));
}
