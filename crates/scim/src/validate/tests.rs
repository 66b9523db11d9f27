use serde_json::{Value, json};

use super::*;
use crate::error::ScimType;
use crate::members::MemberType;
use crate::schema::{ENTERPRISE_USER_SCHEMA, SchemaRegistry, USER_SCHEMA};

fn user(input: Value) -> Result<Value> {
    let reg = SchemaRegistry::core();
    let rt = reg.resource_type("User").unwrap();
    normalize(&reg, rt, &input, None)
}

fn group(input: Value) -> Result<Value> {
    let reg = SchemaRegistry::core();
    let rt = reg.resource_type("Group").unwrap();
    normalize(&reg, rt, &input, None)
}

fn user_replacing(input: Value, existing: &Value) -> Result<Value> {
    let reg = SchemaRegistry::core();
    let rt = reg.resource_type("User").unwrap();
    normalize(&reg, rt, &input, Some(existing))
}

fn err(r: Result<Value>) -> ScimError {
    match r {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e,
    }
}

fn assert_err(r: Result<Value>, ty: ScimType, mentions: &str) {
    let e = err(r);
    assert_eq!(e.status, 400);
    assert_eq!(e.scim_type, Some(ty), "{e}");
    assert!(
        e.detail.contains(mentions),
        "{:?} should mention {mentions:?}",
        e.detail
    );
}

/// A registry whose User type has a custom extension exercising the rarer rules.
fn custom_registry(required: bool) -> SchemaRegistry {
    let ext = Schema::from_json(&json!({
        "id": "urn:example:params:scim:schemas:extension:test:2.0:User",
        "attributes": [
            {"name": "badgeId", "type": "string", "mutability": "immutable"},
            {"name": "level", "type": "integer", "required": true},
            {"name": "ratio", "type": "decimal"},
            {"name": "hiredAt", "type": "dateTime"},
            {"name": "tags", "type": "string", "multiValued": true},
            {"name": "device", "type": "complex", "subAttributes": [
                {"name": "serial", "type": "string", "required": true, "mutability": "immutable"},
                {"name": "model", "type": "string"}
            ]}
        ]
    }))
    .unwrap();
    let mut reg = SchemaRegistry::core();
    reg.add_extension(ext, "User", required).unwrap();
    reg
}

const TEST_EXT: &str = "urn:example:params:scim:schemas:extension:test:2.0:User";

fn custom_user(required: bool, input: Value, existing: Option<&Value>) -> Result<Value> {
    let reg = custom_registry(required);
    let rt = reg.resource_type("User").unwrap();
    normalize(&reg, rt, &input, existing)
}

#[test]
fn minimal_user_gets_core_schema_and_canonical_order() {
    let v = user(json!({"userName": "bjensen", "externalId": "e1"})).unwrap();
    assert_eq!(
        v,
        json!({"schemas": [USER_SCHEMA], "externalId": "e1", "userName": "bjensen"})
    );
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["schemas", "externalId", "userName"]);
}

#[test]
fn input_must_be_an_object() {
    assert_err(user(json!([1])), ScimType::InvalidSyntax, "object");
    assert_err(user(json!("x")), ScimType::InvalidSyntax, "object");
}

#[test]
fn schemas_is_tolerated_missing_or_unknown_but_must_be_strings() {
    let v = group(json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:Group",
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
        ],
        "displayName": "Admins"
    }))
    .unwrap();
    assert_eq!(v["schemas"], json!([crate::schema::GROUP_SCHEMA]));
    assert_err(
        user(json!({"schemas": "urn:x", "userName": "a"})),
        ScimType::InvalidSyntax,
        "schemas",
    );
    assert_err(
        user(json!({"schemas": [1], "userName": "a"})),
        ScimType::InvalidSyntax,
        "schemas",
    );
}

