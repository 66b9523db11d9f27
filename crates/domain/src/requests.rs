//! The provider request log: what a directory's identity provider asked of
//! Roster and what Roster answered, and the connection status an IT admin
//! reads from it ("waiting", "connected", or "failing" with the fix).

use serde_json::{Value, json};

/// One SCIM request of a directory's provider, as recorded. Bodies are kept
/// for failed requests only, truncated, with secrets removed before they
/// reach this type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub directory_id: String,
    /// When the request arrived, Unix ms.
    pub at: i64,
    pub method: String,
    /// The path, and the query when it names no secret.
    pub path: String,
    pub status: u16,
    pub latency_ms: i64,
    /// Whether the request's token proved the directory (false: the token
    /// was missing or wrong, or named another directory).
    pub authenticated: bool,
    /// The `detail` of the SCIM error Roster answered.
    pub error: Option<String>,
    pub user_agent: Option<String>,
    /// The provider type the User-Agent names (WorkOS spelling).
    pub provider: Option<String>,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
}

impl RequestRecord {
    pub fn failed(&self) -> bool {
        self.status >= 400
    }
}

/// A recorded request with its position in the log (increasing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub seq: i64,
    pub record: RequestRecord,
}

impl LoggedRequest {
    pub fn id(&self) -> String {
        format!("req_{:016x}", self.seq)
    }

    pub fn to_json(&self) -> Value {
        let r = &self.record;
        json!({
            "object": "provider_request",
            "id": self.id(),
            "directory_id": r.directory_id,
            "at": roster_scim::values::format_unix_millis(r.at),
            "method": r.method,
            "path": r.path,
            "status": r.status,
            "latency_ms": r.latency_ms,
            "authenticated": r.authenticated,
            "error": r.error,
            "user_agent": r.user_agent,
            "provider": r.provider,
            "request_body": r.request_body,
            "response_body": r.response_body,
        })
    }
}

/// The sequence number inside a request id, if it is one.
pub fn parse_request_id(id: &str) -> Option<i64> {
    let hex = id.strip_prefix("req_")?;
    (hex.len() == 16)
        .then(|| i64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// A page of a directory's request log, newest first: requests with a
/// sequence number below `before` (all when `None`).
#[derive(Debug, Clone, Default)]
pub struct RequestQuery {
    pub before: Option<i64>,
    pub limit: u64,
    /// Only failed requests (status 400 and above).
    pub failed_only: bool,
}

/// What the log says of a directory's provider over the last day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestSummary {
    /// The newest request ever recorded (Unix ms); `None`: none yet.
    pub last_request_at: Option<i64>,
    /// Requests and failed requests in the last 24 hours (counted by the
    /// hour, so the window is 24 to 25 hours).
    pub requests_24h: i64,
    pub errors_24h: i64,
}

/// Where a directory's provider connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// No request has reached the directory yet.
    Waiting,
    Connected {
        provider: Option<String>,
        users: i64,
        groups: i64,
        /// Seconds since the newest request.
        last_request_secs: i64,
    },
    Failing {
        failure: Failure,
        last_request_secs: i64,
    },
}

/// Why the provider's latest requests fail, each with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 401/403: no token, a token cut short, or a revoked one.
    Token,
    /// 404 before any token proved the directory: the base URL was cut or changed.
    BaseUrl { path: String },
    /// 400: Roster refused what the provider sent.
    Refused { detail: Option<String> },
    /// 5xx: Roster failed.
    Server { status: u16 },
}

impl Failure {
    /// What went wrong, in plain words.
    pub fn explanation(&self) -> String {
        match self {
            Failure::Token => {
                "The provider's requests are refused because their token is not accepted.".into()
            }
            Failure::BaseUrl { path } => {
                format!("The provider calls {path}, which is not this directory's SCIM base URL.")
            }
            Failure::Refused { detail } => match detail {
                Some(d) => format!("Roster refused what the provider sent: {d}"),
                None => "Roster refused what the provider sent.".into(),
            },
            Failure::Server { status } => {
                format!("Roster answered the provider's requests with an error ({status}).")
            }
        }
    }

