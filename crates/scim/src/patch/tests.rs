use serde_json::{Value, json};

use super::*;
use crate::error::ScimType;
use crate::members::{MemberRef, MemberType};
use crate::schema::{AttrType, AttributeDef, ENTERPRISE_USER_SCHEMA, Mutability, Schema};

const ENT: &str = ENTERPRISE_USER_SCHEMA;

fn body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
}

fn run_with(reg: &SchemaRegistry, rt: &str, doc: &mut Value, ops: Value) -> Result<PatchOutcome> {
    let req = PatchRequest::from_json(&body(ops))?;
    let rt = reg.resource_type(rt).unwrap();
    apply_patch(reg, rt, doc, &req)
}

fn run(rt: &str, doc: &mut Value, ops: Value) -> Result<PatchOutcome> {
    run_with(&SchemaRegistry::core(), rt, doc, ops)
}

/// Applies `ops` to `doc` and returns the new document and the member changes.
fn ok(rt: &str, mut doc: Value, ops: Value) -> (Value, Vec<MemberOp>) {
    let out = run(rt, &mut doc, ops).unwrap_or_else(|e| panic!("patch failed: {e}"));
    (doc, out.members)
}

fn user(doc: Value, ops: Value) -> Value {
    ok("User", doc, ops).0
}

fn group(ops: Value) -> Vec<MemberOp> {
    let (doc, members) = ok("Group", json!({"displayName": "G"}), ops);
    assert_eq!(doc, json!({"displayName": "G"}));
    members
}

/// Fails the patch and checks the doc was left alone.
fn err(rt: &str, doc: Value, ops: Value) -> ScimError {
    let mut d = doc.clone();
    let e = run(rt, &mut d, ops).expect_err("patch should fail");
    assert_eq!(d, doc, "a failed patch must not change the document");
    e
}

fn scim_type(e: &ScimError) -> ScimType {
    assert_eq!(e.status, 400, "{e}");
    e.scim_type.unwrap()
}

fn parse_err(b: Value) -> ScimType {
    scim_type(&PatchRequest::from_json(&b).unwrap_err())
}

fn member(id: &str) -> MemberRef {
    MemberRef {
        value: id.into(),
        ty: None,
    }
}

// ---- request parsing ----

#[test]
fn parses_operations_case_insensitively() {
    let req = PatchRequest::from_json(&json!({
        "schemas": [PATCH_OP_SCHEMA],
        "operations": [
            {"op": "Add", "path": "nickName", "value": "x"},
            {"OP": "REPLACE", "Path": "title", "Value": "y"},
            {"op": "remove", "path": "emails[type eq \"work\"]"},
        ]
    }))
    .unwrap();
    let kinds: Vec<_> = req.operations.iter().map(|o| o.op).collect();
    assert_eq!(kinds, [PatchOp::Add, PatchOp::Replace, PatchOp::Remove]);
    assert_eq!(req.operations[1].value, Some(json!("y")));
    assert!(req.operations[2].path.as_ref().unwrap().filter.is_some());
}

#[test]
fn schemas_may_be_missing_but_not_wrong() {
    let ops = json!([{"op": "add", "path": "nickName", "value": "x"}]);
    assert!(PatchRequest::from_json(&json!({"Operations": ops})).is_ok());
    let wrong =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": ops});
    assert_eq!(parse_err(wrong), ScimType::InvalidSyntax);
}

#[test]
fn rejects_malformed_operation_lists() {
    for b in [
        json!({"schemas": [PATCH_OP_SCHEMA]}),
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": []}),
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": {"op": "add"}}),
        json!([]),
        body(json!(["add"])),
        body(json!([{"op": "merge", "path": "title", "value": "x"}])),
        body(json!([{"path": "title", "value": "x"}])),
        body(json!([{"op": "add", "path": "title"}])),
        body(json!([{"op": "replace"}])),
        body(json!([{"op": "add", "value": "not an object"}])),
        body(json!([{"op": "add", "path": 3, "value": "x"}])),
    ] {
        assert_eq!(parse_err(b.clone()), ScimType::InvalidSyntax, "{b}");
    }
}

#[test]
fn remove_without_path_is_no_target() {
    let e = parse_err(body(json!([{"op": "Remove", "value": {"title": "x"}}])));
    assert_eq!(e, ScimType::NoTarget);
}

