//! A custom extension schema loaded from a JSON file.

use reqwest::StatusCode;
use roster_server::{ExtensionConfig, ServerConfig};
use serde_json::{Value, json};

use crate::support::{TestServer, assert_scim_error, enc, ids};

const EXT: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";
const GEXT: &str = "urn:example:params:scim:schemas:extension:acme:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn user_ext() -> Value {
    json!({
        "id": EXT,
        "name": "AcmeUser",
        "description": "Acme's user attributes",
        "attributes": [
            {"name": "badge", "type": "string", "multiValued": false, "required": false,
             "caseExact": false, "mutability": "readWrite", "returned": "default", "uniqueness": "none"},
            {"name": "badgeSerial", "type": "string", "mutability": "immutable", "caseExact": true},
            {"name": "clearance", "type": "integer"},
            {"name": "hireDate", "type": "dateTime"},
            {"name": "remote", "type": "boolean"},
            {"name": "internalCode", "type": "string", "returned": "request"},
            {"name": "secret", "type": "string", "returned": "never", "mutability": "writeOnly"},
            {"name": "roomCode", "type": "string", "mutability": "readOnly"},
            {"name": "projects", "type": "complex", "multiValued": true, "subAttributes": [
                {"name": "name", "type": "string"},
                {"name": "role", "type": "string"}
            ]}
        ]
    })
}

async fn server() -> Option<(TestServer, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.json");
    std::fs::write(&file, user_ext().to_string()).unwrap();
    let gfile = dir.path().join("acme-group.json");
    let gext = json!({"id": GEXT, "name": "AcmeGroup", "attributes": [{"name": "costCode", "type": "string"}]});
    std::fs::write(&gfile, gext.to_string()).unwrap();
    let s = TestServer::start_with(ServerConfig {
        extensions: vec![
            ExtensionConfig {
                file,
                resource_type: "User".into(),
                required: false,
            },
            ExtensionConfig {
                file: gfile,
                resource_type: "Group".into(),
                required: false,
            },
        ],
        ..ServerConfig::default()
    })
    .await?;
    Some((s, dir))
}

async fn ann(s: &TestServer) -> Value {
    s.create(
        "/Users",
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", EXT],
            "userName": "ann",
            EXT: {
                "badge": "B-1", "badgeSerial": "SER-1", "clearance": 3,
                "hireDate": "2020-05-01T09:00:00Z", "remote": true,
                "internalCode": "IC", "secret": "s", "roomCode": "ignored",
                "projects": [{"name": "apollo", "role": "lead"}, {"name": "gemini", "role": "dev"}]
            }
        }),
    )
    .await
}

#[tokio::test]
async fn create_and_read_honour_characteristics() {
    let Some((s, _d)) = server().await else {
        return;
    };
    let b = ann(&s).await;
    let e = &b[EXT];
    assert_eq!(e["badge"], "B-1");
    assert_eq!(e["clearance"], 3);
    assert_eq!(e["remote"], true);
    assert_eq!(e["projects"][1]["role"], "dev");
    assert!(
        e.get("roomCode").is_none(),
        "readOnly input is ignored: {e}"
    );
    assert!(e.get("secret").is_none(), "returned never: {e}");
    assert!(e.get("internalCode").is_none(), "returned request: {e}");
    let id = b["id"].as_str().unwrap();
    let r = s
        .get(&format!(
            "/Users/{id}?attributes={}",
            enc(&format!("{EXT}:internalCode"))
        ))
        .await;
    assert_eq!(r.body[EXT], json!({"internalCode": "IC"}), "{:?}", r.body);
    let r = s
        .get(&format!(
            "/Users/{id}?attributes={}",
            enc(&format!("{EXT}:secret"))
        ))
        .await;
    assert!(r.body.get(EXT).is_none_or(|e| e.get("secret").is_none()));
    // A bare URN selects the extension object, without returned:request attributes.
    let r = s.get(&format!("/Users/{id}?attributes={}", enc(EXT))).await;
    assert_eq!(r.body[EXT]["badge"], "B-1");
    assert!(r.body[EXT].get("internalCode").is_none());
    assert!(r.body.get("userName").is_none());
    let r = s
        .get(&format!("/Users/{id}?excludedAttributes={}", enc(EXT)))
        .await;
    assert!(r.body.get(EXT).is_none());
    assert_eq!(r.body["userName"], "ann");
    let r = s
        .get(&format!(
            "/Users/{id}?excludedAttributes={}",
            enc(&format!("{EXT}:projects"))
        ))
        .await;
    assert!(r.body[EXT].get("projects").is_none());
    assert_eq!(r.body[EXT]["badge"], "B-1");
}

