//! Opening connections: pragmas, SQL functions and the schema migration.

use crate::error::DbResultExt;
use std::path::Path;

use roster_scim::values::{datetime_key, fold, parse_datetime};
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};

use super::durable::Horizon;
use crate::sql::compile::instant_key;
use crate::{StoreError, StoreResult};

/// The schema version (`PRAGMA user_version`) this build creates and reads;
/// a database with a higher one belongs to a newer Roster.
pub const SCHEMA_VERSION: i64 = 20;
const SCHEMA: &str = include_str!("schema.sql");
/// Version 7: how deliveries to an endpoint are shaped (NULL max_in_flight:
/// the setting), and how far a dispatcher may have sent.
const WEBHOOK_DELIVERY_OPTIONS: &str =
    "ALTER TABLE webhook_endpoints ADD COLUMN max_in_flight INTEGER;
     ALTER TABLE webhook_endpoints ADD COLUMN batch_max_events INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE webhook_endpoints ADD COLUMN batch_max_wait_ms INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE webhook_endpoints ADD COLUMN sent_through INTEGER NOT NULL DEFAULT 0;";

/// Version 8: what an admin key may do (`read_only`; `directories`, a JSON
/// array of ids, NULL for all), when it last got a new secret, and the audit
/// log (`details` is JSON; never a secret).
const AUDIT_AND_KEY_SCOPES: &str = "
    ALTER TABLE admin_keys ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE admin_keys ADD COLUMN directories TEXT;
    ALTER TABLE admin_keys ADD COLUMN rotated_at INTEGER;
    CREATE TABLE audit_log (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        at            INTEGER NOT NULL,
        actor         TEXT NOT NULL,
        action        TEXT NOT NULL,
        target_type   TEXT NOT NULL,
        target_id     TEXT NOT NULL,
        directory_id  TEXT,
        details       TEXT NOT NULL
    );
    CREATE INDEX audit_log_target ON audit_log(target_id, seq);
    CREATE INDEX audit_log_actor ON audit_log(actor, seq);";

pub fn open_writer(path: &Path, horizon: &Horizon) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    // The cache is 16 MiB, not more: every COMMIT that split a b-tree page
    // scans the writer's whole page cache (pcache1TruncateUnsafe, because
    // SQLite's balance swaps page numbers through the pending-byte page),
    // which took 9% of the server's CPU at 16 clients with 64 MiB. Pages it
    // misses come from the OS page cache.
    // NORMAL: COMMIT does not wait for the disk; the sync thread (`durable`)
    // syncs the WAL before any reply leaves, so an acknowledged write still
    // survives power loss, while the writer goes on with the next batch.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -16384;
         PRAGMA temp_store = MEMORY;",
    )
    .db()?;
    register_functions(&conn, horizon)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

pub fn open_reader(path: &Path, horizon: &Horizon) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| open_error(path, e))?;
    // 4 MiB of cache, not more. SQLite empties a reader's cache whenever
    // another connection has committed since its last read, which under
    // writes is nearly every time, so the cache mostly holds the pages of one
    // read transaction, and pages it misses come from the OS page cache. At
    // 32 MiB, four readers kept 26 MiB more resident after the loadgen's
    // `name.familyName sw` scans (44 → 70 MiB), with no measurable gain in
    // lookup or paging latency, and the soak's memory crept up as each
    // reader's largest transaction grew (docs/benchmarks.md, "4 MiB reader caches"). It
    // also caps a sort held in memory before SQLite spills it to a file.
    conn.execute_batch(
        "PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -4096;
         PRAGMA query_only = ON;",
    )
    .db()?;
    register_functions(&conn, horizon)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

fn open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::internal_from(
        format!(
            "cannot open the SQLite database {} (check that the directory exists and is writable)",
            path.display()
        ),
        e,
    )
}

