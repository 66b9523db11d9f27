//! Reading resource rows: the columns every query selects and the row they
//! become. Below both the writes (`resources`) and the events they cause
//! (`outbox`), so neither has to reach into the other to read a resource.

use crate::db::{Db, Row};
use crate::model::*;
use crate::{StoreError, StoreResult, vals};

pub(crate) fn to_stored(mut row: Row) -> StoreResult<Stored> {
    let kind: i64 = row.get(1)?;
    let doc = row.take_text(2)?;
    Ok(Stored {
        id: row.get(0)?,
        kind: Kind::from_code(kind)
            .ok_or_else(|| StoreError::internal(format!("unknown resource type {kind}")))?,
        doc: serde_json::from_str(&doc)?,
        version: row.get(3)?,
        created: row.get(4)?,
        last_modified: row.get(5)?,
    })
}

pub const STORED_COLUMNS: &str = "r.id, r.rtype, r.doc, r.version, r.created, r.last_modified";

pub fn get(c: &dyn Db, dir: &str, kind: Kind, id: &str) -> StoreResult<Option<Stored>> {
    c.query_opt(
        &format!(
            "SELECT {STORED_COLUMNS} FROM resources r WHERE r.id = ? AND r.directory_id = ? AND r.rtype = ?"
        ),
        vals![id, dir, kind.code()],
    )?
    .map(to_stored)
    .transpose()
}
