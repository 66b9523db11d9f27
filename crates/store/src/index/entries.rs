//! The entries a resource puts in `attr_index`: one per value of every
//! attribute a filter can reach in its document, typed so that the SQL order
//! of the stored text is the evaluator's order of the values.
//!
//! An entry is `(path, v, e)`: the attribute's canonical path (the key table
//! turns it into a small integer per directory and resource type), the value
//! as index text, and the ordinal of the element it came from inside its
//! top-level attribute (0 for a singular one), so that two conditions of
//! `emails[type eq "work" and value ew "x"]` can be held to one element.
//! Entries of text values are also searched by substring (`co`, `ew`: see
//! `crate::index::text`).
//!
//! Values are read exactly as `roster_scim::filter` reads them (an array is
//! its elements, `null` is no value, an element that is not an object has no
//! sub-attributes), so a lookup finds every resource the evaluator would
//! match:
//! - text (string, reference, binary): folded when not `caseExact`, and cut
//!   to its first [`CUT`] characters followed by [`CUT_MARK`] when longer; a
//!   cut value also gives an entry under [`cut_path`] of its path, so that a
//!   substring search knows when its answer may have missed one;
//! - boolean: `0` or `1`; numbers: [`number_key`]; dateTimes: the instant
//!   key of `crate::sql::compile::instant_key`;
//! - a present value of the wrong type for its attribute, and a present
//!   element of a complex attribute that gave no sub-attribute entry, give
//!   an empty `v`, so `pr` can still be answered from the index (text `""`
//!   also has an empty `v`: a lookup of `""` is a superset, rechecked).
//!
//! - a multi-valued attribute without sub-attributes (`schemas`) has one
//!   entry per value, the first element holding it: nothing pairs
//!   conditions on one of its elements, and an `eq` set then names each
//!   resource once.
//!
//! Not indexed: `returned: never` attributes (filters see them absent), and
//! attributes that live in indexed columns or rows elsewhere (`id`,
//! `externalId`, `meta`, `members` and `groups`). `userName` and a group's
//! `displayName` are indexed here as well as in the name column (which keeps
//! names unique and sorts by them), so that substring searches reach them.

use roster_scim::schema::{AttrType, AttributeDef, ResourceType, Returned, SchemaRegistry};
use roster_scim::values::{datetime_key, fold, parse_datetime};
use serde_json::Value;

use crate::sql::compile::instant_key;

/// Longest text, in characters, an entry holds whole. Longer values are cut,
/// which bounds every index row (PostgreSQL refuses B-tree rows over about
/// 2,700 bytes; 200 characters are at most 800 bytes of UTF-8).
pub const CUT: usize = 200;

/// Follows the first [`CUT`] characters of a cut value. It is the greatest
/// character, so a cut value sorts after every value it is a prefix of, and
/// an entry of `CUT + 1` characters is always a cut one.
pub const CUT_MARK: char = char::MAX;

/// The path of a resource's `schemas` attribute, which every resource has.
pub const SCHEMAS_PATH: &str = "schemas";

/// One entry of a resource in `attr_index`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    pub path: String,
    pub v: String,
    pub e: i64,
    /// A text value, which substring searches read (an empty `v` never is).
    pub text: bool,
}

/// The path under which a resource has an entry for each cut value of
/// `path`: no attribute path begins with a control character.
pub fn cut_path(path: &str) -> String {
    format!("\u{1}{path}")
}

/// The canonical path of an attribute: `attr` or `attr.sub`, prefixed by
/// `urn:` for an extension's attributes; names as the schema spells them.
pub fn attr_path(extension: Option<&str>, attr: &str, sub: Option<&str>) -> String {
    let mut p = String::new();
    if let Some(urn) = extension {
        p.push_str(urn);
        p.push(':');
    }
    p.push_str(attr);
    if let Some(s) = sub {
        p.push('.');
        p.push_str(s);
    }
    p
}

