//! `/metrics`: known traffic, then the values it must show, and the whole
//! scrape through `promtool check metrics` (Debian's `prometheus` package).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use roster_server::ServerConfig;
use roster_testkit::poll;
use serde_json::json;

use crate::support::{StoreKind, TestServer};

/// One sample of a scrape: the value of `name` whose labels include `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(parse_line)
        .find(|(n, ls, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| ls.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v)
}

/// One sample line: its name, its labels and its value.
type Sample = (String, Vec<(String, String)>, f64);

/// `name{k="v",…} value` → its parts; label values may hold `{`, `}` and `,`.
fn parse_line(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let mut labels = Vec::new();
    let mut rest = rest;
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '}' {
                end = Some(i);
                break;
            }
            let key_start = i;
            let eq = inner[key_start..].find('=')? + key_start;
            let key = inner[key_start..eq].trim_start_matches(',').to_owned();
            // Skip to the opening quote, then read up to the closing one.
            for (j, _) in chars.by_ref() {
                if j == eq + 1 {
                    break;
                }
            }
            let mut value = String::new();
            let mut escaped = false;
            for (_, c) in chars.by_ref() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    (_, c) => {
                        value.push(c);
                        escaped = false;
                    }
                }
            }
            labels.push((key, value));
            if let Some((_, ',')) = chars.peek() {
                chars.next();
            }
        }
        rest = &inner[end? + 1..];
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((name.to_owned(), labels, value))
}

async fn scrape(s: &TestServer) -> String {
    let addr = s.metrics_addr().expect("metrics_listen was set");
    let r = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    r.text().await.unwrap()
}

