//! Substring search (`co`, `ew`) over the text entries of `attr_index`.
//!
//! Both stores keep each distinct text value of an attribute once, in
//! `attr_text_values` (`k`, `v`), beside the entries holding it, and search
//! those values: a search finds the matching values of one key, then the
//! resources holding them through `attr_index`'s `(k, v)` index. A value
//! shared by many resources (`title`, `emails.type`, `schemas`, a
//! department) is indexed for search once, not once per resource: in a
//! typical user, half the text values and most of their characters are
//! such values, and a search for a pattern of a common value finds one
//! value row, not a quarter of the directory's entries. The value row is
//! added with the first entry holding the value (a probe of its unique
//! index) and deleted with the last (a probe of `attr_index`). Writers of
//! one directory take turns (SQLite has one writer; PostgreSQL takes the
//! directory's advisory lock), so a value row and its entries never race.
//!
//! PostgreSQL keeps a `pg_trgm` GIN index on `attr_text_values.v`, and a
//! search is `v LIKE '%x%'` (or `'%x'`) on the attribute's key, which that
//! index answers and PostgreSQL rechecks against `v` itself. For a pattern
//! longer than [`WINDOW`] the index is given its head only and the rows it
//! finds are checked against the whole pattern, for the reason SQLite
//! searches a head (see [`WINDOW`]). The GIN index was once on
//! `attr_index.v`: a pattern of a common value then returned every entry
//! holding it, and at 1,000,000 users `title co "manager"` rechecked a
//! quarter of a million rows from a bitmap too large to stay exact (2 s).
//!
//! SQLite has no such index on a column, so each value row (`t`, `k`, `v`)
//! has a row numbered `t` in `attr_text`, an FTS5 table with the `trigram`
//! tokenizer, contentless (the text is in `attr_text_values` already). A
//! search finds the matching values' numbers in `attr_text` and their
//! `(k, v)` in `attr_text_values`. The row's text is the attribute's key
//! token, the value and [`END`]:
//! - the key token ([`key_token`]) is made of characters no value has, so
//!   `"<key token>" AND "<x>"` finds the values of one attribute in one
//!   directory containing `x`, without visiting other attributes' matches;
//! - `"<x><END>"` finds the values ending in `x`;
//! - with `detail=full`, a phrase of trigrams matches only where they are
//!   consecutive, so the answer is exact for patterns of three characters
//!   or more (two for `ew`, which adds [`END`]).
//!
//! FTS5 writes a new segment at every commit that touched it and merges
//! segments as they gather, which made a transaction of one user cost three
//! times what it did without trigrams. So a new value is only pending at
//! first: its number is above the `attr_text_moved` mark in `store_meta`,
//! and a search reads such values beside `attr_text` (a range of at most
//! [`FLUSH_ROWS`] rows by number, `instr` on the folded value). The writer
//! moves them into `attr_text`, in one statement, before a commit that
//! finds [`FLUSH_ROWS`] or more ([`due`], [`flush`]): PostgreSQL's GIN
//! `fastupdate` list, for the same reason. Numbers are never reused
//! (`AUTOINCREMENT`), so a number at or below the mark is in `attr_text`.
//!
//! Values cut to their head (see `entries::CUT`) are searched in their head
//! only; each resource with one also has an entry under `entries::cut_path`,
//! which the candidate sets add and which makes them supersets.

use roster_scim::schema::SchemaRegistry;

use crate::db::{Db, Dialect};
use crate::model::Kind;
use crate::{StoreResult, vals};

/// Ends every row's text, so that a suffix is a phrase ending in it.
pub const END: char = '\u{1}';

/// Encloses the key token.
const KEY_MARK: char = '\u{2}';

/// Key tokens are written in base 4096 with these digits (a private-use
/// block, which identity providers do not send).
const DIGIT_BASE: u32 = 0xE000;
const RADIX: i64 = 4096;

/// The token naming attribute key `k` in `attr_text`.
pub fn key_token(k: i64) -> String {
    let mut digits = Vec::new();
    let mut n = k.max(0);
    loop {
        digits.push(n % RADIX);
        n /= RADIX;
        if n == 0 {
            break;
        }
    }
    let mut out = String::with_capacity(2 + 3 * digits.len());
    out.push(KEY_MARK);
    for d in digits.iter().rev() {
        // In range by construction: 0xE000 + 4095 is a private-use scalar.
        out.push(char::from_u32(DIGIT_BASE + *d as u32).unwrap_or(KEY_MARK));
    }
    out.push(KEY_MARK);
    out
}

