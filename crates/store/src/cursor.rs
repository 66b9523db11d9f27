//! RFC 9865 cursors: opaque, self-describing keyset positions.
//!
//! A cursor names the last row of a page (its sort key and id), the direction
//! to read in, when it was issued, and a digest of the query it belongs to, so
//! a cursor replayed against another filter or sort is `invalidCursor` and an
//! old one is `expiredCursor`. Keyset positions make the last page cost what
//! the first one does, and the result set's size, counted when the traversal
//! began, travels in the cursor so that no later page counts again.

use crate::{StoreError, StoreResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// true: rows after the position; false: rows before it (a previousCursor).
    #[serde(rename = "f")]
    pub forward: bool,
    /// The sort key of the boundary row (JSON null for the default order or a missing value).
    #[serde(rename = "k")]
    pub key: Value,
    /// Whether the boundary row's sort value was missing.
    #[serde(rename = "n")]
    pub key_null: bool,
    #[serde(rename = "i")]
    pub id: String,
    /// Unix seconds when the cursor was issued.
    #[serde(rename = "t")]
    pub issued: i64,
    /// Digest of the query (type, filter, sort) the cursor belongs to.
    #[serde(rename = "q")]
    pub query: String,
    /// `totalResults` as counted by the traversal's first page (absent from
    /// cursors issued before totals travelled: those pages count).
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

impl Cursor {
    pub fn encode(&self) -> String {
        // Serialising plain data cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes and checks a cursor against the current query and clock.
    pub fn decode(text: &str, query: &str, now: i64, timeout_secs: i64) -> StoreResult<Self> {
        let invalid = || {
            StoreError::InvalidCursor(
                "the cursor is not one this server issued for this query; start again without a cursor"
                    .into(),
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| invalid())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if cursor.query != query {
            return Err(invalid());
        }
        // Cursors travel between instances whose clocks differ a little; one
        // from further in the future (or an overflowing forged time) is not ours.
        const CLOCK_SKEW_SECS: i64 = 300;
        let age = now.checked_sub(cursor.issued).ok_or_else(invalid)?;
        if age < -CLOCK_SKEW_SECS {
            return Err(invalid());
        }
        if age > timeout_secs {
            return Err(StoreError::ExpiredCursor(format!(
                "the cursor expired (cursors live {timeout_secs} seconds); start again without a cursor"
            )));
        }
        Ok(cursor)
    }
}

/// A digest of everything that fixes the order and membership of a result set.
pub fn query_digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cursor {
        Cursor {
            forward: true,
            key: Value::String("bob".into()),
            key_null: false,
            id: "0190".into(),
            issued: 1000,
            query: query_digest(&["User", "userName sw \"b\""]),
            total: Some(42),
        }
    }

    #[test]
    fn round_trips_and_checks_query_and_age() {
        let c = sample();
        let text = c.encode();
        assert_eq!(Cursor::decode(&text, &c.query, 1010, 60).unwrap(), c);
        let other = query_digest(&["User", "other"]);
        assert!(matches!(
            Cursor::decode(&text, &other, 1010, 60),
            Err(StoreError::InvalidCursor(_))
        ));
        assert!(matches!(
            Cursor::decode(&text, &c.query, 5000, 60),
            Err(StoreError::ExpiredCursor(_))
        ));
        assert!(matches!(
            Cursor::decode("!!garbage", &c.query, 1010, 60),
            Err(StoreError::InvalidCursor(_))
        ));
    }

    #[test]
    fn a_cursor_without_a_total_still_decodes() {
        let c = Cursor {
            total: None,
            ..sample()
        };
        let text = c.encode();
        assert!(
            !String::from_utf8(URL_SAFE_NO_PAD.decode(&text).unwrap())
                .unwrap()
                .contains("\"c\"")
        );
        assert_eq!(Cursor::decode(&text, &c.query, 1010, 60).unwrap(), c);
    }

    /// Found by the `cursor` fuzz target: a forged issue time made the age
    /// computation overflow (a panic in debug builds, a never-expiring cursor
    /// in release builds).
    #[test]
    fn forged_issue_times_are_invalid_not_an_overflow() {
        for issued in [i64::MIN, i64::MAX, 1_000_000] {
            let c = Cursor { issued, ..sample() };
            assert!(
                matches!(
                    Cursor::decode(&c.encode(), &c.query, 1010, 60),
                    Err(StoreError::InvalidCursor(_))
                ),
                "{issued}"
            );
        }
        // A little clock skew between instances is fine.
        let c = Cursor {
            issued: 1100,
            ..sample()
        };
        assert!(Cursor::decode(&c.encode(), &c.query, 1010, 60).is_ok());
    }
}
