//! Resource rows, their index rows and membership rows.

use std::collections::{HashMap, HashSet};

use roster_scim::members::{MemberOp, MemberRef};
use roster_scim::schema::SchemaRegistry;
use roster_scim::values::fold;
use serde_json::Value;

use super::outbox::{self, MemberDiff};
pub(crate) use super::read::get;
use super::settings::DirSettings;
use crate::db::{Db, Dialect, Row, Val, scalar};
use crate::events::{self, GroupRef};
use crate::index;
use crate::model::*;
use crate::sql::compile::Compiler;
use crate::{StoreError, StoreResult, now_ms, vals};

/// Columns derived from a document.
struct Derived {
    name_key: String,
    display: String,
    external_id: Option<String>,
}

fn derive(kind: Kind, doc: &Value) -> StoreResult<Derived> {
    let text = |k: &str| doc.get(k).and_then(Value::as_str);
    let name = match kind {
        Kind::User => text("userName"),
        Kind::Group => text("displayName"),
    }
    .ok_or_else(|| {
        StoreError::Invalid(
            match kind {
                Kind::User => "userName is required",
                Kind::Group => "displayName is required",
            }
            .to_owned(),
        )
    })?;
    let display = match kind {
        Kind::User => text("displayName").unwrap_or(name),
        Kind::Group => name,
    };
    Ok(Derived {
        name_key: fold(name),
        display: display.to_owned(),
        external_id: text("externalId").map(str::to_owned),
    })
}

fn uniqueness_error(kind: Kind, doc: &Value) -> StoreError {
    let (attr, value) = match kind {
        Kind::User => ("userName", doc.get("userName")),
        Kind::Group => ("displayName", doc.get("displayName")),
    };
    let value = value.and_then(Value::as_str).unwrap_or_default();
    StoreError::conflict(
        attr,
        format!(
            "a {} with {attr} {value:?} already exists in this directory",
            kind.name()
        ),
    )
}

/// The key a held create takes (see `Db::hold_key`).
pub(crate) fn name_key_of(dir: &str, kind: Kind, name_key: &str) -> String {
    format!("{dir}\u{0}{}\u{0}{name_key}", kind.code())
}

/// The names among `count` parameters that a directory's resources of one
/// type already hold; the directory and type are the last two parameters.
///
/// One lookup per name on the unique `(directory_id, rtype, name_key)` index:
/// the `LIMIT 1` keeps each lookup a nested probe. Written as
/// `name_key IN (…)` instead, PostgreSQL with fresh statistics chose the
/// trigram index (pg_trgm also answers `=`) and took 12–18 s for 500 names
/// at 1,000,000 users; the probes take milliseconds.
pub fn taken_names_sql(count: usize) -> String {
    let values = vec!["(?::text)"; count].join(", ");
    format!(
        "SELECT v.n FROM (VALUES {values}) AS v(n)
         CROSS JOIN LATERAL (SELECT 1 FROM resources r
             WHERE r.directory_id = ? AND r.rtype = ? AND r.name_key = v.n LIMIT 1) AS found"
    )
}

/// Checks the names of many coming creates in a few queries, so each create
/// need not ask on its own (PostgreSQL: a round trip each).
pub fn expect_creates(c: &dyn Db, dir: &str, names: &[(Kind, String)]) -> StoreResult<()> {
    if !c.holds_inserts() {
        return Ok(());
    }
    for kind in [Kind::User, Kind::Group] {
        let wanted: Vec<&String> = names
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n)
            .collect();
        for chunk in wanted.chunks(500) {
            let mut params: Vec<Val> = chunk.iter().map(|n| Val::from(*n)).collect();
            params.extend([Val::from(dir), Val::Int(kind.code())]);
            let taken: HashSet<String> = c
                .query_held(&taken_names_sql(chunk.len()), &params)?
                .iter()
                .map(|r| r.get(0))
                .collect::<StoreResult<_>>()?;
            for name in chunk.iter().filter(|n| !taken.contains(n.as_str())) {
                c.free_key(&name_key_of(dir, kind, name), true);
            }
        }
    }
    Ok(())
}