#[test]
fn malformed_path_is_invalid_path() {
    for p in [
        "emails[type eq",
        "name..x",
        "emails[type eq \"w\"]x",
        "1abc",
    ] {
        let b = body(json!([{"op": "remove", "path": p}]));
        assert_eq!(parse_err(b), ScimType::InvalidPath, "{p}");
    }
}

#[test]
fn explicit_null_value_is_kept_apart_from_a_missing_one() {
    let req = PatchRequest::from_json(&body(json!([
        {"op": "replace", "path": "title", "value": null}
    ])))
    .unwrap();
    assert_eq!(req.operations[0].value, Some(Value::Null));
    let req = PatchRequest::from_json(&body(json!([{"op": "add", "path": "", "value": {}}])));
    assert!(req.unwrap().operations[0].path.is_none());
}

// ---- RFC 7644 §3.5.2 examples ----

#[test]
fn rfc_add_member_to_group() {
    let m = group(json!([{"op": "add", "path": "members", "value": [{
        "display": "Babs Jensen",
        "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
        "value": "2819c223-7f76-453a-919d-413861904646"
    }]}]));
    assert_eq!(
        m,
        [MemberOp::Add(vec![member(
            "2819c223-7f76-453a-919d-413861904646"
        )])]
    );
}

#[test]
fn rfc_pathless_add_appends_and_sets() {
    let doc = json!({"userName": "bjensen", "emails": [{"value": "bjensen@example.com", "type": "work"}]});
    let d = user(
        doc,
        json!([{"op": "add", "value": {
            "emails": [{"value": "babs@jensen.org", "type": "home"}],
            "nickname": "Babs"
        }}]),
    );
    assert_eq!(
        d,
        json!({"userName": "bjensen", "emails": [
            {"value": "bjensen@example.com", "type": "work"},
            {"value": "babs@jensen.org", "type": "home"}
        ], "nickName": "Babs"})
    );
}

#[test]
fn rfc_remove_one_member_by_filter() {
    let m = group(json!([{"op": "remove",
        "path": "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]"}]));
    assert_eq!(
        m,
        [MemberOp::Remove(vec![
            "2819c223-7f76-453a-919d-413861904646".into()
        ])]
    );
}

#[test]
fn rfc_remove_all_members() {
    assert_eq!(
        group(json!([{"op": "remove", "path": "members"}])),
        [MemberOp::RemoveAll]
    );
}

#[test]
fn rfc_remove_all_then_add_members() {
    let m = group(json!([
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [
            {"display": "Babs Jensen", "value": "2819c223"},
            {"display": "James Smith", "value": "08e1d05d"}
        ]}
    ]));
    assert_eq!(
        m,
        [
            MemberOp::RemoveAll,
            MemberOp::Add(vec![member("2819c223"), member("08e1d05d")])
        ]
    );
}

#[test]
fn rfc_replace_members() {
    let m = group(json!([{"op": "replace", "path": "members", "value": [
        {"display": "Babs Jensen", "value": "2819c223", "type": "User"}
    ]}]));
    assert_eq!(
        m,
        [MemberOp::ReplaceAll(vec![MemberRef {
            value: "2819c223".into(),
            ty: Some(MemberType::User)
        }])]
    );
}

#[test]
fn rfc_pathless_replace_replaces_lists() {
    let doc = json!({"userName": "bjensen", "emails": [{"value": "old@example.com"}]});
    let d = user(
        doc,
        json!([{"op": "replace", "value": {
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "nickname": "Babs"
        }}]),
    );
    assert_eq!(
        d["emails"],
        json!([
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ])
    );
    assert_eq!(d["nickName"], "Babs");
}

#[test]
fn rfc_remove_single_valued_attribute_and_sub_attribute() {
    let doc =
        json!({"userName": "b", "title": "Boss", "name": {"givenName": "B", "familyName": "J"}});
    let d = user(
        doc,
        json!([
            {"op": "remove", "path": "title"},
            {"op": "remove", "path": "name.givenName"}
        ]),
    );
    assert_eq!(d, json!({"userName": "b", "name": {"familyName": "J"}}));
}

// ---- add / replace semantics ----

#[test]
fn add_to_multi_valued_appends_and_skips_duplicates() {
    let doc = json!({"emails": [{"value": "a@x", "type": "work"}]});
    let d = user(
        doc,
        json!([{"op": "add", "path": "emails", "value": [
            {"Value": "a@x", "TYPE": "work"},
            {"value": "b@x"}
        ]}]),
    );
    assert_eq!(
        d["emails"],
        json!([{"value": "a@x", "type": "work"}, {"value": "b@x"}])
    );
}

