//! `attr_index`: one compact row per attribute value of every resource, so
//! that filters find their candidates by index lookups instead of reading
//! documents.
//!
//! A row is `(k, v, r, e)`: `k` a small integer naming (directory, resource
//! type, attribute path) in `attr_keys`, `v` the value as index text (see
//! [`entries`]), `r` the resource's number (`resources.r`) and `e` the
//! element ordinal. Rows are kept by difference in the transaction that
//! writes the resource: a create inserts its entries, an update deletes the
//! entries the old document had and the new one lacks and inserts the new
//! ones (an unchanged update writes none), a delete deletes exactly the
//! entries of the document it deletes, by primary key, so no index by owner
//! is needed. The index is a function of the documents and the schemas; the
//! schemas it was built with are remembered by a fingerprint, and a store
//! opened with other schemas rebuilds it ([`ensure`]).

pub mod entries;
pub mod text;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roster_scim::schema::{AttributeDef, SchemaRegistry};
use serde_json::Value;

use crate::db::{Db, Dialect, Val};
use crate::model::Kind;
use crate::{StoreError, StoreResult, vals};
use entries::Entry;

/// Bumped whenever what [`entries`] produces changes, so stores rebuild.
const FORMAT: u64 = 4;

/// The `store_meta` key under which the fingerprint of the indexed schemas is kept.
const FINGERPRINT_KEY: &str = "attr_index_schemas";

/// One directory's key numbers: by resource type, then path, so that a
/// lookup (one per index row written) borrows the path instead of copying it.
/// Hashed by foldhash, as is the memo of values: std's SipHash of these
/// short keys was about 2% of a user created through `/Bulk`. foldhash is
/// seeded per process, as std's hasher is; it is weaker against keys
/// chosen to collide, and the values a client chooses are at most
/// [`SEEN_VALUES`] per transaction.
pub type DirKeys = FastMap<i64, FastMap<String, i64>>;

type FastMap<K, V> = foldhash::HashMap<K, V>;

/// The keys committed transactions have used, per directory, kept across
/// transactions: reading a directory's keys cost a lone `POST` about 4% of
/// its instructions. A key enters the shelf only after the transaction that
/// read or made it has committed ([`KeyShelf::publish`]): a key made by a
/// transaction that rolled back does not exist, and an index row written
/// under it would be found by no filter. Keys are never renumbered; they go
/// only with their directory ([`KeyShelf::forget`]).
#[derive(Default)]
pub struct KeyShelf {
    dirs: Mutex<HashMap<String, Arc<DirKeys>>>,
}

impl KeyShelf {
    /// The keys of `dir` known to be committed, if any.
    pub fn get(&self, dir: &str) -> Option<Arc<DirKeys>> {
        self.dirs.lock().ok()?.get(dir).cloned()
    }

    /// Adds the keys a committed transaction read or made.
    pub fn publish(&self, dir: &str, learned: Option<DirKeys>) {
        let (Some(learned), Ok(mut dirs)) = (learned, self.dirs.lock()) else {
            return;
        };
        let known = dirs.get(dir);
        let news = |kind: &i64, paths: &FastMap<String, i64>| {
            let had = known.and_then(|k| k.get(kind));
            paths.keys().any(|p| had.is_none_or(|h| !h.contains_key(p)))
        };
        if !learned.iter().any(|(kind, paths)| news(kind, paths)) {
            return;
        }
        let mut merged = known.map(|k| (**k).clone()).unwrap_or_default();
        for (kind, paths) in learned {
            merged.entry(kind).or_default().extend(paths);
        }
        dirs.insert(dir.to_owned(), Arc::new(merged));
    }

    /// Drops a deleted directory's keys.
    pub fn forget(&self, dir: &str) {
        if let Ok(mut dirs) = self.dirs.lock() {
            dirs.remove(dir);
        }
    }
}