#[test]
fn entra_text_booleans_are_coerced() {
    let v = user(json!({"userName": "a", "active": "False"})).unwrap();
    assert_eq!(v["active"], json!(false));
    let v = user(json!({"userName": "a", "active": "TRUE"})).unwrap();
    assert_eq!(v["active"], json!(true));
    assert_err(
        user(json!({"userName": "a", "active": "yes"})),
        ScimType::InvalidValue,
        "active",
    );
    assert_err(
        user(json!({"userName": "a", "active": 1})),
        ScimType::InvalidValue,
        "active",
    );
}

#[test]
fn okta_create_keeps_password_and_drops_read_only_groups() {
    let v = user(json!({
        "schemas": [USER_SCHEMA],
        "userName": "isabella@example.com",
        "name": {"givenName": "Isabella", "familyName": "Jones"},
        "emails": [{"primary": true, "value": "isabella@example.com", "type": "work"}],
        "displayName": "Isabella Jones",
        "locale": "en-US",
        "externalId": "00u1",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    }))
    .unwrap();
    assert_eq!(v["password"], "1mz050nq");
    assert!(v.get("groups").is_none());
    assert_eq!(v["emails"][0]["value"], "isabella@example.com");
    // Sub-attributes come out in definition order whatever the input order.
    let email_keys: Vec<&String> = v["emails"][0].as_object().unwrap().keys().collect();
    assert_eq!(email_keys, ["value", "type", "primary"]);
}

#[test]
fn read_only_attributes_are_dropped_silently() {
    let v = user(json!({
        "id": "client-chosen",
        "meta": {"resourceType": "User", "created": "2020-01-01T00:00:00Z"},
        "userName": "a",
        "groups": [{"value": "g1"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "manager": {"value": "m1", "displayName": "Boss"}
        }
    }))
    .unwrap();
    assert!(v.get("id").is_none());
    assert!(v.get("meta").is_none());
    assert!(v.get("groups").is_none());
    assert_eq!(v[ENTERPRISE_USER_SCHEMA]["manager"], json!({"value": "m1"}));
}

#[test]
fn names_are_matched_case_insensitively_and_written_canonically() {
    let v = user(json!({
        "USERNAME": "a",
        "Name": {"GivenName": "Barbara", "FAMILYNAME": "Jensen"},
        "Emails": [{"VALUE": "b@example.com", "Type": "work"}],
        "EXTERNALID": "x"
    }))
    .unwrap();
    assert_eq!(v["userName"], "a");
    assert_eq!(v["externalId"], "x");
    assert_eq!(
        v["name"],
        json!({"familyName": "Jensen", "givenName": "Barbara"})
    );
    assert_eq!(
        v["emails"],
        json!([{"value": "b@example.com", "type": "work"}])
    );
}

#[test]
fn two_spellings_of_one_attribute_must_agree() {
    let v = user(json!({"userName": "a", "USERNAME": "a"})).unwrap();
    assert_eq!(v["userName"], "a");
    assert_err(
        user(json!({"userName": "a", "USERNAME": "b"})),
        ScimType::InvalidSyntax,
        "userName",
    );
}

#[test]
fn an_extension_object_may_carry_its_own_schemas() {
    // Typed clients (scim2-models) serialise an extension with its `schemas`.
    let v = user(json!({
        "userName": "a",
        ENTERPRISE_USER_SCHEMA: {"schemas": [ENTERPRISE_USER_SCHEMA], "department": "D"}
    }))
    .unwrap();
    assert_eq!(
        v,
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "userName": "a",
            ENTERPRISE_USER_SCHEMA: {"department": "D"}
        })
    );
    // Naming another schema means the object is not this extension's.
    assert_err(
        user(json!({
            "userName": "a",
            ENTERPRISE_USER_SCHEMA: {"schemas": [USER_SCHEMA], "department": "D"}
        })),
        ScimType::InvalidSyntax,
        "schemas",
    );
    assert_err(
        user(json!({"userName": "a", ENTERPRISE_USER_SCHEMA: {"schemas": "x"}})),
        ScimType::InvalidSyntax,
        "schemas",
    );
}

