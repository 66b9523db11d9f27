//! Stored resources to SCIM JSON: `id`, `meta`, members and groups, projected.

use std::collections::HashMap;

use axum::http::HeaderMap;
use roster_scim::members::member_json;
use roster_scim::project::Projection;
use roster_scim::schema::{ResourceType, SchemaRegistry};
use roster_scim::values::format_unix_millis;
use roster_store::{Kind, MemberRow, Stored};
use serde_json::{Map, Value, json};

use crate::request::etag;
use crate::state::AppState;

/// The SCIM base URL of a directory as clients reach it.
pub fn base_url(state: &AppState, headers: &HeaderMap, directory: &str) -> String {
    format!("{}/scim/v2/{directory}", public_root(state, headers))
}

/// Where clients reach this server: `public_url`, or the request's host.
pub fn public_root(state: &AppState, headers: &HeaderMap) -> String {
    match &state.config.public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
                .map(str::to_owned)
                .unwrap_or_else(|| state.config.listen.to_string());
            format!("http://{host}")
        }
    }
}

/// The full resource, before projection.
pub fn full_resource(
    rt: &ResourceType,
    base: &str,
    s: &Stored,
    related: Option<&[MemberRow]>,
) -> Value {
    let mut out = Map::new();
    let schemas = s
        .doc
        .get("schemas")
        .cloned()
        .unwrap_or_else(|| json!([rt.schema]));
    out.insert("schemas".into(), schemas);
    out.insert("id".into(), Value::String(s.id.clone()));
    if let Value::Object(doc) = &s.doc {
        for (k, v) in doc {
            if k != "schemas" && k != "password" {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(rows) = related {
        let (key, list) = match s.kind {
            Kind::Group => (
                "members",
                rows.iter()
                    .map(|m| member_json(base, &m.id, m.kind.member_type(), Some(&m.display)))
                    .collect::<Vec<_>>(),
            ),
            Kind::User => (
                "groups",
                rows.iter()
                    .map(|g| {
                        json!({
                            "value": g.id,
                            "$ref": format!("{base}/Groups/{}", g.id),
                            "display": g.display,
                            "type": "direct",
                        })
                    })
                    .collect(),
            ),
        };
        if !list.is_empty() {
            out.insert(key.into(), Value::Array(list));
        }
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": rt.name,
            "created": format_unix_millis(s.created),
            "lastModified": format_unix_millis(s.last_modified),
            "location": format!("{base}{}/{}", rt.endpoint, s.id),
            "version": etag(s.version),
        }),
    );
    Value::Object(out)
}

/// Renders stored resources of one kind as the client asked: full resources
/// with their related rows (fetched by `service::related`), then projected.
pub fn render_all(
    reg: &SchemaRegistry,
    rt: &ResourceType,
    base: &str,
    projection: &Projection,
    resources: &[Stored],
    related: &HashMap<String, Vec<MemberRow>>,
) -> Vec<Value> {
    resources
        .iter()
        .map(|s| {
            let full = full_resource(rt, base, s, related.get(&s.id).map(Vec::as_slice));
            projection.apply(reg, rt, full)
        })
        .collect()
}