/// What one transaction knows of one directory's index: the key numbers
/// (those on the shelf when it began, else the directory's keys read from
/// the database at the first path the shelf lacks, added to as new paths
/// appear), and the text values whose value row it has seen to (SQLite).
#[derive(Default)]
pub struct IndexMemo {
    known: Option<Arc<DirKeys>>,
    keys: RefCell<Option<DirKeys>>,
    /// Text values, by key, that have a row in `attr_text_values` (this
    /// transaction added it or found it there). A thousand users of a
    /// `/Bulk` request share their titles, email types, departments and
    /// schemas: their rows are probed once, not once per user.
    values: RefCell<FastMap<i64, foldhash::HashSet<String>>>,
    /// Whether an insert has run in this transaction: values are
    /// remembered from the second on, so that a transaction of one create
    /// (a lone `POST`) does not pay for remembering what nothing will ask.
    inserted: std::cell::Cell<bool>,
    /// How many values `values` holds: it starts over at [`SEEN_VALUES`], so
    /// that rebuilding a large directory's index does not keep them all.
    seen: std::cell::Cell<usize>,
    /// Index rows (SQLite) and text values not written yet.
    held: RefCell<Held>,
}

/// Rows of index inserts that a transaction has not sent yet. A user has
/// about fifteen index rows, which took four statements of 8, 4, 2 and 1
/// rows; held across the users of a `/Bulk` request, they go sixteen to a
/// statement. Each statement cost SQLite (and rusqlite's statement cache,
/// which hashes its text) about as much as a row or two.
/// PostgreSQL sends its index rows through the connection's COPY instead;
/// both stores hold the new text values, `(k, v)`.
#[derive(Default)]
struct Held {
    /// SQLite: the parameters of [`INDEX_INSERT`], four a row.
    rows: Vec<Val>,
    values: Vec<(i64, String)>,
}

impl Held {
    /// SQLite: the parameters of [`text::VALUES_INSERT`] for the first `n`
    /// held values, which it takes out.
    fn value_params(&mut self, n: usize) -> Vec<Val> {
        self.values
            .drain(..n)
            .flat_map(|(k, v)| [Val::Int(k), Val::Text(v)])
            .collect()
    }
}

/// The most text values a transaction remembers having seen to.
const SEEN_VALUES: usize = 100_000;

impl IndexMemo {
    /// A cache that starts from the keys of the shelf.
    pub fn starting_from(known: Option<Arc<DirKeys>>) -> Self {
        IndexMemo {
            known,
            ..Default::default()
        }
    }

    /// Forgets what was learned since the transaction began: a savepoint
    /// was rolled back, and with it maybe keys and value rows it made.
    pub fn rolled_back(&self) {
        self.keys.borrow_mut().take();
        self.values.borrow_mut().clear();
        self.seen.set(0);
    }

    /// Whether an earlier insert ran in this transaction (and so whether
    /// the values of this one are worth remembering).
    fn inserted_before(&self) -> bool {
        self.inserted.replace(true)
    }

    /// Whether value `v` of key `k` may still lack its value row, noting that
    /// it will not once the caller has added it.
    fn value_unseen(&self, k: i64, v: &str) -> bool {
        let mut values = self.values.borrow_mut();
        if values.get(&k).is_some_and(|seen| seen.contains(v)) {
            return false;
        }
        if self.seen.get() >= SEEN_VALUES {
            values.clear();
            self.seen.set(0);
        }
        values.entry(k).or_default().insert(v.to_owned());
        self.seen.set(self.seen.get() + 1);
        true
    }

    /// Holds value `v` of key `k` for its value row, unless the transaction
    /// saw it (remembered from its second insert on, `remember`: see
    /// `inserted`).
    fn hold_value(&self, remember: bool, k: i64, v: &str) {
        if !remember || self.value_unseen(k, v) {
            self.held.borrow_mut().values.push((k, v.to_owned()));
        }
    }

    /// Notes that value `v` of key `k` may have lost its value row.
    fn value_removed(&self, k: i64, v: &str) {
        if let Some(seen) = self.values.borrow_mut().get_mut(&k) {
            seen.remove(v);
        }
    }

    /// The keys this transaction read or made, for the shelf once it commits;
    /// `None` when the shelf's keys were enough.
    pub fn learned(self) -> Option<DirKeys> {
        let held = self.held.borrow();
        debug_assert!(
            held.rows.is_empty() && held.values.is_empty(),
            "index rows held past the end of their transaction"
        );
        drop(held);
        self.keys.into_inner()
    }

