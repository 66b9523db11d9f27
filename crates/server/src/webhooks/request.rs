//! What one delivery sends: the body and headers of the POST that carries
//! one event, or a batch of them. Built in one place so that every payload
//! format signs and labels its requests the same way.

use roster_client::webhook::{SIGNATURE_HEADER, sign};
use roster_store::events::Event;

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

/// Builds the request for `events` (oldest first): with `batch`, a JSON
/// array of them (even of one), signed as one body; otherwise the single
/// event as a JSON object. `attempt` counts attempts at the most-tried
/// event in it.
pub fn build(
    secret: &str,
    events: &[&Event],
    batch: bool,
    attempt: i64,
    now_secs: i64,
) -> Outgoing {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    let body = match (batch, events) {
        (false, [event]) => {
            headers.push((EVENT_ID_HEADER, event.id()));
            event.to_json().to_string()
        }
        _ => {
            headers.push((EVENT_COUNT_HEADER, events.len().to_string()));
            serde_json::Value::Array(events.iter().map(|e| e.to_json()).collect()).to_string()
        }
    };
    headers.push((SIGNATURE_HEADER, sign(secret, now_secs, body.as_bytes())));
    headers.push((ATTEMPT_HEADER, attempt.to_string()));
    Outgoing { body, headers }
}

#[cfg(test)]
mod tests {
    use roster_client::webhook::verify;
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
        let one = build("whsec_x", &[&a], false, 1, 1_000);
        assert_eq!(header(&one, EVENT_ID_HEADER), Some(a.id().as_str()));
        let sig = header(&one, SIGNATURE_HEADER).unwrap_or_default();
        assert!(verify("whsec_x", sig, one.body.as_bytes(), 1_000, 300).is_ok());
        let many = build("whsec_x", &[&a, &b], true, 3, 1_000);
        let body: serde_json::Value = serde_json::from_str(&many.body).unwrap_or_default();
        assert_eq!(body.as_array().map(Vec::len), Some(2));
        assert_eq!(body[1]["id"], b.id());
        assert_eq!(header(&many, EVENT_COUNT_HEADER), Some("2"));
        assert_eq!(header(&many, ATTEMPT_HEADER), Some("3"));
        let sig = header(&many, SIGNATURE_HEADER).unwrap_or_default();
        assert!(verify("whsec_x", sig, many.body.as_bytes(), 1_000, 300).is_ok());
    }
}