#[test]
fn add_single_object_to_multi_valued() {
    let d = user(
        json!({}),
        json!([{"op": "add", "path": "phoneNumbers", "value": {"value": "555", "type": "work"}}]),
    );
    assert_eq!(
        d,
        json!({"phoneNumbers": [{"value": "555", "type": "work"}]})
    );
}

#[test]
fn replace_path_to_multi_valued_replaces_the_list() {
    let doc = json!({"roles": [{"value": "a"}, {"value": "b"}]});
    let d = user(
        doc,
        json!([{"op": "replace", "path": "roles", "value": [{"value": "c"}]}]),
    );
    assert_eq!(d, json!({"roles": [{"value": "c"}]}));
}

#[test]
fn complex_single_valued_merges_sub_attributes() {
    let doc = json!({"name": {"givenName": "B", "familyName": "J"}});
    let d = user(
        doc.clone(),
        json!([{"op": "replace", "path": "name", "value": {"GivenName": "Barbara"}}]),
    );
    assert_eq!(
        d,
        json!({"name": {"givenName": "Barbara", "familyName": "J"}})
    );
    let d = user(
        doc,
        json!([{"op": "add", "value": {"name": {"middleName": "X", "familyName": null}}}]),
    );
    assert_eq!(d, json!({"name": {"givenName": "B", "middleName": "X"}}));
}

#[test]
fn sub_attribute_path_creates_the_parent() {
    let d = user(
        json!({}),
        json!([{"op": "add", "path": "name.familyName", "value": "J"}]),
    );
    assert_eq!(d, json!({"name": {"familyName": "J"}}));
}

#[test]
fn single_valued_add_sets() {
    let d = user(
        json!({"nickName": "a"}),
        json!([{"op": "Add", "path": "nickName", "value": "x"}]),
    );
    assert_eq!(d, json!({"nickName": "x"}));
}

#[test]
fn names_are_case_insensitive_and_canonicalised() {
    let d = user(
        json!({}),
        json!([
            {"op": "add", "path": "NAME.GIVENNAME", "value": "B"},
            {"op": "add", "path": "Emails", "value": [{"VALUE": "a@x", "Type": "work", "PRIMARY": true}]},
            {"op": "add", "value": {"DisplayName": "Babs", "urn:ietf:params:scim:schemas:core:2.0:User:Title": "T"}},
            {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:Department", "value": "D"}
        ]),
    );
    assert_eq!(
        d,
        json!({
            "name": {"givenName": "B"},
            "emails": [{"value": "a@x", "type": "work", "primary": true}],
            "displayName": "Babs",
            "title": "T",
            ENT: {"department": "D"}
        })
    );
}

#[test]
fn an_extension_value_may_carry_its_own_schemas() {
    // scim2-models sends the extension object with its `schemas`, by path and pathless.
    let d = user(
        json!({"userName": "b"}),
        json!([
            {"op": "add", "path": ENT, "value": {"schemas": [ENT], "employeeNumber": "1"}},
            {"op": "replace", "value": {ENT: {"schemas": [ENT], "department": "X"}}}
        ]),
    );
    assert_eq!(
        d,
        json!({"userName": "b", ENT: {"employeeNumber": "1", "department": "X"}})
    );
    let e = err(
        "User",
        json!({"userName": "b"}),
        json!([{"op": "add", "path": ENT, "value": {"schemas": ["urn:x"], "department": "X"}}]),
    );
    assert_eq!(scim_type(&e), ScimType::InvalidSyntax);
}

#[test]
fn bare_extension_urn_path_takes_an_object_of_its_attributes() {
    let d = user(
        json!({"userName": "b"}),
        json!([{"op": "add", "path": ENT, "value": {"employeeNumber": "1", "Department": "X"}}]),
    );
    assert_eq!(
        d,
        json!({"userName": "b", ENT: {"employeeNumber": "1", "department": "X"}})
    );
    let d = user(d, json!([{"op": "remove", "path": ENT}]));
    assert_eq!(d, json!({"userName": "b"}));
}

#[test]
fn pathless_value_with_extension_object() {
    let d = user(
        json!({ENT: {"costCenter": "1"}}),
        json!([{"op": "replace", "value": {ENT: {"division": "D", "costCenter": "2"}}}]),
    );
    assert_eq!(d, json!({ENT: {"costCenter": "2", "division": "D"}}));
}

#[test]
fn removing_the_last_extension_attribute_drops_the_extension_and_its_schema() {
    let doc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT], ENT: {"division": "D"}});
    let d = user(
        doc,
        json!([{"op": "remove", "path": format!("{ENT}:division")}]),
    );
    assert_eq!(
        d,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]})
    );
    let d = user(
        d,
        json!([{"op": "add", "path": format!("{ENT}:division"), "value": "E"}]),
    );
    assert_eq!(
        d["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENT])
    );
}