    /// Writes the index rows (SQLite) and text values held back. Called
    /// before anything deletes index rows or reads them in the transaction
    /// (a delete probes them), before a savepoint begins or ends, and when
    /// the transaction's writes are done ([`crate::rows::settings::DirSettings::finish`]).
    /// PostgreSQL's values go in one statement, which does not send the
    /// index rows the connection holds for its COPY.
    pub fn write_held(&self, c: &dyn Db) -> StoreResult<()> {
        let mut held = self.held.borrow_mut();
        match c.dialect() {
            Dialect::Postgres => {
                if !held.values.is_empty() {
                    // `[[k, "v"], …]`, as the statement reads it.
                    let pairs = serde_json::to_string(&held.values).map_err(|e| {
                        StoreError::internal_from("cannot write the held text values", e)
                    })?;
                    c.query_held(text::PG_VALUES_INSERT, vals![pairs])?;
                    held.values.clear();
                }
            }
            Dialect::Sqlite => {
                let n = held.values.len();
                let values = held.value_params(n);
                text::VALUES_INSERT.run(c, &values)?;
                INDEX_INSERT.run(c, &held.rows)?;
                held.rows.clear();
            }
        }
        Ok(())
    }

    /// The number of `path` for resources of `kind` in `dir`, created on first use.
    fn key(&self, c: &dyn Db, dir: &str, kind: Kind, path: &str) -> StoreResult<i64> {
        let mut keys = self.keys.borrow_mut();
        let map = match &mut *keys {
            Some(map) => map,
            None => {
                let known = self.known.as_ref().and_then(|k| k.get(&kind.code()));
                if let Some(k) = known.and_then(|paths| paths.get(path)) {
                    return Ok(*k);
                }
                keys.insert(load_keys(c, dir)?)
            }
        };
        let paths = map.entry(kind.code()).or_default();
        if let Some(k) = paths.get(path) {
            return Ok(*k);
        }
        let k = create_key(c, dir, kind, path)?;
        paths.insert(path.to_owned(), k);
        Ok(k)
    }
}

fn load_keys(c: &dyn Db, dir: &str) -> StoreResult<DirKeys> {
    // `query_held`: keys are never held inserts, so PostgreSQL need not send
    // the held rows first and a bulk load keeps batching them.
    let mut map = DirKeys::default();
    for r in c.query_held(
        "SELECT rtype, path, k FROM attr_keys WHERE directory_id = ?",
        vals![dir],
    )? {
        map.entry(r.get(0)?)
            .or_default()
            .insert(r.get(1)?, r.get(2)?);
    }
    Ok(map)
}

fn create_key(c: &dyn Db, dir: &str, kind: Kind, path: &str) -> StoreResult<i64> {
    let params = vals![dir, kind.code(), path];
    // `query_held`: the key row refers to no held row, so PostgreSQL need
    // not send the held ones first (a bulk load keeps them for one COPY).
    let made = c.query_held(
        "INSERT INTO attr_keys (directory_id, rtype, path) VALUES (?, ?, ?)
         ON CONFLICT DO NOTHING RETURNING k",
        params,
    )?;
    if let Some(row) = made.first() {
        return row.get(0);
    }
    // Another transaction made it first (PostgreSQL waited for it to commit).
    c.query_held(
        "SELECT k FROM attr_keys WHERE directory_id = ? AND rtype = ? AND path = ?",
        params,
    )?
    .first()
    .map(|r| r.get(0))
    .transpose()?
    .ok_or_else(|| StoreError::internal(format!("attribute key {path} vanished")))
}

const INSERT: &str = "INSERT INTO attr_index (k, v, r, e) VALUES (?, ?, ?, ?)";
const DELETE: &str = "DELETE FROM attr_index WHERE k = ? AND v = ? AND r = ? AND e = ?";

/// The entries of a document of `kind`.
pub fn entries_of(reg: &SchemaRegistry, kind: Kind, doc: &Value) -> StoreResult<Vec<Entry>> {
    let rt = reg
        .resource_type(kind.name())
        .ok_or_else(|| StoreError::internal(format!("no {} resource type", kind.name())))?;
    Ok(entries::entries(reg, rt, doc))
}

