//! Listing: filter, sort, index paging and RFC 9865 cursor paging.
//!
//! Rows are ordered by a key tuple `(sort value is missing, sort value, id)`
//! (just `id`, a time-ordered UUIDv7, by default), so the order is total and
//! stable: a client paging by index sees every row once while nothing
//! changes, and a cursor is a keyset position that costs the same at the end
//! of a directory as at its start.

use roster_scim::ScimError;
use roster_scim::schema::{AttrType, SchemaRegistry};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};
use serde_json::Value;

use super::resources::{STORED_COLUMNS, to_sql, to_stored};
use crate::cursor::{Cursor, query_digest};
use crate::model::*;
use crate::sql::compile::{CompiledSort, Compiler};
use crate::{ListOptions, StoreError, StoreResult};

struct Plan {
    where_sql: String,
    params: Vec<SqlValue>,
    sort: Option<CompiledSort>,
    descending: bool,
}

impl Plan {
    fn key_sql(&self) -> String {
        match &self.sort {
            None => "r.id".into(),
            Some(s) => format!(
                "({e} IS NULL), COALESCE({e}, {z}), r.id",
                e = s.expr,
                z = sentinel_sql(s.attr_type)
            ),
        }
    }

    /// ORDER BY for reading forward (`true`) or backward through the result set.
    fn order_sql(&self, forward: bool) -> String {
        let dir = if self.descending == forward {
            "DESC"
        } else {
            "ASC"
        };
        match &self.sort {
            None => format!("r.id {dir}"),
            Some(s) => format!("({e} IS NULL) {dir}, {e} {dir}, r.id {dir}", e = s.expr),
        }
    }
}

fn sentinel_sql(t: AttrType) -> &'static str {
    if t.is_textual() { "''" } else { "0" }
}

pub fn list(
    c: &Connection,
    reg: &SchemaRegistry,
    opts: &ListOptions,
    dir: &str,
    q: &ListQuery,
) -> StoreResult<ListResult> {
    let rt = reg
        .resource_type(q.kind.name())
        .ok_or_else(|| StoreError::Database(format!("no resource type {}", q.kind.name())))?;
    let mut compiler = Compiler::new(reg, rt, q.kind, dir, 3);
    let filter_sql = q.filter.as_ref().map(|f| compiler.filter(f)).transpose()?;
    let sort = q.sort_by.as_deref().map(|s| compiler.sort(s)).transpose()?;
    let mut params = vec![
        SqlValue::Text(dir.to_owned()),
        SqlValue::Integer(q.kind.code()),
    ];
    params.extend(compiler.params().iter().map(to_sql));
    let mut where_sql = "r.directory_id = ?1 AND r.rtype = ?2".to_owned();
    if let Some(f) = filter_sql {
        where_sql.push_str(" AND ");
        where_sql.push_str(&f);
    }
    let plan = Plan {
        where_sql,
        params,
        descending: sort.is_some() && q.sort_order == SortOrder::Descending,
        sort,
    };
    let total: i64 = c
        .prepare_cached(&format!(
            "SELECT count(*) FROM resources r WHERE {}",
            plan.where_sql
        ))?
        .query_row(params_from_iter(plan.params.iter()), |r| r.get(0))?;
    let total = u64::try_from(total).unwrap_or(0);
    match &q.page {
        Page::Index { start, count } => {
            let resources = if *count == 0 {
                Vec::new()
            } else {
                let sql = format!(
                    "SELECT {STORED_COLUMNS} FROM resources r WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
                    plan.where_sql,
                    plan.order_sql(true),
                    count,
                    start.saturating_sub(1)
                );
                fetch(c, &sql, &plan.params)?
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect()
            };
            Ok(ListResult {
                total,
                resources,
                next_cursor: None,
                previous_cursor: None,
            })
        }
        Page::Cursor { cursor, count } => {
            let digest = query_digest(&[
                q.kind.name(),
                &q.filter.as_ref().map(|f| f.to_string()).unwrap_or_default(),
                q.sort_by.as_deref().unwrap_or(""),
                if plan.descending { "d" } else { "a" },
            ]);
            let now = super::admin::now_ms() / 1000;
            let position = cursor
                .as_deref()
                .map(|t| Cursor::decode(t, &digest, now, opts.cursor_timeout_secs))
                .transpose()?;
            cursor_page(c, &plan, position, *count, total, &digest, now)
        }
    }
}