// ---- remove semantics ----

#[test]
fn removing_absent_things_is_a_no_op() {
    let doc = json!({"userName": "b"});
    let d = user(
        doc.clone(),
        json!([
            {"op": "remove", "path": "title"},
            {"op": "remove", "path": "name.givenName"},
            {"op": "remove", "path": "emails[type eq \"work\"]"},
            {"op": "remove", "path": format!("{ENT}:manager")},
            {"op": "remove", "path": ENT}
        ]),
    );
    assert_eq!(d, doc);
}

#[test]
fn remove_with_value_on_multi_valued_removes_only_the_listed_values() {
    let doc = json!({"emails": [
        {"value": "a@x", "type": "work"},
        {"value": "b@x", "type": "home"}
    ]});
    let d = user(
        doc,
        json!([{"op": "remove", "path": "emails", "value": [{"value": "A@X"}]}]),
    );
    assert_eq!(d, json!({"emails": [{"value": "b@x", "type": "home"}]}));
    let d = user(
        d,
        json!([{"op": "remove", "path": "emails", "value": {"value": "b@x"}}]),
    );
    assert_eq!(
        d,
        json!({}),
        "removing the last value removes the attribute"
    );
}

// ---- Entra ID ----

#[test]
fn entra_capitalised_ops_and_string_booleans_kept_for_coercion() {
    let d = user(
        json!({"active": true}),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    );
    assert_eq!(d, json!({"active": "False"}));
}

#[test]
fn entra_remove_members_by_value_list_removes_only_those() {
    let m = group(json!([{"op": "Remove", "path": "members", "value": [
        {"value": "u1"}, {"value": "u2"}
    ]}]));
    assert_eq!(m, [MemberOp::Remove(vec!["u1".into(), "u2".into()])]);
}

#[test]
fn entra_add_member_with_null_ref() {
    let m =
        group(json!([{"op": "Add", "path": "members", "value": [{"value": "u1", "$ref": null}]}]));
    assert_eq!(m, [MemberOp::Add(vec![member("u1")])]);
}

#[test]
fn entra_add_work_email_by_filter_creates_the_element() {
    for op in ["Add", "Replace"] {
        let d = user(
            json!({"userName": "b"}),
            json!([{"op": op, "path": "emails[type eq \"work\"].value", "value": "b@x"}]),
        );
        assert_eq!(
            d,
            json!({"userName": "b", "emails": [{"type": "work", "value": "b@x"}]}),
            "{op}"
        );
    }
}

#[test]
fn entra_manager_as_plain_id() {
    let path = format!("{ENT}:manager");
    let d = user(
        json!({}),
        json!([{"op": "Add", "path": path, "value": "m1"}]),
    );
    assert_eq!(d, json!({ENT: {"manager": {"value": "m1"}}}));
    let d = user(
        d,
        json!([{"op": "Replace", "path": path, "value": {"Value": "m2", "displayName": "Boss"}}]),
    );
    assert_eq!(d, json!({ENT: {"manager": {"value": "m2"}}}));
    let d = user(d, json!([{"op": "Replace", "value": {path.clone(): "m3"}}]));
    assert_eq!(d, json!({ENT: {"manager": {"value": "m3"}}}));
    let d = user(d, json!([{"op": "Remove", "path": path}]));
    assert_eq!(d, json!({}));
}

#[test]
fn entra_dotted_and_urn_keys_in_pathless_replace() {
    let d = user(
        json!({"name": {"familyName": "J"}}),
        json!([{"op": "Replace", "value": {
            "name.givenName": "Barbara",
            format!("{ENT}:employeeNumber"): "1",
            "urn:ietf:params:scim:schemas:core:2.0:User:displayName": "Babs",
            "active": "True"
        }}]),
    );
    assert_eq!(
        d,
        json!({
            "name": {"familyName": "J", "givenName": "Barbara"},
            ENT: {"employeeNumber": "1"},
            "displayName": "Babs",
            "active": "True"
        })
    );
}