#[test]
fn enterprise_attributes_nested_and_flattened() {
    let nested = user(json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "userName": "a",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984", "Department": "Tour Operations"
        }
    }))
    .unwrap();
    let flattened = user(json!({
        "userName": "a",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
        "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:department": "Tour Operations"
    }))
    .unwrap();
    let expected = json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "userName": "a",
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": "701984", "department": "Tour Operations"}
    });
    assert_eq!(nested, expected);
    assert_eq!(flattened, expected);
    // The extension's URN is listed only when the extension has content.
    let v = user(json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "userName": "a",
        ENTERPRISE_USER_SCHEMA: {"department": ""}
    }))
    .unwrap();
    assert_eq!(v, json!({"schemas": [USER_SCHEMA], "userName": "a"}));
}

#[test]
fn entra_manager_given_as_an_id_string() {
    let v = user(json!({
        "userName": "a",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "m-42"
    }))
    .unwrap();
    assert_eq!(
        v[ENTERPRISE_USER_SCHEMA]["manager"],
        json!({"value": "m-42"})
    );
}

#[test]
fn unknown_attributes_are_rejected_by_name() {
    assert_err(
        user(json!({"userName": "a", "favouriteColour": "red"})),
        ScimType::InvalidSyntax,
        "favouriteColour",
    );
    assert_err(
        user(json!({"userName": "a", "name": {"nickname": "x"}})),
        ScimType::InvalidSyntax,
        "nickname",
    );
    assert_err(
        user(json!({"userName": "a", "urn:example:ext:1.0:User": {"x": 1}})),
        ScimType::InvalidSyntax,
        "urn:example:ext:1.0:User",
    );
    assert_err(
        user(json!({"userName": "a", ENTERPRISE_USER_SCHEMA: {"shoeSize": "9"}})),
        ScimType::InvalidSyntax,
        "shoeSize",
    );
    assert_err(
        user(json!({"userName": "a", ENTERPRISE_USER_SCHEMA: "x"})),
        ScimType::InvalidSyntax,
        ENTERPRISE_USER_SCHEMA,
    );
    // Group attributes are unknown on a User.
    assert_err(
        user(json!({"userName": "a", "members": []})),
        ScimType::InvalidSyntax,
        "members",
    );
}

#[test]
fn non_ascii_keys_are_unknown_not_a_panic() {
    for key in ["ab€x", "urn€", "ürn:x:y"] {
        let mut body = json!({"userName": "a"});
        body[key] = json!({"x": 1});
        assert_err(user(body), ScimType::InvalidSyntax, key);
    }
}

#[test]
fn type_errors_do_not_echo_the_value() {
    let e = err(user(json!({"userName": "a", "password": 123456})));
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    assert!(e.detail.contains("password") && !e.detail.contains("123456"));
}

#[test]
fn strings_must_be_strings() {
    assert_err(
        user(json!({"userName": 5})),
        ScimType::InvalidValue,
        "userName",
    );
    assert_err(
        user(json!({"userName": "a", "name": "Bob"})),
        ScimType::InvalidValue,
        "name",
    );
}

#[test]
fn binary_must_be_base64() {
    let v = user(json!({"userName": "a", "x509Certificates": [{"value": "MIIDQzCC\nAiugAw=="}]}))
        .unwrap();
    assert_eq!(v["x509Certificates"][0]["value"], "MIIDQzCC\nAiugAw==");
    assert_err(
        user(json!({"userName": "a", "x509Certificates": [{"value": "not base64!"}]})),
        ScimType::InvalidValue,
        "x509Certificates.value",
    );
    for ok in ["QQ==", "QQ", "QUJD", "QUI="] {
        assert!(is_base64(ok), "{ok}");
    }
    for bad in ["Q", "Q===", "QQ=A", "=", "QUJD*"] {
        assert!(!is_base64(bad), "{bad}");
    }
}