type Row = (Stored, (bool, Value));

fn fetch(c: &Connection, sql: &str, params: &[SqlValue]) -> StoreResult<Vec<Row>> {
    let mut stmt = c.prepare(sql)?;
    let has_key = stmt.column_count() > 6;
    let rows = stmt.query_map(params_from_iter(params.iter()), |r| {
        let stored = (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        );
        let key: (bool, Value) = if has_key {
            match r.get::<_, SqlValue>(6)? {
                SqlValue::Null => (true, Value::Null),
                SqlValue::Integer(i) => (false, Value::from(i)),
                SqlValue::Real(f) => (false, Value::from(f)),
                SqlValue::Text(s) => (false, Value::String(s)),
                SqlValue::Blob(_) => (true, Value::Null),
            }
        } else {
            (false, Value::Null)
        };
        Ok((stored, key))
    })?;
    rows.map(|row| {
        let (stored, key) = row?;
        Ok((to_stored(stored)?, key))
    })
    .collect()
}

fn cursor_page(
    c: &Connection,
    plan: &Plan,
    position: Option<Cursor>,
    count: u64,
    total: u64,
    digest: &str,
    now: i64,
) -> StoreResult<ListResult> {
    let forward = position.as_ref().is_none_or(|p| p.forward);
    let mut where_sql = plan.where_sql.clone();
    let mut params = plan.params.clone();
    if let Some(p) = &position {
        // Rows strictly after (or before) the boundary in the chosen direction.
        let after = p.forward != plan.descending;
        let cmp = if after { ">" } else { "<" };
        let n = params.len() + 1;
        match &plan.sort {
            None => {
                where_sql.push_str(&format!(" AND r.id {cmp} ?{n}"));
            }
            Some(s) => {
                where_sql.push_str(&format!(
                    " AND ({}) {cmp} (?{n}, ?{}, ?{})",
                    plan.key_sql(),
                    n + 1,
                    n + 2
                ));
                params.push(SqlValue::Integer(i64::from(p.key_null)));
                params.push(key_param(&p.key, s.attr_type)?);
            }
        }
        params.push(SqlValue::Text(p.id.clone()));
    }
    let key_col = plan
        .sort
        .as_ref()
        .map(|s| format!(", {}", s.expr))
        .unwrap_or_default();
    let sql = format!(
        "SELECT {STORED_COLUMNS}{key_col} FROM resources r WHERE {where_sql} ORDER BY {} LIMIT {}",
        plan.order_sql(forward),
        count.saturating_add(1)
    );
    let mut rows = if count == 0 {
        Vec::new()
    } else {
        fetch(c, &sql, &params)?
    };
    let more = rows.len() as u64 > count;
    rows.truncate(usize::try_from(count).unwrap_or(usize::MAX));
    if !forward {
        rows.reverse();
    }
    let make = |row: &Row, forward: bool| {
        Cursor {
            forward,
            key: row.1.1.clone(),
            key_null: row.1.0,
            id: row.0.id.clone(),
            issued: now,
            query: digest.to_owned(),
        }
        .encode()
    };
    let (has_next, has_previous) = if forward {
        (more, position.is_some())
    } else {
        (true, more)
    };
    let next_cursor = rows.last().filter(|_| has_next).map(|r| make(r, true));
    let previous_cursor = rows
        .first()
        .filter(|_| has_previous)
        .map(|r| make(r, false));
    Ok(ListResult {
        total,
        resources: rows.into_iter().map(|(s, _)| s).collect(),
        next_cursor,
        previous_cursor,
    })
}

fn key_param(key: &Value, t: AttrType) -> StoreResult<SqlValue> {
    Ok(match key {
        Value::Null => {
            if t.is_textual() {
                SqlValue::Text(String::new())
            } else {
                SqlValue::Integer(0)
            }
        }
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
        },
        _ => {
            return Err(ScimError::bad_request(
                roster_scim::ScimType::InvalidCursor,
                "the cursor is damaged; start again without a cursor",
            )
            .into());
        }
    })
}
