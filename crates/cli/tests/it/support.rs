//! Roster servers on 127.0.0.1:0 (the test kit's in-process spawner), SCIM
//! helpers, and running `roster sync`.
#![allow(dead_code)] // Shared by the test modules; each uses a subset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use roster_server::ServerConfig;
use roster_store::Store;
use roster_testkit::server::{Place, Spawned};
use serde_json::{Value, json};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Roster in this process over a SQLite file (the test kit's spawner),
/// webhooks off.
pub struct Roster {
    pub addr: std::net::SocketAddr,
    pub store: Arc<dyn Store>,
    spawned: Spawned,
}

impl Roster {
    pub async fn start(config: ServerConfig) -> Self {
        let config = ServerConfig {
            webhooks_enabled: false,
            ..config
        };
        let spawned = Spawned::start(Place::sqlite(), config).await;
        Roster {
            addr: spawned.addr,
            store: spawned.store.clone(),
            spawned,
        }
    }

    /// A new directory: its SCIM base URL and token.
    pub async fn directory(&self, name: &str) -> Dir {
        let (d, token) = self.spawned.directory(name).await;
        Dir {
            base: self.spawned.scim_base(&d),
            token,
            http: reqwest::Client::new(),
        }
    }
}

#[derive(Clone)]
pub struct Dir {
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

impl Dir {
    /// The same directory reached through another host:port (a proxy).
    pub fn via(&self, addr: std::net::SocketAddr) -> Dir {
        let path = self.base.splitn(4, '/').nth(3).unwrap();
        Dir {
            base: format!("http://{addr}/{path}"),
            token: self.token.clone(),
            http: self.http.clone(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (s, b) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!(s == 201 || s == 200, "{s} {b}");
        b
    }

    pub async fn patch(&self, path: &str, ops: Value) -> Value {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        let (s, b) = self.call(reqwest::Method::PATCH, path, Some(body)).await;
        assert!(s == 200 || s == 204, "{s} {b}");
        b
    }

    pub async fn delete(&self, path: &str) {
        let (s, b) = self.call(reqwest::Method::DELETE, path, None).await;
        assert_eq!(s, 204, "{b}");
    }

    /// Every resource of a type (directories in these tests stay small).
    pub async fn all(&self, resource: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut start = 1;
        loop {
            let (s, b) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/{resource}?count=1000&startIndex={start}"),
                    None,
                )
                .await;
            assert_eq!(s, 200, "{b}");
            let page = b["Resources"].as_array().cloned().unwrap_or_default();
            let n = page.len();
            out.extend(page);
            if n == 0 || out.len() as u64 >= b["totalResults"].as_u64().unwrap() {
                return out;
            }
            start += n;
        }
    }

    /// Users by userName (asserting that no userName appears twice).
    pub async fn users_by_name(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for u in self.all("Users").await {
            let name = u["userName"].as_str().unwrap().to_owned();
            assert!(
                out.insert(name.clone(), u).is_none(),
                "duplicate user {name}"
            );
        }
        out
    }

    /// Group displayName → sorted userNames of its user members (and names of group members).
    pub async fn memberships(&self) -> BTreeMap<String, Vec<String>> {
        let names: BTreeMap<String, String> = self
            .all("Users")
            .await
            .into_iter()
            .map(|u| {
                (
                    u["id"].as_str().unwrap().to_owned(),
                    u["userName"].as_str().unwrap().to_owned(),
                )
            })
            .chain(self.all("Groups").await.into_iter().map(|g| {
                (
                    g["id"].as_str().unwrap().to_owned(),
                    format!("group:{}", g["displayName"].as_str().unwrap()),
                )
            }))
            .collect();
        let mut out = BTreeMap::new();
        for g in self.all("Groups").await {
            let mut ms: Vec<String> = g["members"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|m| {
                    names
                        .get(m["value"].as_str().unwrap())
                        .cloned()
                        .unwrap_or_else(|| "?".into())
                })
                .collect();
            ms.sort();
            let name = g["displayName"].as_str().unwrap().to_owned();
            assert!(
                out.insert(name.clone(), ms).is_none(),
                "duplicate group {name}"
            );
        }
        out
    }

    /// Creates `n` users `{prefix}{i}` through /Bulk; returns their ids in order.
    pub async fn seed_users(&self, prefix: &str, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for start in (0..n).step_by(10) {
            let ops: Vec<Value> = (start..n.min(start + 10))
                .map(|i| {
                    json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"), "data": {
                        "schemas": [USER],
                        "userName": format!("{prefix}{i}"),
                        "externalId": format!("ext-{prefix}{i}"),
                        "name": {"givenName": format!("Given{i}"), "familyName": "Family"},
                        "emails": [{"value": format!("{prefix}{i}@example.com"), "type": "work", "primary": true}],
                        "active": true,
                    }})
                })
                .collect();
            let r = self
                .post("/Bulk", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}))
                .await;
            for op in r["Operations"].as_array().unwrap() {
                assert_eq!(op["status"], "201", "{op}");
                ids.push(
                    op["location"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap()
                        .to_owned(),
                );
            }
        }
        ids
    }

    pub async fn group(&self, name: &str, members: &[&str]) -> String {
        let ms: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let g = self
            .post(
                "/Groups",
                json!({"schemas": [GROUP], "displayName": name, "members": ms}),
            )
            .await;
        g["id"].as_str().unwrap().to_owned()
    }
}

/// One finished `roster sync` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: Value,
}

impl Run {
    pub fn count(&self, k: &str) -> u64 {
        self.report["counts"][k]
            .as_u64()
            .unwrap_or_else(|| panic!("no count {k}: {}", self.report))
    }
}

pub fn roster_bin() -> &'static str {
    env!("CARGO_BIN_EXE_roster")
}

/// `roster sync` from source to target (tokens through the environment, as
/// an operator would pass them), with extra args; waits at most 120 s.
pub async fn sync(source: &Dir, target: &Dir, state: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["--source", &source.base, "--target", &target.base];
    args.extend(extra);
    run_sync(
        &args,
        state,
        &[
            ("ROSTER_SOURCE_TOKEN", &source.token),
            ("ROSTER_TARGET_TOKEN", &target.token),
        ],
    )
    .await
}

pub async fn sync_file(file: &Path, target: &Dir, state: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "--source-file",
        file.to_str().unwrap(),
        "--target",
        &target.base,
    ];
    args.extend(extra);
    run_sync(&args, state, &[("ROSTER_TARGET_TOKEN", &target.token)]).await
}

pub fn command(
    args: &[&str],
    state: &Path,
    report: &Path,
    env: &[(&str, &str)],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(roster_bin());
    cmd.arg("sync")
        .args(args)
        .arg("--state")
        .arg(state)
        .arg("--report")
        .arg(report)
        .env("ROSTER_LOG", "warn")
        .env_remove("ROSTER_SOURCE_TOKEN")
        .env_remove("ROSTER_TARGET_TOKEN")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

pub async fn run_sync(args: &[&str], state: &Path, env: &[(&str, &str)]) -> Run {
    let report = report_path(state);
    let _ = std::fs::remove_file(&report);
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        command(args, state, &report, env).output(),
    )
    .await
    .expect("roster sync took over 120 s")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = std::fs::read_to_string(&report)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        report,
    }
}

pub fn report_path(state: &Path) -> PathBuf {
    state.with_extension("report.json")
}

pub fn state_json(state: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap()
}
