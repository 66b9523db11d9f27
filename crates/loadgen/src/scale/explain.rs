//! `EXPLAIN (ANALYZE, BUFFERS)` of the exact statements Roster ran, as a
//! prepared statement three ways: a custom plan (the values known to the
//! planner), a generic plan (`$n` unknown), and what PostgreSQL's plan cache
//! chooses by itself after five executions, which is what a Roster
//! connection runs once it has served a filter shape a few times.

use anyhow::Result;
use serde_json::{Value, json};

use super::pg::{Pg, literal};
use crate::stats::round3;

/// A statement captured from the log for one benchmark query.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The query, e.g. `userName eq`.
    pub label: String,
    /// `count` (totalResults) or `page` (the rows of the page).
    pub role: &'static str,
    pub sql: String,
    pub params: Vec<Option<String>>,
    /// Resources the filter matched (the reply's totalResults).
    pub matches: u64,
}

/// Tables whose scans the verdict judges.
const TABLES: &[&str] = &["resources", "attr_index", "group_members", "events"];

/// The three plans of `c`, with a verdict on each.
pub async fn explain(pg: &Pg, c: &Captured) -> Result<Value> {
    let args: Vec<String> = c
        .params
        .iter()
        .map(|p| p.as_deref().map_or("NULL".to_owned(), literal))
        .collect();
    let exec = if args.is_empty() {
        "EXECUTE roster_q".to_owned()
    } else {
        format!("EXECUTE roster_q({})", args.join(", "))
    };
    let json_explain = format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {exec}");
    pg.batch("DEALLOCATE ALL").await?;
    pg.batch(&format!("PREPARE roster_q AS {}", c.sql)).await?;
    pg.batch("SET plan_cache_mode = force_custom_plan").await?;
    let custom = plan_json(pg, &json_explain).await?;
    pg.batch("SET plan_cache_mode = force_generic_plan").await?;
    let generic = plan_json(pg, &json_explain).await?;
    // A fresh statement, so the plan cache's choice starts from nothing.
    pg.batch("DEALLOCATE roster_q; SET plan_cache_mode = auto")
        .await?;
    pg.batch(&format!("PREPARE roster_q AS {}", c.sql)).await?;
    for _ in 0..5 {
        pg.rows(&exec).await?;
    }
    let chosen = plan_json(pg, &json_explain).await?;
    let text: Vec<String> = pg
        .rows(&format!("EXPLAIN (ANALYZE, BUFFERS) {exec}"))
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    pg.batch("DEALLOCATE roster_q").await?;
    let chosen_summary = summarize(&chosen, c.matches);
    Ok(json!({
        "query": c.label,
        "role": c.role,
        "sql": c.sql,
        "params": c.params,
        "matches": c.matches,
        "verdict": chosen_summary["verdict"],
        "plan_cache_choice": chosen_summary,
        "custom": summarize(&custom, c.matches),
        "generic": summarize(&generic, c.matches),
        "plan_cache_choice_text": text,
    }))
}

async fn plan_json(pg: &Pg, sql: &str) -> Result<Value> {
    let text = pg.one(sql).await?.unwrap_or_default();
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A scan node of one of [`TABLES`].
struct ScanNode {
    line: String,
    seq: bool,
    touched: f64,
}

fn num(n: &Value, k: &str) -> f64 {
    n.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}

fn walk(n: &Value, out: &mut Vec<ScanNode>, generic: &mut bool) {
    let ty = n.get("Node Type").and_then(Value::as_str).unwrap_or("");
    let rel = n.get("Relation Name").and_then(Value::as_str);
    let index = n.get("Index Name").and_then(Value::as_str);
    for k in [
        "Index Cond",
        "Filter",
        "Recheck Cond",
        "Hash Cond",
        "Join Filter",
    ] {
        if let Some(c) = n.get(k).and_then(Value::as_str)
            && has_param(c)
        {
            *generic = true;
        }
    }
    let table = rel.or_else(|| index.and_then(table_of_index));
    if let Some(t) = table.filter(|t| TABLES.contains(t))
        && (ty.contains("Scan") || rel.is_some())
        && !matches!(ty, "Bitmap Heap Scan")
    {
        let loops = num(n, "Actual Loops").max(1.0);
        let rows = num(n, "Actual Rows");
        let removed = num(n, "Rows Removed by Filter") + num(n, "Rows Removed by Index Recheck");
        let touched = (rows + removed) * loops;
        let mut line = ty.to_owned();
        if let Some(i) = index {
            line.push_str(&format!(" using {i}"));
        }
        line.push_str(&format!(" on {t}"));
        if let Some(c) = n.get("Index Cond").and_then(Value::as_str) {
            line.push_str(&format!(" [{c}]"));
        }
        if let Some(c) = n.get("Filter").and_then(Value::as_str) {
            line.push_str(&format!(" filter [{}]", shorten(c, 160)));
        }
        line.push_str(&format!(
            ": rows {rows} × {loops} loops, removed {removed}, touched {touched}"
        ));
        out.push(ScanNode {
            line,
            seq: ty == "Seq Scan",
            touched,
        });
    }
    if let Some(children) = n.get("Plans").and_then(Value::as_array) {
        for c in children {
            walk(c, out, generic);
        }
    }
}

/// The table of each of Roster's indexes (Bitmap Index Scans name no relation).
fn table_of_index(index: &str) -> Option<&'static str> {
    if index.starts_with("attr_index") {
        Some("attr_index")
    } else if index.starts_with("resources") {
        Some("resources")
    } else if index.starts_with("group_members") {
        Some("group_members")
    } else if index.starts_with("events") {
        Some("events")
    } else {
        None
    }
}