/// Inserts entries of resource `r`, and notes their text values (see
/// [`text`]). PostgreSQL holds the rows and sends them by COPY; SQLite
/// inserts a resource's entries (and its text values) a few statements at
/// a time ([`RowsInsert`]). Both hold the values the transaction has not
/// seen to until [`IndexMemo::write_held`].
pub fn insert(
    c: &dyn Db,
    keys: &IndexMemo,
    dir: &str,
    kind: Kind,
    r: i64,
    list: &[Entry],
) -> StoreResult<()> {
    let remember = keys.inserted_before();
    match c.dialect() {
        Dialect::Postgres => {
            for en in list {
                let k = keys.key(c, dir, kind, &en.path)?;
                c.insert_later(INSERT, vals![k, en.v.as_str(), r, en.e])?;
                if en.text {
                    keys.hold_value(remember, k, &en.v);
                }
            }
            Ok(())
        }
        Dialect::Sqlite => {
            for en in list {
                let k = keys.key(c, dir, kind, &en.path)?;
                if en.text {
                    keys.hold_value(remember, k, &en.v);
                }
                keys.held.borrow_mut().rows.extend([
                    Val::Int(k),
                    Val::from(en.v.as_str()),
                    Val::Int(r),
                    Val::Int(en.e),
                ]);
            }
            let mut held = keys.held.borrow_mut();
            let full = held.values.len() - held.values.len() % RowsInsert::MOST;
            if full > 0 {
                let mut values = held.value_params(full);
                text::VALUES_INSERT.run_full(c, &mut values)?;
            }
            INDEX_INSERT.run_full(c, &mut held.rows)
        }
    }
}

/// One INSERT of many rows, in statements of 16, 8, 4, 2 or 1 rows: most
/// of what a one-row INSERT costs SQLite is the statement, not the row,
/// and five sizes keep the prepared statements few.
pub struct RowsInsert {
    width: usize,
    texts: [String; 5],
}

impl RowsInsert {
    /// The most rows a statement holds.
    pub const MOST: usize = 16;

    /// `head` up to `VALUES`, a row of `width` placeholders, then `tail`.
    pub fn new(head: &str, width: usize, tail: &str) -> Self {
        let row = format!("({})", vec!["?"; width].join(", "));
        let texts = [1, 2, 4, 8, Self::MOST]
            .map(|n| format!("{head} {}{tail}", vec![row.as_str(); n].join(", ")));
        RowsInsert { width, texts }
    }

    /// Inserts the rows of `params` that fill statements of [`Self::MOST`]
    /// and removes them, leaving the rest for later.
    pub fn run_full(&self, c: &dyn Db, params: &mut Vec<Val>) -> StoreResult<()> {
        let full = self.width * Self::MOST;
        let whole = params.len() - params.len() % full;
        for chunk in params[..whole].chunks(full) {
            c.insert_later(&self.texts[4], chunk)?;
        }
        params.drain(..whole);
        Ok(())
    }

    /// Inserts the rows whose parameters `params` holds, one after another.
    pub fn run(&self, c: &dyn Db, params: &[Val]) -> StoreResult<()> {
        let mut rest = params;
        while rest.len() >= self.width {
            let rows = (rest.len() / self.width).min(Self::MOST);
            let size = rows.ilog2() as usize;
            let (now, later) = rest.split_at(self.width << size);
            c.insert_later(&self.texts[size], now)?;
            rest = later;
        }
        Ok(())
    }
}

/// `OR IGNORE`, though the rows are new: a statement of several rows that
/// could abort half way needs a statement journal, and releasing it made
/// SQLite's savepoint code 80% of the writer's time in a large `/Bulk`
/// transaction. With every conflict ignored nothing can abort.
static INDEX_INSERT: std::sync::LazyLock<RowsInsert> = std::sync::LazyLock::new(|| {
    RowsInsert::new(
        "INSERT OR IGNORE INTO attr_index (k, v, r, e) VALUES",
        4,
        "",
    )
});

/// Deletes entries of resource `r`, each by its primary key.
pub fn remove(
    c: &dyn Db,
    keys: &IndexMemo,
    dir: &str,
    kind: Kind,
    r: i64,
    list: &[Entry],
) -> StoreResult<()> {
    keys.write_held(c)?;
    for en in list {
        let k = keys.key(c, dir, kind, &en.path)?;
        c.exec(DELETE, vals![k, en.v.as_str(), r, en.e])?;
        if en.text {
            text::remove(c, k, &en.v)?;
            keys.value_removed(k, &en.v);
        }
    }
    Ok(())
}

