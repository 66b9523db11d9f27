//! Attribute paths, PATCH paths and attributes/excludedAttributes lists:
//! parsing never panics, and an attribute path prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roster_scim::AttrPath;
use roster_scim::filter::parse_patch_path;
use roster_scim::project::Projection;
use roster_scim::schema::SchemaRegistry;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = AttrPath::parse(text) {
        assert_eq!(AttrPath::parse(&p.to_string()).ok(), Some(p));
    }
    let _ = parse_patch_path(text);
    let (attributes, excluded) = text.split_once('|').unwrap_or((text, ""));
    if let Ok(projection) = Projection::parse(Some(attributes), Some(excluded)) {
        let reg = SchemaRegistry::core();
        if let Some(rt) = reg.resource_type("User") {
            let user = json!({
                "id": "1",
                "userName": "u",
                "name": {"givenName": "G"},
                "emails": [{"value": "a@b", "type": "work"}],
                "meta": {"resourceType": "User"}
            });
            let _ = projection.apply(&reg, rt, user);
        }
    }
});
