//! Filters: parsing never panics; a parsed filter prints to text that parses
//! back to the same tree; schema checking and in-memory evaluation of any
//! parsed filter never panic, every filter that passes the check compiles to
//! SQL, and every compiled filter binds each client value as a parameter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roster_scim::filter::{CompValue, Filter, check_filter, parse_filter};
use roster_scim::schema::SchemaRegistry;
use roster_store::Kind;
use roster_store::sql::Compiler;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = parse_filter(text) else {
        return;
    };
    let printed = filter.to_string();
    let again = parse_filter(&printed)
        .unwrap_or_else(|e| panic!("{printed:?} (printed from {text:?}) does not parse: {e}"));
    assert_eq!(again, filter, "{text:?} printed as {printed:?}");

    let reg = SchemaRegistry::core();
    let user = json!({
        "userName": "Bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "active": true,
        "meta": {"lastModified": "2024-01-01T00:00:00Z", "created": "2023-06-01T12:00:00Z"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        }
    });
    for (kind, name) in [(Kind::User, "User"), (Kind::Group, "Group")] {
        let Some(rt) = reg.resource_type(name) else {
            continue;
        };
        let Ok(checked) = check_filter(&reg, rt, &filter) else {
            continue;
        };
        let _ = checked.matches(&user);
        let mut c = Compiler::new(rt, kind, "dir", 1);
        if let Err(e) = c.filter(&checked) {
            panic!("{printed:?} passes the check but does not compile: {e}");
        }
        // A client string may only reach SQL as a bound parameter: tag every
        // string value and look for the tag in the SQL text.
        let Ok(tagged) = check_filter(&reg, rt, &tag_strings(&filter)) else {
            continue;
        };
        let mut c = Compiler::new(rt, kind, "dir", 1);
        if let Ok(sql) = c.filter(&tagged) {
            assert!(!sql.contains(TAG), "client text in compiled SQL: {sql}");
        }
    }
});

const TAG: &str = "\u{1}'tag";

fn tag_strings(f: &Filter) -> Filter {
    let b = |f: &Filter| Box::new(tag_strings(f));
    match f {
        Filter::And(x, y) => Filter::And(b(x), b(y)),
        Filter::Or(x, y) => Filter::Or(b(x), b(y)),
        Filter::Not(x) => Filter::Not(b(x)),
        Filter::Present(p) => Filter::Present(p.clone()),
        Filter::Compare { path, op, value } => Filter::Compare {
            path: path.clone(),
            op: *op,
            value: match value {
                CompValue::String(s) => CompValue::String(format!("{s}{TAG}")),
                v => v.clone(),
            },
        },
        Filter::ValuePath { path, filter } => Filter::ValuePath {
            path: path.clone(),
            filter: b(filter),
        },
    }
}