/// Index text of a text value: folded when the attribute is not
/// `caseExact`, cut when longer than [`CUT`] characters.
pub fn text_key(s: &str, fold_it: bool) -> String {
    let mut key = if fold_it { fold(s) } else { s.to_owned() };
    if let Some((at, _)) = key.char_indices().nth(CUT) {
        key.truncate(at);
        key.push(CUT_MARK);
    }
    key
}

/// True when an entry's `v` is a cut text value.
pub fn is_cut(v: &str) -> bool {
    v.ends_with(CUT_MARK) && v.chars().count() == CUT + 1
}

/// Index text of a number: 16 hex digits whose text order is the numeric
/// order of `f64` (the evaluator compares numbers as `f64`); `-0` is `0`.
pub fn number_key(x: f64) -> String {
    let x = if x == 0.0 { 0.0 } else { x };
    let bits = x.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    format!("{ordered:016x}")
}

/// Index text of a boolean.
pub fn bool_key(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

/// The entries of a resource of type `rt` with document `doc`, sorted and
/// without duplicates.
pub fn entries(reg: &SchemaRegistry, rt: &ResourceType, doc: &Value) -> Vec<Entry> {
    let mut out = Vec::new();
    for (e, v) in elements(doc.get(SCHEMAS_PATH)) {
        match v.as_str() {
            Some(s) => push_text(&mut out, SCHEMAS_PATH, text_key(s, true), e),
            None => presence(&mut out, SCHEMAS_PATH, v, e),
        }
    }
    once_per_value(&mut out, 0);
    // The document's members are walked and their definitions found by
    // name, rather than each definition looked up in the document: a user
    // has a few of its schema's two dozen attributes, and each lookup
    // hashed the name (SipHash, in serde_json's map). Stored documents
    // spell every name as its definition does.
    let core = &reg.core_schema(rt).attributes;
    for (name, value) in doc.as_object().into_iter().flatten() {
        if let Some(def) = named(core, name) {
            if !served_elsewhere(rt, def) {
                attribute(&mut out, None, def, Some(value));
            }
        } else if let Some(ext) = reg.extensions(rt).find(|ext| ext.id == *name) {
            extension(&mut out, &ext.id, &ext.attributes, value);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The paths of `rt` whose entries may be text (see [`Entry::text`]): the
/// string, reference and binary attributes and sub-attributes [`entries`]
/// indexes, and `schemas`.
pub fn text_paths(reg: &SchemaRegistry, rt: &ResourceType) -> Vec<String> {
    let mut out = vec![SCHEMAS_PATH.to_owned()];
    let core = reg.core_schema(rt).attributes.iter();
    let core = core
        .filter(|def| !served_elsewhere(rt, def))
        .map(|d| (None, d));
    let exts = reg.extensions(rt).flat_map(|ext| {
        ext.attributes
            .iter()
            .map(move |d| (Some(ext.id.as_str()), d))
    });
    for (ext, def) in core.chain(exts) {
        if def.returned == Returned::Never {
            continue;
        }
        if def.ty.is_textual() {
            out.push(attr_path(ext, &def.name, None));
        }
        for sub in def.sub_attributes.iter().filter(|s| s.ty.is_textual()) {
            out.push(attr_path(ext, &def.name, Some(&sub.name)));
        }
    }
    out
}

/// The definition spelled exactly `name`: stored documents spell names as
/// their definitions do, and the index reads them as `get` did, by case.
fn named<'d>(defs: &'d [AttributeDef], name: &str) -> Option<&'d AttributeDef> {
    defs.iter().find(|d| d.name == name)
}

/// The entries of an extension's container `value`.
fn extension(out: &mut Vec<Entry>, urn: &str, defs: &[AttributeDef], value: &Value) {
    for (name, value) in value.as_object().into_iter().flatten() {
        if let Some(def) = named(defs, name) {
            attribute(out, Some(urn), def, Some(value));
        }
    }
}

/// Attributes of the core schema whose filters read membership rows (see
/// `crate::sql::compile`), not the document.
fn served_elsewhere(rt: &ResourceType, def: &AttributeDef) -> bool {
    let name = def.name.as_str();
    match rt.name.as_str() {
        "User" => name == "groups",
        "Group" => name == "members",
        _ => false,
    }
}

/// The values of an attribute as the evaluator spreads them, with the
/// position each had in its array (0 for a value that is not an array).
fn elements(v: Option<&Value>) -> impl Iterator<Item = (i64, &Value)> {
    let items: &[Value] = match v {
        Some(Value::Array(a)) => a,
        Some(v) => std::slice::from_ref(v),
        None => &[],
    };
    (0i64..).zip(items.iter()).filter(|(_, v)| !v.is_null())
}

fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn push(out: &mut Vec<Entry>, path: &str, v: String, e: i64) {
    out.push(Entry {
        path: path.to_owned(),
        v,
        e,
        text: false,
    });
}

/// The entry of a text value (see [`text_key`]), and the mark of a cut one.
fn push_text(out: &mut Vec<Entry>, path: &str, v: String, e: i64) {
    if is_cut(&v) {
        push(out, &cut_path(path), String::new(), e);
    }
    let text = !v.is_empty();
    out.push(Entry {
        path: path.to_owned(),
        v,
        e,
        text,
    });
}

/// A present value with no typed entry.
fn presence(out: &mut Vec<Entry>, path: &str, v: &Value, e: i64) {
    if is_present(v) {
        push(out, path, String::new(), e);
    }
}

/// Keeps one entry per value among `out[from..]`, the entries of one
/// multi-valued attribute without sub-attributes: the first element holding
/// it. Such an attribute's elements are told apart by nothing but their
/// value (no filter pairs two conditions on one of them), so a resource
/// holds each value at most once and an `eq` set names each resource once:
/// counted without `DISTINCT` (a million `schemas` entries: 130 ms with it
/// on SQLite).
fn once_per_value(out: &mut Vec<Entry>, from: usize) {
    out[from..].sort_unstable_by(|a, b| (&a.path, &a.v, a.e).cmp(&(&b.path, &b.v, b.e)));
    let mut kept = from;
    for i in from..out.len() {
        if kept == from || out[kept - 1].path != out[i].path || out[kept - 1].v != out[i].v {
            out.swap(kept, i);
            kept += 1;
        }
    }
    out.truncate(kept);
}

fn attribute(out: &mut Vec<Entry>, ext: Option<&str>, def: &AttributeDef, value: Option<&Value>) {
    if def.returned == Returned::Never {
        return;
    }
    if def.multi_valued && !def.is_complex() {
        let from = out.len();
        simple_or_complex(out, ext, def, value);
        once_per_value(out, from);
    } else {
        simple_or_complex(out, ext, def, value);
    }
}

fn simple_or_complex(
    out: &mut Vec<Entry>,
    ext: Option<&str>,
    def: &AttributeDef,
    value: Option<&Value>,
) {
    // Paths are made only for values that are there: a schema has many
    // attributes a document lacks, and this runs for every write.
    let mut path = None;
    for (e, v) in elements(value) {
        let path = path.get_or_insert_with(|| attr_path(ext, &def.name, None));
        if !def.is_complex() {
            typed(out, path, def, v, e);
            continue;
        }
        let before = out.len();
        if let Some(obj) = v.as_object() {
            for (name, sv) in obj {
                let Some(sub) = named(&def.sub_attributes, name) else {
                    continue;
                };
                if sub.returned == Returned::Never {
                    continue;
                }
                let mut sub_path = None;
                for (_, sv) in elements(Some(sv)) {
                    let sub_path =
                        sub_path.get_or_insert_with(|| attr_path(ext, &def.name, Some(&sub.name)));
                    typed(out, sub_path, sub, sv, e);
                }
            }
        }
        if out.len() == before {
            presence(out, path, v, e);
        }
    }
}

/// The typed entry of one value, or a presence entry when the value is not
/// of the attribute's type (no comparison can match it, but `pr` does).
fn typed(out: &mut Vec<Entry>, path: &str, def: &AttributeDef, v: &Value, e: i64) {
    let key = match def.ty {
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            if let Some(s) = v.as_str() {
                return push_text(out, path, text_key(s, !def.case_exact), e);
            }
            None
        }
        AttrType::Boolean => v.as_bool().map(|b| bool_key(b).to_owned()),
        AttrType::Integer | AttrType::Decimal => v.as_f64().map(number_key),
        AttrType::DateTime => v
            .as_str()
            .and_then(parse_datetime)
            .map(|t| instant_key(datetime_key(t))),
        AttrType::Complex => None,
    };
    match key {
        Some(k) => push(out, path, k, e),
        None => presence(out, path, v, e),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    #[test]
    fn text_paths_are_the_paths_of_text_entries() {
        let reg = SchemaRegistry::core();
        let rt = reg.resource_type("User").unwrap();
        let paths = text_paths(&reg, rt);
        let doc = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "userName": "ann", "title": "Eng", "active": true,
            "name": {"familyName": "Lee"},
            "emails": [{"value": "a@x.io", "type": "work", "primary": true}],
            "groups": [{"value": "g1"}],
            ENT: {"employeeNumber": "7", "manager": {"value": "m1"}},
        });
        let list = entries(&reg, rt, &doc);
        for en in &list {
            assert_eq!(paths.contains(&en.path), en.text, "{en:?}");
        }
        assert!(list.iter().filter(|en| en.text).count() >= 8);
        assert!(!paths.iter().any(|p| p == "groups.value" || p == "password"));
    }

    fn user_entries(doc: Value) -> Vec<(String, String, i64)> {
        let reg = SchemaRegistry::core();
        let rt = reg.resource_type("User").unwrap();
        entries(&reg, rt, &doc)
            .into_iter()
            .map(|e| (e.path, e.v, e.e))
            .collect()
    }

    fn has(list: &[(String, String, i64)], path: &str, v: &str, e: i64) -> bool {
        list.iter()
            .any(|x| x == &(path.to_owned(), v.to_owned(), e))
    }

    #[test]
    fn values_are_folded_per_case_exact_and_typed() {
        let list = user_entries(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "userName": "Alice",
            "externalId": "X-1",
            "title": "Boss",
            "active": true,
            "name": {"familyName": "Ng", "givenName": "Al"},
            ENT: {"employeeNumber": "E7", "manager": {"value": "M-1"}},
        }));
        assert!(has(&list, "title", "boss", 0));
        assert!(has(&list, "active", "1", 0));
        assert!(has(&list, "name.familyName", "ng", 0));
        assert!(has(&list, "schemas", &ENT.to_lowercase(), 1));
        // employeeNumber is caseExact: false in RFC 7643; manager.value is
        // caseExact: true (an id).
        assert!(has(&list, &format!("{ENT}:employeeNumber"), "e7", 0));
        assert!(has(&list, &format!("{ENT}:manager.value"), "M-1", 0));
        // Names are here for substring searches; externalId is a column's.
        assert!(has(&list, "userName", "alice", 0));
        assert!(!list.iter().any(|(p, ..)| p == "externalId"));
    }

    #[test]
    fn a_multi_valued_attribute_without_sub_attributes_holds_each_value_once() {
        let core = "urn:ietf:params:scim:schemas:core:2.0:User";
        let list = user_entries(json!({
            "schemas": [core, ENT, core.to_uppercase()],
        }));
        let schemas: Vec<_> = list.iter().filter(|(p, ..)| p == "schemas").collect();
        assert_eq!(schemas.len(), 2, "{schemas:?}");
        assert!(has(&list, "schemas", &core.to_lowercase(), 0));
        assert!(has(&list, "schemas", &ENT.to_lowercase(), 1));
        // Elements of a complex attribute keep an entry each: value filters
        // pair their sub-attributes.
        let list = user_entries(json!({
            "emails": [{"value": "a@x.io", "type": "work"}, {"value": "b@x.io", "type": "work"}],
        }));
        assert!(has(&list, "emails.type", "work", 0) && has(&list, "emails.type", "work", 1));
    }

    #[test]
    fn elements_keep_their_ordinal_and_sub_attributes_share_it() {
        let list = user_entries(json!({
            "emails": [
                {"value": "A@x.io", "type": "work", "primary": true},
                null,
                {"value": "b@y.io", "type": "home"},
            ],
        }));
        assert!(has(&list, "emails.value", "a@x.io", 0));
        assert!(has(&list, "emails.type", "work", 0));
        assert!(has(&list, "emails.primary", "1", 0));
        assert!(has(&list, "emails.value", "b@y.io", 2));
        assert!(has(&list, "emails.type", "home", 2));
        assert_eq!(list.len(), 5);
    }

    #[test]
    fn long_values_are_cut_and_marked() {
        let long = "Ab".repeat(150);
        let list = user_entries(json!({"title": long, "nickName": "x".repeat(CUT)}));
        let title = &list.iter().find(|(p, ..)| p == "title").unwrap().1;
        assert_eq!(title.chars().count(), CUT + 1);
        assert!(title.starts_with(&"ab".repeat(100)));
        assert!(is_cut(title));
        // The cut is marked under a path of its own, for substring searches.
        assert!(has(&list, &cut_path("title"), "", 0));
        assert!(!list.iter().any(|(p, ..)| p == &cut_path("nickName")));
        let nick = &list.iter().find(|(p, ..)| p == "nickName").unwrap().1;
        assert_eq!(nick, &"x".repeat(CUT));
        assert!(!is_cut(nick));
        // Characters, not bytes: a cut never splits one.
        let wide = text_key(&"é".repeat(CUT + 5), false);
        assert_eq!(wide, format!("{}{CUT_MARK}", "é".repeat(CUT)));
    }

    #[test]
    fn wrong_types_and_bare_elements_are_present_without_a_value() {
        let list = user_entries(json!({
            "active": "yes",
            "title": 7,
            "nickName": "",
            "emails": ["bare", {}, {"display": null}],
            "name": {"honorificPrefix": ""},
        }));
        assert!(has(&list, "active", "", 0));
        assert!(has(&list, "title", "", 0));
        // "" is a value that `eq ""` matches, though not present.
        assert!(has(&list, "nickName", "", 0));
        assert!(has(&list, "emails", "", 0));
        // {} is not present; {"display": null} is (a non-empty object).
        assert!(!has(&list, "emails", "", 1));
        assert!(has(&list, "emails", "", 2));
        assert!(has(&list, "name.honorificPrefix", "", 0));
        assert!(!list.iter().any(|(p, ..)| p == "name"));
    }

    #[test]
    fn passwords_are_never_indexed() {
        let list = user_entries(json!({"password": "$argon2id$secret"}));
        assert!(list.is_empty(), "{list:?}");
    }

    #[test]
    fn number_keys_sort_as_numbers() {
        let xs = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -1.0,
            -1e-300,
            0.0,
            1e-300,
            1.0,
            2.5,
            3.0,
            1e300,
        ];
        let keys: Vec<String> = xs.iter().map(|x| number_key(*x)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(number_key(-0.0), number_key(0.0));
    }

    #[test]
    fn datetimes_are_instants() {
        let list = user_entries(json!({
            ENT: {},
            "x509Certificates": [{"value": "AAAA"}],
        }));
        assert!(list.iter().any(|(p, ..)| p == "x509Certificates.value"));
        let reg = SchemaRegistry::core();
        let rt = reg.resource_type("Group").unwrap();
        let g = entries(
            &reg,
            rt,
            &json!({"displayName": "G", "members": [{"value": "u"}]}),
        );
        // Members are rows of their own; the name is indexed.
        let paths: Vec<&str> = g.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["displayName"], "{g:?}");
        let a = instant_key(datetime_key(
            parse_datetime("2026-01-01T01:00:00+01:00").unwrap(),
        ));
        let b = instant_key(datetime_key(
            parse_datetime("2026-01-01T00:00:00Z").unwrap(),
        ));
        assert_eq!(a, b);
    }
}