pub fn create(
    c: &dyn Db,
    reg: &SchemaRegistry,
    ds: &DirSettings,
    new: NewResource,
) -> StoreResult<Stored> {
    let dir = ds.dir();
    let d = derive(new.kind, &new.doc)?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    // Everything that can refuse the request happens before the first write or
    // in it (uniqueness), so a refused create leaves nothing behind even
    // without a savepoint: bulk loads depend on that for their speed.
    let members = if new.kind == Kind::Group && !new.members.is_empty() {
        resolve_members(c, dir, &id, &new.members)?
    } else {
        Vec::new()
    };
    let mut groups = if new.kind == Kind::User && !new.groups.is_empty() {
        resolve_groups(c, dir, &new.groups)?
    } else {
        Vec::new()
    };
    let doc_text = serde_json::to_string(&new.doc)?;
    let number = c.next_resource_number()?;
    let row = vals![
        &id,
        number,
        dir,
        new.kind.code(),
        &d.name_key,
        d.display,
        d.external_id,
        doc_text,
        now,
        now
    ];
    if c.holds_inserts() {
        // The directory's write lock keeps other transactions out, so the
        // name is free if neither the table nor this transaction's held
        // inserts have it; the insert itself can then wait for the next flush.
        let key = name_key_of(dir, new.kind, &d.name_key);
        let taken = c.hold_key(&key, false)
            || !c.free_key(&key, false)
                && !c
                    .query_held(
                    "SELECT 1 FROM resources WHERE directory_id = ? AND rtype = ? AND name_key = ?",
                    vals![dir, new.kind.code(), &d.name_key],
                )?
                .is_empty();
        if taken {
            return Err(uniqueness_error(new.kind, &new.doc));
        }
        c.hold_key(&key, true);
        c.insert_later(
            "INSERT INTO resources (id, r, directory_id, rtype, name_key, display, external_id, doc, version, created, last_modified)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
            row,
        )?;
    } else {
        // A name already taken inserts nothing (rather than failing, which
        // would abort the transaction and every bulk operation in it).
        let inserted = c.exec(
            "INSERT INTO resources (id, r, directory_id, rtype, name_key, display, external_id, doc, version, created, last_modified)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT DO NOTHING",
            row,
        )?;
        if inserted == 0 {
            return Err(uniqueness_error(new.kind, &new.doc));
        }
    }
    // After the name check: a refused create computes no entries.
    let entries = index::entries_of(reg, new.kind, &new.doc)?;
    index::insert(c, ds.index_keys(), dir, new.kind, number, &entries)?;
    let diff = MemberDiff {
        added: insert_members(c, dir, &id, &members)?,
        removed: Vec::new(),
    };
    for g in &groups {
        join_group(c, dir, &g.id, &id, now)?;
    }
    let stored = Stored {
        id,
        kind: new.kind,
        doc: new.doc,
        version: 1,
        created: now,
        last_modified: now,
    };
    ds.counts().created(stored.kind, &stored.doc);
    let created = match stored.kind {
        Kind::User => events::USER_CREATED,
        Kind::Group => events::GROUP_CREATED,
    };
    // A resource that did not exist a moment ago belongs to no group but
    // those its own request named: no lookup needed.
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    let refs = group_refs(&groups);
    let custom = ds.custom(c)?;
    let text = events::data_text(dir, &stored, &refs, custom);
    outbox::emit_text(c, dir, created, text)?;
    outbox::membership_events(c, ds, &stored, &diff)?;
    if !groups.is_empty() {
        let data = events::data(dir, &stored, &refs, custom);
        outbox::user_membership_events(c, dir, &data, &groups, &[])?;
    }
    Ok(stored)
}

