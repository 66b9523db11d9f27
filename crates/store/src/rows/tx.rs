//! [`Tx`] over a store's open transaction.

use roster_scim::schema::SchemaRegistry;

use super::resources;
use super::settings::DirSettings;
use crate::db::Db;
use crate::model::*;
use crate::now_ms;
use crate::{IdempotentReply, StoreError, StoreResult, Tx, vals};

pub struct DbTx<'c> {
    pub conn: &'c dyn Db,
    pub reg: &'c SchemaRegistry,
    pub directory: &'c str,
    /// The directory's settings, read once for the whole transaction.
    pub settings: DirSettings,
    /// A database failure inside an operation: the whole transaction must roll
    /// back, because the failed operation may have left part of its writes.
    pub poisoned: Option<StoreError>,
}

impl<'c> DbTx<'c> {
    pub fn new(conn: &'c dyn Db, reg: &'c SchemaRegistry, directory: &'c str) -> Self {
        DbTx {
            conn,
            reg,
            directory,
            settings: DirSettings::new(directory),
            poisoned: None,
        }
    }

    /// Notes a database failure; protocol errors (validation, uniqueness) stay per-operation.
    fn guard<R>(&mut self, r: StoreResult<R>) -> StoreResult<R> {
        if let Err(e @ StoreError::Internal { .. }) = &r
            && self.poisoned.is_none()
        {
            self.poisoned = Some(e.clone());
        }
        r
    }

    /// Runs one operation without a savepoint. Operations refuse before
    /// their first write (`resources`), so a refused one leaves no trace; a
    /// savepoint per operation cost SQLite more than the operation itself
    /// (60% of a bulk PATCH in `sqlite3BtreeSavepoint`) and would give
    /// PostgreSQL a subtransaction per operation. Should a refusal ever come
    /// after a write, the whole transaction rolls back rather than keep half
    /// an operation.
    fn op<R>(
        &mut self,
        f: impl FnOnce(&dyn Db, &SchemaRegistry, &DirSettings) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let before = self.conn.writes();
        let result = match f(self.conn, self.reg, &self.settings) {
            Err(e) if e.is_refusal() && self.conn.writes() != before => {
                Err(StoreError::internal_from(
                    "an operation was refused after it had written; the transaction rolls back",
                    e,
                ))
            }
            other => other,
        };
        self.guard(result)
    }
}