/// The text of the `attr_text` row of value `v` of key `k`.
pub fn row_text(k: i64, v: &str) -> String {
    let mut s = key_token(k);
    s.push_str(v);
    s.push(END);
    s
}

/// The most characters of a pattern the trigram indexes search for (SQLite's
/// FTS5 and PostgreSQL's GIN alike). FTS5 evaluates a
/// phrase by walking every row that has all of its trigrams, so a long
/// pattern sharing a common tail (`ew ".89993@example.com"`: every address
/// has `example.com`) costs as much as the common part; its head is usually
/// what sets it apart. A longer pattern's head is searched and the values
/// found checked against the whole pattern.
pub const WINDOW: usize = 8;

/// Whether a pattern may be searched in `attr_text`: it must not contain
/// the characters that frame a row's value, or it could match across them.
pub fn searchable(pattern: &str) -> bool {
    pattern.chars().all(|ch| {
        ch != END
            && ch != KEY_MARK
            && ch != super::entries::CUT_MARK
            && !(DIGIT_BASE..DIGIT_BASE + RADIX as u32).contains(&u32::from(ch))
    })
}

/// The FTS5 query finding rows of key `k` (none when the key does not
/// exist yet) whose text contains `phrase`.
pub fn match_query(k: Option<i64>, phrase: &str) -> String {
    // Keys are numbered from 1: the token of 0 is in no row.
    let token = key_token(k.unwrap_or(0));
    format!("\"{token}\" AND \"{}\"", phrase.replace('"', "\"\""))
}

/// Pending values at which the writer moves them into `attr_text`: enough
/// that a segment holds about a hundred users' values, few enough that the
/// scan a search makes of them stays under a tenth of a millisecond.
pub const FLUSH_ROWS: i64 = 1_000;

/// The `store_meta` key of the highest value number moved into `attr_text`.
pub const MOVED_KEY: &str = "attr_text_moved";

/// SQL for the moved mark.
pub const MOVED_SQL: &str = "(SELECT value FROM store_meta WHERE key = 'attr_text_moved')";

/// Notes that resources hold values (SQLite; parameters `k, v` per value):
/// adds each value's row, pending, unless an entry holds it already
/// (`OR IGNORE`, which also keeps the statement from needing a statement
/// journal: see the index rows' insert).
pub static VALUES_INSERT: std::sync::LazyLock<super::RowsInsert> = std::sync::LazyLock::new(|| {
    super::RowsInsert::new(
        "INSERT OR IGNORE INTO attr_text_values (k, v) VALUES",
        2,
        "",
    )
});

/// Notes that resources hold values (PostgreSQL; one parameter, a JSON
/// array of `[k, v]` pairs): adds each value's row unless it has one. One
/// statement per transaction, whatever the number of values, sent without
/// the held index rows (it refers to none of them).
pub const PG_VALUES_INSERT: &str = "INSERT INTO attr_text_values (k, v)
     SELECT (p->>0)::bigint, p->>1 FROM json_array_elements(?::text::json) AS p
     ON CONFLICT DO NOTHING";

/// Notes that an entry holding value `v` of key `k` is gone (after its
/// `attr_index` row was deleted): when it was the last, deletes the value
/// row, and on SQLite the `attr_text` row if it had moved. A contentless
/// table forgets a row by being told what it held.
pub fn remove(c: &dyn Db, k: i64, v: &str) -> StoreResult<()> {
    let unheld = "DELETE FROM attr_text_values WHERE k = ?1 AND v = ?2 \
                  AND NOT EXISTS (SELECT 1 FROM attr_index WHERE k = ?1 AND v = ?2)";
    if c.dialect() == Dialect::Postgres {
        c.exec(unheld, vals![k, v])?;
        return Ok(());
    }
    let gone = c.query(
        &format!("{unheld} RETURNING t, t <= {MOVED_SQL}"),
        vals![k, v],
    )?;
    for row in gone {
        if row.get::<bool>(1)? {
            delete_row(c, row.get(0)?, k, v)?;
        }
    }
    Ok(())
}

/// Deletes every value row (and on SQLite every trigram row), before the
/// index is rebuilt (which makes them again: no fill is then due).
pub fn clear(c: &dyn Db) -> StoreResult<()> {
    if c.dialect() == Dialect::Sqlite {
        c.exec(
            "INSERT INTO attr_text (attr_text) VALUES ('delete-all')",
            &[],
        )?;
    }
    c.exec("DELETE FROM attr_text_values", &[])?;
    c.exec("DELETE FROM store_meta WHERE key = ?", vals![FILL_KEY])?;
    Ok(())
}