#[test]
fn integers_decimals_and_datetimes() {
    let v = custom_user(
        false,
        json!({
            "userName": "a",
            TEST_EXT: {"level": 3.0, "ratio": 0.5, "hiredAt": "2026-03-01T10:00:00.120+02:00"}
        }),
        None,
    )
    .unwrap();
    assert_eq!(v[TEST_EXT]["level"], json!(3));
    assert!(v[TEST_EXT]["level"].is_i64());
    assert_eq!(v[TEST_EXT]["ratio"], json!(0.5));
    assert_eq!(v[TEST_EXT]["hiredAt"], "2026-03-01T08:00:00.12Z");
    for (field, bad) in [
        ("level", json!("3")),
        ("level", json!(3.5)),
        ("ratio", json!("0.5")),
        ("hiredAt", json!("last tuesday")),
        ("hiredAt", json!(20260301)),
    ] {
        let mut ext = json!({"level": 1});
        ext[field] = bad;
        assert_err(
            custom_user(false, json!({"userName": "a", TEST_EXT: ext}), None),
            ScimType::InvalidValue,
            field,
        );
    }
}

#[test]
fn empty_values_clear_attributes() {
    let v = user(json!({
        "userName": "a",
        "displayName": null,
        "nickName": "",
        "emails": [],
        "name": {},
        "addresses": [{"type": null, "streetAddress": ""}],
        "phoneNumbers": [{"value": ""}, {"value": "+1 555"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": ""}}
    }))
    .unwrap();
    assert_eq!(
        v,
        json!({
            "schemas": [USER_SCHEMA],
            "userName": "a",
            "phoneNumbers": [{"value": "+1 555"}]
        })
    );
}

#[test]
fn multi_valued_tolerances() {
    // A lone value is read as a one-element array.
    let v = user(json!({"userName": "a", "emails": {"value": "a@x"}})).unwrap();
    assert_eq!(v["emails"], json!([{"value": "a@x"}]));
    // A one-element array for a single-valued attribute is unwrapped.
    let v = user(json!({"userName": ["a"]})).unwrap();
    assert_eq!(v["userName"], "a");
    assert_err(
        user(json!({"userName": ["a", "b"]})),
        ScimType::InvalidValue,
        "single-valued",
    );
    // Exact duplicates collapse, whatever the key order or spelling.
    let v = user(json!({"userName": "a", "emails": [
        {"value": "a@x", "type": "work"},
        {"Type": "work", "value": "a@x"},
        {"value": "a@x", "type": "home"}
    ]}))
    .unwrap();
    assert_eq!(v["emails"].as_array().unwrap().len(), 2);
    let v = custom_user(
        false,
        json!({"userName": "a", TEST_EXT: {"level": 1, "tags": ["x", "x", "y"]}}),
        None,
    )
    .unwrap();
    assert_eq!(v[TEST_EXT]["tags"], json!(["x", "y"]));
}

#[test]
fn at_most_one_primary() {
    let v = user(json!({"userName": "a", "emails": [
        {"value": "a@x", "primary": "True"},
        {"value": "b@x", "primary": false}
    ]}))
    .unwrap();
    assert_eq!(v["emails"][0]["primary"], json!(true));
    assert_err(
        user(json!({"userName": "a", "emails": [
            {"value": "a@x", "primary": true},
            {"value": "b@x", "primary": true}
        ]})),
        ScimType::InvalidValue,
        "primary",
    );
}

#[test]
fn required_attributes() {
    assert_err(
        user(json!({"displayName": "x"})),
        ScimType::InvalidValue,
        "userName is required",
    );
    assert_err(
        user(json!({"userName": ""})),
        ScimType::InvalidValue,
        "userName is required",
    );
    assert_err(
        group(json!({"members": []})),
        ScimType::InvalidValue,
        "displayName is required",
    );
    // Required attributes of an extension apply once the extension is used.
    assert_err(
        custom_user(
            false,
            json!({"userName": "a", TEST_EXT: {"ratio": 1}}),
            None,
        ),
        ScimType::InvalidValue,
        "level is required",
    );
    assert!(custom_user(false, json!({"userName": "a"}), None).is_ok());
    // A required extension must be present.
    assert_err(
        custom_user(true, json!({"userName": "a"}), None),
        ScimType::InvalidValue,
        TEST_EXT,
    );
    // Required sub-attributes apply when their parent has a value.
    assert_err(
        custom_user(
            false,
            json!({"userName": "a", TEST_EXT: {"level": 1, "device": {"model": "X1"}}}),
            None,
        ),
        ScimType::InvalidValue,
        "device.serial is required",
    );
}

#[test]
fn immutable_attributes_cannot_change() {
    let existing = custom_user(
        false,
        json!({"userName": "a", TEST_EXT: {"level": 1, "badgeId": "B1", "device": {"serial": "S1"}}}),
        None,
    )
    .unwrap();
    // Repeating the value, or leaving it out, is fine; leaving it out keeps it.
    let same = custom_user(
        false,
        json!({"userName": "a", TEST_EXT: {"level": 2, "badgeId": "B1"}}),
        Some(&existing),
    )
    .unwrap();
    assert_eq!(same[TEST_EXT]["badgeId"], "B1");
    assert_eq!(same[TEST_EXT]["device"], json!({"serial": "S1"}));
    assert_eq!(same[TEST_EXT]["level"], json!(2));
    let e = err(custom_user(
        false,
        json!({"userName": "a", TEST_EXT: {"level": 1, "badgeId": "B2"}}),
        Some(&existing),
    ));
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    assert!(e.detail.contains("badgeId"));
    let e = err(custom_user(
        false,
        json!({"userName": "a", TEST_EXT: {"level": 1, "device": {"serial": "S2"}}}),
        Some(&existing),
    ));
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    assert!(e.detail.contains("device.serial"));
    // Without a stored value, an immutable attribute may be set.
    let fresh = json!({"schemas": [USER_SCHEMA], "userName": "a"});
    assert!(
        custom_user(
            false,
            json!({"userName": "a", TEST_EXT: {"level": 1, "badgeId": "B9"}}),
            Some(&fresh),
        )
        .is_ok()
    );
    // readWrite attributes change freely on replace.
    let v = user_replacing(json!({"userName": "b"}), &json!({"userName": "a"})).unwrap();
    assert_eq!(v["userName"], "b");
}

#[test]
fn limits() {
    let long = "x".repeat(MAX_STRING_BYTES + 1);
    assert_err(
        user(json!({"userName": long})),
        ScimType::InvalidValue,
        &MAX_STRING_BYTES.to_string(),
    );
    let many: Vec<Value> = (0..=MAX_VALUES)
        .map(|i| json!({"value": format!("{i}")}))
        .collect();
    assert_err(
        user(json!({"userName": "a", "emails": many})),
        ScimType::InvalidValue,
        &MAX_VALUES.to_string(),
    );
    // Group members are exempt from the value limit.
    let members: Vec<Value> = (0..=MAX_VALUES)
        .map(|i| json!({"value": format!("u{i}")}))
        .collect();
    let v = group(json!({"displayName": "big", "members": members})).unwrap();
    assert_eq!(v["members"].as_array().unwrap().len(), MAX_VALUES + 1);
}

#[test]
fn group_members_are_canonical_and_can_be_taken_out() {
    let mut v = group(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Admins",
        "members": [
            {"value": "u1", "$ref": null, "display": "Ann"},
            {"value": "g1", "type": "group"},
            {"value": "u1", "type": "User"},
            {}
        ]
    }))
    .unwrap();
    assert_eq!(
        v["members"],
        json!([{"value": "u1", "type": "User"}, {"value": "g1", "type": "Group"}])
    );
    let members = take_members(&mut v).unwrap();
    assert!(v.get("members").is_none());
    assert_eq!(members.len(), 2);
    assert_eq!(members[1].ty, Some(MemberType::Group));
    assert!(take_members(&mut v).unwrap().is_empty());
    assert_err(
        group(
            json!({"displayName": "x", "members": [{"value": "u1", "type": "User"}, {"value": "u1", "type": "Group"}]}),
        ),
        ScimType::InvalidValue,
        "u1",
    );
    assert_err(
        group(json!({"displayName": "x", "members": [{"type": "User"}]})),
        ScimType::InvalidValue,
        "value",
    );
}