/// `scim_fold(text)` and `scim_ts(text)`: the Rust definitions of case folding and
/// dateTime ordering, so SQL filters agree with the in-memory evaluator.
/// `roster_event_horizon()`: the highest event sequence already on disk
/// (see `durable`), read anew by every statement.
pub(crate) fn register_functions(conn: &Connection, horizon: &Horizon) -> StoreResult<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("scim_fold", 1, flags, |ctx| {
        Ok(match ctx.get_raw(0).as_str_or_null() {
            Ok(Some(s)) => Some(fold(s)),
            _ => None,
        })
    })
    .db()?;
    conn.create_scalar_function("scim_ts", 1, flags, |ctx| {
        Ok(match ctx.get_raw(0).as_str_or_null() {
            Ok(Some(s)) => parse_datetime(s).map(|t| instant_key(datetime_key(t))),
            _ => None,
        })
    })
    .db()?;
    // The FTS5 query of a substring search (see `crate::index::text`).
    conn.create_scalar_function("roster_text_match", 2, flags, |ctx| {
        let k: Option<i64> = ctx.get(0)?;
        let phrase: String = ctx.get(1)?;
        Ok(crate::index::text::match_query(k, &phrase))
    })
    .db()?;
    // The text of a trigram row, as pending values move into FTS5.
    conn.create_scalar_function("roster_text_row", 2, flags, |ctx| {
        let k: i64 = ctx.get(0)?;
        let v: String = ctx.get(1)?;
        Ok(crate::index::text::row_text(k, &v))
    })
    .db()?;
    let horizon = horizon.clone();
    conn.create_scalar_function(
        "roster_event_horizon",
        0,
        FunctionFlags::SQLITE_UTF8,
        move |_| Ok(horizon.get()),
    )
    .db()?;
    Ok(())
}

