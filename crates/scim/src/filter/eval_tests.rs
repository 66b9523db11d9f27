use serde_json::{Value, json};

use super::*;
use crate::path::AttrPath;
use crate::schema::{AttrType, AttributeDef, Schema, SchemaRegistry};

const TEST_EXT: &str = "urn:example:params:scim:schemas:extension:test:2.0:User";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn registry() -> SchemaRegistry {
    let mut reg = SchemaRegistry::core();
    let a = AttributeDef::new;
    reg.add_extension(
        Schema {
            id: TEST_EXT.to_owned(),
            name: "Test".to_owned(),
            description: String::new(),
            attributes: vec![
                a("level", AttrType::Integer),
                a("score", AttrType::Decimal),
                a("hired", AttrType::DateTime),
                a("flags", AttrType::Boolean).multi(),
                a("nums", AttrType::Integer).multi(),
                a("tags", AttrType::String).multi().case_exact(),
                a("dates", AttrType::DateTime).multi(),
                a("badges", AttrType::Complex).multi().subs(vec![
                    a("name", AttrType::String),
                    a("rank", AttrType::Integer),
                ]),
            ],
        },
        "User",
        false,
    )
    .unwrap();
    reg
}

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT, TEST_EXT],
        "id": "U-1",
        "externalId": "Ext-1",
        "userName": "BJensen",
        "name": {"givenName": "Barbara", "familyName": "O'Malley"},
        "displayName": "",
        "title": null,
        "active": true,
        "profileUrl": "https://Example.com/bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@Home.org", "type": "home"}
        ],
        "phoneNumbers": [],
        "x509Certificates": [{"value": "TUlJREFD"}],
        "meta": {
            "resourceType": "User",
            "created": "2025-06-01T00:00:00Z",
            "lastModified": "2026-02-01T10:00:00.5Z",
            "version": "W/\"1\""
        },
        ENT: {"employeeNumber": "7", "manager": {"value": "M-1", "displayName": "Boss"}},
        TEST_EXT: {
            "level": 3,
            "score": 2.5,
            "hired": "2024-01-01T12:00:00+02:00",
            "flags": [true, false],
            "nums": [1, 5],
            "tags": ["A", "b"],
            "dates": ["not a date", "2020-01-01T00:00:00Z"],
            "badges": [{"name": "x", "rank": 2}]
        }
    })
}

fn m(filter: &str) -> bool {
    m_on(filter, &user())
}

fn m_on(filter: &str, resource: &Value) -> bool {
    let reg = registry();
    let rt = reg.resource_type("User").unwrap();
    let f = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    matches(&reg, rt, &f, resource).unwrap_or_else(|e| panic!("{filter}: {e}"))
}

fn all(filters: &[&str], expected: bool) {
    for f in filters {
        assert_eq!(m(f), expected, "{f}");
    }
}

fn check_err(filter: &str) -> String {
    let reg = registry();
    let rt = reg.resource_type("User").unwrap();
    let f = parse_filter(filter).unwrap();
    let e = check_filter(&reg, rt, &f).unwrap_err();
    assert_eq!(
        e.scim_type,
        Some(crate::ScimType::InvalidFilter),
        "{filter}"
    );
    // Evaluation refuses the same filters, whatever the resource.
    assert_eq!(matches(&reg, rt, &f, &json!({})).unwrap_err(), e);
    e.detail
}

#[test]
fn string_operators_fold_case_for_case_insensitive_attributes() {
    all(
        &[
            r#"userName eq "bjensen""#,
            r#"USERNAME EQ "BJENSEN""#,
            r#"userName co "JENS""#,
            r#"userName sw "bJ""#,
            r#"userName ew "SEN""#,
            r#"userName gt "bjensem""#,
            r#"userName ge "bjensen""#,
            r#"userName lt "bjenseo""#,
            r#"userName le "bjensen""#,
            r#"userName ne "other""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName co """#,
        ],
        true,
    );
    all(
        &[
            r#"userName ne "BJENSEN""#,
            r#"userName gt "bjensen""#,
            r#"userName lt "bjensen""#,
            r#"userName co "x""#,
            r#"userName sw "jensen""#,
            r#"userName ew "bj""#,
        ],
        false,
    );
}

#[test]
fn case_exact_attributes_compare_exactly() {
    all(
        &[
            r#"id eq "U-1""#,
            r#"externalId eq "Ext-1""#,
            r#"externalId sw "Ext""#,
            r#"id ne "u-1""#,
            r#"tags eq "A""#,
            r#"meta.version eq "W/\"1\"""#,
            // Byte order: uppercase sorts before lowercase.
            r#"id lt "u""#,
        ],
        true,
    );
    all(
        &[
            r#"id eq "u-1""#,
            r#"externalId eq "ext-1""#,
            r#"externalId co "EXT""#,
            r#"tags eq "a""#,
            r#"id gt "u""#,
        ],
        false,
    );
}

