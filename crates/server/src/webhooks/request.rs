//! What one delivery sends: the body and headers of the POST that carries
//! one event, or a batch of them, in the endpoint's format. Built in one
//! place so that every payload format signs and labels its requests the
//! same way.

use std::collections::HashMap;

use roster_store::Directory;
use roster_store::events::Event;
use roster_store::webhooks::WebhookFormat;
use serde_json::Value;

use super::format;

/// The request attempt header: 1 on a first attempt; more means the
/// receiver may have seen this event (or batch) before.
pub const ATTEMPT_HEADER: &str = "roster-delivery-attempt";
/// The event's id, on a single-event request.
pub const EVENT_ID_HEADER: &str = "roster-event-id";
/// How many events a batch carries.
pub const EVENT_COUNT_HEADER: &str = "roster-event-count";

/// A delivery's request, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

/// Builds the request for `events` (oldest first) in `fmt`: with `batch`, a
/// JSON array of them (even of one), signed as one body; otherwise the
/// single event as a JSON object. `directories` holds the events'
/// directories as they are now (a deleted one is absent); only the WorkOS
/// format reads them. `attempt` counts attempts at the most-tried event in
/// it; `now_ms` is the signing time in Unix milliseconds.
pub fn build(
    fmt: WebhookFormat,
    secret: &str,
    events: &[&Event],
    directories: &HashMap<String, Directory>,
    batch: bool,
    attempt: i64,
    now_ms: i64,
) -> Outgoing {
    let payload = |e: &Event| format::payload(fmt, e, directories.get(&e.directory_id));
    let (payload, label) = match (batch, events) {
        (false, [event]) => (payload(event), (EVENT_ID_HEADER, event.id())),
        _ => (
            Value::Array(events.iter().map(|e| payload(e)).collect()),
            (EVENT_COUNT_HEADER, events.len().to_string()),
        ),
    };
    let signed = format::request(fmt, secret, &payload, now_ms);
    let mut headers = signed.headers;
    headers.push(label);
    headers.push((ATTEMPT_HEADER, attempt.to_string()));
    Outgoing {
        body: signed.body,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use roster_client::webhook::{SIGNATURE_HEADER, verify};
    use serde_json::json;

    use super::*;

    fn event(seq: i64) -> Event {
        Event {
            seq,
            directory_id: "d".into(),
            event: "dsync.user.created".into(),
            created_at: 0,
            data: json!({"id": format!("u{seq}")}),
        }
    }

    fn header<'a>(o: &'a Outgoing, name: &str) -> Option<&'a str> {
        o.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn one_event_is_an_object_and_a_batch_an_array_each_signed_as_sent() {
        let (a, b) = (event(1), event(2));
        let dirs = HashMap::new();
        let one = build(
            WebhookFormat::Roster,
            "whsec_x",
            &[&a],
            &dirs,
            false,
            1,
            1_000_000,
        );
        assert_eq!(header(&one, EVENT_ID_HEADER), Some(a.id().as_str()));
        let sig = header(&one, SIGNATURE_HEADER).unwrap_or_default();
        assert!(verify("whsec_x", sig, one.body.as_bytes(), 1_000, 300).is_ok());
        let many = build(
            WebhookFormat::Roster,
            "whsec_x",
            &[&a, &b],
            &dirs,
            true,
            3,
            1_000_000,
        );
        let body: serde_json::Value = serde_json::from_str(&many.body).unwrap_or_default();
        assert_eq!(body.as_array().map(Vec::len), Some(2));
        assert_eq!(body[1]["id"], b.id());
        assert_eq!(header(&many, EVENT_COUNT_HEADER), Some("2"));
        assert_eq!(header(&many, ATTEMPT_HEADER), Some("3"));
        let sig = header(&many, SIGNATURE_HEADER).unwrap_or_default();
        assert!(verify("whsec_x", sig, many.body.as_bytes(), 1_000, 300).is_ok());
    }
}

#[cfg(test)]
mod workos_tests {
    use serde_json::{Value, json};

    use super::*;

    fn event(seq: i64) -> Event {
        Event {
            seq,
            directory_id: "d".into(),
            event: "dsync.user.created".into(),
            created_at: 0,
            data: json!({"id": format!("u{seq}"), "directory_id": "d"}),
        }
    }

    fn header<'a>(o: &'a Outgoing, name: &str) -> Option<&'a str> {
        o.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_workos_batch_is_an_array_of_workos_events_signed_as_one_body() {
        let (a, b) = (event(1), event(2));
        let dirs = HashMap::new();
        let out = build(
            WebhookFormat::Workos,
            "whsec_x",
            &[&a, &b],
            &dirs,
            true,
            1,
            1_767_225_600_123,
        );
        let body: Value = serde_json::from_str(&out.body).unwrap_or_default();
        let events = body.as_array().cloned().unwrap_or_default();
        assert_eq!(events.len(), 2);
        for (got, want) in events.iter().zip([&a, &b]) {
            assert_eq!(
                got,
                &crate::workos::render::event(want, None),
                "each element is the WorkOS Event GET /events lists"
            );
        }
        let sig = header(&out, format::WORKOS_SIGNATURE_HEADER).unwrap_or_default();
        assert_eq!(
            sig,
            format::workos_signature("whsec_x", 1_767_225_600_123, &out.body)
        );
        assert_eq!(header(&out, EVENT_COUNT_HEADER), Some("2"));
        assert!(header(&out, roster_client::webhook::SIGNATURE_HEADER).is_none());
        let one = build(WebhookFormat::Workos, "whsec_x", &[&a], &dirs, false, 1, 5);
        let body: Value = serde_json::from_str(&one.body).unwrap_or_default();
        assert_eq!(body["object"], "event");
        assert_eq!(header(&one, EVENT_ID_HEADER), Some(a.id().as_str()));
    }
}
