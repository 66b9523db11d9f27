//! A typed client for Roster's app-facing API under `/api/v1`, authenticated
//! by an admin API key: directories, their normalized users and groups, and
//! the event stream, each list by `before` / `after` cursor in either order.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{Error, ScimErrorBody};

/// The order of a list: by id, which is creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// Where a page starts and how long it is; `None` leaves a setting to the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageOptions {
    pub after: Option<String>,
    pub before: Option<String>,
    pub order: Option<Order>,
    pub limit: Option<u64>,
}

impl PageOptions {
    fn query(&self, q: &mut Vec<(&'static str, String)>) {
        if let Some(a) = &self.after {
            q.push(("after", a.clone()));
        }
        if let Some(b) = &self.before {
            q.push(("before", b.clone()));
        }
        if let Some(o) = self.order {
            q.push(("order", if o == Order::Asc { "asc" } else { "desc" }.into()));
        }
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ListMetadata {
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub list_metadata: ListMetadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Directory {
    pub id: String,
    pub name: String,
    pub organization_id: Option<String>,
    pub domain: Option<String>,
    /// The provider type, e.g. `okta scim v2.0`.
    #[serde(rename = "type")]
    pub provider: String,
    pub created_at: String,
    pub updated_at: String,
    pub scim_base_path: String,
}

/// A directory just created, with its first SCIM token (shown once).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreatedDirectory {
    #[serde(flatten)]
    pub directory: Directory,
    pub token: String,
    pub token_id: String,
}

/// A directory's attributes for create (`name` required) or update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryFields {
    pub name: Option<String>,
    pub organization_id: Option<String>,
    pub domain: Option<String>,
    pub provider: Option<String>,
}

impl DirectoryFields {
    fn body(&self) -> Value {
        let mut b = serde_json::Map::new();
        for (k, v) in [
            ("name", &self.name),
            ("organization_id", &self.organization_id),
            ("domain", &self.domain),
            ("type", &self.provider),
        ] {
            if let Some(v) = v {
                b.insert(k.into(), json!(v));
            }
        }
        Value::Object(b)
    }
}

/// A group as a user's `groups` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Email {
    pub value: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub primary: bool,
}

/// A normalized user, as `/api/v1` and events carry it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DirectoryUser {
    pub id: String,
    pub directory_id: String,
    pub idp_id: Option<String>,
    pub username: Option<String>,
    #[serde(default)]
    pub emails: Vec<Email>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub job_title: Option<String>,
    /// `active` or `inactive`.
    pub state: String,
    #[serde(default)]
    pub groups: Vec<GroupRef>,
    #[serde(default)]
    pub custom_attributes: Value,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    /// The SCIM resource as the provider sent it.
    #[serde(default)]
    pub raw_attributes: Value,
}

/// A normalized group.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DirectoryGroup {
    pub id: String,
    pub directory_id: String,
    pub idp_id: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub raw_attributes: Value,
}

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    pub id: String,
    pub event: String,
    pub directory_id: String,
    pub created_at: String,
    pub data: Value,
}

/// Which users of a directory to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub group: Option<String>,
    /// `active` or `inactive`.
    pub state: Option<String>,
    pub email: Option<String>,
    pub idp_id: Option<String>,
}

/// Which events to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub types: Vec<String>,
    pub directory_id: Option<String>,
    pub organization_id: Option<String>,
}

