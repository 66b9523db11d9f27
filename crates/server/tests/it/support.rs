//! A running Roster for one test: its own database (a SQLite file, or a
//! PostgreSQL schema of its own), its own port, a client. The spawning is the
//! test kit's ([`roster_testkit::server`]); this adds the suite's SCIM calls.
#![allow(dead_code)] // Shared by every test module; each uses a subset.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use roster_server::ServerConfig;
use roster_store::Store;
pub use roster_testkit::server::Place;
use roster_testkit::server::Spawned;
use serde_json::Value;

/// Which store the suite runs against: each test binary sets `crate::STORE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// A fresh, empty place for the store this binary tests; `None` when this is
/// the PostgreSQL run and there is no PostgreSQL (the test returns early).
pub fn place() -> Option<Place> {
    match crate::STORE {
        StoreKind::Sqlite => Some(Place::sqlite()),
        StoreKind::Postgres => Place::postgres(),
    }
}

/// The database URL of the test PostgreSQL (once a [`place`] was made there).
pub fn postgres_url() -> String {
    roster_testkit::pg::postgres()
        .expect("the test PostgreSQL")
        .url()
        .to_owned()
}

pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub store: Arc<dyn Store>,
    pub directory: String,
    pub token: String,
    pub client: reqwest::Client,
    spawned: Spawned,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestServer {
    /// The last 100 audit records, for tests that check what an action recorded.
    pub async fn recent_audit(&self) -> Vec<roster_store::AuditRecord> {
        self.store
            .audit_log(roster_store::AuditQuery {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// The server with the default configuration; `None` when this run's
    /// store is not available (see [`place`]): the test returns early.
    pub async fn start() -> Option<Self> {
        Self::start_with(ServerConfig::default()).await
    }

    pub async fn start_with(config: ServerConfig) -> Option<Self> {
        let spawned = Spawned::start(place()?, config).await;
        let (directory, token) = spawned.directory("test").await;
        Some(TestServer {
            addr: spawned.addr,
            store: spawned.store.clone(),
            directory,
            token,
            client: reqwest::Client::new(),
            spawned,
        })
    }

    /// Where `/metrics` answers (with `metrics_listen` set).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.spawned.metrics_addr
    }

    /// Where this server's data lives.
    pub fn place(&self) -> &Place {
        self.spawned.place()
    }

    /// The directory's SCIM base URL.
    pub fn base(&self) -> String {
        format!("http://{}/scim/v2/{}", self.addr, self.directory)
    }

    /// Another directory with its own token.
    pub async fn other_directory(&self) -> (String, String) {
        let d = self
            .store
            .create_directory(&roster_store::Actor::Cli, "other")
            .await
            .unwrap()
            .id;
        let (_, t) = self
            .store
            .issue_token(&roster_store::Actor::Cli, &d)
            .await
            .unwrap();
        (d, t)
    }

    /// Sends a request to `path` (relative to the base URL, or absolute when it starts with http).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, body, &self.token, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base())
        };
        let mut req = self.client.request(method, url).bearer_auth(token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        // returned: never holds for every response the server sends.
        assert_no_password(&body);
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// Sends raw bytes with the given content type, for malformed-body tests.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Reply {
        let url = format!("{}{path}", self.base());
        let resp = self
            .client
            .request(method, url)
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        // returned: never holds for every response the server sends.
        assert_no_password(&body);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Creates a resource from `body`, asserting 201, and returns the response body.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let r = self.post(path, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_no_password(&r.body);
        r.body
    }

    /// Creates a group with the given member ids and returns its id.
    pub async fn group(&self, display_name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members
            .iter()
            .map(|m| serde_json::json!({ "value": m }))
            .collect();
        let b = self
            .create(
                "/Groups",
                serde_json::json!({"displayName": display_name, "members": members}),
            )
            .await;
        b["id"].as_str().unwrap().to_owned()
    }

    /// GETs a list and returns the ids of its Resources in order (asserting 200).
    pub async fn ids(&self, path: &str) -> Vec<String> {
        let r = self.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
        ids(&r.body)
    }

    /// Creates a user and returns its id.
    pub async fn user(&self, user_name: &str) -> String {
        let r = self
            .post(
                "/Users",
                serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": user_name,
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }
}

/// The ids of a ListResponse's Resources, in order.
pub fn ids(body: &Value) -> Vec<String> {
    body["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("not a ListResponse: {body:?}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Fails when any object in `v`, at any depth, has a `password` key.
pub fn assert_no_password(v: &Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                assert!(
                    !k.eq_ignore_ascii_case("password"),
                    "password returned: {v:?}"
                );
                assert_no_password(x);
            }
        }
        Value::Array(a) => a.iter().for_each(assert_no_password),
        _ => {}
    }
}

/// URL-encodes a query parameter value.
pub fn enc(s: &str) -> String {
    form_urlencoded_encode(s)
}

fn form_urlencoded_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Asserts a SCIM error response with the given status and scimType.
pub fn assert_scim_error(r: &Reply, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "{:?}", r.body);
    assert_eq!(
        r.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{:?}",
        r.body
    );
    assert_eq!(r.body["status"], status.to_string());
    match scim_type {
        Some(t) => assert_eq!(r.body["scimType"], t, "{:?}", r.body),
        None => assert!(r.body.get("scimType").is_none(), "{:?}", r.body),
    }
}
