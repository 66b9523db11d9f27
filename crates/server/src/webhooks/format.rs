//! The HTTP request of one webhook delivery, in each endpoint format: the
//! body bytes and the signature headers. Pure, so the dispatcher only sends
//! what this returns and every format is tested without a network.

use roster_client::webhook::{SIGNATURE_HEADER, sign};
use roster_store::Directory;
use roster_store::events::Event;
use roster_store::webhooks::WebhookFormat;
use serde_json::Value;

use super::js_json;

/// The header WorkOS SDKs read the signature from.
pub const WORKOS_SIGNATURE_HEADER: &str = "WorkOS-Signature";

/// What one delivery sends: its body and headers (the dispatcher adds its
/// own, such as the event id and the attempt number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

/// What an endpoint of `format` receives for `event`: Roster's event, or
/// the WorkOS Event exactly as `GET /events` lists it. `directory` is the
/// event's directory as it is now (`None` once deleted); only the WorkOS
/// shape reads it.
pub fn payload(format: WebhookFormat, event: &Event, directory: Option<&Directory>) -> Value {
    match format {
        WebhookFormat::Roster => event.to_json(),
        WebhookFormat::Workos => crate::workos::render::event(event, directory),
    }
}

/// The request delivering `payload` (an event, as [`payload`] renders it for
/// `format`) signed with `secret` at `now_ms` (Unix milliseconds).
pub fn request(format: WebhookFormat, secret: &str, payload: &Value, now_ms: i64) -> Request {
    let (body, signature) = match format {
        WebhookFormat::Roster => {
            let body = payload.to_string();
            let signature = sign(secret, now_ms.div_euclid(1000), body.as_bytes());
            (body, (SIGNATURE_HEADER, signature))
        }
        WebhookFormat::Workos => {
            // Node receivers may sign `JSON.stringify(JSON.parse(body))`
            // instead of the bytes received: write the body as that.
            let body = js_json::to_string(payload);
            (
                body.clone(),
                (
                    WORKOS_SIGNATURE_HEADER,
                    workos_signature(secret, now_ms, &body),
                ),
            )
        }
    };
    Request {
        body,
        headers: vec![("content-type", "application/json".to_owned()), signature],
    }
}

/// `t=<unix milliseconds>, v1=<hex HMAC-SHA256(secret, "t.body")>`, exactly:
/// the Python SDK splits on ", " and slices the `t=` and `v1=` prefixes off
/// by position. It is Roster's own scheme with the time in milliseconds.
pub fn workos_signature(secret: &str, now_ms: i64, body: &str) -> String {
    sign(secret, now_ms, body.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, KeyInit, Mac};
    use serde_json::json;
    use sha2::Sha256;

    fn header<'a>(r: &'a Request, name: &str) -> &'a str {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn workos_signature_is_hmac_sha256_of_millis_dot_body_in_the_exact_header_shape() {
        let payload = json!({"object": "event", "id": "evt_1", "data": {"n": 1.0}});
        let r = request(WebhookFormat::Workos, "s3cret", &payload, 1_767_225_600_123);
        assert_eq!(r.body, r#"{"object":"event","id":"evt_1","data":{"n":1}}"#);
        let sig = header(&r, "workos-signature");
        let (t, v1) = sig.split_once(", ").unwrap();
        assert_eq!(t, "t=1767225600123");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"s3cret").unwrap();
        mac.update(format!("1767225600123.{}", r.body).as_bytes());
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(v1, format!("v1={expected}"));
        assert_eq!(expected.len(), 64);
        assert_eq!(sig.matches(", ").count(), 1);
        assert_eq!(header(&r, "content-type"), "application/json");
        assert!(r.headers.iter().all(|(k, _)| *k != SIGNATURE_HEADER));
    }

    #[test]
    fn a_known_workos_signature() {
        // hex(HMAC-SHA256("whsec", "1000.{}")), computed independently with
        // Python's hmac module.
        assert_eq!(
            workos_signature("whsec", 1000, "{}"),
            "t=1000, v1=12ea441391fdd08b20eaf150b36092e5e2a923e74bd6909f24f88dd43b631cb2"
        );
    }

    #[test]
    fn roster_format_keeps_its_seconds_signature_and_serde_body() {
        let payload = json!({"object": "event", "id": "evt_1", "n": 1.5});
        let r = request(WebhookFormat::Roster, "s3cret", &payload, 1_767_225_600_999);
        assert_eq!(r.body, payload.to_string());
        let sig = header(&r, SIGNATURE_HEADER);
        assert!(sig.starts_with("t=1767225600, v1="), "{sig}");
        roster_client::webhook::verify("s3cret", sig, r.body.as_bytes(), 1_767_225_600, 5).unwrap();
        assert!(r.headers.iter().all(|(k, _)| *k != WORKOS_SIGNATURE_HEADER));
    }
}