#[test]
fn entra_clears_with_empty_string_or_null() {
    let doc = json!({
        "userName": "b", "title": "T", "nickName": "N",
        "name": {"givenName": "B"}, "emails": [{"value": "a@x"}],
        ENT: {"department": "D"}
    });
    let d = user(
        doc,
        json!([
            {"op": "Replace", "path": "title", "value": ""},
            {"op": "Add", "path": "nickName", "value": null},
            {"op": "Replace", "path": "name.givenName", "value": ""},
            {"op": "Replace", "path": "emails", "value": null},
            {"op": "Replace", "value": {format!("{ENT}:department"): ""}}
        ]),
    );
    assert_eq!(d, json!({"userName": "b"}));
}

// ---- Okta ----

#[test]
fn okta_deactivation() {
    let d = user(
        json!({"userName": "b", "active": true}),
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    assert_eq!(d, json!({"userName": "b", "active": false}));
}

#[test]
fn okta_group_rename_with_id_is_idempotent() {
    let ops = json!([{"op": "replace", "value": {"id": "g1", "displayName": "New"}}]);
    let (d, m) = ok("Group", json!({"displayName": "Old"}), ops.clone());
    assert_eq!(d, json!({"displayName": "New"}));
    assert!(m.is_empty());
    let (d2, _) = ok("Group", d.clone(), ops);
    assert_eq!(d2, d);
}

#[test]
fn okta_remove_then_add_member() {
    let m = group(json!([
        {"op": "remove", "path": "members[value eq \"u1\"]"},
        {"op": "add", "path": "members", "value": [{"value": "u2", "display": "U2"}]}
    ]));
    assert_eq!(
        m,
        [
            MemberOp::Remove(vec!["u1".into()]),
            MemberOp::Add(vec![member("u2")])
        ]
    );
}

// ---- members ----

#[test]
fn member_filters_beyond_value_eq_become_remove_where() {
    let m = group(json!([
        {"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"},
        {"op": "remove", "path": "members[type eq \"Group\"]"}
    ]));
    assert_eq!(m[0], MemberOp::Remove(vec!["a".into(), "b".into()]));
    assert!(matches!(&m[1], MemberOp::RemoveWhere(f) if f.to_string() == "type eq \"Group\""));
}

#[test]
fn pathless_members_and_replace_with_empty() {
    let m = group(json!([
        {"op": "add", "value": {"members": [{"value": "u1"}]}},
        {"op": "replace", "value": {"Members": []}},
        {"op": "add", "path": "members", "value": []}
    ]));
    assert_eq!(
        m,
        [
            MemberOp::Add(vec![member("u1")]),
            MemberOp::ReplaceAll(vec![])
        ]
    );
}

#[test]
fn member_errors() {
    let g = json!({"displayName": "G"});
    let e = err(
        "Group",
        g.clone(),
        json!([{"op": "replace", "path": "members[value eq \"a\"]", "value": {"value": "b"}}]),
    );
    assert_eq!(scim_type(&e), ScimType::InvalidPath);
    let e = err(
        "Group",
        g.clone(),
        json!([{"op": "replace", "path": "members.display", "value": "x"}]),
    );
    assert_eq!(scim_type(&e), ScimType::Mutability);
    let e = err(
        "User",
        json!({}),
        json!([{"op": "add", "path": "members", "value": [{"value": "a"}]}]),
    );
    assert_eq!(scim_type(&e), ScimType::InvalidPath);
    let e = err(
        "Group",
        g,
        json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]),
    );
    assert_eq!(scim_type(&e), ScimType::InvalidValue);
}

// ---- errors ----

#[test]
fn unknown_attributes() {
    let doc = json!({"userName": "b"});
    let e = err(
        "User",
        doc.clone(),
        json!([{"op": "add", "path": "nope", "value": "x"}]),
    );
    assert_eq!(scim_type(&e), ScimType::InvalidPath);
    let e = err(
        "User",
        doc.clone(),
        json!([{"op": "remove", "path": "name.nope"}]),
    );
    assert_eq!(scim_type(&e), ScimType::InvalidPath);
    let e = err(
        "User",
        doc.clone(),
        json!([{"op": "add", "value": {"nope": "x"}}]),
    );
    assert_eq!(scim_type(&e), ScimType::InvalidSyntax);
    let e = err(
        "User",
        doc.clone(),
        json!([{"op": "add", "path": "emails", "value": [{"valu": "x"}]}]),
    );
    assert_eq!(scim_type(&e), ScimType::InvalidSyntax);
    let e = err(
        "User",
        doc,
        json!([{"op": "add", "path": "title[value eq \"x\"]", "value": "y"}]),
    );
    assert_eq!(scim_type(&e), ScimType::InvalidPath);
}