/// The app-facing API of one Roster.
pub struct ApiClient {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client for the Roster at `base` (`https://host:port`) with an admin API key.
    pub fn new(base: &str, key: &str, timeout: Duration) -> Result<Self, Error> {
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
            .timeout(timeout)
            .user_agent(concat!("roster-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build an HTTP client: {e}")))?;
        Ok(ApiClient {
            base,
            key: key.to_owned(),
            http,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&'static str, String)],
        body: Option<Value>,
    ) -> Result<Option<T>, Error> {
        let mut url = format!("{}/api/v1{path}", self.base);
        if !query.is_empty() {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                s.append_pair(k, v);
            }
            url.push('?');
            url.push_str(&s.finish());
        }
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let transport = |e: reqwest::Error| Error::Transport {
            method: method.to_string(),
            url: url.clone(),
            message: e.to_string(),
            maybe_applied: !e.is_connect(),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::retry::parse_retry_after(v, std::time::SystemTime::now()));
        let bytes = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            // `/api/v1` errors are `{"error": code, "message": text}`.
            let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let text = |k: &str| parsed.get(k).and_then(Value::as_str).map(str::to_owned);
            let fallback = ScimErrorBody::from_body(status.as_u16(), &bytes, retry_after);
            return Err(Error::Scim {
                method: method.to_string(),
                url,
                body: ScimErrorBody {
                    status: status.as_u16(),
                    scim_type: text("error"),
                    detail: text("message").unwrap_or(fallback.detail),
                    retry_after,
                },
            });
        }
        if status == StatusCode::NO_CONTENT || bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Decode {
                method: method.to_string(),
                url,
                message: e.to_string(),
            })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&'static str, String)],
    ) -> Result<T, Error> {
        self.call(Method::GET, path, query, None)
            .await?
            .ok_or_else(|| Error::Decode {
                method: "GET".into(),
                url: path.to_owned(),
                message: "an empty answer".into(),
            })
    }

    pub async fn create_directory(
        &self,
        fields: &DirectoryFields,
    ) -> Result<CreatedDirectory, Error> {
        self.call(Method::POST, "/directories", &[], Some(fields.body()))
            .await?
            .ok_or_else(|| Error::Config("the server answered a create with no body".into()))
    }

    pub async fn update_directory(
        &self,
        id: &str,
        fields: &DirectoryFields,
    ) -> Result<Directory, Error> {
        let path = format!("/directories/{}", encode(id));
        self.call(Method::PATCH, &path, &[], Some(fields.body()))
            .await?
            .ok_or_else(|| Error::Config("the server answered an update with no body".into()))
    }

    pub async fn get_directory(&self, id: &str) -> Result<Directory, Error> {
        self.get(&format!("/directories/{}", encode(id)), &[]).await
    }

    pub async fn delete_directory(&self, id: &str) -> Result<(), Error> {
        let path = format!("/directories/{}", encode(id));
        self.call::<Value>(Method::DELETE, &path, &[], None)
            .await
            .map(|_| ())
    }

    /// Directories, optionally of one organization.
    pub async fn list_directories(
        &self,
        organization_id: Option<&str>,
        page: &PageOptions,
    ) -> Result<Page<Directory>, Error> {
        let mut q = Vec::new();
        if let Some(o) = organization_id {
            q.push(("organization_id", o.to_owned()));
        }
        page.query(&mut q);
        self.get("/directories", &q).await
    }

    pub async fn list_users(
        &self,
        directory: &str,
        filter: &UserFilter,
        page: &PageOptions,
    ) -> Result<Page<DirectoryUser>, Error> {
        let mut q = Vec::new();
        for (k, v) in [
            ("group", &filter.group),
            ("state", &filter.state),
            ("email", &filter.email),
            ("idp_id", &filter.idp_id),
        ] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        page.query(&mut q);
        self.get(&format!("/directories/{}/users", encode(directory)), &q)
            .await
    }

    pub async fn list_groups(
        &self,
        directory: &str,
        page: &PageOptions,
    ) -> Result<Page<DirectoryGroup>, Error> {
        let mut q = Vec::new();
        page.query(&mut q);
        self.get(&format!("/directories/{}/groups", encode(directory)), &q)
            .await
    }

    pub async fn get_user(&self, id: &str) -> Result<DirectoryUser, Error> {
        self.get(&format!("/users/{}", encode(id)), &[]).await
    }

    pub async fn get_group(&self, id: &str) -> Result<DirectoryGroup, Error> {
        self.get(&format!("/groups/{}", encode(id)), &[]).await
    }

    /// Events, oldest first unless `page.order` says otherwise.
    pub async fn list_events(
        &self,
        filter: &EventFilter,
        page: &PageOptions,
    ) -> Result<Page<Event>, Error> {
        let mut q = Vec::new();
        if !filter.types.is_empty() {
            q.push(("events", filter.types.join(",")));
        }
        if let Some(d) = &filter.directory_id {
            q.push(("directory_id", d.clone()));
        }
        if let Some(o) = &filter.organization_id {
            q.push(("organization_id", o.clone()));
        }
        page.query(&mut q);
        self.get("/events", &q).await
    }
}

/// A path segment, percent-encoded.
fn encode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