#[test]
fn lines_with_braces_in_label_values_parse() {
    let (n, ls, v) =
        parse_line(r#"x_total{route="/scim/v2/{dir}/Users/{id}",status="201"} 3"#).unwrap();
    assert_eq!(n, "x_total");
    assert_eq!(ls[0], ("route".into(), "/scim/v2/{dir}/Users/{id}".into()));
    assert_eq!(ls[1], ("status".into(), "201".into()));
    assert_eq!(v, 3.0);
    assert_eq!(parse_line("y 2.5").unwrap().2, 2.5);
}

#[tokio::test]
async fn known_traffic_shows_in_metrics_and_promtool_accepts_the_scrape() {
    let Some(s) = TestServer::start_with(ServerConfig {
        metrics_listen: Some(([127, 0, 0, 1], 0).into()),
        metrics_directory_labels: true,
        admin_rate_limit_per_sec: 0.001,
        admin_rate_limit_burst: 1.0,
        webhook_backoff_base_ms: 60_000,
        ..ServerConfig::default()
    })
    .await
    else {
        return;
    };
    let dir = s.directory.clone();
    // The directory's own event may predate the recorder: count from here.
    let events_before =
        sample(&scrape(&s).await, "roster_events_written_total", &[]).unwrap_or(0.0);
    // A receiver that refuses connections: its endpoint falls behind.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let (endpoint, _) = s
        .store
        .create_webhook(
            &roster_store::Actor::Cli,
            &hook,
            roster_store::webhooks::WebhookFormat::Roster,
            &[],
            Some(&dir),
        )
        .await
        .unwrap();

    for i in 0..3 {
        s.create(
            "/Users",
            json!({"userName": format!("metrics{i}@example.com")}),
        )
        .await;
    }
    let missing = s.get("/Users/00000000-0000-7000-8000-000000000000").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let anonymous = s
        .client
        .get(format!("{}/Users", s.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let bogus = s
        .call_with(Method::GET, "/Users", None, "not-a-token", &[])
        .await;
    assert_eq!(bogus.status, StatusCode::UNAUTHORIZED);
    let bulk = s
        .post(
            "/Bulk",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "a",
                     "data": {"userName": "bulk-a@example.com"}},
                    {"method": "POST", "path": "/Users", "bulkId": "b",
                     "data": {"userName": "bulk-b@example.com"}},
                    {"method": "DELETE", "path": "/Users/00000000-0000-7000-8000-000000000000"},
                ]
            }),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK, "{:?}", bulk.body);
    // Two admin requests on a bucket of one: the second is a 429.
    let key = s
        .store
        .create_admin_key(&roster_store::Actor::Cli, "metrics", &Default::default())
        .await
        .unwrap()
        .1;
    let events = format!("http://{}/api/v1/events", s.addr);
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..2 {
            let r = s
                .client
                .get(&events)
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            v.push(r.status().as_u16());
        }
        v
    };
    assert_eq!(statuses, [200, 429]);

    // The dispatcher tries the endpoint once (then backs off for a minute).
    let text = poll::until_or_last(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || scrape(&s),
        |text| sample(text, "roster_webhook_deliveries_total", &[]).is_some(),
    )
    .await;

    let users = "/scim/v2/{dir}/Users";
    let d = dir.as_str();
    let scim = |method, result| {
        sample(
            &text,
            "roster_scim_operations_total",
            &[
                ("resource_type", "Users"),
                ("method", method),
                ("result", result),
                ("directory", d),
            ],
        )
    };
    assert_eq!(scim("POST", "success"), Some(3.0), "{text}");
    assert_eq!(scim("GET", "client_error"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "roster_http_requests_total",
            &[("method", "POST"), ("route", users), ("status", "201")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "roster_http_requests_total",
            &[("route", "/api/v1/events"), ("status", "429")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "roster_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", users)]
        ),
        Some(3.0),
        "{text}"
    );
    // Tokens that proved nothing never label a directory.
    assert_eq!(
        sample(
            &text,
            "roster_scim_operations_total",
            &[
                ("method", "GET"),
                ("result", "client_error"),
                ("directory", "")
            ]
        ),
        None
    );
    let auth = |reason| {
        sample(
            &text,
            "roster_auth_failures_total",
            &[("api", "scim"), ("reason", reason)],
        )
    };
    assert_eq!(auth("missing"), Some(1.0), "{text}");
    assert_eq!(auth("unknown"), Some(1.0), "{text}");
    let bulk_ops = |method, result| {
        sample(
            &text,
            "roster_bulk_operations_total",
            &[("method", method), ("result", result)],
        )
    };
    assert_eq!(bulk_ops("POST", "success"), Some(2.0), "{text}");
    assert_eq!(bulk_ops("DELETE", "error"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "roster_rate_limited_total", &[("api", "admin")]),
        Some(1.0)
    );
    // Three users and two from /Bulk: five events.
    assert_eq!(
        sample(&text, "roster_events_written_total", &[]).map(|n| n - events_before),
        Some(5.0),
        "{text}"
    );
    let backend = match crate::STORE {
        StoreKind::Sqlite => "sqlite",
        StoreKind::Postgres => "postgres",
    };
    let batches = sample(
        &text,
        "roster_store_write_batch_size_count",
        &[("backend", backend)],
    )
    .unwrap_or(0.0);
    assert!(batches >= 1.0, "{text}");
    assert!(
        sample(
            &text,
            "roster_store_commit_duration_seconds_count",
            &[("backend", backend)]
        )
        .is_some()
    );
    // The five events concern five users, so they go out side by side: at
    // least one refused connection has been counted, each a whole attempt.
    let refused = sample(
        &text,
        "roster_webhook_deliveries_total",
        &[("result", "connection_failed")],
    )
    .unwrap_or(0.0);
    assert!(refused >= 1.0 && refused.fract() == 0.0, "{text}");
    assert_eq!(
        sample(
            &text,
            "roster_webhook_lag_events",
            &[("endpoint", endpoint.id.as_str())]
        ),
        Some(5.0),
        "{text}"
    );
    let lag = sample(
        &text,
        "roster_webhook_lag_seconds",
        &[("endpoint", endpoint.id.as_str())],
    )
    .unwrap();
    assert!((0.0..60.0).contains(&lag), "{lag}");
    assert_eq!(
        sample(&text, "roster_webhook_oldest_pending_seconds", &[]),
        Some(lag)
    );
    assert_eq!(sample(&text, "roster_store_gauges_up", &[]), Some(1.0));
    match crate::STORE {
        StoreKind::Sqlite => {
            assert!(sample(&text, "roster_sqlite_wal_bytes", &[]).is_some());
        }
        StoreKind::Postgres => {
            let idle = sample(
                &text,
                "roster_postgres_pool_connections",
                &[("state", "idle")],
            );
            assert!(idle.is_some_and(|n| n >= 1.0), "{text}");
            // Momentary: the request log's writer or the webhook
            // dispatcher may be waiting for a connection as the scrape runs.
            assert!(
                sample(&text, "roster_postgres_pool_waiting", &[]).is_some(),
                "{text}"
            );
        }
    }
    promtool_check(&text);
}

/// `promtool check metrics` on a scrape; CI installs it (Debian `prometheus`),
/// and a CI run without it fails rather than skips.
fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("promtool not found ({e}); install Debian's prometheus package");
            return;
        }
        Err(e) => panic!("promtool: {e} (CI installs Debian's prometheus package)"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
