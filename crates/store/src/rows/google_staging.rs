//! A Google poll's listings, staged in the database page by page: the poll
//! holds one page in memory, and applies nothing until every listing
//! completed, so a listing cut short leaves the directory as it was.
//!
//! Rows belong to one poll (`poll_id`); a poll starts by deleting whatever
//! an earlier poll of the directory left (one that crashed or lost its
//! lease) and ends by deleting its own.

use crate::db::{Db, Dialect, Val};
use crate::google::StagedMember;
use crate::model::Kind;
use crate::{StoreResult, vals};

/// The staging tables, for a dialect: PostgreSQL compares ids under the
/// "C" collation, as `resources.external_id` is declared, so that joins on
/// it use that column's index.
pub fn migration(dialect: Dialect) -> String {
    let c = match dialect {
        Dialect::Postgres => " COLLATE \"C\"",
        Dialect::Sqlite => "",
    };
    format!(
        "CREATE TABLE google_staged (
    poll_id       TEXT{c} NOT NULL,
    directory_id  TEXT{c} NOT NULL,
    rtype         BIGINT NOT NULL,
    google_id     TEXT{c} NOT NULL,
    body          TEXT,
    PRIMARY KEY (poll_id, rtype, google_id)
);
CREATE INDEX google_staged_directory ON google_staged(directory_id);
CREATE TABLE google_staged_members (
    poll_id       TEXT{c} NOT NULL,
    directory_id  TEXT{c} NOT NULL,
    group_id      TEXT{c} NOT NULL,
    member_rtype  BIGINT NOT NULL,
    member_id     TEXT{c} NOT NULL,
    PRIMARY KEY (poll_id, group_id, member_rtype, member_id)
);
CREATE INDEX google_staged_members_directory ON google_staged_members(directory_id);
"
    )
}

/// Rows per INSERT statement (SQLite's default limit is 32766 parameters).
const CHUNK: usize = 200;

pub fn begin(c: &dyn Db, directory: &str) -> StoreResult<()> {
    c.exec(
        "DELETE FROM google_staged WHERE directory_id = ?",
        vals![directory],
    )?;
    c.exec(
        "DELETE FROM google_staged_members WHERE directory_id = ?",
        vals![directory],
    )?;
    Ok(())
}

pub fn end(c: &dyn Db, poll: &str) -> StoreResult<()> {
    c.exec("DELETE FROM google_staged WHERE poll_id = ?", vals![poll])?;
    c.exec(
        "DELETE FROM google_staged_members WHERE poll_id = ?",
        vals![poll],
    )?;
    Ok(())
}

/// Stages listed resources: (Google id, the SCIM body when it differs from
/// the stored resource, `None` when it does not). A Google id listed twice
/// (the directory changed between pages) keeps its first listing.
pub fn stage(
    c: &dyn Db,
    directory: &str,
    poll: &str,
    kind: Kind,
    rows: &[(String, Option<String>)],
) -> StoreResult<()> {
    for chunk in rows.chunks(CHUNK) {
        let marks = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut params = Vec::with_capacity(chunk.len() * 5);
        for (id, body) in chunk {
            params.extend([
                Val::from(poll),
                Val::from(directory),
                Val::from(kind.code()),
                Val::from(id),
                body.as_deref().map_or(Val::Null, Val::from),
            ]);
        }
        c.exec(
            &format!(
                "INSERT INTO google_staged (poll_id, directory_id, rtype, google_id, body) VALUES {marks} ON CONFLICT DO NOTHING"
            ),
            &params,
        )?;
    }
    Ok(())
}

pub fn stage_members(
    c: &dyn Db,
    directory: &str,
    poll: &str,
    group: &str,
    members: &[StagedMember],
) -> StoreResult<()> {
    for chunk in members.chunks(CHUNK) {
        let marks = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut params = Vec::with_capacity(chunk.len() * 5);
        for m in chunk {
            params.extend([
                Val::from(poll),
                Val::from(directory),
                Val::from(group),
                Val::from(m.kind.code()),
                Val::from(&m.google_id),
            ]);
        }
        c.exec(
            &format!(
                "INSERT INTO google_staged_members (poll_id, directory_id, group_id, member_rtype, member_id) VALUES {marks} ON CONFLICT DO NOTHING"
            ),
            &params,
        )?;
    }
    Ok(())
}

/// Staged resources of `kind` after Google id `after`, in Google id order:
/// (Google id, body when it is to be written).
pub fn staged(
    c: &dyn Db,
    poll: &str,
    kind: Kind,
    changed_only: bool,
    after: &str,
    limit: usize,
) -> StoreResult<Vec<(String, Option<String>)>> {
    let only = if changed_only {
        " AND body IS NOT NULL"
    } else {
        ""
    };
    c.query(
        &format!(
            "SELECT google_id, body FROM google_staged
             WHERE poll_id = ? AND rtype = ? AND google_id > ?{only}
             ORDER BY google_id LIMIT ?"
        ),
        vals![poll, kind.code(), after, limit as i64],
    )?
    .iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?)))
    .collect()
}

/// The stored ids of the members Google listed for group `group` (Google
/// id) that the poll also listed as users or groups, in id order.
pub fn member_ids(
    c: &dyn Db,
    directory: &str,
    poll: &str,
    group: &str,
) -> StoreResult<Vec<String>> {
    c.query(
        "SELECT DISTINCT r.id FROM google_staged_members m
         JOIN google_staged s ON s.poll_id = m.poll_id AND s.rtype = m.member_rtype AND s.google_id = m.member_id
         JOIN resources r ON r.directory_id = ? AND r.rtype = m.member_rtype AND r.external_id = m.member_id
         WHERE m.poll_id = ? AND m.group_id = ?
         ORDER BY r.id",
        vals![directory, poll, group],
    )?
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// The stored resources of `kind` the poll did not list (by externalId),
/// after stored id `after`, in id order.
pub fn unlisted(
    c: &dyn Db,
    directory: &str,
    poll: &str,
    kind: Kind,
    after: &str,
    limit: usize,
) -> StoreResult<Vec<String>> {
    c.query(
        "SELECT r.id FROM resources r
         WHERE r.directory_id = ? AND r.rtype = ? AND r.id > ?
           AND NOT EXISTS (SELECT 1 FROM google_staged s
                           WHERE s.poll_id = ? AND s.rtype = r.rtype AND s.google_id = r.external_id)
         ORDER BY r.id LIMIT ?",
        vals![directory, kind.code(), after, poll, limit as i64],
    )?
    .iter()
    .map(|r| r.get(0))
    .collect()
}