/// Creates the schema in an empty database; refuses a newer one.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).db()?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::internal(format!(
            "the database has schema version {version}, newer than this Roster ({SCHEMA_VERSION}); upgrade Roster"
        )));
    }
    if version < 1 {
        tx.execute_batch(SCHEMA).db()?;
    }
    if version < 2 {
        // With id in the key, `externalId eq` rows come out in id order, so
        // list's ORDER BY r.id is served by this index; without it SQLite
        // prefers walking resources_by_type to skip the sort, scanning the directory.
        tx.execute_batch(
            "DROP INDEX resources_external;
             CREATE INDEX resources_external ON resources(directory_id, rtype, external_id, id)
                 WHERE external_id IS NOT NULL;",
        )
        .db()?;
    }
    if version < 3 {
        // How a directory reports deactivated users: 'update' or 'delete'.
        tx.execute_batch(
            "ALTER TABLE directories ADD COLUMN deactivation TEXT NOT NULL DEFAULT 'update';",
        )
        .db()?;
    }
    if version < 4 {
        // A directory's custom-attribute mapping (JSON: output key -> SCIM
        // attribute path); NULL: the Enterprise User attributes.
        tx.execute_batch("ALTER TABLE directories ADD COLUMN custom_attributes TEXT;")
            .db()?;
    }
    if version < 5 {
        // Who owns a directory (the app's organization id, a domain) and which
        // provider feeds it; directory_organizations outlives the directory so
        // that its events stay findable by organization.
        tx.execute_batch(
            "ALTER TABLE directories ADD COLUMN organization_id TEXT;
             ALTER TABLE directories ADD COLUMN domain TEXT;
             ALTER TABLE directories ADD COLUMN provider TEXT;
             ALTER TABLE directories ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
             UPDATE directories SET updated_at = created_at;
             CREATE INDEX directories_organization ON directories(organization_id, id)
                 WHERE organization_id IS NOT NULL;
             CREATE TABLE directory_organizations (
                 directory_id     TEXT PRIMARY KEY,
                 organization_id  TEXT NOT NULL
             ) WITHOUT ROWID;
             CREATE INDEX directory_organizations_org ON directory_organizations(organization_id);",
        )
        .db()?;
    }
    if version < 6 {
        // A webhook endpoint's payload and signature format ('roster' or
        // 'workos'), and when its settings last changed (NULL: never since
        // it was created).
        tx.execute_batch(
            "ALTER TABLE webhook_endpoints ADD COLUMN format TEXT NOT NULL DEFAULT 'roster';
             ALTER TABLE webhook_endpoints ADD COLUMN updated_at INTEGER;",
        )
        .db()?;
    }
    if version < 7 {
        tx.execute_batch(WEBHOOK_DELIVERY_OPTIONS).db()?;
    }
    if version < 8 {
        // Admin key scopes and rotation, and the audit log.
        tx.execute_batch(AUDIT_AND_KEY_SCOPES).db()?;
    }
    if version < 9 {
        tx.execute_batch(crate::rows::google::MIGRATION).db()?;
    }
    if version < 10 {
        tx.execute_batch(crate::rows::web_sessions::MIGRATION)
            .db()?;
        tx.execute_batch(crate::rows::webhooks::RESPONSE_EXCERPT)
            .db()?;
    }
    if version < 11 {
        // The provider request log, its hourly counts, and portal links.
        tx.execute_batch(&crate::rows::portal::migration(crate::db::Dialect::Sqlite))
            .db()?;
    }
    if version < 12 {
        // Google polls stage their listings here before applying them.
        tx.execute_batch(&crate::rows::google_staging::migration(
            crate::db::Dialect::Sqlite,
        ))
        .db()?;
    }
    if version < 13 {
        tx.execute_batch(crate::rows::google::POLL_STATE).db()?;
    }
    if version < 14 {
        // Resource numbers and the attribute index behind filters.
        tx.execute_batch(&crate::index::migration(crate::db::Dialect::Sqlite))
            .db()?;
    }
    if version < 15 {
        // Each directory's resource counts, kept as resources come and go.
        tx.execute_batch(&crate::rows::counts::migration(crate::db::Dialect::Sqlite))
            .db()?;
    }
    if version < 16 {
        // Substring search through the attribute index.
        tx.execute_batch(crate::index::text::SQLITE_MIGRATION)
            .db()?;
    }
    if version < 17 {
        // `attr_index` holds the folded emails.value and phoneNumbers.value
        // this table kept, and the compiler reads them there.
        tx.execute_batch("DROP TABLE IF EXISTS resource_values;")
            .db()?;
    }
    if version < 18 {
        // `meta.created` ranges, as resources_modified serves lastModified.
        tx.execute_batch(
            "CREATE INDEX resources_created ON resources(directory_id, rtype, created, id);",
        )
        .db()?;
    }
    if version < 19 {
        // One trigram row per distinct value, moved into FTS5 in batches.
        tx.execute_batch(crate::index::text::SQLITE_VALUES_MIGRATION)
            .db()?;
    }
    if version < 20 {
        // FTS5 merges its segments sixteen at a time rather than four.
        tx.execute_batch(crate::index::text::SQLITE_AUTOMERGE)
            .db()?;
    }
    if version < SCHEMA_VERSION {
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            .db()?;
    }
    tx.commit().db()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Deactivation;
    use crate::rows::settings;

    #[test]
    fn fts5_merges_sixteen_segments_at_a_time_in_new_and_upgraded_stores() {
        let automerge = |c: &Connection| -> Option<i64> {
            c.query_row(
                "SELECT v FROM attr_text_config WHERE k = 'automerge'",
                [],
                |r| r.get(0),
            )
            .ok()
        };
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        assert_eq!(automerge(&fresh), Some(16));

        let mut old = Connection::open_in_memory().unwrap();
        migrate(&mut old).unwrap();
        old.execute_batch(
            "DELETE FROM attr_text_config WHERE k = 'automerge';
             PRAGMA user_version = 19;",
        )
        .unwrap();
        assert_eq!(automerge(&old), None, "FTS5's default, as before");
        migrate(&mut old).unwrap();
        assert_eq!(automerge(&old), Some(16));
    }

    #[test]
    fn a_version_3_database_gains_custom_attributes_and_keeps_its_data() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        c.execute_batch(
            "ALTER TABLE directories ADD COLUMN deactivation TEXT NOT NULL DEFAULT 'update';
             INSERT INTO directories (id, name, created_at, deactivation) VALUES ('d', 'd', 0, 'delete');
             PRAGMA user_version = 3;",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        migrate(&mut c).unwrap();
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let s = settings::load(&c, "d", false).unwrap().unwrap();
        assert_eq!(s.deactivation, Deactivation::Delete);
        assert_eq!(s.custom_attributes, None);
    }

    #[test]
    fn admin_keys_made_before_scopes_are_full_and_the_audit_log_starts_empty() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        c.execute_batch(
            "INSERT INTO admin_keys (id, name, key_hash, created_at) VALUES ('k', 'ops', x'00', 0);
             PRAGMA user_version = 4;",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let keys = crate::rows::admin_keys::list(&c).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].scope.is_full());
        let log = crate::rows::audit::list(
            &c,
            &crate::model::AuditQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(log.is_empty());
    }

    #[test]
    fn a_version_4_database_keeps_its_webhooks_in_the_roster_format() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        c.execute_batch(
            "ALTER TABLE directories ADD COLUMN deactivation TEXT NOT NULL DEFAULT 'update';
             ALTER TABLE directories ADD COLUMN custom_attributes TEXT;
             INSERT INTO webhook_endpoints (id, url, secret, event_types, cursor, created_at)
                 VALUES ('w', 'http://h/x', 's', '[]', 0, 42);
             PRAGMA user_version = 4;",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let w = crate::rows::webhooks::get(&c, "w").unwrap().unwrap();
        assert_eq!(w.format, crate::webhooks::WebhookFormat::Roster);
        assert_eq!((w.created_at, w.updated_at), (42, 42));
    }

    /// A database from before the attribute index: the migrations drop
    /// `resource_values`, and once the index is built (as opening a store
    /// does) `emails.value eq` finds the user there.
    #[test]
    fn a_version_13_database_drops_resource_values_and_finds_emails_in_the_index() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        c.execute_batch(
            r#"INSERT INTO directories (id, name, created_at) VALUES ('d', 'd', 0);
             INSERT INTO resources (id, directory_id, rtype, name_key, display, doc, version, created, last_modified)
                 VALUES ('u1', 'd', 1, 'ann', 'ann', '{"userName": "ann", "emails": [{"value": "Ann@X.io"}]}', 1, 0, 0);
             INSERT INTO resource_values (directory_id, attr, value, resource_id)
                 VALUES ('d', 'emails.value', 'ann@x.io', 'u1');
             PRAGMA user_version = 13;"#,
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let tables: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'resource_values%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "resource_values and its indexes are gone");
        let reg = roster_scim::schema::SchemaRegistry::core();
        assert!(crate::index::ensure(&c, &reg).unwrap().is_some());
        let rt = reg.resource_type("User").unwrap();
        let f = roster_scim::filter::parse_filter(r#"emails.value eq "ANN@x.io""#).unwrap();
        let f = roster_scim::filter::check_filter(&reg, rt, &f).unwrap();
        let mut compiler = crate::sql::Compiler::new(rt, crate::model::Kind::User, "d", 1);
        let sql = format!(
            "SELECT r.id FROM resources r WHERE {}",
            compiler.filter(&f).unwrap()
        );
        let params: Vec<crate::db::Val> = compiler.params().iter().map(Into::into).collect();
        let rows = crate::db::Db::query(&c, &sql, &params).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<String>(0).unwrap(), "u1");
    }
}