/// The `store_meta` key present while `attr_text_values` waits to be
/// filled from an index built before it existed (PostgreSQL).
const FILL_KEY: &str = "attr_text_values_fill";

/// Fills `attr_text_values` from `attr_index` when a migration asked for
/// it: each text key's distinct values, read in key order from the index
/// alone, instead of a rebuild that would compute every document's entries
/// again (about 7 minutes at 1,000,000 users on PostgreSQL). Which keys
/// hold text only the schemas say. Returns whether it ran. SQLite's values
/// came with the migration that made them, which rebuilt its index.
pub fn fill(c: &dyn Db, reg: &SchemaRegistry) -> StoreResult<bool> {
    if c.dialect() != Dialect::Postgres {
        return Ok(false);
    }
    let due: Option<i64> = crate::db::scalar(
        c,
        "SELECT value FROM store_meta WHERE key = ?",
        vals![FILL_KEY],
    )?;
    if due.is_none() {
        return Ok(false);
    }
    let text_paths = |kind: Kind| {
        reg.resource_type(kind.name())
            .map(|rt| super::entries::text_paths(reg, rt))
            .unwrap_or_default()
    };
    let (users, groups) = (text_paths(Kind::User), text_paths(Kind::Group));
    for row in c.query("SELECT k, rtype, path FROM attr_keys", &[])? {
        let (k, code, path): (i64, i64, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let paths = match Kind::from_code(code) {
            Some(Kind::User) => &users,
            Some(Kind::Group) => &groups,
            None => continue,
        };
        if paths.contains(&path) {
            c.exec(
                "INSERT INTO attr_text_values (k, v)
                 SELECT DISTINCT k, v FROM attr_index WHERE k = ? AND v > ''
                 ON CONFLICT DO NOTHING",
                vals![k],
            )?;
        }
    }
    c.exec("DELETE FROM store_meta WHERE key = ?", vals![FILL_KEY])?;
    Ok(true)
}

/// Whether `rows` or more values may be pending, so that [`flush`] is due
/// (SQLite; `rows` is [`FLUSH_ROWS`] but in tests). Asked at every commit,
/// so it reads two numbers, not the pending rows: the highest value number
/// less the mark bounds them (a pending value deleted since leaves a gap),
/// and at worst a move comes a little early.
pub fn due(c: &dyn Db, rows: i64) -> StoreResult<bool> {
    if c.dialect() != Dialect::Sqlite {
        return Ok(false);
    }
    let pending: Option<i64> = crate::db::scalar(
        c,
        &format!("SELECT COALESCE(max(t), 0) - {MOVED_SQL} FROM attr_text_values"),
        &[],
    )?;
    Ok(pending.unwrap_or(0) >= rows)
}

/// Deletes `attr_text` row `t`, which holds value `v` of key `k`: a
/// contentless table is told what the row held.
fn delete_row(c: &dyn Db, t: i64, k: i64, v: &str) -> StoreResult<()> {
    c.exec(
        "INSERT INTO attr_text (attr_text, rowid, s) VALUES ('delete', ?, ?)",
        vals![t, row_text(k, v)],
    )?;
    Ok(())
}

/// Moves every pending value into `attr_text` (SQLite).
pub fn flush(c: &dyn Db) -> StoreResult<()> {
    c.batch(&format!(
        "INSERT INTO attr_text (rowid, s)
             SELECT t, roster_text_row(k, v) FROM attr_text_values WHERE t > {MOVED_SQL} ORDER BY t;
         UPDATE store_meta SET value = (SELECT max(value, COALESCE(max(t), 0)) FROM attr_text_values)
             WHERE key = '{MOVED_KEY}';"
    ))
}

/// Deletes the value rows of a directory (and on SQLite their trigram rows).
pub fn delete_directory(c: &dyn Db, dir: &str) -> StoreResult<()> {
    let keys = "SELECT k FROM attr_keys WHERE directory_id = ?";
    if c.dialect() == Dialect::Sqlite {
        let rows = c.query(
            &format!(
                "SELECT t, k, v FROM attr_text_values WHERE k IN ({keys}) AND t <= {MOVED_SQL}"
            ),
            vals![dir],
        )?;
        for row in rows {
            let v: String = row.get(2)?;
            delete_row(c, row.get(0)?, row.get(1)?, &v)?;
        }
    }
    c.exec(
        &format!("DELETE FROM attr_text_values WHERE k IN ({keys})"),
        vals![dir],
    )?;
    Ok(())
}

/// The schema change that moves PostgreSQL's substring search from
/// `attr_index` to a row per distinct value. The trigram index is made by
/// the connection's migration, which knows whether `pg_trgm` is there; the
/// store fills the table when it next opens with its schemas ([`fill`]).
pub fn pg_values_migration() -> String {
    format!(
        "DROP INDEX IF EXISTS attr_index_trgm;
         CREATE TABLE attr_text_values (
             k  BIGINT NOT NULL,
             v  TEXT COLLATE \"C\" NOT NULL,
             PRIMARY KEY (k, v)
         );
         INSERT INTO store_meta (key, value) VALUES ('{FILL_KEY}', 1);"
    )
}

/// The schema change that adds substring search: on SQLite the `t` column
/// and the `attr_text` table; on PostgreSQL the trigram index is made by
/// the connection's migration, which knows whether `pg_trgm` is there.
pub const SQLITE_MIGRATION: &str = "
    ALTER TABLE attr_index ADD COLUMN t INTEGER;
    CREATE VIRTUAL TABLE attr_text USING fts5(
        s, r UNINDEXED, e UNINDEXED,
        content = '', contentless_unindexed = 1, columnsize = 0,
        tokenize = 'trigram case_sensitive 1', detail = full
    );";

/// The schema change that gives each distinct value one trigram row
/// (SQLite). The index is rebuilt at the next open (its format changed),
/// so its rows go now rather than be rewritten by the dropped column.
pub const SQLITE_VALUES_MIGRATION: &str = "
    DELETE FROM attr_index;
    ALTER TABLE attr_index DROP COLUMN t;
    DROP TABLE attr_text;
    CREATE VIRTUAL TABLE attr_text USING fts5(
        s, content = '', columnsize = 0,
        tokenize = 'trigram case_sensitive 1', detail = full
    );
    CREATE TABLE attr_text_values (
        t  INTEGER PRIMARY KEY AUTOINCREMENT,
        k  INTEGER NOT NULL,
        v  TEXT NOT NULL
    );
    CREATE UNIQUE INDEX attr_text_values_kv ON attr_text_values(k, v);
    INSERT INTO store_meta (key, value) VALUES ('attr_text_moved', 0)
        ON CONFLICT (key) DO UPDATE SET value = 0;";

/// How many segments of one size FTS5 gathers before merging them into one
/// of the next size (its `automerge`; FTS5's default is 4). A value's
/// postings are rewritten once per size they pass through, so sixteen at a
/// time rewrite them half as often: over 12,000 and 24,000 users created
/// through `/Bulk`, about 7% fewer instructions per user (docs/benchmarks.md,
/// "FTS5 merges sixteen segments at a time"). A search reads up to fifteen
/// segments of each size instead of three, which measured no slower.
pub const SQLITE_AUTOMERGE: &str =
    "INSERT INTO attr_text (attr_text, rank) VALUES ('automerge', 16);";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_tokens_are_distinct_and_framed() {
        let tokens: Vec<String> = [0, 1, 4095, 4096, 4097, 1 << 30]
            .iter()
            .map(|k| key_token(*k))
            .collect();
        for (i, a) in tokens.iter().enumerate() {
            assert!(a.starts_with(KEY_MARK) && a.ends_with(KEY_MARK));
            assert!(a.chars().count() >= 3, "a token is at least one trigram");
            for b in &tokens[i + 1..] {
                assert!(!a.contains(b.as_str()) && !b.contains(a.as_str()));
            }
        }
    }

    #[test]
    fn patterns_with_framing_characters_are_not_searched() {
        assert!(searchable("u123@work.example"));
        assert!(searchable("ÄÖü \" x"));
        assert!(!searchable("a\u{1}"));
        assert!(!searchable("\u{2}b"));
        assert!(!searchable("\u{E005}"));
        assert!(!searchable(&super::super::entries::CUT_MARK.to_string()));
    }

    #[test]
    fn queries_quote_the_phrase() {
        assert_eq!(
            match_query(Some(1), "a\"b"),
            format!("\"{}\" AND \"a\"\"b\"", key_token(1))
        );
        assert_eq!(
            match_query(None, "x"),
            format!("\"{}\" AND \"x\"", key_token(0))
        );
    }
}