fn has_param(cond: &str) -> bool {
    let b = cond.as_bytes();
    b.windows(2).any(|w| w[0] == b'$' && w[1].is_ascii_digit())
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Plan shape, time, buffers and a verdict: `index` when no scan node read
/// more than max(200, 10 × matches) rows and none is a Seq Scan, `SCAN`
/// otherwise (it walks a directory, or a whole table).
pub fn summarize(explain: &Value, matches: u64) -> Value {
    let Some(top) = explain.get(0) else {
        return json!({"verdict": "no plan"});
    };
    let plan = &top["Plan"];
    let mut nodes = Vec::new();
    let mut generic = false;
    walk(plan, &mut nodes, &mut generic);
    let max_touched = nodes.iter().map(|n| n.touched).fold(0.0, f64::max);
    let seq = nodes.iter().any(|n| n.seq);
    let limit = (10 * matches).max(200) as f64;
    let verdict = if seq || max_touched > limit {
        "SCAN"
    } else {
        "index"
    };
    json!({
        "verdict": verdict,
        "generic_plan": generic,
        "execution_ms": round3(num(top, "Execution Time")),
        "planning_ms": round3(num(top, "Planning Time")),
        "shared_hit_blocks": num(plan, "Shared Hit Blocks"),
        "shared_read_blocks": num(plan, "Shared Read Blocks"),
        "max_rows_touched": max_touched,
        "scans": nodes.iter().map(|n| n.line.clone()).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(node: Value) -> Value {
        json!([{"Plan": node, "Planning Time": 0.1, "Execution Time": 0.2}])
    }

    #[test]
    fn an_index_lookup_passes() {
        let p = plan(json!({
            "Node Type": "Aggregate", "Actual Rows": 1, "Actual Loops": 1,
            "Plans": [{"Node Type": "Index Only Scan", "Index Name": "resources_name",
                       "Relation Name": "resources", "Index Cond": "((directory_id = 'd') AND (name_key = 'x'))",
                       "Actual Rows": 1, "Actual Loops": 1, "Heap Fetches": 1}]
        }));
        let s = summarize(&p, 1);
        assert_eq!(s["verdict"], "index");
        assert_eq!(s["generic_plan"], false);
    }

    #[test]
    fn a_filtered_walk_of_the_directory_is_a_scan() {
        let p = plan(json!({
            "Node Type": "Limit", "Actual Rows": 1, "Actual Loops": 1,
            "Plans": [{"Node Type": "Index Scan", "Index Name": "resources_by_type",
                       "Relation Name": "resources", "Index Cond": "((directory_id = $1) AND (rtype = $2))",
                       "Filter": "(name_key >= $3)", "Rows Removed by Filter": 150000,
                       "Actual Rows": 1, "Actual Loops": 1}]
        }));
        let s = summarize(&p, 1);
        assert_eq!(s["verdict"], "SCAN");
        assert_eq!(s["generic_plan"], true);
        let seq = plan(
            json!({"Node Type": "Seq Scan", "Relation Name": "attr_index",
                              "Actual Rows": 0, "Actual Loops": 1}),
        );
        assert_eq!(summarize(&seq, 0)["verdict"], "SCAN");
    }

    #[test]
    fn bitmap_index_scans_count_by_index_name() {
        let p = plan(json!({
            "Node Type": "Bitmap Heap Scan", "Relation Name": "resources", "Actual Rows": 3, "Actual Loops": 1,
            "Plans": [{"Node Type": "Bitmap Index Scan", "Index Name": "resources_name_trgm",
                       "Actual Rows": 5000, "Actual Loops": 1}]
        }));
        let s = summarize(&p, 3);
        assert_eq!(s["verdict"], "SCAN");
        assert_eq!(s["max_rows_touched"], 5000.0);
    }
}
