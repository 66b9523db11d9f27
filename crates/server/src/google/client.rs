//! The Admin SDK Directory API over HTTP: the JWT-bearer token exchange (its
//! token cached until shortly before it expires), paged listings, and
//! Google's error answers turned into [`GoogleError`].

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Mutex;

use super::account::ServiceAccount;

/// Google's largest `maxResults` per listing.
pub const MAX_USERS: u32 = 500;
pub const MAX_GROUPS: u32 = 200;
pub const MAX_MEMBERS: u32 = 200;

/// Attempts of one request answered 429 or 5xx before the poll gives up.
const ATTEMPTS: u32 = 5;
/// The longest wait between attempts, whatever `Retry-After` asks.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// A token is renewed this long before Google says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// Why a poll could not read the directory, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    #[error("Google refused the service account's credentials (401): {0}")]
    Unauthorized(String),
    #[error(
        "Google denied access (403): {0}; check domain-wide delegation of the read-only directory scopes and the admin email"
    )]
    Forbidden(String),
    #[error("Google kept answering {status} after {ATTEMPTS} attempts: {message}")]
    Unavailable { status: u16, message: String },
    #[error("Google answered {status}: {message}")]
    Rejected { status: u16, message: String },
    #[error("cannot reach Google: {0}")]
    Transport(String),
    #[error("unexpected answer from Google: {0}")]
    Protocol(String),
}

struct Token {
    value: String,
    renew_at: Instant,
}

/// One Google directory's connection: its key, its admin and its cached token.
pub struct DirectoryClient {
    http: reqwest::Client,
    api_url: String,
    account: ServiceAccount,
    subject: String,
    token: Mutex<Option<Token>>,
    /// The shortest wait before a retry (tests shorten it).
    min_wait: Duration,
    /// The least time between two Directory API requests (the request
    /// budget a minute), and when the last one was sent.
    spacing: Duration,
    last_request: Mutex<Option<Instant>>,
}

/// One page of a listing: its items and the token of the next page.
pub struct Page {
    pub items: Vec<Value>,
    pub next: Option<String>,
}

