//! `/ServiceProviderConfig` (RFC 7643 §5, RFC 9865 for `pagination`), read
//! leniently: servers in the wild omit sections, send numbers as strings or
//! booleans as `"true"`; whatever is missing counts as unsupported.

use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkConfig {
    pub supported: bool,
    /// 0 when the server does not say.
    pub max_operations: usize,
    /// Bytes; 0 when the server does not say.
    pub max_payload_size: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaginationConfig {
    pub cursor: bool,
    pub index: bool,
    pub max_page_size: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceProviderConfig {
    pub patch: bool,
    pub bulk: BulkConfig,
    pub filter: bool,
    pub filter_max_results: Option<u64>,
    pub sort: bool,
    pub etag: bool,
    pub pagination: PaginationConfig,
    /// The document as the server sent it.
    pub raw: Value,
}

fn flag(v: &Value, section: &str, key: &str) -> bool {
    match v.get(section).and_then(|s| s.get(key)) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn number(v: &Value, section: &str, key: &str) -> Option<u64> {
    match v.get(section).and_then(|s| s.get(key))? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl ServiceProviderConfig {
    pub fn from_json(v: &Value) -> Self {
        let to_usize = |n: Option<u64>| n.and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
        ServiceProviderConfig {
            patch: flag(v, "patch", "supported"),
            bulk: BulkConfig {
                supported: flag(v, "bulk", "supported"),
                max_operations: to_usize(number(v, "bulk", "maxOperations")),
                max_payload_size: to_usize(number(v, "bulk", "maxPayloadSize")),
            },
            filter: flag(v, "filter", "supported"),
            filter_max_results: number(v, "filter", "maxResults").filter(|n| *n > 0),
            sort: flag(v, "sort", "supported"),
            etag: flag(v, "etag", "supported"),
            pagination: PaginationConfig {
                cursor: flag(v, "pagination", "cursor"),
                // RFC 7644 servers without the RFC 9865 section page by index.
                index: v.get("pagination").is_none() || flag(v, "pagination", "index"),
                max_page_size: number(v, "pagination", "maxPageSize").filter(|n| *n > 0),
            },
            raw: v.clone(),
        }
    }

    /// The page size to ask for: as large as the server allows, at most `wanted`.
    pub fn page_size(&self, wanted: u64) -> u64 {
        let mut n = wanted.max(1);
        if let Some(m) = self.pagination.max_page_size {
            n = n.min(m);
        }
        if let Some(m) = self.filter_max_results {
            n = n.min(m);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_roster_style_and_sparse_documents() {
        let c = ServiceProviderConfig::from_json(&json!({
            "patch": {"supported": true},
            "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576},
            "filter": {"supported": true, "maxResults": 200},
            "etag": {"supported": "true"},
            "pagination": {"cursor": true, "index": true, "maxPageSize": 1000}
        }));
        assert!(c.bulk.supported && c.filter && c.etag && c.pagination.cursor);
        assert_eq!(c.bulk.max_operations, 1000);
        assert_eq!(c.page_size(5000), 200);
        let c = ServiceProviderConfig::from_json(&json!({"bulk": {"maxOperations": "10"}}));
        assert!(!c.bulk.supported && !c.filter && !c.pagination.cursor);
        assert!(c.pagination.index);
        assert_eq!(c.bulk.max_operations, 10);
        assert_eq!(c.page_size(100), 100);
    }
}
