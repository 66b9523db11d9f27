//! Listing: filter, sort, index paging and RFC 9865 cursor paging.
//!
//! Rows are ordered by a key tuple `(sort value is missing, sort value, id)`
//! (just `id`, a time-ordered UUIDv7, by default), so the order is total and
//! stable: a client paging by index sees every row once while nothing
//! changes, and a cursor is a keyset position that costs the same at the end
//! of a directory as at its start.

use roster_scim::schema::{AttrType, SchemaRegistry};
use serde_json::Value;

use super::counts;
use super::read::{STORED_COLUMNS, to_stored};
use crate::cursor::{Cursor, query_digest};
use crate::db::{Db, Dialect, Val};
use crate::model::*;
use crate::sql::compile::{Candidates, CompiledSort, Compiler, Driver, PathKeys};
use crate::{ListOptions, StoreError, StoreResult};

struct Plan {
    /// `resources r`, or the candidates joined to it.
    from_sql: String,
    where_sql: String,
    params: Vec<Val>,
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

/// Every statement of a list binds the directory as `?1` and the resource
/// type as `?2`, but with the attribute keys written as constants a
/// statement of lookups alone names neither: PostgreSQL cannot type a
/// parameter the statement does not use, and SQLite counts a statement's
/// parameters up to the last it uses. This names both, for nothing: a CTE no
/// query reads is never run.
const BINDS_BASE: &str =
    "WITH base AS (SELECT CAST(?1 AS TEXT) AS directory_id, CAST(?2 AS BIGINT) AS rtype) ";

fn scalar_count(c: &dyn Db, sql: &str, params: &[Val]) -> StoreResult<u64> {
    let n: i64 = crate::db::scalar(c, &format!("{BINDS_BASE}{sql}"), params)?.unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// How many rows `sql` gives, counting no further than `limit`: an index
/// range read of at most `limit` entries, whatever the planner believes.
fn count_up_to(c: &dyn Db, sql: &str, params: &[Val], limit: u64) -> StoreResult<u64> {
    scalar_count(
        c,
        &format!("SELECT count(*) FROM (SELECT 1 FROM ({sql}) AS c LIMIT {limit}) AS b"),
        params,
    )
}

pub fn list(
    c: &dyn Db,
    reg: &SchemaRegistry,
    opts: &ListOptions,
    dir: &str,
    q: &ListQuery,
) -> StoreResult<ListResult> {
    // One snapshot for the keys, the count and the page, on both stores: a
    // user created between the count and the page would be on a page whose
    // total leaves it out, and on PostgreSQL the page names how many
    // candidates the count found. (On SQLite a read transaction on a WAL
    // database sees the commits before its first read.)
    let begin = match c.dialect() {
        Dialect::Sqlite => "BEGIN",
        // Every statement of a list reads an index by design; a sequential
        // scan is the planner's guess gone wrong. Without statistics (right
        // after a load) it joined a few rechecked candidates to a scan of
        // every document. (Attribute keys are constants it sees: as
        // subqueries, it expected a key's matches spread evenly behind a
        // `LIMIT` and scanned `attr_index` from the start.) The keys read
        // first hold for every statement (see `list_in`).
        Dialect::Postgres => {
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL enable_seqscan = off"
        }
    };
    c.batch(begin)?;
    let result = list_in(c, reg, opts, dir, q);
    // Never left open: an open SQLite reader keeps the WAL from being
    // checkpointed past its snapshot, and a pooled PostgreSQL connection
    // would serve its next call inside it.
    let end = c.batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
    if end.is_err() {
        let _ = c.batch("ROLLBACK");
    }
    result.and_then(|r| end.map(|()| r))
}

fn list_in(
    c: &dyn Db,
    reg: &SchemaRegistry,
    opts: &ListOptions,
    dir: &str,
    q: &ListQuery,
) -> StoreResult<ListResult> {
    let rt = reg
        .resource_type(q.kind.name())
        .ok_or_else(|| StoreError::internal(format!("no resource type {}", q.kind.name())))?;
    let base = vec![Val::from(dir), Val::Int(q.kind.code())];
    let keys = match &q.filter {
        Some(_) => path_keys(c, &base)?,
        None => PathKeys::new(),
    };
    // Sorted by an attribute, the list reads in that attribute's order
    // whatever the filter; otherwise the index answers first.
    let candidates = match (&q.filter, &q.sort) {
        (Some(f), None) => {
            let mut cc = Compiler::new(rt, q.kind, dir, 3)
                .with_dialect(c.dialect())
                .with_keys(&keys);
            cc.candidates(f).map(|cand| {
                let mut params = base.clone();
                params.extend(cc.params().iter().map(Val::from));
                (cand, params)
            })
        }
        _ => None,
    };
    let drivers = match (&q.filter, &candidates) {
        (Some(f), Some((cand, _))) if !cand.complement => Compiler::new(rt, q.kind, dir, 3)
            .with_dialect(c.dialect())
            .with_keys(&keys)
            .drivers(f),
        _ => Vec::new(),
    };
    // Fewer candidates than this: fetched by number and sorted. More: the
    // list walks the directory in page order, which stops after a page.
    let bound = opts.selective;
    // The candidates' SQL, its parameters, and how many rows it gave.
    let mut selective: Option<(&str, Vec<Val>, u64)> = None;
    let mut counted = None;
    let mut exact = false;
    // The total when the bounded count below is it.
    let mut known = None;
    // Whether a set is exact depends on the directory having cut values
    // (an indexed query): asked only where the answer is used, not when a
    // driver wins.
    let cut_free = |cand: &Candidates| -> StoreResult<bool> {
        Ok(cand.exact && !has_cut_values(c, &keys, &cand.cut_paths)?)
    };
    if let Some((cand, params)) = candidates.as_ref().filter(|(cand, _)| cand.complement) {
        exact = cut_free(cand)?;
        // A complement is counted as the directory's count less its set,
        // in one statement (one snapshot); pages walk the directory. A cut
        // value makes its set a superset: then the documents count.
        if exact {
            counted = Some((
                format!(
                    "SELECT {} - ({})",
                    counts::of_kind_sql(q.kind, "?1"),
                    cand.count_sql()
                ),
                params,
            ));
        }
    } else if let Some((driver, params, n)) = small_driver(c, &base, &drivers, bound)? {
        // A few resources hold every match: they are rechecked, whatever
        // the other operands' sets would have cost to intersect.
        selective = Some((driver.sql.as_str(), params, n));
        exact = false;
    } else if let Some((cand, params)) = &candidates {
        exact = cut_free(cand)?;
        // How many candidates, counting no further than the bound: the
        // planner's guesses (no statistics right after a load) never decide
        // between the two plans below.
        let n = count_up_to(c, &cand.sql, params, bound)?;
        if n < bound {
            selective = Some((cand.sql.as_str(), params.clone(), n));
            if exact && cand.distinct {
                known = Some(n);
            }
        } else if exact {
            // Counted only when a page needs the total (see `count_all`).
            counted = Some((cand.count_sql(), params));
        }
    }
    let mut params = match &selective {
        Some((_, p, _)) => p.clone(),
        None => base.clone(),
    };
    let mut compiler = Compiler::new(rt, q.kind, dir, params.len() + 1)
        .with_dialect(c.dialect())
        .with_keys(&keys);
    if selective.is_some() {
        compiler = compiler.rechecking();
    }
    let mut where_sql = "r.directory_id = ?1 AND r.rtype = ?2".to_owned();
    let mut from_sql = "resources r".to_owned();
    if let Some((sql, _, n)) = selective {
        // The candidates drive, each fetched by number: SQLite keeps the
        // order a CROSS JOIN names. The directory and type are not repeated
        // on `resources` (every candidate's key is the directory's): with
        // them, PostgreSQL without statistics walked the directory by
        // `resources_by_type` and joined the candidates to it, and a plain
        // `r.r IN (…)` let SQLite walk it in id order to skip the sort.
        // PostgreSQL is told how many there are at most (the count above,
        // in the same snapshot): guessing thousands, it hashed them and
        // read every document of the directory to recheck a few.
        let most = match c.dialect() {
            Dialect::Postgres => format!(" LIMIT {n}"),
            Dialect::Sqlite => String::new(),
        };
        from_sql = format!(
            "(SELECT DISTINCT r AS n FROM ({sql}) AS c0{most}) AS c CROSS JOIN resources r"
        );
        where_sql = "r.r = c.n".to_owned();
        if n == 0 {
            // Not one candidate, so not one match (a superset holds them
            // all). A constant false the planners see: PostgreSQL still
            // planned the candidates' hash for `LIMIT 0` (2 to 5 ms at
            // 1,000,000 users, 0.3 ms without).
            where_sql.push_str(" AND 1 = 0");
            known = Some(0);
        }
    }
    // An exact candidate set needs no recheck against the documents.
    let recheck = selective.is_none() || !exact;
    if let Some(f) = q.filter.as_ref().filter(|_| recheck) {
        where_sql.push_str(" AND ");
        where_sql.push_str(&compiler.filter(f)?);
    }
    let sort = q.sort.as_ref().map(|s| compiler.sort(s));
    params.extend(compiler.params().iter().map(Val::from));
    let walks = selective.is_none() && q.filter.is_some();
    let mut plan = Plan {
        from_sql,
        where_sql,
        params,
        descending: sort.is_some() && q.sort_order == SortOrder::Descending,
        sort,
    };
    // Never the documents: an unfiltered list reads the directory's counts,
    // a broad exact filter counts its index entries, a selective exact one
    // that names each resource once was counted above.
    let count_all = || match (known, &counted, &q.filter) {
        (Some(n), _, _) => Ok(n),
        (None, Some((sql, params)), _) => scalar_count(c, sql, params),
        (None, None, None) => counts::of_kind(c, dir, q.kind),
        (None, None, Some(_)) => scalar_count(
            c,
            &format!(
                "SELECT count(*) FROM {} WHERE {}",
                plan.from_sql, plan.where_sql
            ),
            &plan.params,
        ),
    };
    match &q.page {
        Page::Index { start, count } => {
            let total = count_all()?;
            if walks {
                walk_in_id_order(
                    c,
                    dir,
                    q.kind,
                    &mut plan,
                    total,
                    start.saturating_add(*count),
                )?;
            }
            let resources = if *count == 0 {
                Vec::new()
            } else {
                let skip = start.saturating_sub(1);
                // The whole directory in id order: the rows skipped are
                // skipped in the id index alone, and only the page's rows
                // are read (at 1,000,000 users, an OFFSET over the table
                // read every skipped row).
                let (from_id, offset) = if q.filter.is_none() && plan.sort.is_none() && skip > 0 {
                    (
                        format!(
                            " AND r.id >= (SELECT id FROM resources WHERE directory_id = ?1 \
                             AND rtype = ?2 ORDER BY id LIMIT 1 OFFSET {skip})"
                        ),
                        0,
                    )
                } else {
                    (String::new(), skip)
                };
                let sql = format!(
                    "SELECT {STORED_COLUMNS} FROM {} WHERE {}{from_id} ORDER BY {} \
                     LIMIT {count} OFFSET {offset}",
                    plan.from_sql,
                    plan.where_sql,
                    plan.order_sql(true),
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
            // The directory is part of the query: a cursor from one
            // directory is invalidCursor in another.
            let digest = query_digest(&[
                dir,
                q.kind.name(),
                q.filter.as_ref().map_or("", |f| f.as_text()),
                q.sort.as_ref().map_or("", |s| s.as_text()),
                if plan.descending { "d" } else { "a" },
            ]);
            let now = crate::now_ms() / 1000;
            let position = cursor
                .as_deref()
                .map(|t| Cursor::decode(t, &digest, now, opts.cursor_timeout_secs))
                .transpose()?;
            // Counted once per traversal (RFC 9865 lets totalResults be the
            // count when it began): the first page counts, later ones carry it on.
            let total = match position.as_ref().and_then(|p| p.total) {
                Some(total) => total,
                None => count_all()?,
            };
            if walks {
                walk_in_id_order(c, dir, q.kind, &mut plan, total, count.saturating_add(1))?;
            }
            cursor_page(c, &plan, position, *count, total, &digest, now)
        }
    }
}

/// On SQLite, makes a page of a broad filter walk the directory in id order
/// when that reads fewer rows than the alternative. A range of an indexed
/// column in the filter (`userName ge`, `meta.lastModified lt`) leads
/// SQLite to read the whole range by that column's index and sort it, which
/// grows with the matches (`total`); the walk reads about `rows` × the
/// directory's size ÷ `total` rows. PostgreSQL weighs this from its
/// statistics.
fn walk_in_id_order(
    c: &dyn Db,
    dir: &str,
    kind: Kind,
    plan: &mut Plan,
    total: u64,
    rows: u64,
) -> StoreResult<()> {
    if c.dialect() != Dialect::Sqlite || plan.sort.is_some() || total == 0 {
        return Ok(());
    }
    let all = counts::of_kind(c, dir, kind)?;
    if u128::from(total) * u128::from(total) >= u128::from(rows) * u128::from(all) {
        plan.from_sql = "resources r INDEXED BY resources_by_type".to_owned();
    }
    Ok(())
}

/// The most resources a driver may hold to be rechecked instead of
/// intersected: a page's worth of documents costs less to read than a large
/// operand's index rows.
const DRIVER_MAX: u64 = 100;

/// The first of `drivers` (the likeliest small first) that holds at most
/// [`DRIVER_MAX`] resources, and fewer than `bound` (the list's bound on
/// selective candidates), with its parameters. Each count stops past the
/// limit, so a large operand costs a hundred index rows here.
fn small_driver<'d>(
    c: &dyn Db,
    base: &[Val],
    drivers: &'d [Driver],
    bound: u64,
) -> StoreResult<Option<(&'d Driver, Vec<Val>, u64)>> {
    let limit = bound.min(DRIVER_MAX + 1);
    if limit == 0 {
        return Ok(None);
    }
    for d in drivers {
        let mut params = base.to_vec();
        params.extend(d.params.iter().map(Val::from));
        let n = count_up_to(c, &d.sql, &params, limit)?;
        if n < limit {
            return Ok(Some((d, params, n)));
        }
    }
    Ok(None)
}

/// The directory's attribute keys of the resource type (`base` binds both).
fn path_keys(c: &dyn Db, base: &[Val]) -> StoreResult<PathKeys> {
    c.query(
        "SELECT path, k FROM attr_keys WHERE directory_id = ? AND rtype = ?",
        base,
    )?
    .iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?)))
    .collect()
}