#[test]
fn read_only_targets_are_mutability_errors() {
    let doc = json!({"userName": "b"});
    for (op, path) in [
        ("replace", "id"),
        ("add", "meta.created"),
        ("remove", "meta"),
        ("add", "groups"),
        ("replace", "groups[value eq \"g\"].display"),
    ] {
        let e = err(
            "User",
            doc.clone(),
            json!([{"op": op, "path": path, "value": "x"}]),
        );
        assert_eq!(scim_type(&e), ScimType::Mutability, "{op} {path}");
    }
    let e = err(
        "User",
        doc.clone(),
        json!([{"op": "replace", "path": format!("{ENT}:manager.displayName"), "value": "x"}]),
    );
    assert_eq!(scim_type(&e), ScimType::Mutability);
    let e = err(
        "User",
        doc,
        json!([{"op": "replace", "value": {"groups": [{"value": "g1"}]}}]),
    );
    assert_eq!(scim_type(&e), ScimType::Mutability);
}

#[test]
fn pathless_read_only_echoes_are_ignored() {
    let doc = json!({"userName": "b"});
    let d = user(
        doc.clone(),
        json!([{"op": "replace", "value": {
            "id": "whatever", "meta": {"resourceType": "User"}, "groups": [],
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "c"
        }}]),
    );
    assert_eq!(d, json!({"userName": "c"}));
}

#[test]
fn replace_filter_matching_nothing_without_sub_attribute_is_no_target() {
    let e = err(
        "User",
        json!({"userName": "b"}),
        json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": {"locality": "X"}}]),
    );
    assert_eq!(scim_type(&e), ScimType::NoTarget);
}

#[test]
fn unbuildable_filter_matching_nothing_is_no_target() {
    let e = err(
        "User",
        json!({}),
        json!([{"op": "add", "path": "emails[value co \"@x\"].type", "value": "work"}]),
    );
    assert_eq!(scim_type(&e), ScimType::NoTarget);
}

#[test]
fn failed_request_is_atomic() {
    let doc = json!({"userName": "b", "emails": [{"value": "a@x"}]});
    let e = err(
        "User",
        doc,
        json!([
            {"op": "add", "path": "nickName", "value": "N"},
            {"op": "remove", "path": "emails"},
            {"op": "replace", "path": "id", "value": "x"}
        ]),
    );
    assert_eq!(scim_type(&e), ScimType::Mutability);
}

// ---- primary ----

#[test]
fn new_primary_value_takes_primary_from_the_others() {
    let doc = json!({"emails": [{"value": "a@x", "primary": true}]});
    let d = user(
        doc,
        json!([{"op": "add", "path": "emails", "value": [{"value": "b@x", "primary": "True"}]}]),
    );
    assert_eq!(
        d["emails"],
        json!([{"value": "a@x", "primary": false}, {"value": "b@x", "primary": "True"}])
    );
}

