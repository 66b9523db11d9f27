use serde_json::{Value, json};

use super::*;
use crate::error::ScimType;
use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

const EXT: &str = ENTERPRISE_USER_SCHEMA;

fn full_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, EXT],
        "id": "2819c223",
        "externalId": "bjensen",
        "meta": {"resourceType": "User", "created": "2026-01-01T00:00:00Z", "version": "W/\"1\""},
        "userName": "bjensen",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "password": "never-shown",
        "emails": [
            {"value": "b@example.com", "type": "work", "primary": true},
            {"value": "bj@example.org", "type": "home"}
        ],
        "groups": [{"value": "g1", "display": "Admins", "type": "direct"}],
        EXT: {"employeeNumber": "701984", "manager": {"value": "m1", "displayName": "Boss"}}
    })
}

fn project_user(attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let reg = SchemaRegistry::core();
    let rt = reg.resource_type("User").unwrap();
    Projection::parse(attributes, excluded)
        .unwrap()
        .apply(&reg, rt, full_user())
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// A registry with `returned` characteristics the core schemas don't use.
fn custom() -> SchemaRegistry {
    let ext = Schema::from_json(&json!({
        "id": "urn:example:ext:1.0:User",
        "attributes": [
            {"name": "riskScore", "type": "integer", "returned": "request"},
            {"name": "tier", "type": "string"},
            {"name": "secret", "type": "string", "returned": "never"},
            {"name": "badge", "type": "complex", "subAttributes": [
                {"name": "number", "type": "string", "returned": "always"},
                {"name": "pin", "type": "string", "returned": "never"},
                {"name": "audit", "type": "string", "returned": "request"},
                {"name": "color", "type": "string"}
            ]}
        ]
    }))
    .unwrap();
    let mut reg = SchemaRegistry::core();
    reg.add_extension(ext, "User", false).unwrap();
    reg
}

const CUSTOM: &str = "urn:example:ext:1.0:User";

fn custom_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, CUSTOM],
        "id": "u1",
        "userName": "a",
        CUSTOM: {
            "riskScore": 7,
            "tier": "gold",
            "secret": "s",
            "badge": {"number": "N1", "pin": "1234", "audit": "ok", "color": "red"}
        }
    })
}

fn project_custom(attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let reg = custom();
    let rt = reg.resource_type("User").unwrap();
    Projection::parse(attributes, excluded)
        .unwrap()
        .apply(&reg, rt, custom_user())
}

#[test]
fn default_hides_never_and_keeps_the_rest() {
    let v = project_user(None, None);
    let mut expected = full_user();
    expected.as_object_mut().unwrap().remove("password");
    assert_eq!(v, expected);
}

#[test]
fn attributes_keeps_only_those_plus_id_and_schemas() {
    let v = project_user(Some("userName"), None);
    assert_eq!(
        v,
        json!({"schemas": [USER_SCHEMA, EXT], "id": "2819c223", "userName": "bjensen"})
    );
    // Names are case-insensitive; whitespace and blanks in the list are ignored.
    let v = project_user(Some(" USERNAME , ,externalid "), None);
    assert_eq!(keys(&v), ["schemas", "id", "externalId", "userName"]);
}

#[test]
fn sub_attribute_selection() {
    let v = project_user(Some("name.givenName"), None);
    assert_eq!(v["name"], json!({"givenName": "Barbara"}));
    let v = project_user(Some("emails.value"), None);
    assert_eq!(
        v["emails"],
        json!([{"value": "b@example.com"}, {"value": "bj@example.org"}])
    );
    let v = project_user(Some("emails.value,emails.type"), None);
    assert_eq!(
        v["emails"][1],
        json!({"value": "bj@example.org", "type": "home"})
    );
}

#[test]
fn meta_is_shown_when_named_or_partly_named() {
    assert!(project_user(None, None).get("meta").is_some());
    assert!(project_user(Some("userName"), None).get("meta").is_none());
    assert_eq!(
        project_user(Some("meta"), None)["meta"],
        full_user()["meta"]
    );
    assert_eq!(
        project_user(Some("meta.version"), None)["meta"],
        json!({"version": "W/\"1\""})
    );
    assert!(project_user(None, Some("meta")).get("meta").is_none());
}

