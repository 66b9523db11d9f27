//! `--check`: the targets every filter of the corpus must meet.
//!
//! A selective filter (at most 1,000 matches) answers its first page of 100
//! with p99 ≤ 10 ms on SQLite and ≤ 20 ms on PostgreSQL; a broad one (a
//! tenth of the directory or more) with p99 ≤ 100 ms; against a baseline
//! report of a smaller directory, a selective filter's p99 is at most twice
//! what it was there. A filter that answers an error, counts other than the
//! corpus says, or runs out of time fails too.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use super::Store;

/// Selective p99 per store, broad p99, and the growth allowed from the baseline.
const SELECTIVE_SQLITE_MS: f64 = 10.0;
const SELECTIVE_POSTGRES_MS: f64 = 20.0;
const BROAD_MS: f64 = 100.0;
const GROWTH: f64 = 2.0;

/// p99 of each filter in an earlier report, by case name.
pub struct Baseline {
    users: u64,
    p99: HashMap<String, f64>,
}

impl Baseline {
    pub fn read(path: &Path) -> Result<Baseline> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON report", path.display()))?;
        Ok(Self::of(&v))
    }

    fn of(v: &Value) -> Baseline {
        let p99 = v["filters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| Some((f["name"].as_str()?.to_owned(), f["p99_ms"].as_f64()?)))
            .collect();
        Baseline {
            users: v["parameters"]["users"].as_u64().unwrap_or(0),
            p99,
        }
    }
}

/// Every miss, as a line naming the filter.
pub fn check(
    store: Store,
    report: &Map<String, Value>,
    baseline: Option<&Baseline>,
) -> Vec<String> {
    let selective_ms = match store {
        Store::Sqlite => SELECTIVE_SQLITE_MS,
        Store::Postgres => SELECTIVE_POSTGRES_MS,
    };
    let mut out = Vec::new();
    for f in report
        .get("filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = f["name"].as_str().unwrap_or("?");
        if let Some(e) = f["error"].as_str() {
            out.push(format!("{name}: answered {e}"));
            continue;
        }
        if f["counts_agree"] == Value::Bool(false) {
            out.push(format!(
                "{name}: totalResults {}, the corpus says {}",
                f["total_results"], f["expected"]
            ));
        }
        if f["timed_out"] == Value::Bool(true) {
            out.push(format!(
                "{name}: only {} runs within the time limit",
                f["runs"]
            ));
        }
        let Some(p99) = f["p99_ms"].as_f64() else {
            continue;
        };
        let selective = f["class"] == "selective";
        let limit = if selective { selective_ms } else { BROAD_MS };
        if p99 > limit {
            out.push(format!(
                "{name} ({}): p99 {p99} ms, over {limit} ms",
                f["class"].as_str().unwrap_or("?")
            ));
        }
        if let Some(b) = baseline
            && selective
            && let Some(before) = b.p99.get(name)
            && p99 > GROWTH * before
        {
            out.push(format!(
                "{name}: p99 {p99} ms, over {GROWTH}× its {before} ms at {} users",
                b.users
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(filters: Value) -> Map<String, Value> {
        let Value::Object(m) = json!({"parameters": {"users": 10000}, "filters": filters}) else {
            unreachable!()
        };
        m
    }

    #[test]
    fn misses_are_named() {
        let r = report(json!([
            {"name": "a", "class": "selective", "p99_ms": 9.0, "counts_agree": true, "timed_out": false},
            {"name": "b", "class": "selective", "p99_ms": 15.0, "counts_agree": true, "timed_out": false},
            {"name": "c", "class": "broad", "p99_ms": 150.0, "counts_agree": false, "expected": 5, "total_results": 4, "timed_out": false},
            {"name": "d", "class": "broad", "error": "400 Bad Request: no"},
        ]));
        let sqlite = check(Store::Sqlite, &r, None);
        assert_eq!(sqlite.len(), 4, "{sqlite:?}");
        assert!(sqlite[0].starts_with("b (selective): p99 15"));
        assert!(sqlite.iter().any(|l| l.contains("totalResults 4")));
        assert!(sqlite.iter().any(|l| l.starts_with("d: answered 400")));
        // 15 ms is within PostgreSQL's selective target.
        assert_eq!(check(Store::Postgres, &r, None).len(), 3);
    }

    #[test]
    fn growth_from_the_baseline_is_bounded() {
        let base = Baseline::of(&Value::Object(report(json!([
            {"name": "a", "class": "selective", "p99_ms": 2.0},
        ]))));
        let now = report(json!([
            {"name": "a", "class": "selective", "p99_ms": 5.0, "counts_agree": true, "timed_out": false},
        ]));
        let f = check(Store::Postgres, &now, Some(&base));
        assert_eq!(f.len(), 1);
        assert!(f[0].contains("at 10000 users"), "{f:?}");
        let ok = report(json!([
            {"name": "a", "class": "selective", "p99_ms": 4.0, "counts_agree": true, "timed_out": false},
        ]));
        assert!(check(Store::Postgres, &ok, Some(&base)).is_empty());
    }
}