fn group_refs(groups: &[Stored]) -> Vec<GroupRef> {
    groups
        .iter()
        .map(|g| GroupRef {
            id: g.id.clone(),
            name: g
                .doc
                .get("displayName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
        .collect()
}

/// Looks up the groups a user's own request names; each must be a group of
/// this directory (an id of another directory never resolves).
fn resolve_groups(c: &dyn Db, dir: &str, ids: &[String]) -> StoreResult<Vec<Stored>> {
    let mut out: Vec<Stored> = Vec::with_capacity(ids.len());
    for id in ids {
        if out.iter().any(|g| &g.id == id) {
            continue;
        }
        let group = get(c, dir, Kind::Group, id)?.ok_or_else(|| {
            StoreError::Invalid(format!("groups: {id} is not a group of this directory"))
        })?;
        out.push(group);
    }
    Ok(out)
}

/// The group's version moves, as when its members change by PATCH: its
/// `members`, and so its ETag and `meta.lastModified`, are different now.
fn touch_group(c: &dyn Db, group: &str, now: i64) -> StoreResult<()> {
    let greatest = match c.dialect() {
        Dialect::Sqlite => "MAX",
        Dialect::Postgres => "GREATEST",
    };
    c.exec(
        &format!(
            "UPDATE resources SET version = version + 1, last_modified = {greatest}(last_modified + 1, ?) WHERE id = ?"
        ),
        vals![now, group],
    )?;
    Ok(())
}

/// Makes `user` a direct member of `group`; false when it already was.
fn join_group(c: &dyn Db, dir: &str, group: &str, user: &str, now: i64) -> StoreResult<bool> {
    let added = insert_members(c, dir, group, &[(user.to_owned(), Kind::User)])?;
    if added.is_empty() {
        return Ok(false);
    }
    touch_group(c, group, now)?;
    Ok(true)
}

/// The groups a user joined and left when its request set its groups.
#[derive(Debug, Default)]
struct UserGroupsDiff {
    joined: Vec<Stored>,
    left: Vec<Stored>,
}

impl UserGroupsDiff {
    fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.left.is_empty()
    }
}

/// Makes `wanted` exactly the groups `user` is a direct member of.
fn set_user_groups(
    c: &dyn Db,
    dir: &str,
    user: &str,
    wanted: Vec<Stored>,
    now: i64,
) -> StoreResult<UserGroupsDiff> {
    let current: Vec<String> = c
        .query(
            "SELECT group_id FROM group_members WHERE member_id = ? AND directory_id = ?",
            vals![user, dir],
        )?
        .iter()
        .map(|r| r.get::<String>(0))
        .collect::<StoreResult<_>>()?;
    let mut diff = UserGroupsDiff::default();
    for g in current
        .iter()
        .filter(|g| !wanted.iter().any(|w| &w.id == *g))
    {
        let n = c.exec(
            "DELETE FROM group_members WHERE group_id = ? AND member_id = ?",
            vals![g, user],
        )?;
        if n > 0 {
            touch_group(c, g, now)?;
            if let Some(group) = get(c, dir, Kind::Group, g)? {
                diff.left.push(group);
            }
        }
    }
    for g in wanted {
        if join_group(c, dir, &g.id, user, now)? {
            diff.joined.push(g);
        }
    }
    Ok(diff)
}

fn not_found(kind: Kind, id: &str) -> StoreError {
    StoreError::NotFound(format!("{} {id} not found", kind.name()))
}

fn check_version(current: &Stored, if_match: Option<i64>) -> StoreResult<()> {
    match if_match {
        Some(v) if v != current.version => Err(StoreError::PreconditionFailed(format!(
            "the resource is at version W/\"{}\", not W/\"{v}\"; read it again before changing it",
            current.version
        ))),
        _ => Ok(()),
    }
}

/// Changes a resource. Every refusal (version, validation, uniqueness, a
/// member or group that does not exist) comes before the first write, so a
/// refused operation leaves nothing behind without a savepoint of its own:
/// savepoints cost more than the writes of a bulk PATCH (`Tx::update`).
pub fn update(
    c: &dyn Db,
    reg: &SchemaRegistry,
    ds: &DirSettings,
    kind: Kind,
    id: &str,
    if_match: Option<i64>,
    f: UpdateFn,
) -> StoreResult<Stored> {
    let dir = ds.dir();
    let current = get(c, dir, kind, id)?.ok_or_else(|| not_found(kind, id))?;
    check_version(&current, if_match)?;
    let update = f(&current)?;
    let doc_changed = update.doc != current.doc;
    let derived = if doc_changed {
        let d = derive(kind, &update.doc)?;
        // Checked before writing: a failed statement would abort a PostgreSQL
        // transaction, and every other operation of a bulk request with it.
        if d.name_key != derive(kind, &current.doc)?.name_key {
            let taken: Option<String> = scalar(
                c,
                "SELECT id FROM resources WHERE directory_id = ? AND rtype = ? AND name_key = ?",
                vals![dir, kind.code(), &d.name_key],
            )?;
            if taken.is_some_and(|other| other != id) {
                return Err(uniqueness_error(kind, &update.doc));
            }
        }
        Some(d)
    } else {
        None
    };
    let (old_entries, new_entries) = if doc_changed {
        (
            index::entries_of(reg, kind, &current.doc)?,
            index::entries_of(reg, kind, &update.doc)?,
        )
    } else {
        Default::default()
    };
    let member_plan = update
        .members
        .iter()
        .map(|op| plan_member_op(c, reg, dir, id, op))
        .collect::<StoreResult<Vec<_>>>()?;
    let wanted_groups = match (&update.groups, kind) {
        (Some(wanted), Kind::User) => Some(resolve_groups(c, dir, wanted)?),
        _ => None,
    };
    // Writes begin: from here on only a database failure can stop this.
    let mut before = outbox::data_of(c, ds, &current)?;
    let mut diff = MemberDiff::default();
    for op in member_plan {
        apply_member_op(c, dir, id, op, &mut diff)?;
    }
    let now = now_ms().max(current.last_modified + 1);
    let groups = match wanted_groups {
        Some(wanted) => set_user_groups(c, dir, id, wanted, now)?,
        None => UserGroupsDiff::default(),
    };
    if !doc_changed && diff.is_empty() && groups.is_empty() {
        // Identity providers resend unchanged data constantly: no new version for that.
        return Ok(current);
    }
    let version = current.version + 1;
    if let Some(d) = derived {
        let doc_text = serde_json::to_string(&update.doc)?;
        let number: i64 = c
            .query(
                "UPDATE resources SET name_key = ?, display = ?, external_id = ?, doc = ?, version = ?, last_modified = ?
                 WHERE id = ? RETURNING r",
                vals![d.name_key, d.display, d.external_id, doc_text, version, now, id],
            )?
            .first()
            .ok_or_else(|| not_found(kind, id))?
            .get(0)?;
        let (gone, added) = index::difference(&old_entries, &new_entries);
        index::remove(c, ds.index_keys(), dir, kind, number, &gone)?;
        index::insert(c, ds.index_keys(), dir, kind, number, &added)?;
    } else {
        c.exec(
            "UPDATE resources SET version = ?, last_modified = ? WHERE id = ?",
            vals![version, now, id],
        )?;
    }
    ds.counts().changed(kind, &current.doc, &update.doc);
    let stored = Stored {
        id: id.to_owned(),
        kind,
        doc: update.doc,
        version,
        created: current.created,
        last_modified: now,
    };
    let after = outbox::data_of(c, ds, &stored)?;
    if !groups.is_empty()
        && let (Value::Object(b), Some(now_in)) = (&mut before, after.get("groups"))
    {
        // Membership changes are told by membership events, as when they come
        // through the group: `dsync.user.updated` is about the user's own
        // attributes, and shows the groups as they are now.
        b.insert("groups".into(), now_in.clone());
    }
    if let Some(data) = events::updated(&before, &after) {
        match update_event(c, ds, kind, &before, &after)? {
            Some(event) if event == events::USER_UPDATED || event == events::GROUP_UPDATED => {
                outbox::emit(c, dir, event, &data)?
            }
            // A deactivation reported as a deletion (or a reactivation as a
            // creation) carries the user as it now is, like those events do.
            Some(event) => outbox::emit(c, dir, event, &after)?,
            None => {}
        }
    }
    outbox::membership_events(c, ds, &stored, &diff)?;
    outbox::user_membership_events(c, dir, &after, &groups.joined, &groups.left)?;
    Ok(stored)
}

/// Which event an update of a resource writes. Directories that report
/// deactivation as deletion turn `active` false into `dsync.user.deleted`,
/// true again into `dsync.user.created`, and hide changes while inactive.
fn update_event(
    c: &dyn Db,
    ds: &DirSettings,
    kind: Kind,
    before: &Value,
    after: &Value,
) -> StoreResult<Option<&'static str>> {
    if kind == Kind::Group {
        return Ok(Some(events::GROUP_UPDATED));
    }
    let inactive = |d: &Value| d.get("state").and_then(Value::as_str) == Some("inactive");
    let (was, is) = (inactive(before), inactive(after));
    if !was && !is {
        return Ok(Some(events::USER_UPDATED));
    }
    if ds.deactivation(c)? != Deactivation::Delete {
        return Ok(Some(events::USER_UPDATED));
    }
    Ok(match (was, is) {
        (false, true) => Some(events::USER_DELETED),
        (true, false) => Some(events::USER_CREATED),
        _ => None,
    })
}

pub fn delete(
    c: &dyn Db,
    reg: &SchemaRegistry,
    ds: &DirSettings,
    kind: Kind,
    id: &str,
    if_match: Option<i64>,
) -> StoreResult<()> {
    let dir = ds.dir();
    let current = get(c, dir, kind, id)?.ok_or_else(|| not_found(kind, id))?;
    check_version(&current, if_match)?;
    let data = outbox::data_of(c, ds, &current)?;
    if kind == Kind::User {
        // The user leaves every group: apps tracking membership see it go.
        for g in outbox::groups_of(c, dir, id)? {
            if let Some(group) = get(c, dir, Kind::Group, &g.id)? {
                let m = events::membership(dir, data.clone(), events::group_data(dir, &group));
                outbox::emit(c, dir, events::GROUP_USER_REMOVED, &m)?;
            }
        }
    }
    let deleted = match kind {
        Kind::User => events::USER_DELETED,
        Kind::Group => events::GROUP_DELETED,
    };
    // A directory that reports deactivation as deletion already announced this one.
    let announced = kind == Kind::User
        && data.get("state").and_then(Value::as_str) == Some("inactive")
        && ds.deactivation(c)? == Deactivation::Delete;
    if !announced {
        outbox::emit(c, dir, deleted, &data)?;
    }
    // Membership rows go with the resource (ON DELETE CASCADE); its
    // attribute index rows are exactly the entries of its document.
    let number: Option<i64> = scalar(
        c,
        "DELETE FROM resources WHERE id = ? RETURNING r",
        vals![id],
    )?;
    if let Some(number) = number {
        ds.counts().deleted(kind, &current.doc);
        let entries = index::entries_of(reg, kind, &current.doc)?;
        index::remove(c, ds.index_keys(), dir, kind, number, &entries)?;
    }
    Ok(())
}

fn removed_rows(rows: Vec<Row>) -> StoreResult<Vec<(String, Kind)>> {
    rows.iter()
        .map(|r| {
            let kind: i64 = r.get(1)?;
            Ok((r.get(0)?, Kind::from_code(kind).unwrap_or(Kind::User)))
        })
        .collect()
}

/// A membership change with everything that can refuse it done: members
/// looked up, filters compiled.
enum PlannedMemberOp {
    Add(Vec<(String, Kind)>),
    Remove(Vec<String>),
    RemoveAll,
    /// The compiled condition and its parameters.
    RemoveWhere(String, Vec<Val>),
    ReplaceAll(Vec<(String, Kind)>),
}

fn plan_member_op(
    c: &dyn Db,
    reg: &SchemaRegistry,
    dir: &str,
    group: &str,
    op: &MemberOp,
) -> StoreResult<PlannedMemberOp> {
    Ok(match op {
        MemberOp::Add(refs) => PlannedMemberOp::Add(resolve_members(c, dir, group, refs)?),
        MemberOp::Remove(ids) => PlannedMemberOp::Remove(ids.clone()),
        MemberOp::RemoveAll => PlannedMemberOp::RemoveAll,
        MemberOp::RemoveWhere(filter) => {
            let rt = reg
                .resource_type("Group")
                .ok_or_else(|| StoreError::internal("no Group resource type"))?;
            let mut compiler = Compiler::new(rt, Kind::Group, dir, 3).with_dialect(c.dialect());
            let cond = compiler.member_filter(filter)?;
            PlannedMemberOp::RemoveWhere(cond, compiler.params().iter().map(Val::from).collect())
        }
        MemberOp::ReplaceAll(refs) => {
            PlannedMemberOp::ReplaceAll(resolve_members(c, dir, group, refs)?)
        }
    })
}

/// Applies one membership change and reports which members joined or left.
fn apply_member_op(
    c: &dyn Db,
    dir: &str,
    group: &str,
    op: PlannedMemberOp,
    diff: &mut MemberDiff,
) -> StoreResult<()> {
    match op {
        PlannedMemberOp::Add(members) => {
            diff.added.extend(insert_members(c, dir, group, &members)?);
        }
        PlannedMemberOp::Remove(ids) => {
            for m in ids {
                diff.removed.extend(removed_rows(c.query(
                    "DELETE FROM group_members WHERE group_id = ? AND member_id = ? RETURNING member_id, member_type",
                    vals![group, &m],
                )?)?);
            }
        }
        PlannedMemberOp::RemoveAll => {
            diff.removed.extend(removed_rows(c.query(
                "DELETE FROM group_members WHERE group_id = ? RETURNING member_id, member_type",
                vals![group],
            )?)?);
        }
        PlannedMemberOp::RemoveWhere(cond, params) => {
            let sql = format!(
                "DELETE FROM group_members WHERE group_id = ?1 AND member_id IN (
                   SELECT gm.member_id FROM group_members gm JOIN resources m ON m.id = gm.member_id
                   WHERE gm.group_id = ?2 AND {cond}) RETURNING member_id, member_type"
            );
            let mut values = vec![Val::from(group), Val::from(group)];
            values.extend(params);
            diff.removed.extend(removed_rows(c.query(&sql, &values)?)?);
        }
        PlannedMemberOp::ReplaceAll(wanted) => {
            let keep: HashSet<&str> = wanted.iter().map(|(id, _)| id.as_str()).collect();
            let existing = removed_rows(c.query(
                "SELECT member_id, member_type FROM group_members WHERE group_id = ?",
                vals![group],
            )?)?;
            for (m, kind) in existing
                .into_iter()
                .filter(|(m, _)| !keep.contains(m.as_str()))
            {
                c.exec(
                    "DELETE FROM group_members WHERE group_id = ? AND member_id = ?",
                    vals![group, &m],
                )?;
                diff.removed.push((m, kind));
            }
            diff.added.extend(insert_members(c, dir, group, &wanted)?);
        }
    }
    Ok(())
}

