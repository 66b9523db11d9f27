//! JSON text that JavaScript reproduces byte for byte.
//!
//! A Node receiver often verifies a signature over `JSON.stringify(req.body)`
//! rather than the bytes it received (the WorkOS Node SDK 8 always does), so
//! a signed body must equal `JSON.stringify(JSON.parse(body))`. serde_json's
//! compact output differs from that in two places, both handled here:
//! numbers (`1.0`, `1e21`, integers beyond 2^53) and object keys that are
//! array indexes (`"10"`, `"2"`), which JavaScript enumerates first, in
//! numeric order. Keys are written in that order rather than renamed, so the
//! data a receiver sees is the data Roster stored.

use std::fmt::Write;

use serde_json::{Number, Value};

/// The largest integer every JavaScript number holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// `value` as `JSON.stringify(JSON.parse(text))` writes it.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let (mut indexes, names): (Vec<_>, Vec<_>) =
                map.iter().partition(|(k, _)| array_index(k).is_some());
            indexes.sort_by_key(|(k, _)| array_index(k));
            out.push('{');
            for (i, (k, v)) in indexes.into_iter().chain(names).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// The key as an array index (a canonical integer below 2^32 - 1): the keys
/// JavaScript objects list before all others.
fn array_index(key: &str) -> Option<u32> {
    let canonical = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    if !canonical {
        return None;
    }
    key.parse::<u32>().ok().filter(|&i| i != u32::MAX)
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64()
        && i.unsigned_abs() <= MAX_SAFE_INTEGER
    {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64()
        && u <= MAX_SAFE_INTEGER
    {
        let _ = write!(out, "{u}");
    } else {
        // Beyond 2^53 JavaScript holds the nearest double, and so does this.
        out.push_str(&js_number(n.as_f64().unwrap_or(f64::NAN)));
    }
}

/// `Number.prototype.toString()` (ECMA-262 Number::toString, radix 10).
pub fn js_number(x: f64) -> String {
    if !x.is_finite() {
        // What JSON.stringify writes for NaN and the infinities.
        return "null".to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    // Rust's shortest round-trip digits, as d.ddde±x.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i64;
    // The decimal point sits after `n` digits: x = 0.digits × 10^n.
    let n = exp.parse::<i64>().unwrap_or(0) + 1;
    let mut s = String::new();
    if x < 0.0 {
        s.push('-');
    }
    if k <= n && n <= 21 {
        s.push_str(&digits);
        s.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        let _ = write!(s, "{int}.{frac}");
    } else if -6 < n && n <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', (-n) as usize));
        s.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        s.push_str(first);
        if !rest.is_empty() {
            let _ = write!(s, ".{rest}");
        }
        let e = n - 1;
        let _ = write!(s, "e{}{}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    s
}

/// A JSON string as JavaScript quotes it (QuoteJSONString): the two-letter
/// escapes, `\u00xx` in lowercase for the other control characters, and
/// everything else as raw UTF-8.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Expected strings are what Node 20 and 22 print for
    // `JSON.stringify(JSON.parse(input))`.

    #[test]
    fn numbers_are_written_as_javascript_writes_them() {
        let cases = [
            ("1.0", "1"),
            ("-0.0", "0"),
            ("1.5", "1.5"),
            ("100", "100"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("1.5e-7", "1.5e-7"),
            ("0.000001", "0.000001"),
            ("0.0000012", "0.0000012"),
            ("1e-7", "1e-7"),
            ("-2.5E+3", "-2500"),
            ("0.1", "0.1"),
            ("9007199254740991", "9007199254740991"),
            ("9007199254740993", "9007199254740992"),
            ("-9007199254740993", "-9007199254740992"),
            ("18446744073709551615", "18446744073709552000"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
            ("123.456e5", "12345600"),
        ];
        for (input, js) in cases {
            let v: Value = serde_json::from_str(input).unwrap();
            assert_eq!(to_string(&v), js, "{input}");
        }
        // serde_json's parser may round the last bit differently from
        // JavaScript's; the writer is exact for the double it is given.
        assert_eq!(
            js_number(123_456_789_012_345_678_901.0),
            "123456789012345680000"
        );
        assert_eq!(js_number(-1e-7), "-1e-7");
        assert_eq!(js_number(f64::NAN), "null");
    }

    #[test]
    fn array_index_keys_come_first_in_numeric_order_then_the_rest_as_given() {
        let v: Value = serde_json::from_str(
            r#"{"b":1,"10":2,"2":3,"a":4,"01":5,"-1":6,"4294967295":7,"4294967294":8,"0":9}"#,
        )
        .unwrap();
        assert_eq!(
            to_string(&v),
            r#"{"0":9,"2":3,"10":2,"4294967294":8,"b":1,"a":4,"01":5,"-1":6,"4294967295":7}"#
        );
    }

    #[test]
    fn strings_are_quoted_as_javascript_quotes_them() {
        let v = json!({"s": "é/\"\\\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}\u{2028}😀"});
        assert_eq!(
            to_string(&v),
            "{\"s\":\"é/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f}\u{2028}😀\"}"
        );
    }

    #[test]
    fn compact_output_equals_serde_json_where_they_agree() {
        let v = json!({"object": "event", "a": [1, true, null, {"x": "y"}], "n": -3});
        assert_eq!(to_string(&v), v.to_string());
    }

    #[test]
    fn writing_its_own_output_again_changes_nothing() {
        let v: Value = serde_json::from_str(
            r#"{"raw_attributes":{"7":1.0,"x":{"2":2e30,"1":0.5}},"n":[1e-9,12345678901234567890]}"#,
        )
        .unwrap();
        let once = to_string(&v);
        let again = to_string(&serde_json::from_str(&once).unwrap());
        assert_eq!(once, again);
    }
}
