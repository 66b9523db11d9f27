//! Value rules shared by the evaluator, validation and the SQL compiler, so
//! that every place that compares SCIM values compares them the same way.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// "No value" as clients write it (`null`, `""`, `[]`, `{}`); such
/// attributes are left out of a canonical document.
pub fn is_blank(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Case folding for attributes with `caseExact: false`. The SQL stores call the
/// same function (registered as `scim_fold` in SQLite), so the two paths agree.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Parses an xsd:dateTime as SCIM uses it (RFC 3339 with an offset).
/// A value without an offset is taken as UTC, as several IdPs send it that way.
pub fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    // Tolerance: "2026-01-01T00:00:00" (no offset) is read as UTC.
    let with_z = format!("{s}Z");
    OffsetDateTime::parse(&with_z, &Rfc3339).ok()
}

/// The canonical text of a dateTime: UTC, `Z`, fractional seconds only as far as needed.
pub fn format_datetime(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond();
    if nanos == 0 {
        format!("{base}Z")
    } else {
        let frac = format!("{nanos:09}");
        format!("{base}.{}Z", frac.trim_end_matches('0'))
    }
}

/// Unix milliseconds (as the stores keep every timestamp) as RFC 3339 in
/// UTC with milliseconds; out of range reads as the epoch.
pub fn format_unix_millis(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format_timestamp_millis(t)
}

/// Server-assigned timestamps (`meta.created`, `meta.lastModified`): always milliseconds.
pub fn format_timestamp_millis(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return format_padded(t);
    }
    // Digit by digit: every resource rendered and every event written
    // formats two of these, and `format!` with seven padded fields cost
    // about 3,000 instructions each.
    let mut out = String::with_capacity(24);
    let mut put = |n: u32, width: u32, then: Option<char>| {
        for i in (0..width).rev() {
            let digit = (n / 10u32.pow(i)) % 10;
            out.push(char::from(b'0' + digit as u8));
        }
        if let Some(c) = then {
            out.push(c);
        }
    };
    put(year.unsigned_abs(), 4, Some('-'));
    put(u32::from(u8::from(t.month())), 2, Some('-'));
    put(u32::from(t.day()), 2, Some('T'));
    put(u32::from(t.hour()), 2, Some(':'));
    put(u32::from(t.minute()), 2, Some(':'));
    put(u32::from(t.second()), 2, Some('.'));
    put(u32::from(t.millisecond()), 3, Some('Z'));
    out
}

/// [`format_timestamp_millis`] for any year `time` can hold.
fn format_padded(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A dateTime as an integer for ordering: nanoseconds since the Unix epoch.
pub fn datetime_key(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos()
}

/// Booleans as Entra ID sends them: `"True"`, `"False"`, in any case.
pub fn parse_bool_text(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn a_timestamp_is_written_as_the_padded_format_writes_it(
            ms in -377_000_000_000_000i64..253_402_300_800_000
        ) {
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
            proptest::prop_assert_eq!(format_timestamp_millis(t), format_padded(t));
        }
    }

    #[test]
    fn datetime_round_trip_and_canonical_form() {
        let t = parse_datetime("2026-03-01T10:00:00.120+02:00").unwrap();
        assert_eq!(format_datetime(t), "2026-03-01T08:00:00.12Z");
        assert_eq!(format_timestamp_millis(t), "2026-03-01T08:00:00.120Z");
        let t = parse_datetime("2026-03-01T10:00:00").unwrap();
        assert_eq!(format_datetime(t), "2026-03-01T10:00:00Z");
        assert!(parse_datetime("yesterday").is_none());
    }

    #[test]
    fn folds_unicode_and_reads_text_booleans() {
        assert_eq!(fold("ÄBC"), "äbc");
        assert_eq!(parse_bool_text("False"), Some(false));
        assert_eq!(parse_bool_text("TRUE"), Some(true));
        assert_eq!(parse_bool_text("yes"), None);
    }
}