/// The entries `old` has and `new` lacks, and those `new` has and `old`
/// lacks; both lists are sorted (as [`entries::entries`] returns them).
pub fn difference(old: &[Entry], new: &[Entry]) -> (Vec<Entry>, Vec<Entry>) {
    let (mut gone, mut added) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                gone.push(a.clone());
                i += 1;
            }
            (Some(_), Some(b)) | (None, Some(b)) => {
                added.push(b.clone());
                j += 1;
            }
            (Some(a), None) => {
                gone.push(a.clone());
                i += 1;
            }
            (None, None) => break,
        }
    }
    (gone, added)
}

/// Deletes the index rows of a directory's resources (its keys go with the
/// directory by ON DELETE CASCADE; the index rows have no foreign key, which
/// would cost an index by resource).
pub fn delete_directory(c: &dyn Db, dir: &str) -> StoreResult<()> {
    text::delete_directory(c, dir)?;
    c.exec(
        "DELETE FROM attr_index WHERE k IN (SELECT k FROM attr_keys WHERE directory_id = ?)",
        vals![dir],
    )?;
    Ok(())
}

/// A fingerprint of everything [`entries`] depends on: the format and the
/// definitions of every attribute of every resource type.
pub fn fingerprint(reg: &SchemaRegistry) -> i64 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |s: &str| {
        for b in s.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&FORMAT.to_string());
    fn def(eat: &mut dyn FnMut(&str), a: &AttributeDef) {
        eat(&a.name);
        eat(a.ty.as_str());
        eat(if a.case_exact { "exact" } else { "fold" });
        eat(a.returned.as_str());
        for s in &a.sub_attributes {
            def(eat, s);
        }
        eat("end");
    }
    for rt in reg.resource_types() {
        eat(&rt.name);
        for schema in std::iter::once(reg.core_schema(rt)).chain(reg.extensions(rt)) {
            eat(&schema.id);
            for a in &schema.attributes {
                def(&mut eat, a);
            }
        }
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// Rebuilds the index when it was built for other schemas (or never, as
/// after the migration that created it). Runs inside the caller's
/// transaction. Returns how many resources a rebuild indexed, `None` when
/// the index was up to date.
pub fn ensure(c: &dyn Db, reg: &SchemaRegistry) -> StoreResult<Option<u64>> {
    let want = fingerprint(reg);
    let have: Option<i64> = crate::db::scalar(
        c,
        "SELECT value FROM store_meta WHERE key = ?",
        vals![FINGERPRINT_KEY],
    )?;
    if have == Some(want) {
        let started = Instant::now();
        if text::fill(c, reg)? {
            tracing::info!(
                took_s = started.elapsed().as_secs(),
                "filled the values substring search reads from the attribute index"
            );
        }
        return Ok(None);
    }
    let indexed = rebuild(c, reg)?;
    c.exec(
        "DELETE FROM store_meta WHERE key = ?",
        vals![FINGERPRINT_KEY],
    )?;
    c.exec(
        "INSERT INTO store_meta (key, value) VALUES (?, ?)",
        vals![FINGERPRINT_KEY, want],
    )?;
    Ok(Some(indexed))
}

/// Builds the whole index anew from the documents, in pages of resources;
/// returns how many it indexed.
fn rebuild(c: &dyn Db, reg: &SchemaRegistry) -> StoreResult<u64> {
    text::clear(c)?;
    c.exec("DELETE FROM attr_index", &[])?;
    let total: u64 = crate::db::scalar::<i64>(c, "SELECT count(*) FROM resources", &[])?
        .unwrap_or(0)
        .max(0)
        .unsigned_abs();
    if total > 0 {
        // The server answers nothing meanwhile: minutes at a million users.
        tracing::info!(
            resources = total,
            "rebuilding the attribute index for the configured schemas; serving starts when it is done"
        );
    }
    let mut progress = Progress::new(total, Instant::now(), PROGRESS_EVERY);
    let mut caches: HashMap<String, IndexMemo> = HashMap::new();
    let mut after = i64::MIN;
    let mut indexed = 0;
    loop {
        let rows = c.query(
            "SELECT r, directory_id, rtype, doc FROM resources WHERE r > ? ORDER BY r LIMIT 1000",
            vals![after],
        )?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.get(0)?;
        indexed += rows.len() as u64;
        for row in rows {
            let r: i64 = row.get(0)?;
            let dir: String = row.get(1)?;
            let code: i64 = row.get(2)?;
            let kind = Kind::from_code(code)
                .ok_or_else(|| StoreError::internal(format!("unknown resource type {code}")))?;
            let doc: Value = serde_json::from_str(&row.get::<String>(3)?)?;
            let list = entries_of(reg, kind, &doc)?;
            let keys = caches.entry(dir.clone()).or_default();
            insert(c, keys, &dir, kind, r, &list)?;
        }
        for keys in caches.values() {
            keys.write_held(c)?;
        }
        if text::due(c, text::FLUSH_ROWS)? {
            text::flush(c)?;
        }
        if let Some(eta) = progress.report(indexed, Instant::now()) {
            tracing::info!(
                resources = indexed,
                of = total,
                left_s = eta.as_secs(),
                "rebuilding the attribute index"
            );
        }
    }
    if indexed > 0 {
        tracing::info!(
            resources = indexed,
            took_s = progress.started.elapsed().as_secs(),
            "rebuilt the attribute index for the configured schemas"
        );
    }
    Ok(indexed)
}

/// How often a rebuild reports its progress in the log.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// When a long rebuild tells the log how far it is, and how long it has
/// left at the pace so far.
struct Progress {
    total: u64,
    started: Instant,
    last: Instant,
    every: Duration,
}

impl Progress {
    fn new(total: u64, now: Instant, every: Duration) -> Self {
        Progress {
            total,
            started: now,
            last: now,
            every,
        }
    }

    /// The time left when a report is due at `now`, with `done` resources
    /// indexed; `None` until `every` has passed since the last report.
    fn report(&mut self, done: u64, now: Instant) -> Option<Duration> {
        if done == 0 || now.duration_since(self.last) < self.every {
            return None;
        }
        self.last = now;
        let left = self.total.saturating_sub(done);
        let per = now.duration_since(self.started).as_secs_f64() / done as f64;
        Some(Duration::from_secs_f64(per * left as f64))
    }
}

/// The number a new resource gets: SQLite's writer is alone, so the next
/// after the greatest; PostgreSQL connections take blocks from a sequence
/// (`Db::next_resource_number`).
pub fn next_number_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "SELECT COALESCE(MAX(r), 0) + 1 FROM resources",
        Dialect::Postgres => "SELECT nextval('resource_numbers')",
    }
}

