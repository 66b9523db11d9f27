//! `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`.

use reqwest::StatusCode;
use roster_server::ServerConfig;
use serde_json::Value;

use crate::support::{TestServer, assert_scim_error, enc};

const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

#[tokio::test]
async fn service_provider_config_matches_the_server() {
    let Some(s) = TestServer::start_with(ServerConfig {
        default_page_size: 50,
        max_page_size: 200,
        cursor_timeout_secs: 600,
        bulk_max_operations: 7,
        bulk_max_payload_bytes: 9999,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let r = s.get("/ServiceProviderConfig").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/scim+json")
    );
    let b = &r.body;
    assert_eq!(
        b["schemas"][0],
        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
    );
    for feature in ["patch", "filter", "sort", "etag"] {
        assert_eq!(b[feature]["supported"], true, "{feature}");
    }
    assert_eq!(b["bulk"]["supported"], true);
    assert_eq!(b["bulk"]["maxOperations"], 7);
    assert_eq!(b["bulk"]["maxPayloadSize"], 9999);
    assert_eq!(b["filter"]["maxResults"], 200);
    let p = &b["pagination"];
    assert_eq!(p["cursor"], true);
    assert_eq!(p["index"], true);
    assert_eq!(p["defaultPageSize"], 50);
    assert_eq!(p["maxPageSize"], 200);
    assert_eq!(p["cursorTimeout"], 600);
    assert_eq!(b["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(
        b["meta"]["location"],
        format!("{}/ServiceProviderConfig", s.base()).as_str()
    );
}

#[tokio::test]
async fn resource_types() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s.get("/ResourceTypes").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["schemas"][0], LIST);
    assert_eq!(r.body["totalResults"], 2);
    let names: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["User", "Group"]);
    let r = s.get("/ResourceTypes/User").await;
    assert_eq!(r.status, StatusCode::OK);
    let u = &r.body;
    assert_eq!(
        u["schemas"][0],
        "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
    );
    assert_eq!(u["id"], "User");
    assert_eq!(u["endpoint"], "/Users");
    assert_eq!(u["schema"], "urn:ietf:params:scim:schemas:core:2.0:User");
    assert_eq!(
        u["schemaExtensions"][0]["schema"],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );
    assert_eq!(u["schemaExtensions"][0]["required"], false);
    assert_eq!(u["meta"]["resourceType"], "ResourceType");
    assert_eq!(
        u["meta"]["location"],
        format!("{}/ResourceTypes/User", s.base()).as_str()
    );
    let r = s.get("/ResourceTypes/Group").await;
    assert_eq!(r.body["endpoint"], "/Groups");
    assert_scim_error(&s.get("/ResourceTypes/Widget").await, 404, None);
}

fn attribute<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no attribute {name} in {}", schema["id"]))
}

fn check_characteristics(attrs: &Value, at: &str) {
    for a in attrs.as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        for key in ["type", "multiValued", "required", "mutability", "returned"] {
            assert!(a.get(key).is_some(), "{at}{name} lacks {key}: {a}");
        }
        if a["type"] == "string" {
            assert!(a.get("caseExact").is_some(), "{at}{name} lacks caseExact");
            assert!(a.get("uniqueness").is_some(), "{at}{name} lacks uniqueness");
        }
        if a["type"] == "complex" {
            check_characteristics(&a["subAttributes"], &format!("{at}{name}."));
        }
    }
}

#[tokio::test]
async fn schemas_describe_every_attribute() {
    let Some(s) = TestServer::start().await else {
        return;
    };
    let r = s.get("/Schemas").await;
    assert_eq!(r.status, StatusCode::OK);
    let all = r.body["Resources"].as_array().unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s["id"].as_str().unwrap()).collect();
    for want in [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    ] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
    assert_eq!(r.body["totalResults"], all.len());
    for sc in all {
        let id = sc["id"].as_str().unwrap();
        check_characteristics(&sc["attributes"], "");
        assert_eq!(sc["meta"]["resourceType"], "Schema");
        let one = s.get(&format!("/Schemas/{}", enc(id))).await;
        assert_eq!(one.status, StatusCode::OK, "{id}");
        assert_eq!(&one.body, sc);
        assert_eq!(
            sc["meta"]["location"],
            format!("{}/Schemas/{id}", s.base()).as_str()
        );
    }
    let user = s
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await
        .body;
    let pw = attribute(&user, "password");
    assert_eq!(pw["returned"], "never");
    assert_eq!(pw["mutability"], "writeOnly");
    let un = attribute(&user, "userName");
    assert_eq!(un["uniqueness"], "server");
    assert_eq!(un["required"], true);
    assert_eq!(un["caseExact"], false);
    let groups = attribute(&user, "groups");
    assert_eq!(groups["mutability"], "readOnly");
    let group = s
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group")
        .await
        .body;
    assert_eq!(attribute(&group, "members")["multiValued"], true);
    assert_scim_error(&s.get("/Schemas/urn:nope").await, 404, None);
}
