//! Held INSERTs sent as binary `COPY … FROM STDIN`: which INSERTs a COPY
//! can stand in for (`copy_form`), and the rows encoded as they are held.
//! No I/O here: `conn` prepares the COPY and sends the data.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use postgres::Statement;
use postgres::types::{IsNull, ToSql, Type};

use crate::db::Val;
use crate::{StoreError, StoreResult};

/// About how many bytes of COPY data are encoded before they are written.
pub(super) const COPY_CHUNK: usize = 64 * 1024;

/// The event number of `rows::outbox::emit` (`?` is the event's position in
/// its transaction), which a COPY computes here from the transaction's id.
const EVENT_SEQ: &str = "(pg_current_xact_id()::text::bigint << 20) + ?";

/// Where a column's value comes from when a held INSERT is sent by COPY.
#[derive(Debug, PartialEq)]
pub(super) enum Source {
    /// The n-th `?`.
    Param(usize),
    /// An integer literal of the statement.
    Const(i64),
    /// [`EVENT_SEQ`] with the n-th `?`.
    EventSeq(usize),
}

/// A held statement as binary COPY: table, columns and where each value comes from.
#[derive(Debug, PartialEq)]
pub(super) struct CopyForm {
    pub(super) table: String,
    pub(super) columns: Vec<String>,
    pub(super) sources: Vec<Source>,
    pub(super) params: usize,
}

/// A COPY statement prepared on a connection for one held INSERT.
pub(super) struct CopyPlan {
    pub(super) form: CopyForm,
    pub(super) statement: Statement,
    pub(super) types: Vec<Type>,
}

impl CopyPlan {
    pub(super) fn numbers_events(&self) -> bool {
        self.form
            .sources
            .iter()
            .any(|s| matches!(s, Source::EventSeq(_)))
    }

    /// Rows to come, as binary COPY data so far (the header).
    pub(super) fn start(self: &Arc<Self>) -> HeldCopy {
        let mut data = BytesMut::with_capacity(COPY_CHUNK);
        data.put_slice(b"PGCOPY\n\xff\r\n\0");
        data.put_i32(0); // flags
        data.put_i32(0); // header extension length
        HeldCopy {
            plan: self.clone(),
            data,
            events: Vec::new(),
        }
    }
}

/// One statement's held rows: values for a multi-row INSERT, or COPY data.
pub(super) enum Held {
    Values(Vec<Vec<Val>>),
    Copy(HeldCopy),
}

/// Rows encoded for COPY as they are held (no copy of their values is
/// kept), with where each event number goes once the transaction's id is known.
pub(super) struct HeldCopy {
    pub(super) plan: Arc<CopyPlan>,
    pub(super) data: BytesMut,
    /// Offset of an event number's 8 bytes in `data`, and the event's position.
    pub(super) events: Vec<(usize, i64)>,
}

impl HeldCopy {
    /// Encodes a row; on an error nothing of it stays.
    pub(super) fn push(&mut self, row: &[Val]) -> StoreResult<()> {
        let (len, events) = (self.data.len(), self.events.len());
        let result = self.encode(row);
        if result.is_err() {
            self.data.truncate(len);
            self.events.truncate(events);
        }
        result
    }

    fn encode(&mut self, row: &[Val]) -> StoreResult<()> {
        let form = &self.plan.form;
        let fail =
            |e: &dyn std::fmt::Display| StoreError::internal(format!("COPY {}: {e}", form.table));
        if row.len() != form.params {
            return Err(fail(&format!(
                "{} values for {} placeholders",
                row.len(),
                form.params
            )));
        }
        let fields = i16::try_from(self.plan.types.len()).map_err(|e| fail(&e))?;
        let data = &mut self.data;
        data.put_i16(fields);
        for (source, ty) in form.sources.iter().zip(&self.plan.types) {
            let constant;
            let value = match source {
                Source::Param(i) => &row[*i],
                Source::Const(v) => {
                    constant = Val::Int(*v);
                    &constant
                }
                Source::EventSeq(i) => {
                    let Val::Int(n) = row[*i] else {
                        return Err(fail(&"an event's position is not an integer"));
                    };
                    data.put_i32(8);
                    self.events.push((data.len(), n));
                    data.put_i64(0);
                    continue;
                }
            };
            let at = data.len();
            data.put_i32(0);
            let len = match value.to_sql_checked(ty, data).map_err(|e| fail(&*e))? {
                IsNull::Yes => -1,
                IsNull::No => {
                    i32::try_from(data.len() - at - 4).map_err(|_| fail(&"a value is too large"))?
                }
            };
            data[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits `a, f(b, c), d` at the commas outside parentheses.
fn split_top_level(s: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, ch) in s.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            '\'' | '"' | ';' | '$' => return None,
            _ => {}
        }
        if depth < 0 {
            return None;
        }
    }
    parts.push(s[start..].trim());
    (depth == 0).then_some(parts)
}

/// Reads `INSERT INTO t (a, b, …) VALUES (?, ?, 1, …)` as a COPY into `t`.
/// `None` for anything COPY cannot do the same way: other expressions,
/// numbered placeholders, `ON CONFLICT`, `RETURNING`.
pub(super) fn copy_form(sql: &str) -> Option<CopyForm> {
    let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let rest = sql.strip_prefix("INSERT INTO ")?;
    let open = rest.find('(')?;
    let table = rest[..open].trim();
    let rest = &rest[open + 1..];
    let close = rest.find(')')?;
    let columns: Vec<String> = rest[..close]
        .split(',')
        .map(|c| c.trim().to_owned())
        .collect();
    let tuple = rest[close + 1..]
        .trim_start()
        .strip_prefix("VALUES")?
        .trim()
        .strip_prefix('(')?
        .strip_suffix(')')?;
    let exprs = split_top_level(tuple)?;
    if !is_ident(table) || !columns.iter().all(|c| is_ident(c)) || exprs.len() != columns.len() {
        return None;
    }
    let mut params = 0;
    let mut sources = Vec::with_capacity(exprs.len());
    for e in exprs {
        let source = if e == "?" {
            Source::Param(params)
        } else if e == EVENT_SEQ {
            Source::EventSeq(params)
        } else {
            sources.push(Source::Const(e.parse().ok()?));
            continue;
        };
        params += 1;
        sources.push(source);
    }
    Some(CopyForm {
        table: table.to_owned(),
        columns,
        sources,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_inserts_read_as_copy_where_copy_does_the_same() {
        assert_eq!(
            copy_form(
                "INSERT INTO events (seq, kind, v)
                 VALUES ((pg_current_xact_id()::text::bigint << 20) + ?, 1, ?)"
            ),
            Some(CopyForm {
                table: "events".into(),
                columns: vec!["seq".into(), "kind".into(), "v".into()],
                sources: vec![Source::EventSeq(0), Source::Const(1), Source::Param(1)],
                params: 2,
            })
        );
        for sql in [
            "INSERT INTO t (a) VALUES (?) ON CONFLICT DO NOTHING",
            "INSERT INTO t (a) VALUES (?) RETURNING a",
            "INSERT INTO t (a, b) VALUES (?, now())",
            "INSERT INTO t (a) VALUES (?1)",
            "INSERT INTO t (a) VALUES ('x')",
            "INSERT INTO t (a, b) VALUES (?)",
            "INSERT INTO t SELECT ?",
            "UPDATE t SET a = ?",
        ] {
            assert_eq!(copy_form(sql), None, "{sql}");
        }
    }
}