#[test]
fn extension_attributes_by_urn() {
    let v = project_user(Some(&format!("{EXT}:employeeNumber")), None);
    assert_eq!(v[EXT], json!({"employeeNumber": "701984"}));
    let v = project_user(Some(&format!("{EXT}:manager.value")), None);
    assert_eq!(v[EXT], json!({"manager": {"value": "m1"}}));
    // A bare URN selects the whole extension object.
    let v = project_user(Some(EXT), None);
    assert_eq!(v[EXT], full_user()[EXT]);
    assert!(v.get("userName").is_none());
    // Unqualified extension names resolve as filters do.
    let v = project_user(Some("employeeNumber"), None);
    assert_eq!(v[EXT], json!({"employeeNumber": "701984"}));
}

#[test]
fn password_is_never_shown_even_when_asked_for() {
    assert!(
        project_user(Some("password"), None)
            .get("password")
            .is_none()
    );
    assert!(
        project_user(None, Some("userName"))
            .get("password")
            .is_none()
    );
}

#[test]
fn unknown_names_are_ignored_and_bad_paths_rejected() {
    let v = project_user(Some("userName,shoeSize,urn:example:nope:1.0:User:x"), None);
    assert_eq!(keys(&v), ["schemas", "id", "userName"]);
    let v = project_user(None, Some("shoeSize"));
    assert!(v.get("userName").is_some());
    for bad in ["emails[type eq \"work\"]", "a.b.c", "1x"] {
        let e = Projection::parse(Some(bad), None).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{bad}");
        let e = Projection::parse(None, Some(bad)).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{bad}");
    }
}

#[test]
fn excluded_attributes() {
    let v = project_user(None, Some("emails,name.familyName"));
    assert!(v.get("emails").is_none());
    assert_eq!(v["name"], json!({"givenName": "Barbara"}));
    assert!(v.get("userName").is_some());
    // returned=always can't be excluded.
    let v = project_user(None, Some("id,schemas"));
    assert_eq!(v["id"], "2819c223");
    assert!(v.get("schemas").is_some());
    // Excluding a sub-attribute across every element of a multi-valued attribute.
    let v = project_user(None, Some("emails.type,emails.primary"));
    assert_eq!(
        v["emails"],
        json!([{"value": "b@example.com"}, {"value": "bj@example.org"}])
    );
    // A bare URN excludes the whole extension; `schemas` stays as it is.
    let v = project_user(None, Some(EXT));
    assert!(v.get(EXT).is_none());
    assert_eq!(v["schemas"], json!([USER_SCHEMA, EXT]));
}

#[test]
fn emptied_extension_objects_are_dropped() {
    let v = project_user(None, Some(&format!("{EXT}:employeeNumber,{EXT}:manager")));
    assert!(v.get(EXT).is_none());
    assert_eq!(v["schemas"], json!([USER_SCHEMA, EXT]));
}

#[test]
fn attributes_wins_over_excluded() {
    let v = project_user(Some("userName"), Some("userName"));
    assert_eq!(v["userName"], "bjensen");
    assert!(v.get("emails").is_none());
    assert!(Projection::parse(Some("userName"), Some("a.b.c")).is_err());
    assert!(Projection::parse(Some(""), Some(" ")).unwrap().is_default());
}

#[test]
fn search_request_lists() {
    let reg = SchemaRegistry::core();
    let rt = reg.resource_type("User").unwrap();
    let p =
        Projection::from_lists(&["userName".into(), "name.givenName, emails".into()], &[]).unwrap();
    let v = p.apply(&reg, rt, full_user());
    assert_eq!(keys(&v), ["schemas", "id", "userName", "name", "emails"]);
    assert_eq!(
        Projection::from_lists(&[], &["emails".into()]).unwrap(),
        Projection::parse(None, Some("emails")).unwrap()
    );
}

