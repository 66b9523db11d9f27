//! /Bulk (RFC 7644 §3.7): chunking operations to a server's limits and reading
//! its per-operation results.

use serde_json::Value;

use crate::error::ScimErrorBody;
use crate::schemas;

/// The bytes a BulkRequest adds around its operations:
/// `{"schemas":["…BulkRequest"],"Operations":[` … `]}`.
pub fn envelope_bytes() -> usize {
    r#"{"schemas":[""],"Operations":[]}"#.len() + schemas::BULK_REQUEST.len()
}

/// Serialises a BulkRequest from already-serialised operations, exactly as
/// [`chunk_operations`] counted it.
pub fn request_body(ops: &[&str]) -> String {
    let mut s =
        String::with_capacity(envelope_bytes() + ops.iter().map(|o| o.len() + 1).sum::<usize>());
    s.push_str(r#"{"schemas":[""#);
    s.push_str(schemas::BULK_REQUEST);
    s.push_str(r#""],"Operations":["#);
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(op);
    }
    s.push_str("]}");
    s
}

/// Collects serialised operations into one BulkRequest while it stays within
/// a server's limits: at most `max_ops` operations and `max_bytes` bytes for
/// the whole body (0 means no limit). Operations are added one at a time
/// because a later operation may only be built (its `bulkId:` references
/// chosen) once the caller knows which chunk it lands in.
#[derive(Debug)]
pub struct ChunkBuilder {
    max_ops: usize,
    max_bytes: usize,
    ops: Vec<String>,
    bytes: usize,
}

impl ChunkBuilder {
    pub fn new(max_ops: usize, max_bytes: usize) -> Self {
        ChunkBuilder {
            max_ops: if max_ops == 0 { usize::MAX } else { max_ops },
            max_bytes: if max_bytes == 0 {
                usize::MAX
            } else {
                max_bytes
            },
            ops: Vec::new(),
            bytes: envelope_bytes(),
        }
    }

    /// Whether an operation of `size` bytes could ever be sent, even alone.
    pub fn fits_alone(&self, size: usize) -> bool {
        envelope_bytes() + size <= self.max_bytes
    }

    /// Whether an operation of `size` bytes fits into this chunk now.
    pub fn fits(&self, size: usize) -> bool {
        self.ops.len() < self.max_ops
            && self.bytes + size + usize::from(!self.ops.is_empty()) <= self.max_bytes
    }

    pub fn push(&mut self, op: String) {
        self.bytes += op.len() + usize::from(!self.ops.is_empty());
        self.ops.push(op);
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The size of the body [`ChunkBuilder::take`] would return.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The request body; the builder is empty afterwards.
    pub fn take(&mut self) -> String {
        let ops = std::mem::take(&mut self.ops);
        self.bytes = envelope_bytes();
        let refs: Vec<&str> = ops.iter().map(String::as_str).collect();
        request_body(&refs)
    }
}

/// One operation's result in a BulkResponse.
#[derive(Debug, Clone)]
pub struct BulkOpResult {
    pub method: String,
    pub bulk_id: Option<String>,
    pub location: Option<String>,
    pub version: Option<String>,
    pub status: u16,
    pub response: Option<Value>,
}

impl BulkOpResult {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The id at the end of `location` (`…/Users/{id}`).
    pub fn id(&self) -> Option<String> {
        if let Some(id) = self
            .response
            .as_ref()
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
        {
            return Some(id.to_owned());
        }
        let loc = self.location.as_deref()?.trim_end_matches('/');
        loc.rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    pub fn error(&self) -> ScimErrorBody {
        ScimErrorBody::from_value(self.status, self.response.as_ref())
    }
}

#[derive(Debug, Clone, Default)]
pub struct BulkResponse {
    pub operations: Vec<BulkOpResult>,
}

impl BulkResponse {
    /// Reads a BulkResponse; `status` may be a string ("201") or a number, and
    /// RFC 7644's older examples nest it as `{"code": 201}`.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let ops = v
            .get("Operations")
            .and_then(Value::as_array)
            .ok_or("no Operations array in the BulkResponse")?;
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let status = match op.get("status") {
                Some(Value::String(s)) => s.trim().parse().ok(),
                Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                Some(Value::Object(o)) => match o.get("code") {
                    Some(Value::String(s)) => s.trim().parse().ok(),
                    Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                    _ => None,
                },
                _ => None,
            }
            .ok_or_else(|| format!("a BulkResponse operation without a status: {op}"))?;
            let text = |k: &str| op.get(k).and_then(Value::as_str).map(str::to_owned);
            out.push(BulkOpResult {
                method: text("method").unwrap_or_default(),
                bulk_id: text("bulkId"),
                location: text("location"),
                version: text("version"),
                status,
                response: op.get("response").cloned(),
            });
        }
        Ok(BulkResponse { operations: out })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn chunks_respect_both_limits_exactly() {
        let env = envelope_bytes();
        let op = "x".repeat(10);
        // Two ops of 10 bytes fit in env + 10 + 1 + 10; a third does not.
        let mut c = ChunkBuilder::new(100, env + 21);
        assert!(c.fits(10));
        c.push(op.clone());
        assert!(c.fits(10));
        c.push(op.clone());
        assert!(!c.fits(1));
        assert_eq!(c.bytes(), env + 21);
        assert!(!c.fits_alone(22) && c.fits_alone(21));
        let mut c = ChunkBuilder::new(3, 0);
        for _ in 0..3 {
            assert!(c.fits(10));
            c.push(op.clone());
        }
        assert!(!c.fits(10));
        let body = c.take();
        assert!(c.is_empty() && c.fits(10));
        assert_eq!(body.len(), env + 32);
        let body = request_body(&["{\"a\":1}", "{}"]);
        assert_eq!(body.len(), env + 7 + 1 + 2);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["Operations"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn reads_statuses_in_every_shape() {
        let r = BulkResponse::from_json(&json!({"Operations": [
            {"method": "POST", "bulkId": "a", "status": "201", "location": "http://x/Users/123"},
            {"method": "PUT", "status": 200, "response": {"id": "9"}},
            {"method": "POST", "bulkId": "b", "status": {"code": 409}, "response": {"scimType": "uniqueness", "detail": "taken"}}
        ]}))
        .unwrap();
        assert_eq!(r.operations[0].id().as_deref(), Some("123"));
        assert_eq!(r.operations[1].id().as_deref(), Some("9"));
        assert!(r.operations[2].error().is_uniqueness());
        assert!(BulkResponse::from_json(&json!({})).is_err());
    }
}