mod properties {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;

    /// Keys a client might send: real names in odd cases, extension URNs,
    /// qualified names and junk.
    fn key() -> impl Strategy<Value = String> {
        let names = prop::sample::select(vec![
            "userName",
            "name",
            "givenName",
            "familyName",
            "displayName",
            "active",
            "emails",
            "value",
            "type",
            "primary",
            "password",
            "groups",
            "id",
            "meta",
            "externalId",
            "members",
            "x509Certificates",
            "manager",
            "employeeNumber",
            "schemas",
            ENTERPRISE_USER_SCHEMA,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "ünï",
            "urn:x:y",
        ]);
        (names, any::<bool>()).prop_map(|(n, upper)| {
            if upper {
                n.to_uppercase()
            } else {
                n.to_owned()
            }
        })
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            (-1.0e6f64..1.0e6).prop_map(Value::from),
            prop::sample::select(vec![
                "",
                "a",
                "True",
                "false",
                "QUJD",
                "2026-01-01T00:00:00Z",
                "work"
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    fn body() -> impl Strategy<Value = Value> {
        prop::collection::vec((key(), json()), 0..6).prop_map(|kv| {
            let mut m: Map<String, Value> = kv.into_iter().collect();
            m.insert("userName".into(), Value::from("u"));
            m.insert("displayName".into(), Value::from("d"));
            Value::Object(m)
        })
    }

    proptest! {
        // Most random bodies are rightly rejected; enough cases leave a few hundred accepted ones.
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn normalize_never_panics_and_is_idempotent(input in body(), as_group in any::<bool>()) {
            let reg = SchemaRegistry::core();
            let rt = reg.resource_type(if as_group { "Group" } else { "User" }).unwrap();
            if let Ok(once) = normalize(&reg, rt, &input, None) {
                let twice = normalize(&reg, rt, &once, Some(&once));
                prop_assert_eq!(twice.as_ref(), Ok(&once));
            }
        }
    }
}

#[test]
fn equal_values_of_a_multi_valued_attribute_are_kept_once_few_or_many() {
    // A few: the same email twice, its sub-attributes in another order.
    let v = user(json!({
        "userName": "ada",
        "emails": [
            {"value": "ada@example.com", "type": "work"},
            {"type": "work", "value": "ada@example.com"},
            {"value": "ada@example.org", "type": "home"},
        ],
    }))
    .unwrap();
    let emails = v["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 2, "{emails:?}");
    assert_eq!(emails[1]["value"], "ada@example.org");

    // Many (more than FEW_VALUES): every value twice.
    let numbers: Vec<Value> = (0..2 * (FEW_VALUES + 4))
        .map(|i| json!({"value": format!("+1 555 {:04}", i % (FEW_VALUES + 4))}))
        .collect();
    let v = user(json!({"userName": "ada", "phoneNumbers": numbers})).unwrap();
    let kept: Vec<&str> = v["phoneNumbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["value"].as_str().unwrap())
        .collect();
    assert_eq!(kept.len(), FEW_VALUES + 4, "{kept:?}");
    assert_eq!(kept[0], "+1 555 0000");
    assert_eq!(
        kept[FEW_VALUES + 3],
        format!("+1 555 {:04}", FEW_VALUES + 3)
    );
}

#[test]
fn a_sub_attributes_error_names_its_whole_path() {
    assert_err(
        user(json!({"userName": "a", "name": {"givenName": 5}})),
        ScimType::InvalidValue,
        "name.givenName must be a string, not a number",
    );
    assert_err(
        user(json!({"userName": "a", "emails": [{"value": "a@b.c", "primary": "yes"}]})),
        ScimType::InvalidValue,
        "emails.primary must be a boolean",
    );
}
