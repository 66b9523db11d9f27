//! [`ScimClient`]: one SCIM service (base URL + bearer token) over HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{ACCEPT, CONTENT_TYPE, ETAG, HeaderMap, IF_MATCH, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::bulk::BulkResponse;
use crate::discovery::ServiceProviderConfig;
use crate::error::{Error, ScimErrorBody};
use crate::retry::parse_retry_after;

const SCIM_JSON: &str = "application/scim+json";

/// Counters shared by every clone of a client: what was sent and received.
/// Bytes are request and response bodies (headers excluded).
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
}

impl Stats {
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time allowed for one request, from sending to the last byte of the answer.
    pub timeout: Duration,
    /// Log every request (method, URL, status, bytes, time) through `tracing` at info level.
    pub log_requests: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(120),
            log_requests: false,
        }
    }
}

/// A resource as the server returned it, with its ETag when the server sent one.
#[derive(Debug, Clone)]
pub struct Resource {
    pub body: Value,
    pub etag: Option<String>,
}

impl Resource {
    pub fn id(&self) -> Option<&str> {
        self.body.get("id").and_then(Value::as_str)
    }
    /// The version: the ETag header, else `meta.version`.
    pub fn version(&self) -> Option<String> {
        self.etag.clone().or_else(|| {
            self.body
                .pointer("/meta/version")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    }
}

/// Which paging to use for a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    /// `startIndex`/`count` (RFC 7644 §3.4.2.4); `start_index` is 1-based.
    Index { start_index: u64 },
    /// RFC 9865 cursors: `None` asks for the first page.
    Cursor(Option<String>),
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<String>,
    /// `attributes=`: ask only for these (the server always adds `id`).
    pub attributes: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone)]
pub struct ListPage {
    pub resources: Vec<Value>,
    pub total_results: Option<u64>,
    pub start_index: Option<u64>,
    pub next_cursor: Option<String>,
}

#[derive(Clone)]
pub struct ScimClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    stats: Arc<Stats>,
    log: bool,
}

