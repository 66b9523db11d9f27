//! PATCH bodies: reading any JSON as a PatchOp message and applying it to a
//! user and to a group never panics; an applied patch leaves a document that
//! validates, or fails as a whole and leaves the document as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roster_scim::json::{JsonLimits, parse_limited};
use roster_scim::patch::{PatchRequest, apply_patch};
use roster_scim::schema::SchemaRegistry;
use roster_scim::validate::normalize;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_limited(data, &JsonLimits::default()) else {
        return;
    };
    let Ok(request) = PatchRequest::from_json(&body) else {
        return;
    };
    let reg = SchemaRegistry::core();
    let docs = [
        (
            "User",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "bjensen",
                "name": {"givenName": "Barbara"},
                "emails": [{"value": "b@example.com", "type": "work", "primary": true},
                           {"value": "b@home.example", "type": "home"}],
                "active": true
            }),
        ),
        (
            "Group",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Admins"
            }),
        ),
    ];
    for (name, doc) in docs {
        let Some(rt) = reg.resource_type(name) else {
            continue;
        };
        let Ok(canonical) = normalize(&reg, rt, &doc, None) else {
            continue;
        };
        let mut work = canonical.clone();
        match apply_patch(&reg, rt, &mut work, &request) {
            Ok(_) => {
                let _ = normalize(&reg, rt, &work, Some(&canonical));
            }
            Err(_) => assert_eq!(work, canonical, "a failed PATCH changed the document"),
        }
    }
});
