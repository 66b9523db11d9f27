//! Reading requests: JSON bodies, query parameters and preconditions, with
//! SCIM errors instead of the framework's plain-text rejections.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use roster_scim::{ScimError, ScimType};
use serde_json::Value;

use crate::error::ApiError;
use crate::limits::{parse_json, read_body};
use crate::state::AppState;

/// A JSON request body (`application/scim+json` or `application/json`),
/// read within `max_body_bytes`, the body timeout and the JSON limits.
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        check_content_type(req.headers())?;
        let (parts, body) = req.into_parts();
        let cfg = &state.config;
        let bytes = read_body(
            cfg,
            &parts.headers,
            body,
            cfg.max_body_bytes,
            "max_body_bytes",
        )
        .await?;
        Ok(JsonBody(parse_json(cfg, &bytes)?))
    }
}

/// Refuses a clearly non-JSON body type with 415.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ScimError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        // Some clients send no type or a generic one; only a clearly non-JSON type is refused.
        let acceptable = essence.is_empty()
            || essence == "application/json"
            || essence == "application/scim+json"
            || essence.ends_with("+json")
            || essence == "text/plain"
            || essence == "application/octet-stream";
        if !acceptable {
            return Err(ScimError::new(
                415,
                None,
                format!("send the body as application/scim+json, not {essence}"),
            ));
        }
    }
    Ok(())
}

/// Query parameters, names matched case-insensitively; `+` decodes to a space.
#[derive(Debug, Default)]
pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    pub fn parse(query: Option<&str>) -> Self {
        let mut map = HashMap::new();
        if let Some(q) = query {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                map.insert(k.to_ascii_lowercase(), v.into_owned());
            }
        }
        QueryParams(map)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(&name.to_ascii_lowercase())
    }

    /// An integer parameter; junk is a 400 naming the parameter. An integer
    /// too large for i64 saturates: a huge `count` is clamped like any other
    /// count above the maximum, never an error (RFC 7644 §3.4.2.4).
    pub fn int(&self, name: &str) -> Result<Option<i64>, ScimError> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).or_else(|_| {
                let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(Some(if v.starts_with('-') {
                        i64::MIN
                    } else {
                        i64::MAX
                    }))
                } else {
                    Err(ScimError::invalid_value(format!(
                        "{name} must be an integer, not {v:?}"
                    )))
                }
            }),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(QueryParams::parse(parts.uri.query()))
    }
}

/// `If-Match` / `If-None-Match` preconditions on `meta.version` (`W/"<n>"`).
#[derive(Debug, Default, Clone)]
pub struct Preconditions {
    pub if_match: Option<Tag>,
    pub if_none_match: Option<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    Any,
    Versions(Vec<Option<i64>>),
}

impl Tag {
    fn parse(header: &str) -> Tag {
        if header.trim() == "*" {
            return Tag::Any;
        }
        Tag::Versions(header.split(',').map(parse_version).collect())
    }

    pub fn matches(&self, version: i64) -> bool {
        match self {
            Tag::Any => true,
            Tag::Versions(vs) => vs.contains(&Some(version)),
        }
    }

    /// The single version an `If-Match` pins, for the store's atomic check;
    /// a tag that can never match is checked by the caller first.
    pub fn version(&self) -> Option<i64> {
        match self {
            Tag::Versions(vs) if vs.len() == 1 => vs[0],
            _ => None,
        }
    }
}

/// `W/"3"`, `"3"` or `3` → 3; anything else never matches.
pub fn parse_version(tag: &str) -> Option<i64> {
    let t = tag.trim();
    let t = t
        .strip_prefix("W/")
        .or_else(|| t.strip_prefix("w/"))
        .unwrap_or(t);
    t.trim_matches('"').parse().ok()
}

pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

impl<S: Send + Sync> FromRequestParts<S> for Preconditions {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let get = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(Tag::parse)
        };
        Ok(Preconditions {
            if_match: get(header::IF_MATCH),
            if_none_match: get(header::IF_NONE_MATCH),
        })
    }
}

impl Preconditions {
    /// The version the store must find, or a 412 when `If-Match` lists several.
    pub fn required_version(&self) -> Result<Option<i64>, ScimError> {
        match &self.if_match {
            None | Some(Tag::Any) => Ok(None),
            Some(tag) => match tag.version() {
                Some(v) => Ok(Some(v)),
                // No valid version in the header: it can never match.
                None => Ok(Some(-1)),
            },
        }
    }
}

pub fn too_many(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::TooMany, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_weak_and_strong_tags() {
        assert_eq!(parse_version("W/\"3\""), Some(3));
        assert_eq!(parse_version("\"12\""), Some(12));
        assert_eq!(parse_version("bogus"), None);
        assert!(Tag::parse("*").matches(9));
        assert!(Tag::parse("W/\"1\", W/\"2\"").matches(2));
    }

    #[test]
    fn query_names_are_case_insensitive_and_plus_is_space() {
        let q = QueryParams::parse(Some("Filter=userName+eq+%22a%22&COUNT=5"));
        assert_eq!(q.get("filter"), Some("userName eq \"a\""));
        assert_eq!(q.int("count").unwrap(), Some(5));
        let q = QueryParams::parse(Some(
            "count=99999999999999999999&startIndex=-99999999999999999999&x=1e3",
        ));
        assert_eq!(q.int("count").unwrap(), Some(i64::MAX));
        assert_eq!(q.int("startIndex").unwrap(), Some(i64::MIN));
        assert!(q.int("x").is_err());
    }
}
