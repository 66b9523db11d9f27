//! Reading client JSON with limits.
//!
//! `serde_json::from_slice` accepts duplicate keys (the last one silently
//! wins, so two parties can read one body two ways), NUL characters (which
//! PostgreSQL refuses to store, turning a client mistake into a server error)
//! and objects, arrays and strings of any size the body allows. This reader
//! builds the same [`Value`] while refusing all of those, each with an error
//! that names the limit, as the body is parsed: nothing over a limit is ever
//! built in memory.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::ScimError;

/// What a request body may contain. The names in error details are the
/// server's configuration keys, so an operator can find the knob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonLimits {
    /// Most objects and arrays nested in one another (`[[1]]` nests 2).
    pub max_depth: usize,
    /// Most members of one object.
    pub max_object_members: usize,
    /// Most elements of one array.
    pub max_array_len: usize,
    /// Longest string, key or value, in bytes.
    pub max_string_bytes: usize,
}

impl Default for JsonLimits {
    fn default() -> Self {
        JsonLimits {
            max_depth: 32,
            max_object_members: 1000,
            max_array_len: 20_000,
            max_string_bytes: 64 * 1024,
        }
    }
}

/// Parses `bytes` as one JSON value within `limits`. Syntax errors and
/// duplicate keys are `invalidSyntax`; limits and NUL characters are
/// `invalidValue`.
pub fn parse_limited(bytes: &[u8], limits: &JsonLimits) -> Result<Value, ScimError> {
    let failure = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Seed {
        depth: 1,
        limits,
        failure: &failure,
    };
    let parsed = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(v) => Ok(v),
        Err(e) => Err(failure.into_inner().unwrap_or_else(|| {
            ScimError::invalid_syntax(format!(
                "the body is not valid JSON: {e} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })),
    }
}

/// True when `s` holds a NUL character, which no SCIM value needs and
/// PostgreSQL cannot store.
pub fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

#[derive(Clone, Copy)]
struct Seed<'a> {
    depth: usize,
    limits: &'a JsonLimits,
    failure: &'a RefCell<Option<ScimError>>,
}

impl Seed<'_> {
    /// Records why the parse stopped; serde's error only carries text.
    fn fail<E: de::Error>(&self, e: ScimError) -> E {
        let msg = e.detail.clone();
        self.failure.borrow_mut().get_or_insert(e);
        E::custom(msg)
    }

    fn check_str<E: de::Error>(&self, s: &str) -> Result<(), E> {
        if s.len() > self.limits.max_string_bytes {
            return Err(self.fail(ScimError::invalid_value(format!(
                "a string of {} bytes is longer than max_string_bytes ({})",
                s.len(),
                self.limits.max_string_bytes
            ))));
        }
        if has_nul(s) {
            return Err(self.fail(ScimError::invalid_value(
                "strings must not contain NUL (\\u0000) characters",
            )));
        }
        Ok(())
    }

    fn enter<E: de::Error>(&self) -> Result<Seed<'_>, E> {
        // `self` is the container being entered, at depth 1 for the top level.
        if self.depth > self.limits.max_depth {
            return Err(self.fail(ScimError::invalid_value(format!(
                "the body nests objects and arrays deeper than max_json_depth ({})",
                self.limits.max_depth
            ))));
        }
        Ok(Seed {
            depth: self.depth + 1,
            ..*self
        })
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A map key, checked like any string.
struct Key<'a>(Seed<'a>);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.0.check_str(v)?;
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        self.0.check_str(&v)?;
        Ok(v)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity, so this is always a number.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.check_str(v)?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.check_str(&v)?;
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.enter()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(child)? {
            if out.len() == self.limits.max_array_len {
                return Err(self.fail(ScimError::invalid_value(format!(
                    "an array has more than max_json_array_len ({}) elements",
                    self.limits.max_array_len
                ))));
            }
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let child = self.enter()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key(self))? {
            if out.contains_key(&key) {
                return Err(self.fail(ScimError::invalid_syntax(format!(
                    "the key {key:?} appears twice in one object"
                ))));
            }
            if out.len() == self.limits.max_object_members {
                return Err(self.fail(ScimError::invalid_value(format!(
                    "an object has more than max_json_object_members ({}) members",
                    self.limits.max_object_members
                ))));
            }
            let value = map.next_value_seed(child)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;

    fn limits() -> JsonLimits {
        JsonLimits {
            max_depth: 4,
            max_object_members: 3,
            max_array_len: 3,
            max_string_bytes: 8,
        }
    }

    fn err(text: &str) -> ScimError {
        parse_limited(text.as_bytes(), &limits()).unwrap_err()
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for text in [
            r#"{"a": [1, -2, 3.5], "b": {"c": null, "d": true}}"#,
            r#""x""#,
            "17",
            "[]",
            r#"{"e":"\u00e9\ud83d\ude00"}"#,
        ] {
            let mine = parse_limited(text.as_bytes(), &limits()).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(mine, theirs, "{text}");
        }
    }

    #[test]
    fn refuses_duplicate_keys_at_any_depth() {
        let e = err(r#"{"a": 1, "a": 2}"#);
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        assert!(e.detail.contains("\"a\" appears twice"), "{}", e.detail);
        assert!(err(r#"{"x": {"b": 1, "b": 1}}"#).detail.contains("twice"));
        // Keys differing only in case are distinct JSON; SCIM validation decides about them.
        assert!(parse_limited(br#"{"a": 1, "A": 2}"#, &limits()).is_ok());
    }

    #[test]
    fn each_limit_is_named() {
        let cases = [
            (r#"[[[[[1]]]]]"#, "max_json_depth (4)"),
            (r#"{"a":{"b":{"c":{"d":{}}}}}"#, "max_json_depth"),
            (
                r#"{"a":1,"b":2,"c":3,"d":4}"#,
                "max_json_object_members (3)",
            ),
            ("[1,2,3,4]", "max_json_array_len (3)"),
            (r#""123456789""#, "max_string_bytes (8)"),
            (r#"{"123456789": 1}"#, "max_string_bytes"),
        ];
        for (text, name) in cases {
            let e = err(text);
            assert_eq!(e.status, 400, "{text}");
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{text}");
            assert!(e.detail.contains(name), "{text}: {}", e.detail);
        }
        assert!(parse_limited(b"[[[[1]]]]", &limits()).is_ok());
        assert!(parse_limited(br#"{"a":{"b":{"c":{"d":1}}}}"#, &limits()).is_ok());
        assert!(parse_limited(b"[1,2,3]", &limits()).is_ok());
    }

    #[test]
    fn refuses_nul_in_keys_and_values() {
        assert!(err(r#"{"a": "x\u0000"}"#).detail.contains("NUL"));
        assert!(err(r#"{"a\u0000": 1}"#).detail.contains("NUL"));
    }

    #[test]
    fn syntax_errors_keep_their_position() {
        let e = err("{\"a\": ");
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        assert!(e.detail.contains("line 1"), "{}", e.detail);
        assert!(err("{} x").detail.contains("not valid JSON"));
        assert!(err("").detail.contains("not valid JSON"));
    }

    #[test]
    fn deep_nesting_beyond_serde_json_own_limit_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        let e = parse_limited(deep.as_bytes(), &JsonLimits::default()).unwrap_err();
        assert!(e.detail.contains("max_json_depth"), "{}", e.detail);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// JSON values as clients send them (no NUL: that is refused by design).
        fn value() -> impl Strategy<Value = Value> {
            let text = "[^\\x00]{0,12}";
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| Value::Number(n.into())),
                (-1e9f64..1e9).prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
                text.prop_map(Value::String),
            ];
            leaf.prop_recursive(6, 64, 8, move |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                    prop::collection::btree_map(text, inner, 0..8)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Whatever serde_json writes, the limited reader reads back as
            /// serde_json does (which, without its float_roundtrip feature,
            /// may be one ulp off for floats: compared with its own reading).
            #[test]
            fn printed_json_reads_back_the_same(v in value()) {
                let text = v.to_string();
                let theirs: Value = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(parse_limited(text.as_bytes(), &JsonLimits::default()).ok(), Some(theirs));
            }

            /// Arbitrary bytes never panic, and what is accepted is what serde_json reads.
            #[test]
            fn arbitrary_bytes_agree_with_serde_json(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
                if let Ok(mine) = parse_limited(&bytes, &JsonLimits::default()) {
                    let theirs: Value = serde_json::from_slice(&bytes).unwrap();
                    prop_assert_eq!(mine, theirs);
                }
            }
        }
    }
}