#[test]
fn replaced_list_keeps_one_primary() {
    let d = user(
        json!({}),
        json!([{"op": "replace", "path": "emails", "value": [
            {"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}
        ]}]),
    );
    assert_eq!(
        d["emails"],
        json!([{"value": "a@x", "primary": false}, {"value": "b@x", "primary": true}])
    );
}

#[test]
fn primary_set_through_a_created_element() {
    let doc = json!({"emails": [{"value": "a@x", "type": "home", "primary": true}]});
    let d = user(
        doc,
        json!([{"op": "add", "path": "phoneNumbers[type eq \"work\"].value", "value": "1"},
               {"op": "add", "path": "emails", "value": {"value": "a@x", "type": "home", "primary": true}}]),
    );
    assert_eq!(
        d["emails"],
        json!([{"value": "a@x", "type": "home", "primary": true}])
    );
}

// ---- immutable ----

fn reg_with_immutable() -> SchemaRegistry {
    let mut reg = SchemaRegistry::core();
    let ext = Schema {
        id: "urn:example:params:scim:schemas:extension:acme:2.0:User".into(),
        name: "Acme".into(),
        description: String::new(),
        attributes: vec![
            AttributeDef::new("badge", AttrType::String).mutability(Mutability::Immutable),
        ],
    };
    reg.add_extension(ext, "User", false).unwrap();
    reg
}

#[test]
fn immutable_may_be_set_once_but_not_changed() {
    let reg = reg_with_immutable();
    let mut doc = json!({});
    let set = json!([{"op": "add", "path": "badge", "value": "7"}]);
    run_with(&reg, "User", &mut doc, set.clone()).unwrap();
    assert_eq!(
        doc,
        json!({"urn:example:params:scim:schemas:extension:acme:2.0:User": {"badge": "7"}})
    );
    run_with(&reg, "User", &mut doc, set).unwrap();
    let change = json!([{"op": "replace", "path": "badge", "value": "8"}]);
    let e = run_with(&reg, "User", &mut doc, change).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    let e = run_with(
        &reg,
        "User",
        &mut doc,
        json!([{"op": "remove", "path": "badge"}]),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
}

// ---- value filters on existing elements ----

fn addresses() -> Value {
    json!({"userName": "b", "addresses": [
        {"type": "work", "streetAddress": "100 Main", "locality": "Hollywood", "primary": true},
        {"type": "home", "streetAddress": "1 Elm", "locality": "Springfield"}
    ]})
}

#[test]
fn rfc_replace_filtered_element() {
    let d = user(
        addresses(),
        json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": {
            "type": "work", "streetAddress": "911 Universal City Plaza",
            "locality": "Hollywood", "region": "CA", "postalCode": "91608",
            "country": "US", "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
            "primary": true
        }}]),
    );
    assert_eq!(
        d["addresses"][0]["streetAddress"],
        "911 Universal City Plaza"
    );
    assert_eq!(d["addresses"][0]["postalCode"], "91608");
    assert_eq!(d["addresses"][1]["streetAddress"], "1 Elm");
}

#[test]
fn rfc_replace_filtered_sub_attribute() {
    let d = user(
        addresses(),
        json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress",
                "value": "1010 Broadway Ave"}]),
    );
    assert_eq!(d["addresses"][0]["streetAddress"], "1010 Broadway Ave");
    assert_eq!(d["addresses"][0]["locality"], "Hollywood");
    assert_eq!(d["addresses"][1]["streetAddress"], "1 Elm");
}

#[test]
fn rfc_remove_filtered_elements() {
    let doc = json!({"emails": [
        {"value": "b@example.com", "type": "work"},
        {"value": "b@other.org", "type": "work"},
        {"value": "b@home.org", "type": "home"}
    ]});
    let d = user(
        doc,
        json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
    );
    assert_eq!(
        d["emails"],
        json!([{"value": "b@other.org", "type": "work"}, {"value": "b@home.org", "type": "home"}])
    );
}

#[test]
fn remove_filtered_sub_attribute_and_last_element() {
    let doc = json!({"emails": [{"value": "a@x", "type": "work", "display": "A"}]});
    let d = user(
        doc,
        json!([{"op": "remove", "path": "emails[type eq \"work\"].display"}]),
    );
    assert_eq!(d, json!({"emails": [{"value": "a@x", "type": "work"}]}));
    let d = user(
        d,
        json!([{"op": "remove", "path": "emails[TYPE eq \"WORK\"]"}]),
    );
    assert_eq!(
        d,
        json!({}),
        "removing the last element removes the attribute"
    );
}

#[test]
fn entra_filtered_value_updates_existing_and_creates_missing() {
    let doc =
        json!({"emails": [{"value": "h@x", "type": "home"}, {"value": "old@x", "type": "work"}]});
    let d = user(
        doc,
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@x"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "555"},
            {"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": "666"},
            {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Paris"}
        ]),
    );
    assert_eq!(
        d,
        json!({
            "emails": [{"value": "h@x", "type": "home"}, {"value": "new@x", "type": "work"}],
            "phoneNumbers": [{"type": "mobile", "value": "555"}, {"type": "work", "value": "666"}],
            "addresses": [{"type": "work", "locality": "Paris"}]
        })
    );
}