/// Looks members up in the directory; every one must exist there.
fn resolve_members(
    c: &dyn Db,
    dir: &str,
    group: &str,
    refs: &[MemberRef],
) -> StoreResult<Vec<(String, Kind)>> {
    let mut out = Vec::with_capacity(refs.len());
    let mut seen = HashSet::new();
    for m in refs {
        if !seen.insert(m.value.as_str()) {
            continue;
        }
        if m.value == group {
            return Err(StoreError::Invalid(
                "a group cannot be a member of itself".into(),
            ));
        }
        let kind: Option<i64> = scalar(
            c,
            "SELECT rtype FROM resources WHERE id = ? AND directory_id = ?",
            vals![&m.value, dir],
        )?;
        let kind = kind.and_then(Kind::from_code).ok_or_else(|| {
            StoreError::Invalid(format!(
                "member {} does not exist in this directory",
                m.value
            ))
        })?;
        if let Some(t) = m.ty
            && t != kind.member_type()
        {
            return Err(StoreError::Invalid(format!(
                "member {} is a {}, not a {}",
                m.value,
                kind.name(),
                t.as_str()
            )));
        }
        out.push((m.value.clone(), kind));
    }
    Ok(out)
}

/// Inserts membership rows; returns the members that were not there before.
fn insert_members(
    c: &dyn Db,
    dir: &str,
    group: &str,
    members: &[(String, Kind)],
) -> StoreResult<Vec<(String, Kind)>> {
    let mut added = Vec::new();
    for (id, kind) in members {
        let n = c.exec(
            "INSERT INTO group_members (directory_id, group_id, member_id, member_type) VALUES (?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
            vals![dir, group, id, kind.code()],
        )?;
        if n > 0 {
            added.push((id.clone(), *kind));
        }
    }
    Ok(added)
}

