//! The limited JSON reader against serde_json: it never panics, and whatever
//! it accepts serde_json reads as the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roster_scim::json::{JsonLimits, parse_limited};

fuzz_target!(|data: &[u8]| {
    let limits = JsonLimits {
        max_depth: 8,
        max_object_members: 16,
        max_array_len: 16,
        max_string_bytes: 64,
    };
    if let Ok(mine) = parse_limited(data, &limits) {
        let theirs: serde_json::Value =
            serde_json::from_slice(data).expect("accepted text that serde_json refuses");
        assert_eq!(mine, theirs);
    }
});