#[test]
fn entra_filtered_value_cleared_with_empty_string() {
    let doc =
        json!({"phoneNumbers": [{"value": "1", "type": "fax"}, {"value": "2", "type": "work"}]});
    let d = user(
        doc,
        json!([
            {"op": "Replace", "path": "phoneNumbers[type eq \"fax\"].value", "value": ""},
            {"op": "Replace", "path": "phoneNumbers[type eq \"pager\"].value", "value": ""}
        ]),
    );
    // The fax number is gone, not left as a number-less `{"type": "fax"}`.
    assert_eq!(d, json!({"phoneNumbers": [{"value": "2", "type": "work"}]}));
}

#[test]
fn add_with_filter_merges_into_matching_elements() {
    let d = user(
        addresses(),
        json!([{"op": "add", "path": "addresses[type eq \"home\"]", "value": {"region": "IL"}}]),
    );
    assert_eq!(
        d["addresses"][1],
        json!({"type": "home", "streetAddress": "1 Elm", "locality": "Springfield", "region": "IL"})
    );
}

#[test]
fn primary_through_a_filter_clears_the_others() {
    let d = user(
        addresses(),
        json!([{"op": "replace", "path": "addresses[type eq \"home\"].primary", "value": true}]),
    );
    assert_eq!(d["addresses"][0]["primary"], false);
    assert_eq!(d["addresses"][1]["primary"], true);
}

#[test]
fn filtered_replace_matching_nothing_is_no_target_even_with_elements() {
    let e = err(
        "User",
        addresses(),
        json!([{"op": "replace", "path": "addresses[type eq \"other\"]", "value": {"locality": "X"}}]),
    );
    assert_eq!(scim_type(&e), ScimType::NoTarget);
}

#[test]
fn filter_that_does_not_fit_the_attribute_is_invalid_path() {
    for ops in [
        json!([{"op": "remove", "path": "emails[nope eq \"x\"]"}]),
        json!([{"op": "replace", "path": "emails[nope eq \"x\"].value", "value": "v"}]),
        json!([{"op": "add", "path": "emails[nope eq \"x\"].value", "value": "v"}]),
    ] {
        let e = err("User", json!({"emails": [{"value": "a"}]}), ops.clone());
        assert_eq!(scim_type(&e), ScimType::InvalidPath, "{ops}");
    }
    let e = err(
        "Group",
        json!({"displayName": "G"}),
        json!([{"op": "remove", "path": "members[nope eq \"x\"]"}]),
    );
    assert_eq!(scim_type(&e), ScimType::InvalidPath);
}

#[test]
fn sub_attribute_of_multi_valued_without_filter_concerns_every_element() {
    let doc = json!({"emails": [{"value": "a", "display": "A"}, {"value": "b", "display": "B"}]});
    let d = user(doc, json!([{"op": "remove", "path": "emails.display"}]));
    assert_eq!(d, json!({"emails": [{"value": "a"}, {"value": "b"}]}));
    let d = user(
        d,
        json!([{"op": "replace", "path": "emails.type", "value": "work"}]),
    );
    assert_eq!(
        d,
        json!({"emails": [{"value": "a", "type": "work"}, {"value": "b", "type": "work"}]})
    );
}

#[test]
fn pathless_key_may_carry_a_value_filter() {
    let d = user(
        json!({"emails": [{"value": "old@x", "type": "work"}]}),
        json!([{"op": "Replace", "value": {"emails[type eq \"work\"].value": "new@x"}}]),
    );
    assert_eq!(d, json!({"emails": [{"value": "new@x", "type": "work"}]}));
}

#[test]
fn entra_clearing_a_filtered_value_removes_the_element() {
    let doc = json!({"emails": [
        {"value": "w@x", "type": "work", "primary": true},
        {"value": "h@x", "type": "home"}
    ]});
    let home = json!({"emails": [{"value": "h@x", "type": "home"}]});
    for op in [
        json!({"op": "Replace", "path": "emails[type eq \"work\"].value", "value": ""}),
        json!({"op": "Replace", "path": "emails[type eq \"work\"].value", "value": null}),
        json!({"op": "Remove", "path": "emails[type eq \"work\"].value"}),
    ] {
        assert_eq!(user(doc.clone(), json!([op])), home, "{op}");
    }
    // Other sub-attributes still go alone.
    let d = user(
        doc,
        json!([{"op": "Remove", "path": "emails[type eq \"work\"].primary"}]),
    );
    assert_eq!(d["emails"][0], json!({"value": "w@x", "type": "work"}));
}