/// Members of groups (`of_group`) or groups of members, keyed by the given ids.
pub fn members_of(
    c: &dyn Db,
    dir: &str,
    ids: &[String],
    of_group: bool,
) -> StoreResult<HashMap<String, Vec<MemberRow>>> {
    // No JOIN and no ORDER BY: with the bundled SQLite 3.54 either one made
    // the cached statement re-prepare on every execution
    // (SQLITE_STMTSTATUS_REPREPARE counts one per run), a sixth of the
    // instructions of a whole POST /Users. Rows are sorted here instead.
    // ON DELETE CASCADE removes membership rows with either end, so the
    // subquery always finds its row.
    let sql = if of_group {
        "SELECT gm.member_id, gm.member_type,
                (SELECT m.display FROM resources m WHERE m.id = gm.member_id)
         FROM group_members gm WHERE gm.group_id = ? AND gm.directory_id = ?"
    } else {
        "SELECT gm.group_id, 2,
                (SELECT m.display FROM resources m WHERE m.id = gm.group_id)
         FROM group_members gm WHERE gm.member_id = ? AND gm.directory_id = ?"
    };
    let row = |r: &Row| -> StoreResult<MemberRow> {
        let kind: i64 = r.get(1)?;
        Ok(MemberRow {
            id: r.get(0)?,
            kind: Kind::from_code(kind).unwrap_or(Kind::User),
            display: r.get::<Option<String>>(2)?.unwrap_or_default(),
        })
    };
    let mut out: HashMap<String, Vec<MemberRow>> = HashMap::with_capacity(ids.len());
    if c.dialect() == Dialect::Postgres {
        // A statement costs PostgreSQL a round trip: one per chunk of ids, not
        // one per id (a page of 1,000 users would otherwise be 1,000 queries).
        let (other, owner) = if of_group {
            ("gm.member_id, gm.member_type", "gm.group_id")
        } else {
            ("gm.group_id, 2", "gm.member_id")
        };
        let shown = if of_group {
            "gm.member_id"
        } else {
            "gm.group_id"
        };
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT {other}, (SELECT m.display FROM resources m WHERE m.id = {shown}), {owner}
                 FROM group_members gm WHERE gm.directory_id = ? AND {owner} IN ({marks})"
            );
            let mut params = vec![Val::from(dir)];
            params.extend(chunk.iter().map(Val::from));
            for r in c.query(&sql, &params)? {
                let owner: String = r.get(3)?;
                out.entry(owner).or_default().push(row(&r)?);
            }
        }
    } else {
        for id in ids {
            let rows = c
                .query(sql, vals![id, dir])?
                .iter()
                .map(row)
                .collect::<StoreResult<Vec<_>>>()?;
            out.insert(id.clone(), rows);
        }
    }
    for id in ids {
        let rows = out.entry(id.clone()).or_default();
        // Usually already in key order (the primary key and the member index are
        // ordered by it), which the adaptive sort checks in one pass.
        rows.sort_by(|a, b| a.id.cmp(&b.id));
    }
    Ok(out)
}
