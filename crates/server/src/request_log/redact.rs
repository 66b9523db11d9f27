//! What of a failed request's bodies the log may keep: secrets removed,
//! then cut to a bound. A body that is JSON loses the values of secret
//! attributes (and PATCH values aimed at them); one that is not (malformed,
//! or cut short by the capture bound) is kept only up to the first word
//! that names a secret, since nothing reliable says where its value ends.

use serde_json::Value;

/// Words whose attributes hold secrets (compared in lower case).
const SECRET_WORDS: &[&str] = &["password", "secret", "token", "authorization"];
const REDACTED: &str = "[redacted]";

fn names_secret(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w))
}

fn scrub(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let patch_at_secret = map
                .get("path")
                .and_then(Value::as_str)
                .is_some_and(names_secret);
            for (k, inner) in map.iter_mut() {
                if names_secret(k) || (patch_at_secret && k.eq_ignore_ascii_case("value")) {
                    *inner = Value::String(REDACTED.to_owned());
                } else {
                    scrub(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, saying so.
fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("…[cut]");
    text
}

/// The body as the log keeps it, at most `max` bytes (plus the marker);
/// `None` for an empty body.
pub fn body(bytes: &[u8], max: usize) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    if let Ok(mut json) = serde_json::from_slice::<Value>(bytes) {
        scrub(&mut json);
        return Some(cut(json.to_string(), max));
    }
    let text = String::from_utf8_lossy(bytes).into_owned();
    let lower = text.to_ascii_lowercase();
    let first_secret = SECRET_WORDS.iter().filter_map(|w| lower.find(w)).min();
    Some(match first_secret {
        Some(at) => {
            let mut kept = cut(text[..at].to_owned(), max);
            kept.push_str("[cut before a secret]");
            kept
        }
        None => cut(text, max),
    })
}

/// The path and query as the log keeps them: a query naming a secret is dropped.
pub fn path(path: &str, query: Option<&str>) -> String {
    let full = match query {
        Some(q) if names_secret(q) => format!("{path}?[redacted]"),
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    cut(full, 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_json_bodies() {
        let b = br#"{"userName":"a","password":"hunter2","x":[{"Password":"p2"}]}"#;
        let kept = body(b, 4096).unwrap();
        assert!(
            !kept.contains("hunter2") && !kept.contains("p2\""),
            "{kept}"
        );
        assert!(kept.contains("\"userName\":\"a\""));
    }

    #[test]
    fn patch_values_aimed_at_a_password_leave() {
        let b = br#"{"Operations":[{"op":"replace","path":"password","value":"hunter2"},
                    {"op":"replace","value":{"password":"p3","active":false}}]}"#;
        let kept = body(b, 4096).unwrap();
        assert!(!kept.contains("hunter2") && !kept.contains("p3"), "{kept}");
        assert!(kept.contains("\"active\":false"));
    }

    #[test]
    fn text_that_is_not_json_is_cut_before_the_first_secret() {
        let b = br#"{"userName":"a", "password":"hunter2""#;
        let kept = body(b, 4096).unwrap();
        assert!(!kept.contains("hunter2"), "{kept}");
        assert!(kept.starts_with("{\"userName\":\"a\""));
    }

    #[test]
    fn bodies_are_cut_on_a_character_boundary() {
        let b = format!("\"{}\"", "é".repeat(100));
        let kept = body(b.as_bytes(), 11).unwrap();
        assert!(kept.ends_with("…[cut]"));
        assert!(kept.len() <= 11 + "…[cut]".len());
        assert_eq!(body(b"", 10), None);
    }

    #[test]
    fn queries_naming_secrets_are_dropped() {
        assert_eq!(
            path("/scim/v2/d/Users", Some("filter=userName eq \"a\"")),
            "/scim/v2/d/Users?filter=userName eq \"a\""
        );
        assert_eq!(
            path("/scim/v2/d/Users", Some("access_token=abc")),
            "/scim/v2/d/Users?[redacted]"
        );
    }
}