/// The schema change that adds resource numbers, the key table and the
/// index (SQLite version 14, PostgreSQL version 12). The index is filled by
/// [`ensure`] when the store opens, with the schemas it runs with.
pub fn migration(dialect: Dialect) -> String {
    match dialect {
        // `r` is a column of its own, not the rowid: VACUUM may renumber
        // implicit rowids, and index rows name resources by `r`.
        Dialect::Sqlite => "
            ALTER TABLE resources ADD COLUMN r INTEGER;
            UPDATE resources SET r = rowid;
            CREATE UNIQUE INDEX resources_number ON resources(r);
            CREATE TABLE attr_keys (
                k             INTEGER PRIMARY KEY,
                directory_id  TEXT NOT NULL REFERENCES directories(id) ON DELETE CASCADE,
                rtype         INTEGER NOT NULL,
                path          TEXT NOT NULL
            );
            CREATE UNIQUE INDEX attr_keys_path ON attr_keys(directory_id, rtype, path);
            CREATE TABLE attr_index (
                k  INTEGER NOT NULL,
                v  TEXT NOT NULL,
                r  INTEGER NOT NULL,
                e  INTEGER NOT NULL,
                PRIMARY KEY (k, v, r, e)
            ) WITHOUT ROWID;"
            .to_owned(),
        // Columns ordered for alignment (no padding between them); the
        // B-tree is what lookups read.
        Dialect::Postgres => format!(
            "CREATE SEQUENCE resource_numbers INCREMENT BY {NUMBER_BLOCK};
             ALTER TABLE resources ADD COLUMN r BIGINT;
             UPDATE resources SET r = n.n
                 FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM resources) n
                 WHERE resources.id = n.id;
             SELECT setval('resource_numbers', (SELECT COALESCE(MAX(r), 0) + 1 FROM resources), false);
             ALTER TABLE resources ALTER COLUMN r SET NOT NULL;
             CREATE UNIQUE INDEX resources_number ON resources(r);
             CREATE TABLE attr_keys (
                 k             INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                 directory_id  TEXT COLLATE \"C\" NOT NULL REFERENCES directories(id) ON DELETE CASCADE,
                 rtype         BIGINT NOT NULL,
                 path          TEXT COLLATE \"C\" NOT NULL
             );
             CREATE UNIQUE INDEX attr_keys_path ON attr_keys(directory_id, rtype, path);
             CREATE TABLE attr_index (
                 k  INTEGER NOT NULL,
                 e  INTEGER NOT NULL,
                 r  BIGINT NOT NULL,
                 v  TEXT COLLATE \"C\" NOT NULL
             );
             CREATE INDEX attr_index_lookup ON attr_index(k, v, r, e);"
        ),
    }
}