impl ScimClient {
    /// A client for the SCIM service at `base` (e.g. `https://host/scim/v2/{dir}`).
    /// When the process has no rustls crypto provider yet, this installs ring
    /// as the default (reqwest refuses to build a client without one, even
    /// for plain http); a provider installed earlier is kept.
    pub fn new(base: &str, token: Option<String>, opts: &ClientOptions) -> Result<Self, Error> {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing a race with another thread installing one is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Config(format!(
                "{base:?} is not an http:// or https:// URL"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("roster-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build an HTTP client: {e}")))?;
        Ok(ScimClient {
            base,
            token,
            http,
            stats: Arc::new(Stats::default()),
            log: opts.log_requests,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// `path` relative to the base (`/Users/…`), or absolute when it starts with http.
    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Sends one request and returns the status, headers and body of a 2xx
    /// answer; any other status becomes [`Error::Scim`].
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        if_match: Option<&str>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), Error> {
        let url = self.url(path);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header(ACCEPT, SCIM_JSON);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(v) = if_match {
            req = req.header(IF_MATCH, v);
        }
        let sent = body.as_ref().map_or(0, Vec::len);
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, SCIM_JSON).body(b);
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_sent
            .fetch_add(sent as u64, Ordering::Relaxed);
        let started = Instant::now();
        let transport = |e: reqwest::Error| {
            let message = if e.is_timeout() {
                "timed out waiting for the answer".to_owned()
            } else {
                // reqwest's Display omits the cause ("error sending request"); add it.
                let mut m = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    m.push_str(": ");
                    m.push_str(&s.to_string());
                    src = s.source();
                }
                m
            };
            Error::Transport {
                method: method.to_string(),
                url: url.clone(),
                message,
                maybe_applied: !e.is_connect(),
            }
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                if self.log {
                    tracing::info!(target: "roster_client", "{method} {url} -> failed: {e}");
                }
                return Err(transport(e));
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(transport)?.to_vec();
        self.stats
            .bytes_received
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if self.log {
            tracing::info!(
                target: "roster_client",
                "{method} {url} -> {} ({sent} B sent, {} B received, {} ms)",
                status.as_u16(),
                bytes.len(),
                started.elapsed().as_millis()
            );
        }
        if status.is_success() {
            return Ok((status, headers, bytes));
        }
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        Err(Error::Scim {
            method: method.to_string(),
            url,
            body: ScimErrorBody::from_body(status.as_u16(), &bytes, retry_after),
        })
    }

    fn decode(method: &Method, url: &str, bytes: &[u8]) -> Result<Value, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::Decode {
            method: method.to_string(),
            url: url.to_owned(),
            message: format!("not JSON: {e}"),
        })
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Resource, Error> {
        let body = body.map(|b| b.to_string().into_bytes());
        let (_, headers, bytes) = self.send(method.clone(), path, body, if_match).await?;
        let etag = headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // 204 (PATCH without echo, DELETE) has no body.
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            Self::decode(&method, &self.url(path), &bytes)?
        };
        Ok(Resource { body, etag })
    }

    /// `GET /ServiceProviderConfig`.
    pub async fn discover(&self) -> Result<ServiceProviderConfig, Error> {
        let r = self
            .json(Method::GET, "/ServiceProviderConfig", None, None)
            .await?;
        Ok(ServiceProviderConfig::from_json(&r.body))
    }

    /// One page of `GET /{resource_type}` (`"Users"`, `"Groups"`).
    pub async fn list_page(
        &self,
        resource_type: &str,
        q: &ListQuery,
        paging: &Paging,
    ) -> Result<ListPage, Error> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(f) = &q.filter {
            query.append_pair("filter", f);
        }
        if let Some(a) = &q.attributes {
            query.append_pair("attributes", a);
        }
        if q.count > 0 {
            query.append_pair("count", &q.count.to_string());
        }
        match paging {
            Paging::Index { start_index } => {
                query.append_pair("startIndex", &start_index.to_string());
            }
            Paging::Cursor(c) => {
                query.append_pair("cursor", c.as_deref().unwrap_or(""));
            }
        }
        let path = format!("/{resource_type}?{}", query.finish());
        let r = self.json(Method::GET, &path, None, None).await?;
        let resources = match r.body.get("Resources") {
            Some(Value::Array(a)) => a.clone(),
            // An empty ListResponse may omit Resources altogether.
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(Error::Decode {
                    method: "GET".into(),
                    url: self.url(&path),
                    message: "Resources is not an array".into(),
                });
            }
        };
        let num = |k: &str| match r.body.get(k) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        Ok(ListPage {
            resources,
            total_results: num("totalResults"),
            start_index: num("startIndex"),
            next_cursor: r
                .body
                .get("nextCursor")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        })
    }

    /// Every resource matching `q`, page after page; `on_page` sees each page
    /// as it arrives (for progress). Cursor paging is used when `cursor` is
    /// true: it cannot skip or repeat resources while the set changes, which
    /// index paging can.
    pub async fn list_all(
        &self,
        resource_type: &str,
        q: &ListQuery,
        cursor: bool,
        mut on_page: impl FnMut(&[Value], Option<u64>),
    ) -> Result<Vec<Value>, Error> {
        let mut all = Vec::new();
        self.for_each_page(resource_type, q, cursor, |page, total| {
            on_page(&page, total);
            all.extend(page);
        })
        .await?;
        Ok(all)
    }

    /// Like [`ScimClient::list_all`], but hands each page over instead of
    /// collecting them, so a caller can shrink resources as they arrive.
    pub async fn for_each_page(
        &self,
        resource_type: &str,
        q: &ListQuery,
        cursor: bool,
        mut on_page: impl FnMut(Vec<Value>, Option<u64>),
    ) -> Result<(), Error> {
        let mut paging = if cursor {
            Paging::Cursor(None)
        } else {
            Paging::Index { start_index: 1 }
        };
        // A server that ignores paging parameters would loop forever; no
        // directory needs more pages than this.
        for _ in 0..1_000_000 {
            let page = self.list_page(resource_type, q, &paging).await?;
            let got = page.resources.len() as u64;
            on_page(page.resources, page.total_results);
            paging = match paging {
                Paging::Cursor(_) => match page.next_cursor {
                    Some(c) => Paging::Cursor(Some(c)),
                    None => return Ok(()),
                },
                Paging::Index { start_index } => {
                    let start = page.start_index.unwrap_or(start_index);
                    let next = start + got;
                    let done = got == 0
                        || page.total_results.is_none_or(|t| next > t)
                        // a server that returns everything at once
                        || (start_index == 1 && page.total_results == Some(got));
                    if done {
                        return Ok(());
                    }
                    Paging::Index { start_index: next }
                }
            };
        }
        Ok(())
    }

    pub async fn get(&self, path: &str) -> Result<Resource, Error> {
        self.json(Method::GET, path, None, None).await
    }

    /// `POST /{resource_type}`.
    pub async fn create(&self, resource_type: &str, body: &Value) -> Result<Resource, Error> {
        self.json(Method::POST, &format!("/{resource_type}"), Some(body), None)
            .await
    }

    /// `PUT /{resource_type}/{id}`, with `If-Match` when `version` is given.
    pub async fn replace(
        &self,
        resource_type: &str,
        id: &str,
        body: &Value,
        version: Option<&str>,
    ) -> Result<Resource, Error> {
        self.json(
            Method::PUT,
            &format!("/{resource_type}/{id}"),
            Some(body),
            version,
        )
        .await
    }

    /// `PATCH /{resource_type}/{id}` with a PatchOp body built from `operations`.
    pub async fn patch(
        &self,
        resource_type: &str,
        id: &str,
        operations: &[Value],
        version: Option<&str>,
    ) -> Result<Resource, Error> {
        let body = serde_json::json!({
            "schemas": [crate::schemas::PATCH_OP],
            "Operations": operations,
        });
        self.json(
            Method::PATCH,
            &format!("/{resource_type}/{id}"),
            Some(&body),
            version,
        )
        .await
    }

    pub async fn delete(
        &self,
        resource_type: &str,
        id: &str,
        version: Option<&str>,
    ) -> Result<(), Error> {
        self.send(
            Method::DELETE,
            &format!("/{resource_type}/{id}"),
            None,
            version,
        )
        .await
        .map(|_| ())
    }

    /// `POST /Bulk` with a body already serialised (see [`crate::bulk::request_body`]).
    pub async fn bulk(&self, body: String) -> Result<BulkResponse, Error> {
        let (_, _, bytes) = self
            .send(Method::POST, "/Bulk", Some(body.into_bytes()), None)
            .await?;
        let url = self.url("/Bulk");
        let v = Self::decode(&Method::POST, &url, &bytes)?;
        BulkResponse::from_json(&v).map_err(|message| Error::Decode {
            method: "POST".into(),
            url,
            message,
        })
    }
}
