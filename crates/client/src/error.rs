//! One error type for the client: what the server said (a SCIM error), or why
//! nothing usable came back.

use std::time::Duration;

use serde_json::Value;

/// A SCIM error response (RFC 7644 §3.12), plus the `Retry-After` the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimErrorBody {
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: String,
    pub retry_after: Option<Duration>,
}

impl ScimErrorBody {
    /// Reads a SCIM error out of a response body. Servers that answer errors
    /// without a SCIM body (proxies, gateways) still yield the HTTP status and
    /// the start of the text they sent.
    pub fn from_body(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let scim_type = parsed
            .as_ref()
            .and_then(|v| v.get("scimType"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let detail = parsed
            .as_ref()
            .and_then(|v| v.get("detail"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() {
                    "(no body)".to_owned()
                } else {
                    text.chars().take(300).collect()
                }
            });
        ScimErrorBody {
            status,
            scim_type,
            detail,
            retry_after,
        }
    }

    /// Reads the error carried by one /Bulk operation result (`response` holds a SCIM error).
    pub fn from_value(status: u16, response: Option<&Value>) -> Self {
        let body = response.map(|v| v.to_string()).unwrap_or_default();
        Self::from_body(status, body.as_bytes(), None)
    }

    /// Worth sending again: throttling, a server momentarily failing, a gateway timeout.
    pub fn is_retriable(&self) -> bool {
        matches!(self.status, 408 | 429 | 500 | 502 | 503 | 504)
    }

    pub fn is_uniqueness(&self) -> bool {
        self.status == 409
            && self
                .scim_type
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case("uniqueness"))
    }
}

impl std::fmt::Display for ScimErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(t) = &self.scim_type {
            write!(f, " ({t})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status.
    #[error("{method} {url}: {body}")]
    Scim {
        method: String,
        url: String,
        body: ScimErrorBody,
    },
    /// No answer: the connection failed or broke. `maybe_applied` is false only
    /// when the request certainly never reached the server (connect failed), so
    /// a create may have happened when it is true.
    #[error("{method} {url}: {message}")]
    Transport {
        method: String,
        url: String,
        message: String,
        maybe_applied: bool,
    },
    /// A 2xx answer that is not what SCIM says it should be.
    #[error("{method} {url}: unexpected response: {message}")]
    Decode {
        method: String,
        url: String,
        message: String,
    },
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The SCIM error the server sent, when it sent one.
    pub fn scim(&self) -> Option<&ScimErrorBody> {
        match self {
            Error::Scim { body, .. } => Some(body),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        self.scim().map(|b| b.status)
    }

    /// Transport failures and retriable statuses are worth another try.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Scim { body, .. } => body.is_retriable(),
            Error::Transport { .. } => true,
            Error::Decode { .. } | Error::Config(_) => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.scim().and_then(|b| b.retry_after)
    }

    /// As a SCIM-shaped error for reports: transport failures become status 0.
    pub fn to_body(&self) -> ScimErrorBody {
        match self {
            Error::Scim { body, .. } => body.clone(),
            other => ScimErrorBody {
                status: 0,
                scim_type: None,
                detail: other.to_string(),
                retry_after: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_scim_error_bodies_and_plain_text() {
        let e = ScimErrorBody::from_body(
            409,
            br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"userName taken"}"#,
            None,
        );
        assert_eq!(e.scim_type.as_deref(), Some("uniqueness"));
        assert_eq!(e.detail, "userName taken");
        assert!(e.is_uniqueness());
        assert!(!e.is_retriable());
        let e = ScimErrorBody::from_body(502, b"Bad Gateway\n", None);
        assert_eq!(e.detail, "Bad Gateway");
        assert!(e.is_retriable());
        let e = ScimErrorBody::from_body(409, br#"{"scimType":"mutability"}"#, None);
        assert!(!e.is_uniqueness());
    }
}
