//! `roster healthcheck`: asks a running server's `/health/ready` and exits
//! 0 when it answers 200, 1 otherwise, for container health checks. It
//! never opens the database: the server it asks does the checking.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde_json::Value;

/// How long the server has to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Args)]
pub struct HealthcheckArgs {
    /// The readiness URL [default: http://<listen setting>/health/ready,
    /// with an unspecified address such as 0.0.0.0 asked as 127.0.0.1].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// The readiness URL of a server listening on `listen`.
pub fn default_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/health/ready", SocketAddr::new(ip, listen.port()))
}

/// Prints one line and returns the exit code: 0 ready, 1 not.
pub async fn run(url: &str) -> Result<i32> {
    match check(url).await {
        Ok(()) => {
            println!("ready: {url}");
            Ok(0)
        }
        Err(why) => {
            println!("not ready: {why}");
            Ok(1)
        }
    }
}

async fn check(url: &str) -> Result<(), String> {
    // The workspace's reqwest has rustls without a default provider.
    roster_server::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url} does not answer: {}", describe(&e)))?;
    let status = resp.status();
    if status == reqwest::StatusCode::OK {
        return Ok(());
    }
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let failing = failing_checks(&body);
    if failing.is_empty() {
        Err(format!("{url} answered {status}"))
    } else {
        Err(format!("{url} answered {status}: {}", failing.join("; ")))
    }
}

/// The failing checks of a ready body, as "name: reason".
fn failing_checks(body: &Value) -> Vec<String> {
    let Some(checks) = body.get("checks").and_then(Value::as_object) else {
        return Vec::new();
    };
    checks
        .iter()
        .filter(|(_, v)| v.is_object())
        .map(|(name, v)| {
            let reason = v.get("reason").and_then(Value::as_str).unwrap_or("failing");
            format!("{name}: {reason}")
        })
        .collect()
}

fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection refused or unreachable"
    } else {
        "request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_url_asks_loopback_for_an_unspecified_address() {
        let url = |s: &str| default_url(s.parse().unwrap());
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080/health/ready");
        assert_eq!(url("[::]:8080"), "http://[::1]:8080/health/ready");
        assert_eq!(url("10.0.0.5:9000"), "http://10.0.0.5:9000/health/ready");
    }

    #[test]
    fn failing_checks_are_named_with_their_reasons() {
        let body = serde_json::json!({"status": "failing", "checks": {
            "database": {"status": "failing", "reason": "the database does not answer"},
            "webhooks": "ok"}});
        assert_eq!(
            failing_checks(&body),
            vec!["database: the database does not answer".to_owned()]
        );
    }
}
