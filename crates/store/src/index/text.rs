//! Substring search (`co`, `ew`) over the text entries of `attr_index`.
//!
//! PostgreSQL keeps a `pg_trgm` GIN index on `attr_index.v`, and a search is
//! `v LIKE '%x%'` (or `'%x'`) on the attribute's key, which that index
//! answers and PostgreSQL rechecks against `v` itself.
//!
//! SQLite has no such index on a column, so each text entry also has a row
//! in `attr_text`, an FTS5 table with the `trigram` tokenizer: contentless
//! (the text is in `attr_index` already), keeping only the resource number
//! and element ordinal beside the trigrams. The row's text is the
//! attribute's key token, the value and [`END`]:
//! - the key token ([`key_token`]) is made of characters no value has, so
//!   `"<key token>" AND "<x>"` finds the values of one attribute in one
//!   directory containing `x`, without visiting other attributes' matches;
//! - `"<x><END>"` finds the values ending in `x`;
//! - with `detail=full`, a phrase of trigrams matches only where they are
//!   consecutive, so the answer is exact for patterns of three characters
//!   or more (two for `ew`, which adds [`END`]).
//!
//! The `attr_text` row of an entry is named by `attr_index.t`, so deleting
//! the entry deletes its row (FTS5's `delete` command, given what the row
//! held: cheaper than `contentless_delete`, which keeps a size per row).
//!
//! FTS5 writes a new segment at every commit that touched it, which made a
//! transaction of one user cost three times what it did without trigrams.
//! So new rows first go to `attr_text_new`, a plain table numbered like
//! `attr_text` (its rowid is the `t` the row will have there), which a
//! search reads beside `attr_text` (a scan of at most [`FLUSH_ROWS`] rows,
//! `instr` on the folded value). The writer moves them into `attr_text`,
//! in one statement, before a commit that finds [`FLUSH_ROWS`] or more
//! ([`flush_if_due`]): PostgreSQL's GIN `fastupdate` list, for the same
//! reason. The table always keeps its highest row, emptied to a marker
//! (`k = 0`, a key no attribute has), so that new rows are numbered after
//! every row `attr_text` has.
//!
//! Values cut to their head (see `entries::CUT`) are searched in their head
//! only; each resource with one also has an entry under `entries::cut_path`,
//! which the candidate sets add and which makes them supersets.

use crate::db::{Db, Dialect};
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

/// The most characters of a pattern SQLite searches for. FTS5 evaluates a
/// phrase by walking every row that has all of its trigrams, so a long
/// pattern sharing a common tail (`ew ".89993@example.com"`: every address
/// has `example.com`) costs as much as the common part; its head is usually
/// what sets it apart. A longer pattern's head is searched and the matches
/// rechecked, which keeps selective searches cheap at the price of counting
/// broad long ones from the documents.
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

/// Pending rows at which the writer moves them into `attr_text`: enough
/// that a segment holds about a hundred users' values, few enough that the
/// scan a search makes of them stays under a tenth of a millisecond.
pub const FLUSH_ROWS: i64 = 1_000;

/// Adds the trigram row of an entry (SQLite), to the pending rows; its
/// number is then `last_insert_rowid()`. An insert like the index rows it
/// goes with, so a connection that holds them keeps their order.
pub fn insert(c: &dyn Db, k: i64, v: &str, r: i64, e: i64) -> StoreResult<()> {
    c.insert_later(
        "INSERT INTO attr_text_new (k, v, r, e) VALUES (?, ?, ?, ?)",
        vals![k, v, r, e],
    )
}

/// Deletes trigram row `t` of value `v` of key `k` (SQLite): the pending
/// row if it is still pending, else the `attr_text` row. A contentless
/// table forgets a row by being told what it held: the entry is exactly
/// what was inserted, since the index is kept by difference.
pub fn remove(c: &dyn Db, t: i64, k: i64, v: &str, r: i64, e: i64) -> StoreResult<()> {
    if c.exec(
        "DELETE FROM attr_text_new WHERE t = ? AND k = ?",
        vals![t, k],
    )? == 0
    {
        c.exec(
            "INSERT INTO attr_text (attr_text, rowid, s, r, e) VALUES ('delete', ?, ?, ?, ?)",
            vals![t, row_text(k, v), r, e],
        )?;
    }
    Ok(())
}

/// Deletes every trigram row (SQLite), before the index is rebuilt.
pub fn clear(c: &dyn Db) -> StoreResult<()> {
    if c.dialect() == Dialect::Sqlite {
        c.exec(
            "INSERT INTO attr_text (attr_text) VALUES ('delete-all')",
            &[],
        )?;
        c.exec("DELETE FROM attr_text_new WHERE k > 0", &[])?;
    }
    Ok(())
}

/// Moves the pending rows into `attr_text` when there are `rows` or more
/// (SQLite; [`FLUSH_ROWS`] but in tests); returns how many it moved.
pub fn flush_if_due(c: &dyn Db, rows: i64) -> StoreResult<i64> {
    if c.dialect() != Dialect::Sqlite {
        return Ok(0);
    }
    let pending: i64 =
        crate::db::scalar(c, "SELECT count(*) - 1 FROM attr_text_new", &[])?.unwrap_or(0);
    if pending < rows {
        return Ok(0);
    }
    flush(c)?;
    Ok(pending)
}

/// Moves every pending row into `attr_text` (SQLite), keeping the highest
/// as the marker that numbers the next ones.
pub fn flush(c: &dyn Db) -> StoreResult<()> {
    c.batch(
        "INSERT INTO attr_text (rowid, s, r, e)
             SELECT t, roster_text_row(k, v), r, e FROM attr_text_new WHERE k > 0 ORDER BY t;
         DELETE FROM attr_text_new WHERE t < (SELECT max(t) FROM attr_text_new);
         UPDATE attr_text_new SET k = 0, v = '', r = 0, e = 0 WHERE k <> 0;",
    )
}

/// Deletes the `attr_text` rows of a directory's index entries (SQLite).
pub fn delete_directory(c: &dyn Db, dir: &str) -> StoreResult<()> {
    if c.dialect() != Dialect::Sqlite {
        return Ok(());
    }
    let rows = c.query(
        "SELECT t, k, v, r, e FROM attr_index WHERE t IS NOT NULL \
         AND k IN (SELECT k FROM attr_keys WHERE directory_id = ?)",
        vals![dir],
    )?;
    for row in rows {
        let v: String = row.get(2)?;
        remove(c, row.get(0)?, row.get(1)?, &v, row.get(3)?, row.get(4)?)?;
    }
    Ok(())
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

/// The schema change that adds the pending trigram rows (SQLite), with the
/// marker numbered after every row `attr_text` already has.
pub const SQLITE_PENDING_MIGRATION: &str = "
    CREATE TABLE attr_text_new (
        t  INTEGER PRIMARY KEY,
        k  INTEGER NOT NULL,
        v  TEXT NOT NULL,
        r  INTEGER NOT NULL,
        e  INTEGER NOT NULL
    );
    INSERT INTO attr_text_new (t, k, v, r, e)
        SELECT COALESCE(max(t), 0), 0, '', 0, 0 FROM attr_index;";

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