/// Google's message of an error answer: `{"error": {"message"}}` for the
/// API, `{"error", "error_description"}` for the token endpoint.
fn error_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let api = v
        .get("error")
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str);
    let oauth = match (
        v.get("error").and_then(Value::as_str),
        v.get("error_description").and_then(Value::as_str),
    ) {
        (Some(code), Some(d)) => Some(format!("{code}: {d}")),
        (Some(code), None) => Some(code.to_owned()),
        _ => None,
    };
    api.map(str::to_owned)
        .or(oauth)
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// Whether a 403 is Google's rate limit rather than a refusal: the
/// Directory API answers `userRateLimitExceeded` (the per-user quota,
/// 2,400 queries a minute by default) and `quotaExceeded` (too many
/// concurrent requests) with 403, and asks for a retry with backoff.
fn is_rate_limit(body: &str) -> bool {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["error"]["errors"].as_array().is_some_and(|errors| {
        errors.iter().any(|e| {
            matches!(
                e["reason"].as_str(),
                Some("userRateLimitExceeded" | "rateLimitExceeded" | "quotaExceeded")
            )
        })
    })
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

impl DirectoryClient {
    pub fn new(
        http: reqwest::Client,
        api_url: &str,
        account: ServiceAccount,
        subject: &str,
        min_wait: Duration,
        requests_per_minute: u32,
    ) -> Self {
        let spacing = match requests_per_minute {
            0 => Duration::ZERO,
            n => Duration::from_secs(60) / n,
        };
        DirectoryClient {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            account,
            subject: subject.to_owned(),
            token: Mutex::new(None),
            min_wait,
            spacing,
            last_request: Mutex::new(None),
        }
    }

    /// Waits until the request budget allows another request.
    async fn pace(&self) {
        let mut last = self.last_request.lock().await;
        if let Some(at) = *last {
            let due = at + self.spacing;
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        *last = Some(Instant::now());
    }

    /// Sends `build()` until it is answered with something other than 429
    /// or 5xx, waiting `Retry-After` (or a doubling backoff) in between.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(StatusCode, String), GoogleError> {
        let mut wait = self.min_wait;
        let mut attempt = 1;
        loop {
            let resp = build()
                .send()
                .await
                .map_err(|e| GoogleError::Transport(e.to_string()))?;
            let status = resp.status();
            let pause = retry_after(&resp)
                .unwrap_or(wait)
                .clamp(self.min_wait, MAX_WAIT);
            let body = resp
                .text()
                .await
                .map_err(|e| GoogleError::Transport(e.to_string()))?;
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || status.is_server_error()
                || (status == StatusCode::FORBIDDEN && is_rate_limit(&body));
            if !retryable {
                return Ok((status, body));
            }
            if attempt >= ATTEMPTS {
                return Err(GoogleError::Unavailable {
                    status: status.as_u16(),
                    message: error_message(&body),
                });
            }
            tracing::info!(
                status = status.as_u16(),
                wait_ms = pause.as_millis() as u64,
                "google: retrying"
            );
            tokio::time::sleep(pause).await;
            wait = (wait * 2).min(MAX_WAIT);
            attempt += 1;
        }
    }

    /// The access token, exchanged for a fresh signed assertion when the
    /// cached one is missing or about to expire.
    async fn token(&self) -> Result<String, GoogleError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref()
            && Instant::now() < t.renew_at
        {
            return Ok(t.value.clone());
        }
        let now = roster_store::now_ms() / 1000;
        let assertion = self
            .account
            .assertion(&self.subject, now)
            .map_err(GoogleError::Protocol)?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        let (status, body) = self
            .send(|| self.http.post(&self.account.token_uri).form(&form))
            .await?;
        if !status.is_success() {
            let message = error_message(&body);
            // The token endpoint answers 400/401 `invalid_grant` for a bad
            // key and `unauthorized_client` when delegation is missing.
            return Err(
                if message.starts_with("unauthorized_client") || status == 403 {
                    GoogleError::Forbidden(message)
                } else {
                    GoogleError::Unauthorized(message)
                },
            );
        }
        let v: Value = serde_json::from_str(&body)
            .map_err(|_| GoogleError::Protocol("the token answer is not JSON".into()))?;
        let value = v
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| GoogleError::Protocol("the token answer has no access_token".into()))?
            .to_owned();
        let lifetime =
            Duration::from_secs(v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600));
        *cached = Some(Token {
            value: value.clone(),
            renew_at: Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
        });
        Ok(value)
    }

    /// One page of `path` (under `/admin/directory/v1`), its items under `key`.
    pub async fn page(
        &self,
        path: &str,
        query: &[(&str, String)],
        key: &str,
        page_token: Option<&str>,
    ) -> Result<Page, GoogleError> {
        let url = format!("{}/admin/directory/v1/{path}", self.api_url);
        let mut query: Vec<(&str, String)> = query.to_vec();
        if let Some(t) = page_token {
            query.push(("pageToken", t.to_owned()));
        }
        let mut renewed = false;
        loop {
            let token = self.token().await?;
            self.pace().await;
            let (status, body) = self
                .send(|| self.http.get(&url).bearer_auth(&token).query(&query))
                .await?;
            match status.as_u16() {
                200 => {
                    let mut v: Value = serde_json::from_str(&body).map_err(|_| {
                        GoogleError::Protocol(format!("the answer to {path} is not JSON"))
                    })?;
                    let items = match v.get_mut(key).map(Value::take) {
                        Some(Value::Array(items)) => items,
                        None | Some(Value::Null) => Vec::new(),
                        Some(_) => {
                            return Err(GoogleError::Protocol(format!("{key} is not a list")));
                        }
                    };
                    let next = v
                        .get("nextPageToken")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned);
                    return Ok(Page { items, next });
                }
                // A token revoked early: one fresh exchange, then give up.
                401 if !renewed => {
                    renewed = true;
                    *self.token.lock().await = None;
                }
                401 => return Err(GoogleError::Unauthorized(error_message(&body))),
                403 => return Err(GoogleError::Forbidden(error_message(&body))),
                s => {
                    return Err(GoogleError::Rejected {
                        status: s,
                        message: error_message(&body),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{error_message, is_rate_limit};

    #[test]
    fn tells_rate_limits_from_refusals() {
        assert!(is_rate_limit(
            r#"{"error": {"code": 403, "message": "Quota exceeded", "errors": [{"reason": "userRateLimitExceeded"}]}}"#
        ));
        assert!(is_rate_limit(
            r#"{"error": {"code": 403, "errors": [{"reason": "quotaExceeded"}]}}"#
        ));
        assert!(!is_rate_limit(
            r#"{"error": {"code": 403, "message": "Not Authorized to access this resource/api", "errors": [{"reason": "forbidden"}]}}"#
        ));
        assert!(!is_rate_limit("oops"));
    }

    #[test]
    fn reads_both_error_shapes() {
        assert_eq!(
            error_message(
                r#"{"error": {"code": 403, "message": "Not Authorized to access this resource/api", "errors": []}}"#
            ),
            "Not Authorized to access this resource/api"
        );
        assert_eq!(
            error_message(
                r#"{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}"#
            ),
            "invalid_grant: Invalid JWT Signature."
        );
        assert_eq!(error_message("oops"), "oops");
    }
}