#[test]
fn returned_request_and_never_in_extensions_and_sub_attributes() {
    let v = project_custom(None, None);
    assert_eq!(
        v[CUSTOM],
        json!({"tier": "gold", "badge": {"number": "N1", "color": "red"}})
    );
    let v = project_custom(Some(&format!("{CUSTOM}:riskScore,{CUSTOM}:secret")), None);
    assert_eq!(v[CUSTOM], json!({"riskScore": 7}));
    // Naming the parent shows default sub-attributes; request ones need naming.
    let v = project_custom(Some(&format!("{CUSTOM}:badge")), None);
    assert_eq!(v[CUSTOM]["badge"], json!({"number": "N1", "color": "red"}));
    let v = project_custom(
        Some(&format!("{CUSTOM}:badge.audit,{CUSTOM}:badge.pin")),
        None,
    );
    assert_eq!(v[CUSTOM]["badge"], json!({"number": "N1", "audit": "ok"}));
    // A bare URN brings the extension's default attributes, not request ones.
    let v = project_custom(Some(CUSTOM), None);
    assert_eq!(
        v[CUSTOM],
        json!({"tier": "gold", "badge": {"number": "N1", "color": "red"}})
    );
    // Excluding never drops returned=always sub-attributes.
    let v = project_custom(
        None,
        Some(&format!("{CUSTOM}:badge.number,{CUSTOM}:badge.color")),
    );
    assert_eq!(v[CUSTOM]["badge"], json!({"number": "N1"}));
}

#[test]
fn group_members_can_be_excluded_and_skipped() {
    let reg = SchemaRegistry::core();
    let rt = reg.resource_type("Group").unwrap();
    let g = json!({
        "schemas": [GROUP_SCHEMA],
        "id": "g1",
        "displayName": "Admins",
        "members": [{"value": "u1", "$ref": "https://x/Users/u1", "type": "User", "display": "Ann"}],
        "meta": {"resourceType": "Group"}
    });
    let p = Projection::parse(None, Some("members")).unwrap();
    assert_eq!(
        p.apply(&reg, rt, g.clone()),
        json!({"schemas": [GROUP_SCHEMA], "id": "g1", "displayName": "Admins", "meta": {"resourceType": "Group"}})
    );
    assert!(!p.includes(&reg, rt, "members"));
    assert!(p.includes(&reg, rt, "displayName"));
    assert!(Projection::default().includes(&reg, rt, "members"));
    let p = Projection::parse(Some("displayName"), None).unwrap();
    assert!(!p.includes(&reg, rt, "members"));
    assert!(p.includes(&reg, rt, "id"));
    let p = Projection::parse(Some("members.value"), None).unwrap();
    assert!(p.includes(&reg, rt, "members"));
    assert_eq!(
        p.apply(&reg, rt, g.clone())["members"],
        json!([{"value": "u1"}])
    );
    assert!(!Projection::default().includes(&reg, rt, "nope"));
}

#[test]
fn includes_for_users_and_extensions() {
    let reg = SchemaRegistry::core();
    let rt = reg.resource_type("User").unwrap();
    let d = Projection::default();
    assert!(d.includes(&reg, rt, "groups"));
    assert!(!d.includes(&reg, rt, "password"));
    assert!(d.includes(&reg, rt, EXT));
    let p = Projection::parse(None, Some("groups")).unwrap();
    assert!(!p.includes(&reg, rt, "GROUPS"));
    let p = Projection::parse(Some("userName"), None).unwrap();
    assert!(!p.includes(&reg, rt, EXT));
    let p = Projection::parse(Some(&format!("{EXT}:department")), None).unwrap();
    assert!(p.includes(&reg, rt, EXT));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn names() -> impl Strategy<Value = String> {
        let one = prop::sample::select(vec![
            "userName",
            "NAME.givenName",
            "emails",
            "emails.value",
            "password",
            "id",
            "meta",
            "meta.created",
            "groups.display",
            "employeeNumber",
            ENTERPRISE_USER_SCHEMA,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "nope",
        ]);
        prop::collection::vec(one, 0..4).prop_map(|v| v.join(","))
    }

    proptest! {
        #[test]
        fn id_and_schemas_always_password_never_and_idempotent(
            attributes in names(),
            excluded in names(),
        ) {
            let reg = SchemaRegistry::core();
            let rt = reg.resource_type("User").unwrap();
            let p = Projection::parse(Some(&attributes), Some(&excluded)).unwrap();
            let once = p.apply(&reg, rt, full_user());
            prop_assert!(once.get("password").is_none());
            prop_assert!(once.get("id").is_some() && once.get("schemas").is_some());
            prop_assert_eq!(p.apply(&reg, rt, once.clone()), once.clone());
            for key in ["emails", "meta", "groups", ENTERPRISE_USER_SCHEMA] {
                if once.get(key).is_some() {
                    prop_assert!(p.includes(&reg, rt, key), "{} shown but not included", key);
                }
            }
        }
    }
}