    /// How to fix it.
    pub fn fix(&self) -> &'static str {
        match self {
            Failure::Token => {
                "The token was not pasted whole, or it was revoked: issue a new token here and paste all of it into the provider's token field."
            }
            Failure::BaseUrl { .. } => {
                "The base URL was cut or changed: copy the SCIM base URL from this page again and paste it whole, with nothing added after it."
            }
            Failure::Refused { .. } => {
                "Check the attribute mapping in the provider: it sent a value Roster cannot accept (the detail says which)."
            }
            Failure::Server { .. } => {
                "Nothing to change in the provider: tell the operator of this service, who can see the request log."
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Failure::Token => "token",
            Failure::BaseUrl { .. } => "base_url",
            Failure::Refused { .. } => "refused",
            Failure::Server { .. } => "server_error",
        }
    }
}

/// The failure a request shows, if it is one that breaks the connection.
/// A 404 for a resource the provider looked up, a 409 for a user that
/// exists, a 412 or a 429 are the protocol working, not a broken connection.
fn failure_of(r: &RequestRecord) -> Option<Failure> {
    match r.status {
        401 | 403 => Some(Failure::Token),
        404 if !r.authenticated => Some(Failure::BaseUrl {
            path: r.path.clone(),
        }),
        400 => Some(Failure::Refused {
            detail: r.error.clone(),
        }),
        s if s >= 500 => Some(Failure::Server { status: s }),
        _ => None,
    }
}

/// The connection status from the directory's counts, its summary and its
/// newest requests (newest first). The newest request decides: a provider
/// that failed and then succeeded is connected again.
pub fn connection_status(
    provider: Option<&str>,
    users: i64,
    groups: i64,
    summary: &RequestSummary,
    newest: &[RequestRecord],
    now_ms: i64,
) -> ConnectionStatus {
    let Some(last) = summary
        .last_request_at
        .or_else(|| newest.first().map(|r| r.at))
    else {
        return ConnectionStatus::Waiting;
    };
    let last_request_secs = (now_ms - last).max(0) / 1000;
    if let Some(failure) = newest.first().and_then(failure_of) {
        return ConnectionStatus::Failing {
            failure,
            last_request_secs,
        };
    }
    let provider = provider
        .map(str::to_owned)
        .or_else(|| newest.iter().find_map(|r| r.provider.clone()));
    ConnectionStatus::Connected {
        provider,
        users,
        groups,
        last_request_secs,
    }
}

/// A provider type (WorkOS spelling) as people name it.
pub fn provider_name(provider: &str) -> &str {
    match provider {
        "okta scim v2.0" => "Okta",
        "azure scim v2.0" => "Microsoft Entra ID",
        "onelogin scim v2.0" => "OneLogin",
        "jump cloud scim v2.0" => "JumpCloud",
        "pingfederate scim v2.0" => "PingFederate",
        "cyberark scim v2.0" => "CyberArk",
        "sailpoint scim v2.0" => "SailPoint",
        "rippling scim v2.0" => "Rippling",
        "google-workspace" | "gsuite directory" => "Google Workspace",
        "generic scim v2.0" => "SCIM 2.0 client",
        other => other,
    }
}

impl ConnectionStatus {
    pub fn code(&self) -> &'static str {
        match self {
            ConnectionStatus::Waiting => "waiting",
            ConnectionStatus::Connected { .. } => "connected",
            ConnectionStatus::Failing { .. } => "failing",
        }
    }

    /// One line for people: "connected: Okta, 1,240 users, 37 groups, last
    /// request 12 s ago".
    pub fn headline(&self) -> String {
        match self {
            ConnectionStatus::Waiting => "waiting for the first request".into(),
            ConnectionStatus::Connected {
                provider,
                users,
                groups,
                last_request_secs,
            } => {
                let who = provider
                    .as_deref()
                    .map(|p| format!("{}, ", provider_name(p)))
                    .unwrap_or_default();
                format!(
                    "connected: {who}{} {}, {} {}, last request {} ago",
                    thousands(*users),
                    plural(*users, "user", "users"),
                    thousands(*groups),
                    plural(*groups, "group", "groups"),
                    ago(*last_request_secs)
                )
            }
            ConnectionStatus::Failing {
                last_request_secs, ..
            } => format!("failing: last request {} ago", ago(*last_request_secs)),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut out = json!({"state": self.code(), "headline": self.headline()});
        match self {
            ConnectionStatus::Waiting => {}
            ConnectionStatus::Connected {
                provider,
                users,
                groups,
                last_request_secs,
            } => {
                out["provider"] = json!(provider);
                out["users"] = json!(users);
                out["groups"] = json!(groups);
                out["last_request_secs"] = json!(last_request_secs);
            }
            ConnectionStatus::Failing {
                failure,
                last_request_secs,
            } => {
                out["failure"] = json!({
                    "code": failure.code(),
                    "explanation": failure.explanation(),
                    "fix": failure.fix(),
                });
                out["last_request_secs"] = json!(last_request_secs);
            }
        }
        out
    }
}

