//! SCIM resource bodies: validating any JSON as a User or a Group never
//! panics, and a document that validates is a fixed point (validating it
//! again gives the same document).
#![no_main]

use libfuzzer_sys::fuzz_target;
use roster_scim::json::{JsonLimits, parse_limited};
use roster_scim::schema::SchemaRegistry;
use roster_scim::validate::{normalize, take_members};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_limited(data, &JsonLimits::default()) else {
        return;
    };
    let reg = SchemaRegistry::core();
    for name in ["User", "Group"] {
        let Some(rt) = reg.resource_type(name) else {
            continue;
        };
        if let Ok(doc) = normalize(&reg, rt, &body, None) {
            let again = normalize(&reg, rt, &doc, None)
                .unwrap_or_else(|e| panic!("a canonical {name} does not validate: {e}\n{doc}"));
            assert_eq!(again, doc, "validation is not idempotent");
            let mut doc = doc;
            let _ = take_members(&mut doc);
        }
    }
});
