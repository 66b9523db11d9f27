//! RFC 9865 cursors are client text: decoding any string never panics, and
//! a cursor this server encodes decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roster_store::cursor::{Cursor, query_digest};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let query = query_digest(&["User", "userName sw \"a\""]);
    let now = 1_700_000_000;
    let _ = Cursor::decode(text, &query, now, 3600);
    // Whatever a client sends, it may only come back as a position this server would issue.
    if let Ok(c) = Cursor::decode(text, &query, now, 3600) {
        let again = Cursor::decode(&c.encode(), &query, now, 3600).expect("re-encoded cursor");
        assert_eq!(again, c);
    }
});