impl Tx for DbTx<'_> {
    fn create(&mut self, new: NewResource) -> StoreResult<Stored> {
        self.op(|c, reg, settings| resources::create(c, reg, settings, new))
    }

    fn get(&mut self, kind: Kind, id: &str) -> StoreResult<Option<Stored>> {
        resources::get(self.conn, self.directory, kind, id)
    }

    fn update(
        &mut self,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
        f: UpdateFn,
    ) -> StoreResult<Stored> {
        self.op(|c, reg, settings| resources::update(c, reg, settings, kind, id, if_match, f))
    }

    fn delete(&mut self, kind: Kind, id: &str, if_match: Option<i64>) -> StoreResult<()> {
        self.op(|c, reg, settings| resources::delete(c, reg, settings, kind, id, if_match))
    }

    fn idempotent_reply(
        &mut self,
        key: &str,
        window_ms: i64,
    ) -> StoreResult<Option<IdempotentReply>> {
        let row = self.conn.query_opt(
            "SELECT request_hash, response FROM idempotency_keys
             WHERE directory_id = ? AND key = ? AND created_at > ?",
            vals![self.directory, key, now_ms() - window_ms],
        )?;
        row.map(|mut r| {
            let response = r.take_text(1)?;
            Ok(IdempotentReply {
                request_hash: r.get(0)?,
                response: serde_json::from_str(&response)?,
            })
        })
        .transpose()
    }

    fn remember_reply(&mut self, key: &str, reply: &IdempotentReply) -> StoreResult<()> {
        // An expired entry under the same key is replaced.
        self.conn.exec(
            "INSERT INTO idempotency_keys (directory_id, key, request_hash, response, created_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (directory_id, key) DO UPDATE SET request_hash = excluded.request_hash,
                 response = excluded.response, created_at = excluded.created_at",
            vals![
                self.directory,
                key,
                &reply.request_hash,
                reply.response.to_string(),
                now_ms()
            ],
        )?;
        Ok(())
    }

    fn expect_creates(&mut self, names: &[(Kind, String)]) -> StoreResult<()> {
        let r = resources::expect_creates(self.conn, self.directory, names);
        self.guard(r)
    }

    fn begin_group(&mut self) -> StoreResult<()> {
        self.settings.index_keys().write_held(self.conn)?;
        self.conn.batch("SAVEPOINT op_group")?;
        self.settings.counts().mark();
        Ok(())
    }

    fn end_group(&mut self, keep: bool) -> StoreResult<()> {
        // Written even when the group is undone: the rollback then undoes them.
        self.settings.index_keys().write_held(self.conn)?;
        self.conn.batch(if keep {
            "RELEASE op_group"
        } else {
            "ROLLBACK TO op_group; RELEASE op_group"
        })?;
        self.settings.counts().release(keep);
        if !keep {
            self.settings.index_keys().rolled_back();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::HashSet;

    use roster_scim::schema::SchemaRegistry;
    use rusqlite::Connection;
    use serde_json::json;

    use super::*;
    use crate::db::{Dialect, Row, Val};
    use crate::events::CustomAttributes;
    use crate::model::SettingsChange;
    use crate::rows::{admin, settings};
    use crate::sqlite::conn;

    /// A connection that holds inserts as PostgreSQL's does, over SQLite,
    /// counting the statements that would send the held ones first.
    struct Holding {
        inner: Connection,
        flushes: Cell<usize>,
        settings_reads: Cell<usize>,
        keys: RefCell<HashSet<String>>,
    }

    impl Db for Holding {
        fn dialect(&self) -> Dialect {
            Dialect::Sqlite
        }
        fn exec(&self, sql: &str, params: &[Val]) -> StoreResult<u64> {
            self.flushes.set(self.flushes.get() + 1);
            self.inner.exec(sql, params)
        }
        fn query(&self, sql: &str, params: &[Val]) -> StoreResult<Vec<Row>> {
            self.flushes.set(self.flushes.get() + 1);
            self.inner.query(sql, params)
        }
        fn batch(&self, sql: &str) -> StoreResult<()> {
            self.inner.batch(sql)
        }
        fn writes(&self) -> u64 {
            self.inner.writes()
        }
        fn insert_later(&self, sql: &str, params: &[Val]) -> StoreResult<()> {
            self.inner.exec(sql, params).map(|_| ())
        }
        fn holds_inserts(&self) -> bool {
            true
        }
        fn next_resource_number(&self) -> StoreResult<i64> {
            // Held inserts are in `inner` at once, so its next number is right.
            self.inner.next_resource_number()
        }
        fn hold_key(&self, key: &str, take: bool) -> bool {
            if take {
                self.keys.borrow_mut().insert(key.to_owned())
            } else {
                self.keys.borrow().contains(key)
            }
        }
        fn query_held(&self, sql: &str, params: &[Val]) -> StoreResult<Vec<Row>> {
            if sql.contains("FROM directories") {
                self.settings_reads.set(self.settings_reads.get() + 1);
            }
            self.inner.query(sql, params)
        }
    }

    #[test]
    fn a_bulk_of_creates_reads_the_settings_once_and_keeps_inserts_held() {
        let mut c = Connection::open_in_memory().unwrap();
        conn::migrate(&mut c).unwrap();
        let reg = SchemaRegistry::core();
        let dir = admin::create_directory(&c, "d", &Default::default())
            .unwrap()
            .id;
        let mapping = CustomAttributes::parse(
            &reg,
            &json!({"dept": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}),
        )
        .unwrap();
        let change = SettingsChange {
            custom_attributes: Some(Some(mapping)),
            ..Default::default()
        };
        settings::update(&c, &crate::model::Actor::Cli, &dir, &change)
            .unwrap()
            .unwrap();
        let db = Holding {
            inner: c,
            flushes: Cell::new(0),
            settings_reads: Cell::new(0),
            keys: RefCell::new(HashSet::new()),
        };
        let mut tx = DbTx::new(&db, &reg, &dir);
        for i in 0..100 {
            tx.create(NewResource {
                kind: Kind::User,
                doc: json!({
                    "userName": format!("u{i}"),
                    "emails": [{"value": format!("u{i}@x")}],
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D"}
                }),
                members: Vec::new(),
                groups: Vec::new(),
            })
            .unwrap();
        }
        assert_eq!(db.settings_reads.get(), 1, "the mapping is read once");
        assert_eq!(
            db.flushes.get(),
            0,
            "no statement sent the held inserts early"
        );
        let data: String = db
            .inner
            .query_row(
                "SELECT data FROM events WHERE type = 'dsync.user.created' ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let data: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(data["custom_attributes"], json!({"dept": "D"}));
    }

    fn user(name: &str) -> NewResource {
        NewResource {
            kind: Kind::User,
            doc: json!({"userName": name}),
            members: Vec::new(),
            groups: Vec::new(),
        }
    }

    fn member(id: &str) -> roster_scim::members::MemberRef {
        roster_scim::members::MemberRef {
            value: id.to_owned(),
            ty: None,
        }
    }

    /// The attribute index as (path, v, resource id, e), sorted.
    fn index_rows(c: &Connection) -> Vec<(String, String, String, i64)> {
        let mut rows: Vec<(String, String, String, i64)> = c
            .query(
                "SELECT k.path, i.v, r.id, i.e FROM attr_index i
                 JOIN attr_keys k ON k.k = i.k JOIN resources r ON r.r = i.r",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get(0).unwrap(),
                    r.get(1).unwrap(),
                    r.get(2).unwrap(),
                    r.get(3).unwrap(),
                )
            })
            .collect();
        rows.sort();
        rows
    }

    #[test]
    fn index_rows_follow_creates_updates_and_deletes_exactly() {
        let (c, reg, dir) = setup();
        let mut tx = DbTx::new(&c, &reg, &dir);
        let doc = json!({
            "userName": "ann",
            "title": "Boss",
            "emails": [{"value": "A@x.io", "type": "work"}, {"value": "a@y.io", "type": "home"}],
        });
        let ann = tx
            .create(NewResource {
                kind: Kind::User,
                doc: doc.clone(),
                members: Vec::new(),
                groups: Vec::new(),
            })
            .unwrap();
        let bob = tx.create(user("bob")).unwrap();
        settle(&tx);
        let row = |p: &str, v: &str, e: i64| (p.to_owned(), v.to_owned(), ann.id.clone(), e);
        assert_eq!(
            index_rows(&c),
            vec![
                row("emails.type", "home", 1),
                row("emails.type", "work", 0),
                row("emails.value", "a@x.io", 0),
                row("emails.value", "a@y.io", 1),
                row("title", "boss", 0),
                row("userName", "ann", 0),
                ("userName".into(), "bob".into(), bob.id.clone(), 0),
            ]
        );
        assert_eq!(text_rows(&c), 7, "every text entry has its trigram row");
        // New rows wait in the pending table; a search finds them there, and
        // in FTS5 once they are moved.
        assert_eq!(pending_rows(&c), 7);
        assert_eq!(searched(&c, &dir, "title", "bos"), 1);
        crate::index::text::flush(&c).unwrap();
        assert_eq!((pending_rows(&c), text_rows(&c)), (0, 7));
        assert_eq!(searched(&c, &dir, "title", "bos"), 1);
        assert_eq!(searched(&c, &dir, "emails.value", "@y.i"), 1);
        // An unchanged document writes no index row.
        let writes = c.writes();
        let same = doc.clone();
        put(&mut tx, &ann.id, same);
        assert_eq!(c.writes(), writes);
        // A changed one: only the difference.
        let mut changed = doc.clone();
        changed["title"] = json!("Chief");
        changed["emails"][1]["type"] = json!("other");
        put(&mut tx, &ann.id, changed);
        let writes_before_rebuild = index_rows(&c);
        assert_eq!(
            writes_before_rebuild,
            vec![
                row("emails.type", "other", 1),
                row("emails.type", "work", 0),
                row("emails.value", "a@x.io", 0),
                row("emails.value", "a@y.io", 1),
                row("title", "chief", 0),
                row("userName", "ann", 0),
                ("userName".into(), "bob".into(), bob.id.clone(), 0),
            ]
        );
        // The substring search follows: the old title's trigram row is gone
        // from FTS5, the new one is pending.
        assert_eq!((pending_rows(&c), text_rows(&c)), (2, 7));
        assert_eq!(searched(&c, &dir, "title", "hie"), 1);
        assert_eq!(searched(&c, &dir, "title", "bos"), 0);
        // A pending row deleted before it moves is gone too.
        let mut again = doc.clone();
        again["title"] = json!("Chief");
        again["emails"][1]["type"] = json!("home");
        put(&mut tx, &ann.id, again);
        assert_eq!((pending_rows(&c), text_rows(&c)), (2, 7));
        assert_eq!(searched(&c, &dir, "emails.type", "oth"), 0);
        assert_eq!(searched(&c, &dir, "emails.type", "hom"), 1);
        crate::index::text::flush(&c).unwrap();
        assert_eq!(searched(&c, &dir, "emails.type", "hom"), 1);
        let mut changed = doc.clone();
        changed["title"] = json!("Chief");
        changed["emails"][1]["type"] = json!("other");
        put(&mut tx, &ann.id, changed);
        assert_eq!(index_rows(&c), writes_before_rebuild);
        // A rebuild from the documents finds exactly what was maintained.
        assert!(crate::index::ensure(&c, &reg).unwrap().is_some());
        assert!(crate::index::ensure(&c, &reg).unwrap().is_none());
        assert_eq!(index_rows(&c), writes_before_rebuild);
        assert_eq!(text_rows(&c), 7);
        assert_eq!(searched(&c, &dir, "title", "hie"), 1);
        tx.delete(Kind::User, &ann.id, None).unwrap();
        tx.delete(Kind::User, &bob.id, None).unwrap();
        let left: i64 = c
            .query_row("SELECT count(*) FROM attr_index", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
        assert_eq!(text_rows(&c), 0);
        // The directory's keys go with it.
        crate::rows::directory_api::delete(&c, &crate::model::Actor::Cli, &dir).unwrap();
        let keys: i64 = c
            .query_row("SELECT count(*) FROM attr_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(keys, 0);
    }

    /// Index rows are held and sent sixteen to a statement; what deletes or
    /// undoes rows sees the held ones, and the transaction's end writes the
    /// rest: the index ends as a rebuild from the documents makes it.
    #[test]
    fn held_index_rows_are_written_before_a_delete_a_savepoint_and_the_end() {
        let (c, reg, dir) = setup();
        let mut tx = DbTx::new(&c, &reg, &dir);
        let doc = |name: &str, title: &str| {
            json!({
                "userName": name,
                "title": title,
                "emails": [{"value": format!("{name}@w.io"), "type": "work"},
                           {"value": format!("{name}@h.io"), "type": "home"}],
            })
        };
        let mut ids = Vec::new();
        for name in ["ann", "bob", "cat", "dan", "eve"] {
            let new = NewResource {
                kind: Kind::User,
                doc: doc(name, "Engineer"),
                members: Vec::new(),
                groups: Vec::new(),
            };
            ids.push(tx.create(new).unwrap().id);
        }
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM attr_index", [], |r| r.get(0))
                .unwrap()
        };
        // Six rows a user: one statement of sixteen sent, fourteen held.
        assert_eq!(count(&c), 16);
        // eve's rows are all held: her update deletes them first.
        put(&mut tx, &ids[4], doc("eve", "Manager"));
        assert_eq!(count(&c), 30);
        tx.begin_group().unwrap();
        tx.create(user("zed")).unwrap();
        tx.end_group(false).unwrap();
        tx.settings.finish(&c).unwrap();
        let maintained = index_rows(&c);
        assert_eq!(maintained.len(), 30);
        assert!(
            !maintained
                .iter()
                .any(|r| r.1 == "zed" || r.1 == "engineer" && r.2 == ids[4])
        );
        assert!(crate::index::ensure(&c, &reg).unwrap().is_some());
        assert_eq!(index_rows(&c), maintained);
    }

    #[test]
    fn pending_trigram_rows_move_at_the_threshold_and_new_ones_number_after_them() {
        use crate::index::text;
        let (c, reg, dir) = setup();
        let mut tx = DbTx::new(&c, &reg, &dir);
        let alpha = tx.create(user("alpha")).unwrap();
        tx.create(user("bravo")).unwrap();
        tx.create(user("charlie")).unwrap();
        settle(&tx);
        assert_eq!(pending_rows(&c), 3);
        assert!(!text::due(&c, 4).unwrap());
        assert!(text::due(&c, 3).unwrap());
        text::flush(&c).unwrap();
        assert_eq!((pending_rows(&c), text_rows(&c)), (0, 3));
        let moved: i64 = c
            .query_row(
                &format!("SELECT {}", crate::index::text::MOVED_SQL),
                [],
                |r| r.get(0),
            )
            .unwrap();
        tx.create(user("delta")).unwrap();
        settle(&tx);
        let next: i64 = c
            .query_row(
                &format!("SELECT t FROM attr_text_values WHERE t > {moved}"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(next > moved, "a new row is numbered after the moved ones");
        // A moved row is deleted from FTS5, a pending one from its table.
        tx.delete(Kind::User, &alpha.id, None).unwrap();
        assert_eq!((pending_rows(&c), text_rows(&c)), (1, 3));
        assert_eq!(searched(&c, &dir, "userName", "lph"), 0);
        assert_eq!(searched(&c, &dir, "userName", "rav"), 1);
        assert_eq!(searched(&c, &dir, "userName", "elt"), 1);
        assert!(text::due(&c, 1).unwrap());
        text::flush(&c).unwrap();
        assert_eq!((pending_rows(&c), text_rows(&c)), (0, 3));
        assert_eq!(searched(&c, &dir, "userName", "elt"), 1);
    }

    #[test]
    fn a_shared_value_has_one_trigram_row_until_its_last_holder_goes() {
        use crate::index::text;
        let (c, reg, dir) = setup();
        let mut tx = DbTx::new(&c, &reg, &dir);
        let titled = |name: &str| NewResource {
            kind: Kind::User,
            doc: json!({"userName": name, "title": "Engineer"}),
            members: Vec::new(),
            groups: Vec::new(),
        };
        let ann = tx.create(titled("ann")).unwrap();
        let bob = tx.create(titled("bob")).unwrap();
        settle(&tx);
        // ann, bob, engineer.
        assert_eq!(text_rows(&c), 3);
        assert_eq!(searched(&c, &dir, "title", "gine"), 2);
        text::flush(&c).unwrap();
        let cat = tx.create(titled("cat")).unwrap();
        settle(&tx);
        assert_eq!((pending_rows(&c), text_rows(&c)), (1, 4));
        assert_eq!(searched(&c, &dir, "title", "gine"), 3);
        tx.delete(Kind::User, &ann.id, None).unwrap();
        tx.delete(Kind::User, &bob.id, None).unwrap();
        assert_eq!(searched(&c, &dir, "title", "gine"), 1);
        assert_eq!(text_rows(&c), 2, "the title stays while a user holds it");
        tx.delete(Kind::User, &cat.id, None).unwrap();
        assert_eq!(text_rows(&c), 0);
        assert_eq!(searched(&c, &dir, "title", "gine"), 0);
        // The transaction probes a shared value's row once, but a row it
        // saw go is made again.
        tx.create(titled("dan")).unwrap();
        settle(&tx);
        assert_eq!(text_rows(&c), 2);
        assert_eq!(searched(&c, &dir, "title", "gine"), 1);
    }

    /// Writes the index rows the transaction holds, as its end would.
    fn settle(tx: &DbTx<'_>) {
        tx.settings.index_keys().write_held(tx.conn).unwrap();
    }

    /// Replaces a user's document, and writes its index rows.
    fn put(tx: &mut DbTx<'_>, id: &str, doc: serde_json::Value) {
        tx.update(
            Kind::User,
            id,
            None,
            Box::new(move |_| {
                Ok(Update {
                    doc,
                    members: Vec::new(),
                    groups: None,
                })
            }),
        )
        .unwrap();
        settle(tx);
    }

    /// Trigram rows, in FTS5 and pending; every value row has one.
    fn text_rows(c: &Connection) -> i64 {
        // A contentless table cannot be scanned: FTS5 keeps its row count
        // as the first varint of its averages record (`id = 1`).
        let averages: Option<Vec<u8>> = c
            .query_row("SELECT block FROM attr_text_data WHERE id = 1", [], |r| {
                r.get(0)
            })
            .ok();
        let mut moved = 0i64;
        for b in averages.unwrap_or_default() {
            moved = (moved << 7) | i64::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
        let n = moved + pending_rows(c);
        let values: i64 = c
            .query_row("SELECT count(*) FROM attr_text_values", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, values, "one trigram row per value");
        n
    }

    /// Values not yet moved into FTS5.
    fn pending_rows(c: &Connection) -> i64 {
        c.query_row(
            &format!(
                "SELECT count(*) FROM attr_text_values WHERE t > {}",
                crate::index::text::MOVED_SQL
            ),
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// Resources whose `path` contains `part`, by the trigram table and
    /// the pending values.
    fn searched(c: &Connection, dir: &str, path: &str, part: &str) -> i64 {
        let k: i64 = c
            .query_row(
                "SELECT k FROM attr_keys WHERE directory_id = ?1 AND path = ?2",
                rusqlite::params![dir, path],
                |r| r.get(0),
            )
            .unwrap();
        c.query_row(
            &format!(
                "SELECT count(*) FROM attr_text_values tv JOIN attr_index i ON i.k = tv.k AND i.v = tv.v
                 WHERE tv.t IN (SELECT rowid FROM attr_text WHERE attr_text MATCH ?1)
                    OR (tv.t > {} AND tv.k = ?2 AND instr(tv.v, ?3) > 0)",
                crate::index::text::MOVED_SQL
            ),
            rusqlite::params![crate::index::text::match_query(Some(k), part), k, part],
            |r| r.get(0),
        )
        .unwrap()
    }

    fn setup() -> (Connection, SchemaRegistry, String) {
        let mut c = Connection::open_in_memory().unwrap();
        conn::register_functions(&c, &Default::default()).unwrap();
        conn::migrate(&mut c).unwrap();
        let dir = admin::create_directory(&c, "d", &Default::default())
            .unwrap()
            .id;
        (c, SchemaRegistry::core(), dir)
    }

    #[test]
    fn a_refused_update_wrote_nothing_before_it_was_refused() {
        use roster_scim::members::MemberOp;
        let (c, reg, dir) = setup();
        let mut tx = DbTx::new(&c, &reg, &dir);
        let alice = tx.create(user("alice")).unwrap().id;
        let bob = tx.create(user("bob")).unwrap().id;
        let group = tx
            .create(NewResource {
                kind: Kind::Group,
                doc: json!({"displayName": "G"}),
                members: Vec::new(),
                groups: Vec::new(),
            })
            .unwrap();
        let writes = c.writes();
        // The first add is fine, the second names no one: nothing of either stays.
        let doc = group.doc.clone();
        let r = tx.update(
            Kind::Group,
            &group.id,
            None,
            Box::new(move |_| {
                Ok(Update {
                    doc,
                    members: vec![
                        MemberOp::Add(vec![member(&alice)]),
                        MemberOp::Add(vec![member("nobody")]),
                    ],
                    groups: None,
                })
            }),
        );
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
        // A user renamed to a taken name while joining a group: refused whole.
        let gid = group.id.clone();
        let r = tx.update(
            Kind::User,
            &bob,
            None,
            Box::new(move |_| {
                Ok(Update {
                    doc: json!({"userName": "ALICE"}),
                    members: Vec::new(),
                    groups: Some(vec![gid]),
                })
            }),
        );
        match r {
            Err(StoreError::Conflict { attribute, .. }) => assert_eq!(attribute, "userName"),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.writes(), writes, "no row was written by a refused update");
        assert!(
            tx.poisoned.is_none(),
            "refusals leave the transaction usable"
        );
    }

    #[test]
    fn a_refusal_after_a_write_rolls_the_transaction_back() {
        let (c, reg, dir) = setup();
        let mut tx = DbTx::new(&c, &reg, &dir);
        let r: StoreResult<()> = tx.op(|c, _, _| {
            c.exec(
                "UPDATE directories SET name = 'x' WHERE id = ?",
                vals![&dir],
            )?;
            Err(roster_scim::ScimError::invalid_value("late").into())
        });
        assert!(matches!(r, Err(StoreError::Internal { .. })), "{r:?}");
        assert!(
            tx.poisoned.is_some(),
            "the whole transaction must roll back"
        );
    }
}