fn plural<'a>(n: i64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// 1240 as "1,240".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// 12 as "12 s", 125 as "2 min", 7300 as "2 h", 200000 as "2 days".
pub fn ago(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(status: u16, authenticated: bool, at: i64) -> RequestRecord {
        RequestRecord {
            directory_id: "d".into(),
            at,
            method: "POST".into(),
            path: "/scim/v2/d/Users".into(),
            status,
            latency_ms: 3,
            authenticated,
            error: (status >= 400).then(|| "userName is required".to_owned()),
            user_agent: Some("Okta SCIM Client".into()),
            provider: Some("okta scim v2.0".into()),
            request_body: None,
            response_body: None,
        }
    }

    fn summary(last: i64) -> RequestSummary {
        RequestSummary {
            last_request_at: Some(last),
            requests_24h: 1,
            errors_24h: 0,
        }
    }

    #[test]
    fn no_request_is_waiting() {
        let s = connection_status(None, 0, 0, &RequestSummary::default(), &[], 1000);
        assert_eq!(s, ConnectionStatus::Waiting);
        assert_eq!(s.headline(), "waiting for the first request");
    }

    #[test]
    fn a_success_is_connected_with_counts_and_age() {
        let s = connection_status(
            Some("okta scim v2.0"),
            1240,
            37,
            &summary(10_000),
            &[req(201, true, 10_000)],
            22_500,
        );
        assert_eq!(
            s.headline(),
            "connected: Okta, 1,240 users, 37 groups, last request 12 s ago"
        );
        assert_eq!(s.code(), "connected");
    }

    #[test]
    fn the_provider_comes_from_the_log_when_the_directory_has_none() {
        let s = connection_status(None, 1, 1, &summary(0), &[req(200, true, 0)], 0);
        assert_eq!(
            s.headline(),
            "connected: Okta, 1 user, 1 group, last request 0 s ago"
        );
    }

    #[test]
    fn a_401_blames_the_token() {
        let s = connection_status(None, 0, 0, &summary(0), &[req(401, false, 0)], 0);
        let ConnectionStatus::Failing { failure, .. } = &s else {
            panic!("{s:?}")
        };
        assert_eq!(failure, &Failure::Token);
        assert!(failure.fix().contains("not pasted whole"));
    }

    #[test]
    fn an_unauthenticated_404_blames_the_base_url() {
        let s = connection_status(None, 0, 0, &summary(0), &[req(404, false, 0)], 0);
        let ConnectionStatus::Failing { failure, .. } = &s else {
            panic!("{s:?}")
        };
        assert_eq!(failure.code(), "base_url");
        assert!(failure.fix().contains("base URL was cut"));
    }

    #[test]
    fn a_400_shows_what_was_refused() {
        let s = connection_status(None, 0, 0, &summary(0), &[req(400, true, 0)], 0);
        let ConnectionStatus::Failing { failure, .. } = &s else {
            panic!("{s:?}")
        };
        assert!(failure.explanation().contains("userName is required"));
        assert_eq!(s.to_json()["failure"]["code"], "refused");
    }

    #[test]
    fn protocol_answers_are_not_failures() {
        for status in [404, 409, 412, 429] {
            let s = connection_status(None, 2, 0, &summary(0), &[req(status, true, 0)], 0);
            assert_eq!(s.code(), "connected", "{status}");
        }
        let s = connection_status(None, 2, 0, &summary(0), &[req(503, true, 0)], 0);
        assert_eq!(s.code(), "failing");
    }

    #[test]
    fn a_success_after_failures_is_connected_again() {
        let newest = [req(200, true, 5), req(401, false, 4)];
        let s = connection_status(None, 2, 0, &summary(5), &newest, 5);
        assert_eq!(s.code(), "connected");
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(ago(59), "59 s");
        assert_eq!(ago(125), "2 min");
        assert_eq!(ago(7300), "2 h");
        assert_eq!(ago(200_000), "2 days");
        assert_eq!(parse_request_id("req_000000000000000a"), Some(10));
        assert_eq!(parse_request_id("req_a"), None);
    }
}
