//! Replays the request sequences under `tests/idp/<provider>/*.json`, each
//! transcribed from an identity provider's public documentation, against a
//! real server. The fixtures carry the knowledge; this module only sends,
//! compares and captures, so adding a provider behaviour never means code.
//!
//! A fixture is `{"description", "source"?, "config"?, "steps": [...]}`;
//! `config` is a partial `ServerConfig`. A step is
//! `{"name", "request": {"method", "path", "headers"?, "body"? | "body_text"?},
//!   "expect": {"status", "json"?, "capture"?: {"var": "/json/pointer"}}}`.
//! `{{var}}` in the path, headers, body or expected JSON is replaced by a
//! captured value. Expected JSON is a subset match: objects may have more
//! keys, `null` means absent, arrays must have the same length and match
//! element by element in any order (so `[]` means empty).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use reqwest::Method;
use roster_server::ServerConfig;
use serde_json::Value;

use crate::support::TestServer;

type Vars = HashMap<String, String>;

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/idp")
}

fn fixture_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for provider in std::fs::read_dir(fixture_root()).expect("tests/idp exists") {
        let provider = provider.expect("readable directory entry").path();
        if !provider.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&provider).expect("readable provider directory") {
            let f = f.expect("readable directory entry").path();
            if f.extension().is_some_and(|e| e == "json") {
                files.push(f);
            }
        }
    }
    files.sort();
    files
}

/// Every fixture runs, even after a failure, so one run lists every broken behaviour.
#[tokio::test]
async fn idp_fixtures_replay() {
    let root = fixture_root();
    let files = fixture_files();
    assert!(!files.is_empty(), "no fixtures under {}", root.display());
    let mut failures = Vec::new();
    for file in &files {
        let name = file.strip_prefix(&root).unwrap_or(file).display();
        let text = std::fs::read_to_string(file).expect("readable fixture");
        let outcome = match serde_json::from_str::<Value>(&text) {
            Ok(fixture) => replay(&fixture).await,
            Err(e) => Err(format!("not valid JSON: {e}")),
        };
        if let Err(e) = outcome {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} IdP fixtures failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

async fn replay(fixture: &Value) -> Result<(), String> {
    let config = match fixture.get("config") {
        Some(c) => {
            serde_json::from_value::<ServerConfig>(c.clone()).map_err(|e| format!("config: {e}"))?
        }
        None => ServerConfig::default(),
    };
    let steps = fixture["steps"]
        .as_array()
        .ok_or("the fixture has no \"steps\" array")?;
    // No store for this run (PostgreSQL skipped): nothing to replay against.
    let Some(server) = TestServer::start_with(config).await else {
        return Ok(());
    };
    let mut vars = Vars::new();
    for (i, step) in steps.iter().enumerate() {
        let name = step["name"].as_str().unwrap_or("(unnamed)");
        run_step(&server, step, &mut vars)
            .await
            .map_err(|e| format!("step {} {name:?}: {e}", i + 1))?;
    }
    Ok(())
}

async fn run_step(server: &TestServer, step: &Value, vars: &mut Vars) -> Result<(), String> {
    let req = &step["request"];
    let method = req["method"].as_str().ok_or("request.method is missing")?;
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let path = fill(req["path"].as_str().ok_or("request.path is missing")?, vars)?;
    let mut http = server
        .client
        .request(method, format!("{}{path}", server.base()));
    let mut own_auth = false;
    if let Some(headers) = req.get("headers").and_then(Value::as_object) {
        for (k, v) in headers {
            own_auth |= k.eq_ignore_ascii_case("authorization");
            http = http.header(
                k,
                fill(v.as_str().ok_or("header values are strings")?, vars)?,
            );
        }
    }
    if !own_auth {
        http = http.bearer_auth(&server.token);
    }
    let body = match (req.get("body"), req.get("body_text")) {
        (Some(b), _) => Some(fill_json(b, vars)?.to_string()),
        (None, Some(t)) => Some(t.as_str().ok_or("body_text is a string")?.to_owned()),
        (None, None) => None,
    };
    if let Some(b) = body {
        http = http.header("content-type", "application/scim+json").body(b);
    }
    let resp = http
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    let actual: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };

    let expect = &step["expect"];
    let want = expect["status"]
        .as_u64()
        .ok_or("expect.status is missing")?;
    if u64::from(status) != want {
        return Err(format!("status {status}, expected {want}; body: {actual}"));
    }
    if let Some(json) = expect.get("json") {
        subset(&fill_json(json, vars)?, &actual, "")
            .map_err(|e| format!("{e}\n    body: {actual}"))?;
    }
    if let Some(capture) = expect.get("capture").and_then(Value::as_object) {
        for (var, pointer) in capture {
            let pointer = pointer.as_str().ok_or("capture pointers are strings")?;
            let v = actual
                .pointer(pointer)
                .ok_or_else(|| format!("capture {var}: nothing at {pointer} in {actual}"))?;
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            vars.insert(var.clone(), v);
        }
    }
    Ok(())
}

/// Replaces every `{{var}}` in `s`; an unknown variable is a fixture error.
fn fill(s: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| format!("unclosed {{{{ in {s:?}"))?;
        let name = &rest[start + 2..start + end];
        let value = vars
            .get(name)
            .ok_or_else(|| format!("{{{{{name}}}}} was never captured"))?;
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn fill_json(v: &Value, vars: &Vars) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => Value::String(fill(s, vars)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| fill_json(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((fill(k, vars)?, fill_json(x, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn subset(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let here = format!("{at}/{k}");
                match a.get(k) {
                    Some(av) => subset(ev, av, &here)?,
                    None if ev.is_null() => {}
                    None => return Err(format!("{here} is missing, expected {ev}")),
                }
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{at} has {} elements, expected {}: {actual}",
                    a.len(),
                    e.len()
                ));
            }
            let mut used = vec![false; a.len()];
            for (i, ev) in e.iter().enumerate() {
                let hit = (0..a.len()).find(|&j| !used[j] && subset(ev, &a[j], "").is_ok());
                match hit {
                    Some(j) => used[j] = true,
                    None => return Err(format!("{at}/{i}: no element matches {ev} in {actual}")),
                }
            }
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{at}: expected {expected}, got {actual}")),
    }
}