#[tokio::test]
async fn filters_on_extension_attributes() {
    let Some((s, _d)) = server().await else {
        return;
    };
    let id = ann(&s).await["id"].as_str().unwrap().to_owned();
    s.create(
        "/Users",
        json!({"userName": "bo", EXT: {"clearance": 1, "remote": false}}),
    )
    .await;
    let f = |q: &str| format!("/Users?filter={}", enc(q));
    assert_eq!(
        s.ids(&f(&format!("{EXT}:badge eq \"b-1\""))).await,
        [id.as_str()]
    );
    assert_eq!(
        s.ids(&f(&format!("{EXT}:clearance gt 2"))).await,
        [id.as_str()]
    );
    assert_eq!(s.ids(&f(&format!("{EXT}:clearance le 3"))).await.len(), 2);
    assert_eq!(
        s.ids(&f(&format!("{EXT}:remote eq true"))).await,
        [id.as_str()]
    );
    assert_eq!(s.ids(&f(&format!("{EXT}:remote eq false"))).await.len(), 1);
    assert_eq!(
        s.ids(&f(&format!("{EXT}:hireDate lt \"2021-01-01T00:00:00Z\"")))
            .await,
        [id.as_str()]
    );
    assert_eq!(
        s.ids(&f(&format!(
            "{EXT}:projects[name eq \"gemini\" and role eq \"dev\"]"
        )))
        .await,
        [id.as_str()]
    );
    assert!(
        s.ids(&f(&format!(
            "{EXT}:projects[name eq \"gemini\" and role eq \"lead\"]"
        )))
        .await
        .is_empty()
    );
    assert_eq!(
        s.ids(&f(&format!("{EXT}:projects.role eq \"LEAD\""))).await,
        [id.as_str()]
    );
    // A bare name only this extension defines.
    assert_eq!(s.ids(&f("clearance ge 3")).await, [id.as_str()]);
    assert_scim_error(
        &s.get(&f(&format!("{EXT}:clearance eq \"3\""))).await,
        400,
        Some("invalidFilter"),
    );
    assert_scim_error(
        &s.get(&f(&format!("{EXT}:nosuch pr"))).await,
        400,
        Some("invalidFilter"),
    );
    // Sorting by an integer extension attribute is numeric.
    s.create("/Users", json!({"userName": "cy", EXT: {"clearance": 20}}))
        .await;
    let r = s
        .get(&format!(
            "/Users?sortBy={}",
            enc(&format!("{EXT}:clearance"))
        ))
        .await;
    let order: Vec<Value> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].clone())
        .collect();
    assert_eq!(order, [json!("bo"), json!("ann"), json!("cy")]);
}