#[test]
fn reference_and_binary_are_textual() {
    all(
        &[
            r#"profileUrl sw "https://example.COM""#,
            r#"profileUrl ew "/BJENSEN""#,
            r#"x509Certificates.value eq "TUlJREFD""#,
            r#"x509Certificates co "JRE""#,
        ],
        true,
    );
    all(&[r#"profileUrl co "nope""#], false);
}

#[test]
fn booleans_take_json_or_entra_text() {
    all(
        &[
            "active eq true",
            r#"active eq "True""#,
            r#"active eq "TRUE""#,
            "active ne false",
            r#"active ne "False""#,
            "emails.primary eq true",
            "flags eq false",
            "flags eq true",
            // Any value: `flags` holds a false.
            "flags ne true",
            "flags ne false",
            "emails.primary ne false",
        ],
        true,
    );
    all(&["active eq false", "active ne true"], false);
    let stored_text = json!({"active": "true"});
    assert!(!m_on("active eq true", &stored_text));
}

#[test]
fn numbers_compare_as_floats() {
    all(
        &[
            "level eq 3",
            "level eq 3.0",
            "level ne 4",
            "level gt 2.5",
            "level ge 3",
            "level lt 3.5",
            "level le 3",
            "score eq 2.5",
            "score gt 2",
            "score lt 3",
            "nums eq 5",
            // Any value: 5 is not 1.
            "nums ne 1",
            "nums gt 4",
            "nums lt 2",
            "badges.rank ge 2",
        ],
        true,
    );
    all(
        &[
            "level gt 3",
            "level lt 3",
            "level ne 3",
            "score ge 2.51",
            "nums eq 3",
            "nums gt 5",
        ],
        false,
    );
    let stored_text = json!({TEST_EXT: {"level": "3"}});
    assert!(!m_on("level eq 3", &stored_text));
    assert!(m_on("level ne 3", &stored_text));
}

#[test]
fn date_times_compare_as_instants() {
    all(
        &[
            r#"meta.lastModified gt "2026-01-01T00:00:00Z""#,
            r#"meta.lastModified eq "2026-02-01T11:00:00.500+01:00""#,
            r#"meta.lastModified ge "2026-02-01T10:00:00.5Z""#,
            r#"meta.lastModified le "2026-02-01T10:00:00.5Z""#,
            r#"meta.lastModified lt "2026-02-01T10:00:01Z""#,
            r#"meta.lastModified ne "2026-02-01T10:00:00Z""#,
            r#"meta.created lt "2025-06-01T00:00:01""#,
            r#"hired eq "2024-01-01T10:00:00Z""#,
            r#"dates gt "2019-12-31T23:59:59Z""#,
        ],
        true,
    );
    all(
        &[
            r#"meta.lastModified gt "2026-02-01T10:00:00.5Z""#,
            r#"meta.lastModified lt "2026-02-01T10:00:00.5Z""#,
            r#"meta.lastModified eq "2026-02-01T10:00:00Z""#,
            r#"hired gt "2024-01-01T10:00:00Z""#,
            r#"dates lt "2019-12-31T23:59:59Z""#,
        ],
        false,
    );
    // A stored value that does not parse never matches.
    let odd = json!({"meta": {"lastModified": "soon"}});
    assert!(!m_on(
        r#"meta.lastModified gt "2000-01-01T00:00:00Z""#,
        &odd
    ));
    assert!(!m_on(
        r#"meta.lastModified lt "2100-01-01T00:00:00Z""#,
        &odd
    ));
}

#[test]
fn presence_and_null() {
    all(
        &[
            "userName pr",
            "name pr",
            "name.givenName pr",
            "emails pr",
            "emails.value pr",
            "active pr",
            "manager pr",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr",
            "displayName eq null",
            "title eq null",
            "nickName eq null",
            "phoneNumbers eq null",
            "ims eq null",
            "userName ne null",
            "emails ne null",
            "not (title pr)",
        ],
        true,
    );
    all(
        &[
            "displayName pr",
            "title pr",
            "nickName pr",
            "phoneNumbers pr",
            "manager.$ref pr",
            "userName eq null",
            "title ne null",
        ],
        false,
    );
    assert!(!m_on("name pr", &json!({"name": {}})));
    assert!(m_on("name pr", &json!({"name": {"givenName": ""}})));
    assert!(!m_on(
        "name.givenName pr",
        &json!({"name": {"givenName": ""}})
    ));
}

#[test]
fn absent_attributes() {
    let empty = json!({});
    for f in [
        r#"userName eq "x""#,
        r#"userName co "x""#,
        r#"userName gt "a""#,
        "active eq true",
        "level lt 10",
        r#"meta.created lt "2100-01-01T00:00:00Z""#,
        r#"emails[type eq "work"]"#,
        "emails pr",
        "userName ne null",
    ] {
        assert!(!m_on(f, &empty), "{f}");
    }
    // A multi-valued attribute without values has no value that is not equal.
    assert!(!m_on(r#"emails.value ne "x""#, &empty));
    for f in [
        r#"userName ne "x""#,
        "active ne true",
        "level ne 1",
        r#"manager ne "M-1""#,
        "userName eq null",
        r#"not (userName eq "x")"#,
    ] {
        assert!(m_on(f, &empty), "{f}");
    }
}

#[test]
fn multi_valued_attributes_match_any_value() {
    all(
        &[
            r#"emails eq "BABS@home.org""#,
            r#"emails.value ew "example.com""#,
            r#"emails.type eq "home""#,
            r#"emails co "example.com""#,
            r#"emails.value ne "nobody@x""#,
            // Any value: the work address is not the home one.
            r#"emails.value ne "babs@home.org""#,
            r#"emails.type ne "work""#,
            r#"emails ne "babs@home.org""#,
        ],
        true,
    );
    all(
        &[
            r#"emails.type eq "other""#,
            // Inside a value filter, `type` is one element's: not `eq`.
            r#"emails[type ne "work" and type ne "home"]"#,
        ],
        false,
    );
    // Every value equal: no value is not.
    let both_work =
        json!({"emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "work"}]});
    assert!(!m_on(r#"emails.type ne "work""#, &both_work));
    assert!(m_on(
        r#"not (emails.type eq "work")"#,
        &json!({"emails": [{"value": "a@x", "type": "home"}]})
    ));
    // A single object where an array is expected counts as one element.
    assert!(m_on(
        r#"emails.value eq "a@b""#,
        &json!({"emails": {"value": "a@b"}})
    ));
}

#[test]
fn value_paths_need_one_element_to_satisfy_everything() {
    all(
        &[
            r#"emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "home" and not (primary eq true)]"#,
            r#"emails[primary pr]"#,
            r#"emails[type eq "work"].value eq "bjensen@example.com""#,
            r#"emails[type eq "work"].primary pr"#,
            r#"name[givenName sw "bar"]"#,
            r#"manager[value eq "M-1"]"#,
            r#"badges[name eq "X" and rank eq 2]"#,
        ],
        true,
    );
    all(
        &[
            // Both conditions hold, but on different elements.
            r#"emails[type eq "home" and value co "@example.com"]"#,
            r#"emails[type eq "home"].value eq "bjensen@example.com""#,
            r#"emails[type eq "home" and primary eq true]"#,
            r#"name[givenName eq "x"]"#,
        ],
        false,
    );
    assert!(!m_on(r#"emails[type pr]"#, &json!({"emails": ["type"]})));
}

#[test]
fn complex_attributes_without_sub_attribute_compare_value() {
    all(
        &[
            r#"manager eq "M-1""#,
            r#"id eq "U-1" and manager eq "M-1""#,
            r#"emails co "@example""#,
        ],
        true,
    );
    all(&[r#"manager eq "m-1""#, r#"manager eq "Boss""#], false);
}

#[test]
fn urn_qualified_paths() {
    all(
        &[
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#,
            r#"URN:IETF:params:scim:schemas:extension:enterprise:2.0:user:employeeNumber eq "7""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "M-1""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName sw "o'""#,
            r#"employeeNumber eq "7""#,
        ],
        true,
    );
    // Extension attributes live under the URN, not at the top level.
    assert!(!m_on(
        r#"employeeNumber eq "7""#,
        &json!({"employeeNumber": "7"})
    ));
}

#[test]
fn logic_and_precedence() {
    all(
        &[
            r#"userName eq "x" or id eq "U-1" and active eq true"#,
            r#"id eq "U-1" or userName eq "x" and active eq false"#,
            r#"not (userName eq "x")"#,
            r#"not userName eq "x""#,
            r#"title pr or (userName sw "b" and not (active eq false))"#,
        ],
        true,
    );
    all(
        &[
            r#"(userName eq "x" or id eq "U-1") and active eq false"#,
            r#"userName eq "bjensen" and active eq false"#,
            r#"not (userName pr)"#,
        ],
        false,
    );
}

#[test]
fn group_members() {
    let reg = registry();
    let rt = reg.resource_type("Group").unwrap();
    let group = json!({
        "id": "G-1",
        "displayName": "Admins",
        "members": [{"value": "U-1", "$ref": "https://x/Users/U-1", "type": "User"}]
    });
    let yes = |f: &str| matches(&reg, rt, &parse_filter(f).unwrap(), &group).unwrap();
    assert!(yes(r#"members[value eq "U-1"]"#));
    assert!(yes(r#"members eq "U-1""#));
    assert!(!yes(r#"members.value eq "u-1""#));
    assert!(yes(r#"members.$ref ew "/U-1""#));
    assert!(yes(r#"displayName eq "admins""#));
    assert!(yes(r#"members[type eq "user"]"#));
}

#[test]
fn element_matching_for_patch() {
    let reg = registry();
    let rt = reg.resource_type("User").unwrap();
    let emails = reg.resolve(rt, &AttrPath::new("emails")).unwrap();
    let f = parse_filter(r#"type eq "WORK" and value ew ".com""#).unwrap();
    let work = json!({"value": "a@b.com", "type": "work"});
    let home = json!({"value": "a@b.com", "type": "home"});
    assert!(matches_element(&emails, &f, &work).unwrap());
    assert!(!matches_element(&emails, &f, &home).unwrap());
    assert!(!matches_element(&emails, &f, &json!("a@b.com")).unwrap());
    let bad = parse_filter(r#"nope eq "x""#).unwrap();
    assert!(matches_element(&emails, &bad, &work).is_err());
    let nested = parse_filter(r#"emails[type eq "x"]"#).unwrap();
    assert!(matches_element(&emails, &nested, &work).is_err());
    // A fully resolved PATCH path still filters the elements of `emails`.
    let emails_value = reg
        .resolve(rt, &AttrPath::with_sub("emails", "value"))
        .unwrap();
    assert!(matches_element(&emails_value, &f, &work).unwrap());
    let user_name = reg.resolve(rt, &AttrPath::new("userName")).unwrap();
    assert!(matches_element(&user_name, &f, &work).is_err());
    // One matcher, many elements.
    let m = CheckedFilter::check_element(&emails, &f).unwrap();
    assert_eq!([&work, &home].map(|e| m.matches(e)), [true, false]);
}

#[test]
fn check_rejects_filters_that_do_not_fit_the_schema() {
    for (f, needle) in [
        (r#"nope eq "x""#, "\"nope\""),
        (r#"name.nope eq "x""#, "\"name.nope\""),
        (
            r#"urn:example:nothing:nope eq "x""#,
            "\"urn:example:nothing:nope\"",
        ),
        (
            r#"active co "t""#,
            "co does not apply to attributes of type boolean",
        ),
        (
            r#"level sw "1""#,
            "sw does not apply to attributes of type integer",
        ),
        (
            r#"score ew "1""#,
            "ew does not apply to attributes of type decimal",
        ),
        (
            r#"meta.created co "2020""#,
            "co does not apply to attributes of type dateTime",
        ),
        (
            "active gt true",
            "gt does not apply to attributes of type boolean",
        ),
        ("active le false", "\"active\""),
        (
            "userName eq 1",
            "1 cannot be compared with an attribute of type string",
        ),
        ("userName eq true", "\"userName\""),
        ("profileUrl eq 1", "\"profileUrl\""),
        ("x509Certificates.value eq false", "binary"),
        (
            r#"level eq "3""#,
            "\"3\" cannot be compared with an attribute of type integer",
        ),
        (r#"score gt "2.5""#, "\"score\""),
        ("level eq true", "\"level\""),
        (r#"meta.created gt "yesterday""#, "is not a dateTime"),
        ("meta.created gt 5", "\"meta.created\""),
        (r#"active eq "yes""#, "\"active\""),
        ("active eq 1", "\"active\""),
        ("userName gt null", "null only works with eq and ne"),
        ("userName co null", "\"userName\""),
        (r#"userName[value eq "x"]"#, "complex attribute"),
        (r#"name.givenName pr and emails[nope eq "x"]"#, "\"nope\""),
        (r#"emails[value eq 5]"#, "\"value\""),
        (r#"badges eq "x""#, "without a \"value\" sub-attribute"),
        (r#"name eq "x""#, "\"name\""),
        (r#"emails[type eq "work"].nope eq "x""#, "\"nope\""),
    ] {
        let detail = check_err(f);
        assert!(detail.contains(needle), "{f}: {detail}");
    }
}

#[test]
fn check_accepts_what_it_should() {
    let reg = registry();
    let rt = reg.resource_type("User").unwrap();
    for f in [
        "name pr",
        "badges pr",
        "badges eq null",
        "name ne null",
        r#"active eq "false""#,
        r#"manager eq "M-1""#,
        r#"emails co "x""#,
        r#"meta.lastModified gt "2026-01-01T00:00:00Z""#,
        r#"userName gt "a""#,
        r#"badges[rank gt 1]"#,
        r#"name[givenName pr]"#,
    ] {
        check_filter(&reg, rt, &parse_filter(f).unwrap()).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    // Hand-built trees with paths the parser never produces inside brackets.
    let f = Filter::ValuePath {
        path: AttrPath::new("emails"),
        filter: Box::new(Filter::Present(AttrPath::with_sub("value", "x"))),
    };
    assert!(check_filter(&reg, rt, &f).is_err());
}

#[test]
fn deep_filters_evaluate_without_overflow() {
    let long =
        vec![r#"userName eq "nope""#; MAX_TREE_DEPTH - 1].join(" or ") + r#" or id eq "U-1""#;
    assert!(m(&long));
    let nested = format!(
        "{}id eq \"U-1\"{}",
        "not (".repeat(MAX_NESTING - 1),
        ")".repeat(MAX_NESTING - 1)
    );
    // An odd number of `not`s.
    assert!(!m(&nested));
}

#[test]
fn the_deepest_chain_survives_every_walk() {
    let long = vec![r#"userName eq "nope""#; MAX_TREE_DEPTH].join(" and ");
    let f = parse_filter(&long).unwrap();
    assert_eq!(parse_filter(&f.to_string()).unwrap(), f.clone());
    let reg = registry();
    let rt = reg.resource_type("User").unwrap();
    assert!(!matches(&reg, rt, &f, &user()).unwrap());
}

#[test]
fn checking_resolves_paths_to_schema_names_and_types_values_once() {
    let reg = registry();
    let rt = reg.resource_type("User").unwrap();
    let check = |text: &str| check_filter(&reg, rt, &parse_filter(text).unwrap()).unwrap();
    // Names as the schema spells them; complex attributes compared through `value`;
    // case-insensitive values folded once, here.
    let f = check(r#"EMAILS eq "A@X.io""#);
    let Node::Test(a, Test::Text { op, value, fold }) = f.root() else {
        panic!("{f:?}");
    };
    assert_eq!(
        (a.attr.as_str(), a.sub.as_deref()),
        ("emails", Some("value"))
    );
    assert!(a.multi_valued && a.is_core());
    assert_eq!(
        (*op, value.as_str(), *fold),
        (TextOp::Rel(Rel::Eq), "a@x.io", true)
    );
    // `ne` is `not eq`; `eq null` is `not pr`; dateTimes become instants.
    let f =
        check(r#"userName ne "x" and title eq null and meta.created gt "2020-01-01T00:00:00Z""#);
    let Node::All(parts) = f.root() else {
        panic!("{f:?}");
    };
    assert!(matches!(&parts[0], Node::Not(n) if matches!(**n, Node::Test(..))));
    assert!(matches!(&parts[1], Node::Not(n) if matches!(**n, Node::Present(..))));
    assert!(
        matches!(&parts[2], Node::Test(_, Test::DateTime(Rel::Gt, ns)) if *ns == 1_577_836_800_000_000_000)
    );
    assert_eq!(f.scope(), FilterScope::Resource);
    assert_eq!(
        f.as_text(),
        r#"(userName ne "x" and title eq null and meta.created gt "2020-01-01T00:00:00Z")"#
    );
    // Extension attributes carry the URN they live under.
    let f = check("employeeNumber pr");
    let Node::Present(a) = f.root() else {
        panic!("{f:?}");
    };
    assert_eq!(
        a.extension.as_deref(),
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    );
}

#[test]
fn schemas_is_a_multi_valued_attribute_of_every_resource() {
    all(
        &[
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"SCHEMAS eq "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER""#,
            r#"schemas co "enterprise""#,
            "schemas pr",
            r#"schemas ne "urn:ietf:params:scim:schemas:core:2.0:User""#,
        ],
        true,
    );
    all(
        &[r#"schemas eq "urn:example:none""#, "schemas eq null"],
        false,
    );
    assert!(!m_on(
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]})
    ));
    let e = check_err(r#"schemas[value eq "x"]"#);
    assert!(e.contains("complex"), "{e}");
}