/// Block size of PostgreSQL's `resource_numbers` sequence (its increment).
pub const NUMBER_BLOCK: i64 = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuild_reports_every_interval_with_the_time_left_at_its_pace() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut p = Progress::new(1_000, start, Duration::from_secs(10));
        assert_eq!(p.report(100, at(5)), None, "before the interval");
        // 250 in 10 s: 750 left take 30 s.
        assert_eq!(p.report(250, at(10)), Some(Duration::from_secs(30)));
        assert_eq!(
            p.report(300, at(15)),
            None,
            "the interval counts from the last report"
        );
        assert_eq!(p.report(1_000, at(20)), Some(Duration::ZERO));
        assert_eq!(p.report(0, at(40)), None, "no pace before the first page");
    }

    fn en(path: &str, v: &str, e: i64) -> Entry {
        Entry {
            path: path.into(),
            v: v.into(),
            e,
            text: true,
        }
    }

    #[test]
    fn an_update_writes_only_what_changed() {
        let old = vec![en("a", "1", 0), en("b", "x", 0), en("c", "y", 1)];
        let new = vec![en("a", "1", 0), en("b", "z", 0), en("d", "q", 0)];
        let (gone, added) = difference(&old, &new);
        assert_eq!(gone, vec![en("b", "x", 0), en("c", "y", 1)]);
        assert_eq!(added, vec![en("b", "z", 0), en("d", "q", 0)]);
        let (gone, added) = difference(&old, &old);
        assert!(gone.is_empty() && added.is_empty());
    }

    #[test]
    fn rows_inserts_insert_every_row_in_few_statements() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a INTEGER, b TEXT)")
            .unwrap();
        let insert = RowsInsert::new("INSERT INTO t (a, b) VALUES", 2, "");
        for n in [0, 1, 2, 3, 15, 16, 17, 23, 40] {
            c.execute_batch("DELETE FROM t").unwrap();
            let params: Vec<Val> = (0..n)
                .flat_map(|i| [Val::Int(i), Val::from(format!("v{i}"))])
                .collect();
            insert.run(&c, &params).unwrap();
            let rows: Vec<(i64, String)> = c
                .prepare("SELECT a, b FROM t ORDER BY a")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let want: Vec<(i64, String)> = (0..n).map(|i| (i, format!("v{i}"))).collect();
            assert_eq!(rows, want, "{n} rows");
        }
        assert_eq!(
            insert.texts[2],
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?), (?, ?)"
        );
    }

    #[test]
    fn fingerprints_follow_the_schemas() {
        let a = SchemaRegistry::core();
        assert_eq!(fingerprint(&a), fingerprint(&SchemaRegistry::core()));
        let mut b = SchemaRegistry::core();
        let ext = roster_scim::schema::Schema {
            id: "urn:x:custom:2.0:User".into(),
            name: "Custom".into(),
            description: String::new(),
            attributes: vec![AttributeDef::new(
                "badge",
                roster_scim::schema::AttrType::String,
            )],
        };
        b.add_extension(ext, "User", false).unwrap();
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}