#[tokio::test]
async fn patch_and_put_on_extension_attributes() {
    let Some((s, _d)) = server().await else {
        return;
    };
    let id = ann(&s).await["id"].as_str().unwrap().to_owned();
    let p = format!("/Users/{id}");
    let r = s
        .patch(
            &p,
            json!({"schemas": [PATCH], "Operations": [
                {"op": "replace", "path": format!("{EXT}:clearance"), "value": 5},
                {"op": "replace", "path": format!("{EXT}:projects[name eq \"apollo\"].role"), "value": "advisor"},
                {"op": "add", "path": format!("{EXT}:projects"), "value": [{"name": "mercury"}]},
                {"op": "remove", "path": format!("{EXT}:remote")},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let e = &r.body[EXT];
    assert_eq!(e["clearance"], 5);
    assert!(e.get("remote").is_none());
    let projects = e["projects"].as_array().unwrap();
    assert_eq!(projects.len(), 3);
    assert!(
        projects
            .iter()
            .any(|p| p["name"] == "apollo" && p["role"] == "advisor")
    );
    let r = s
        .patch(&p, json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": format!("{EXT}:clearance"), "value": "high"}]}))
        .await;
    assert_scim_error(&r, 400, Some("invalidValue"));

    // immutable: may be resent unchanged or left out, never changed.
    let r = s
        .patch(&p, json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": format!("{EXT}:badgeSerial"), "value": "SER-2"}]}))
        .await;
    assert_scim_error(&r, 400, Some("mutability"));
    let r = s
        .put(
            &p,
            json!({"userName": "ann", EXT: {"badgeSerial": "SER-2"}}),
        )
        .await;
    assert_scim_error(&r, 400, Some("mutability"));
    let r = s
        .put(
            &p,
            json!({"userName": "ann", EXT: {"badgeSerial": "SER-1", "badge": "B-2"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = s.put(&p, json!({"userName": "ann"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body[EXT]["badgeSerial"], "SER-1");
    assert!(r.body[EXT].get("badge").is_none());
    let stored = s.get(&p).await;
    assert_eq!(stored.body[EXT]["badgeSerial"], "SER-1");
}

#[tokio::test]
async fn schemas_and_resource_types_publish_the_extension() {
    let Some((s, _d)) = server().await else {
        return;
    };
    let r = s.get(&format!("/Schemas/{EXT}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["id"], EXT);
    assert_eq!(r.body["name"], "AcmeUser");
    let attrs = r.body["attributes"].as_array().unwrap();
    let serial = attrs.iter().find(|a| a["name"] == "badgeSerial").unwrap();
    assert_eq!(serial["mutability"], "immutable");
    assert_eq!(serial["caseExact"], true);
    let projects = attrs.iter().find(|a| a["name"] == "projects").unwrap();
    assert_eq!(projects["multiValued"], true);
    assert_eq!(projects["subAttributes"].as_array().unwrap().len(), 2);
    let all = s.get("/Schemas").await;
    let list: Vec<&str> = all.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(list.contains(&EXT) && list.contains(&GEXT));
    let rt = s.get("/ResourceTypes/User").await;
    let exts: Vec<&Value> = rt.body["schemaExtensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["schema"])
        .collect();
    assert!(exts.contains(&&json!(EXT)), "{exts:?}");
    let rt = s.get("/ResourceTypes/Group").await;
    assert_eq!(rt.body["schemaExtensions"][0]["schema"], GEXT);
}

#[tokio::test]
async fn group_extension() {
    let Some((s, _d)) = server().await else {
        return;
    };
    let b = s
        .create(
            "/Groups",
            json!({"displayName": "G", format!("{GEXT}:costCode"): "CC7"}),
        )
        .await;
    assert_eq!(b[GEXT]["costCode"], "CC7");
    assert!(b["schemas"].as_array().unwrap().contains(&json!(GEXT)));
    let r = s
        .get(&format!(
            "/Groups?filter={}",
            enc(&format!("{GEXT}:costCode eq \"cc7\""))
        ))
        .await;
    assert_eq!(ids(&r.body), [b["id"].as_str().unwrap()]);
    // A user extension attribute is not a group's.
    let r = s
        .post("/Groups", json!({"displayName": "H", EXT: {"badge": "x"}}))
        .await;
    assert_scim_error(&r, 400, Some("invalidSyntax"));
}