/// Whether the directory has an entry under any of `paths` (the marks of
/// cut values, which make a substring search's set a superset).
fn has_cut_values(c: &dyn Db, keys: &PathKeys, paths: &[String]) -> StoreResult<bool> {
    for k in paths.iter().filter_map(|p| keys.get(p)) {
        let found: Option<i64> = crate::db::scalar(
            c,
            "SELECT 1 FROM attr_index WHERE k = ? LIMIT 1",
            &[Val::Int(*k)],
        )?;
        if found.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

type Row = (Stored, (bool, Value));

fn fetch(c: &dyn Db, sql: &str, params: &[Val]) -> StoreResult<Vec<Row>> {
    c.query(&format!("{BINDS_BASE}{sql}"), params)?
        .into_iter()
        .map(|mut r| {
            let key: (bool, Value) = match r.0.get_mut(6).map(|v| std::mem::replace(v, Val::Null)) {
                None | Some(Val::Null) | Some(Val::Bytes(_)) => (r.len() > 6, Value::Null),
                Some(Val::Int(i)) => (false, Value::from(i)),
                Some(Val::Real(f)) => (false, Value::from(f)),
                Some(Val::Text(s)) => (false, Value::String(s)),
            };
            r.0.truncate(6);
            Ok((to_stored(r)?, key))
        })
        .collect()
}

fn cursor_page(
    c: &dyn Db,
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
                // A boolean in PostgreSQL: its connection binds integers to boolean parameters.
                params.push(Val::Int(i64::from(p.key_null)));
                params.push(key_param(&p.key, s.attr_type)?);
            }
        }
        params.push(Val::Text(p.id.clone()));
    }
    let key_col = plan
        .sort
        .as_ref()
        .map(|s| format!(", {}", s.expr))
        .unwrap_or_default();
    let sql = format!(
        "SELECT {STORED_COLUMNS}{key_col} FROM {} WHERE {where_sql} ORDER BY {} LIMIT {}",
        plan.from_sql,
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
            total: Some(total),
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

fn key_param(key: &Value, t: AttrType) -> StoreResult<Val> {
    Ok(match key {
        Value::Null => {
            if t.is_textual() {
                Val::Text(String::new())
            } else {
                Val::Int(0)
            }
        }
        Value::String(s) => Val::Text(s.clone()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Val::Int(i),
            None => Val::Real(n.as_f64().unwrap_or(0.0)),
        },
        _ => {
            return Err(StoreError::InvalidCursor(
                "the cursor is damaged; start again without a cursor".into(),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use roster_domain::model::{Page, SortOrder};
    use roster_scim::schema::SchemaRegistry;
    use rusqlite::Connection;
    use serde_json::json;

    use super::*;
    use crate::Tx;
    use crate::db::Row;
    use crate::model::NewResource;
    use crate::rows::{admin, tx::DbTx};
    use crate::sqlite::conn;

    /// A reader after whose first count another connection commits a user:
    /// a write landing in the middle of a list.
    struct Interrupted<'a> {
        reader: &'a Connection,
        write: &'a dyn Fn(),
        written: Cell<bool>,
    }

    impl Db for Interrupted<'_> {
        fn dialect(&self) -> Dialect {
            Dialect::Sqlite
        }
        fn exec(&self, sql: &str, params: &[Val]) -> StoreResult<u64> {
            self.reader.exec(sql, params)
        }
        fn query(&self, sql: &str, params: &[Val]) -> StoreResult<Vec<Row>> {
            let rows = self.reader.query(sql, params)?;
            if sql.contains("count(") && !self.written.replace(true) {
                (self.write)();
            }
            Ok(rows)
        }
        fn batch(&self, sql: &str) -> StoreResult<()> {
            self.reader.batch(sql)
        }
        fn writes(&self) -> u64 {
            0
        }
    }

    fn create(c: &Connection, reg: &SchemaRegistry, dir: &str, name: &str) {
        c.execute_batch("BEGIN").unwrap();
        let mut tx = DbTx::new(c, reg, dir);
        tx.create(NewResource {
            kind: Kind::User,
            doc: json!({ "userName": name }),
            members: Vec::new(),
            groups: Vec::new(),
        })
        .unwrap();
        tx.settings.finish(c).unwrap();
        c.execute_batch("COMMIT").unwrap();
    }

    #[test]
    fn a_list_reads_one_snapshot_whatever_commits_meanwhile() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("list.db");
        let mut writer = conn::open_writer(&path, &Default::default()).unwrap();
        conn::migrate(&mut writer).unwrap();
        let reg = SchemaRegistry::core();
        let dir = admin::create_directory(&writer, "d", &Default::default())
            .unwrap()
            .id;
        for name in ["u1", "u2", "u3"] {
            create(&writer, &reg, &dir, name);
        }
        let reader = conn::open_reader(&path, &Default::default()).unwrap();
        let write = || create(&writer, &reg, &dir, "u4");
        let db = Interrupted {
            reader: &reader,
            write: &write,
            written: Cell::new(false),
        };
        let rt = reg.resource_type("User").unwrap();
        let f = roster_scim::filter::parse_filter(r#"userName sw "u""#).unwrap();
        let q = ListQuery {
            kind: Kind::User,
            filter: Some(roster_scim::filter::check_filter(&reg, rt, &f).unwrap()),
            sort: None,
            sort_order: SortOrder::Ascending,
            page: Page::Index {
                start: 1,
                count: 100,
            },
        };
        let got = list(&db, &reg, &ListOptions::default(), &dir, &q).unwrap();
        assert!(db.written.get(), "the list counted");
        assert_eq!(
            (got.total, got.resources.len()),
            (3, 3),
            "the total and the page of one snapshot"
        );
        // The next list sees the new user.
        let got = list(&reader, &reg, &ListOptions::default(), &dir, &q).unwrap();
        assert_eq!((got.total, got.resources.len()), (4, 4));
    }
}
