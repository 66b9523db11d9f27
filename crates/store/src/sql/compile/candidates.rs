//! A checked filter as a candidate set: SQL selecting the numbers (`r`) of
//! resources from index lookups alone, flagged exact (exactly the resources
//! the filter matches) or superset (every match and perhaps others, to be
//! rechecked with the filter's document predicate), or as a complement:
//! every resource of the directory and type but those the SQL selects
//! (always exact).
//!
//! - A comparison is a lookup of its key `k` (directory, resource type,
//!   path) and a range of `v`: `eq` one value, orderings and `sw` a range,
//!   `pr` the whole key. Numbers, dateTimes and booleans are exact; text is
//!   exact unless the answer could depend on a cut value (a filter value of
//!   [`CUT`] characters or more) or on an entry with an empty `v` (a `""`
//!   string and a value of the wrong type share it). Text `pr` and `ne`
//!   (multi-valued: some value differs) take the non-empty entries that
//!   qualify and recheck only the resources with an empty one against their
//!   documents, which keeps them exact.
//! - `co` and `ew` search substrings (`crate::index::text`): exact, unless
//!   the directory holds a cut value of the attribute (`cut_paths`, checked
//!   when the list runs), the pattern is too short for trigrams (then the
//!   whole key, a superset) or SQLite searches only its head. A set whose
//!   exactness waits for that check has no complement.
//! - Attributes that columns serve (`id`, `externalId`, `meta.created`,
//!   `meta.lastModified`, `meta.resourceType`) are ranges of the `resources`
//!   indexes: see [`columns`].
//! - `and` intersects the sets it has (a superset when an operand has none or
//!   is a superset) and takes complements away (`EXCEPT`); its operands are
//!   also [`Driver`]s, for the list to start from a small one; `or` unites them
//!   (none when an operand has none); `not` of an exact set is its
//!   complement, and of a complement the set again. A complement is never a
//!   superset: where one would be, there is no set.
//! - `attr[inner]` works on (r, e) pairs, so both conditions of
//!   `emails[type eq "work" and value ew "x"]` hold on the same element;
//!   pairs have no complement. `meta[inner]` is `inner` on the resource.
//! - `meta.version`, `meta.location`, membership rows (members, groups) and
//!   `returned: never` attributes have no set here; `userName` and a group's
//!   `displayName` are in `attr_index` too.
//!
//! The SQL binds the directory as `?1` and the resource type as `?2`, as
//! the list query does; with the keys given ([`Compiler::with_keys`]) a
//! lookup names its key as a constant and may use neither.

mod columns;

use roster_scim::filter::{AttrRef, CheckedFilter, FilterScope, Node, Rel, Test, TextOp};
use roster_scim::schema::AttrType;

use super::{Compiler, KeyScope, SqlParam, instant_key, like_escape, prefix_successor};
use crate::db::Dialect;
use crate::index::entries::{CUT, attr_path, bool_key, cut_path, number_key, text_key};
use crate::index::text;
use crate::model::Kind;

/// The candidate set of a filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates {
    /// `SELECT r …`: may name a resource more than once.
    pub sql: String,
    pub exact: bool,
    /// The filter matches exactly the resources of the directory and type
    /// that `sql` does not select (`exact` is then true).
    pub complement: bool,
    /// `sql` names each resource once: `count(*)` counts its resources.
    pub distinct: bool,
    /// Paths (`entries::cut_path`) whose entries, when the directory has
    /// any, make the set a superset (`exact` then does not hold).
    pub cut_paths: Vec<String>,
}

impl Candidates {
    /// `SELECT count(*)` of the resources `sql` names: without `DISTINCT`
    /// when it names each once, so that a range of a `resources` index is
    /// counted from the index alone.
    pub fn count_sql(&self) -> String {
        if self.distinct {
            format!("SELECT count(*) FROM ({}) AS c", self.sql)
        } else {
            format!(
                "SELECT count(*) FROM (SELECT DISTINCT r FROM ({}) AS c) AS d",
                self.sql
            )
        }
    }
}

/// One operand of a filter's top-level `and` as a set of resource numbers,
/// compiled on its own (its own parameters, numbered from the directory's
/// and type's): every resource the whole filter matches is in it. A list
/// whose smallest driver holds a handful of resources fetches those and
/// rechecks them (`rows::list`), instead of intersecting a large operand
/// with a small one.
#[derive(Debug, Clone, PartialEq)]
pub struct Driver {
    /// `SELECT r …`: may name a resource more than once.
    pub sql: String,
    pub params: Vec<SqlParam>,
}

/// A set that selects nothing and binds no parameter of its own (it names
/// the directory and type, which every statement binds).
const NOTHING: &str = "SELECT r FROM resources WHERE directory_id = ?1 AND rtype = ?2 AND 1 = 0";

/// The resources holding the values `tv` a substring search found, from
/// `attr_index`'s `(k, v)` index: both stores find the matching values of
/// a key, then their holders (see `crate::index::text`).
const HOLDERS: &str =
    "FROM attr_text_values tv CROSS JOIN attr_index i WHERE i.k = tv.k AND i.v = tv.v";

/// A set of resource numbers, or (inside `attr[...]`) of (r, e) pairs.
struct Set {
    sql: String,
    exact: bool,
    /// Every resource of the directory and type but those of `sql`; exact.
    complement: bool,
    /// `sql` names each resource (or pair) once: a set operation, a
    /// `DISTINCT`, or one row of `resources` each. A lookup of `attr_index`
    /// may name a resource once per value.
    distinct: bool,
    /// See `Candidates::cut_paths`.
    cut_paths: Vec<String>,
}

/// SQL and whether it names each row once (see `Set::distinct`).
type Part = (String, bool);

impl Set {
    fn of(sql: String, exact: bool) -> Set {
        Set {
            sql,
            exact,
            complement: false,
            distinct: false,
            cut_paths: Vec::new(),
        }
    }

    fn of_part((sql, distinct): Part, exact: bool) -> Set {
        Set {
            distinct,
            ..Set::of(sql, exact)
        }
    }

    fn complement_of((sql, distinct): Part) -> Set {
        Set {
            sql,
            exact: true,
            complement: true,
            distinct,
            cut_paths: Vec::new(),
        }
    }

    /// Every resource of the directory and type.
    fn everything() -> Set {
        Set::complement_of((NOTHING.to_owned(), true))
    }

    fn nothing() -> Set {
        Set::of_part((NOTHING.to_owned(), true), true)
    }

    fn part(self) -> Part {
        (self.sql, self.distinct)
    }

    fn is_everything(&self) -> bool {
        self.complement && self.sql == NOTHING
    }

    /// The set of the resources this one does not hold, when it is exact:
    /// the complement of a superset would miss matches (and so would one of
    /// a set that may turn out a superset when the list runs).
    fn negated(self) -> Option<Set> {
        if !self.cut_paths.is_empty() {
            return None;
        }
        match (self.complement, self.exact) {
            (true, _) => Some(Set::of_part(self.part(), true)),
            (false, true) => Some(Set::complement_of(self.part())),
            (false, false) => None,
        }
    }
}

impl Compiler<'_> {
    /// The candidate set of a resource filter, if the index serves it.
    pub fn candidates(&mut self, f: &CheckedFilter) -> Option<Candidates> {
        if f.scope() != FilterScope::Resource {
            return None;
        }
        let set = self.set(f.root(), false)?;
        Some(Candidates {
            sql: set.sql,
            exact: set.exact,
            complement: set.complement,
            distinct: set.distinct,
            cut_paths: set.cut_paths,
        })
    }

    /// The drivers of a resource filter whose root is an `and` (or a value
    /// filter whose inner filter is one), likeliest smallest first: an `eq`
    /// names few resources more often than a range, and a range more often
    /// than `pr`, `ne` or a compound. Empty for any other filter.
    pub fn drivers(&self, f: &CheckedFilter) -> Vec<Driver> {
        if f.scope() != FilterScope::Resource {
            return Vec::new();
        }
        let (operands, pairs) = match f.root() {
            Node::All(xs) => (xs, false),
            // `meta[...]` is its inner filter on the resource (see `set_of`).
            Node::Element(parent, inner) if parent.is_core() && parent.attr == "meta" => {
                match inner.as_ref() {
                    Node::All(xs) => (xs, false),
                    _ => return Vec::new(),
                }
            }
            Node::Element(parent, inner) if self.served(parent) => match inner.as_ref() {
                Node::All(xs) => (xs, true),
                _ => return Vec::new(),
            },
            _ => return Vec::new(),
        };
        let mut ranked: Vec<(u8, Driver)> = Vec::new();
        for x in operands {
            let mut c = Compiler::new(self.rt, self.kind, &self.directory, self.first_param)
                .with_dialect(self.dialect);
            c.keys = self.keys;
            let Some(set) = c.set(x, pairs) else {
                continue;
            };
            if set.complement {
                continue;
            }
            let sql = if pairs {
                format!("SELECT r FROM ({}) AS el", set.sql)
            } else {
                set.sql
            };
            ranked.push((
                rank(x),
                Driver {
                    sql,
                    params: c.into_params(),
                },
            ));
        }
        // A single operand is the filter's own set: nothing to choose.
        if ranked.len() < 2 {
            return Vec::new();
        }
        ranked.sort_by_key(|(r, _)| *r);
        ranked.into_iter().map(|(_, d)| d).collect()
    }

    /// `pairs`: select `r, e` (inside a value filter) instead of `r`.
    fn set(&mut self, n: &Node, pairs: bool) -> Option<Set> {
        // Parameters a part bound before it found it has no set are not in
        // any SQL: unbound again, numbering stays dense.
        let mark = self.params.len();
        let set = self.set_of(n, pairs);
        if set.is_none() {
            self.params.truncate(mark);
        }
        set
    }

    fn set_of(&mut self, n: &Node, pairs: bool) -> Option<Set> {
        match n {
            Node::All(xs) => {
                let mut exact = true;
                let mut parts = Vec::new();
                let mut taken = Vec::new();
                let mut cut_paths = Vec::new();
                for x in xs {
                    match self.set(x, pairs) {
                        // `and` everything: nothing to intersect with.
                        Some(s) if s.is_everything() => {}
                        Some(s) if s.complement => taken.push(s.part()),
                        Some(mut s) => {
                            exact &= s.exact;
                            cut_paths.append(&mut s.cut_paths);
                            parts.push(s.part());
                        }
                        None => exact = false,
                    }
                }
                if parts.is_empty() && taken.is_empty() {
                    // Only operands of everything: the chain matches all.
                    return exact.then(Set::everything);
                }
                if parts.is_empty() {
                    // Beside an operand without a set, the complement
                    // would be a superset, which a complement never is.
                    return exact.then(|| Set::complement_of(compound(&taken, "UNION", pairs)));
                }
                let kept = compound(&parts, "INTERSECT", pairs);
                let sql = if taken.is_empty() {
                    kept
                } else {
                    except(&kept, &compound(&taken, "UNION", pairs), pairs)
                };
                Some(Set {
                    cut_paths,
                    ..Set::of_part(sql, exact)
                })
            }
            Node::AnyOf(xs) => {
                let mut exact = true;
                let mut parts = Vec::new();
                let mut complements = Vec::new();
                let mut cut_paths = Vec::new();
                for x in xs {
                    let mut s = self.set(x, pairs)?;
                    if s.complement {
                        complements.push(s.part());
                    } else {
                        exact &= s.exact;
                        cut_paths.append(&mut s.cut_paths);
                        parts.push(s.part());
                    }
                }
                if complements.is_empty() {
                    return Some(Set {
                        cut_paths,
                        ..Set::of_part(compound(&parts, "UNION", pairs), exact)
                    });
                }
                // a or not b or not c = not ((b and c) except a): a superset
                // `a` would take too much away.
                if !exact || !cut_paths.is_empty() {
                    return None;
                }
                let common = compound(&complements, "INTERSECT", pairs);
                if parts.is_empty() {
                    return Some(Set::complement_of(common));
                }
                let sql = except(&common, &compound(&parts, "UNION", pairs), pairs);
                Some(Set::complement_of(sql))
            }
            // Elements have no complement: `not` inside `attr[...]` is
            // about one element, not about resources.
            Node::Not(x) if !pairs => self.set(x, false)?.negated(),
            Node::Not(_) => None,
            Node::Present(a) => self.present_set(a, pairs),
            Node::Test(a, test) => self.test_set(a, test, pairs),
            // `meta` is the resource's own single element (see
            // `Compiler::over_values`): its value filter is its inner filter.
            Node::Element(parent, inner) if !pairs && parent.is_core() && parent.attr == "meta" => {
                self.set(inner, false)
            }
            Node::Element(parent, inner) => {
                if pairs || !self.served(parent) {
                    return None;
                }
                let inner = self.set(inner, true)?;
                Some(Set {
                    cut_paths: inner.cut_paths,
                    ..Set::of_part(
                        (
                            format!("SELECT DISTINCT r FROM ({}) AS el", inner.sql),
                            true,
                        ),
                        inner.exact,
                    )
                })
            }
        }
    }

    /// Whether `attr_index` holds the attribute's values.
    fn served(&self, a: &AttrRef) -> bool {
        if a.never_returned {
            return false;
        }
        if !a.is_core() {
            return true;
        }
        let name = a.attr.as_str();
        let (rows, named) = match self.kind {
            Kind::Group => (name == "members", name == "displayName"),
            Kind::User => (name == "groups", name == "userName"),
        };
        named || (!rows && self.column_source(name, a.sub.as_deref()).is_none())
    }

    fn lookup(&mut self, a: &AttrRef, cond: &str, pairs: bool) -> String {
        let key = self.key(
            &attr_path(a.extension.as_deref(), &a.attr, a.sub.as_deref()),
            KeyScope::Bound,
        );
        let cols = if pairs { "r, e" } else { "r" };
        let cond = if cond.is_empty() {
            String::new()
        } else {
            format!(" AND {cond}")
        };
        format!("SELECT {cols} FROM attr_index WHERE k = {key}{cond}")
    }

    fn present_set(&mut self, a: &AttrRef, pairs: bool) -> Option<Set> {
        if !pairs && let Some(set) = self.column_set(a, None) {
            return Some(set);
        }
        if !self.served(a) {
            return None;
        }
        if a.is_complex() && a.sub.is_none() {
            // The element itself (when it gave no sub-attribute entry) or
            // any of its sub-attributes: see `index::entries`.
            let path = attr_path(a.extension.as_deref(), &a.attr, None);
            let (low, high) = (format!("{path}."), format!("{path}/"));
            let cols = if pairs { "r, e" } else { "r" };
            let keys = match self.keys {
                Some(keys) => {
                    let mut ks: Vec<String> = keys
                        .iter()
                        .filter(|(p, _)| **p == path || (**p > low && **p < high))
                        .map(|(_, k)| k.to_string())
                        .collect();
                    ks.sort();
                    if ks.is_empty() {
                        "NULL".to_owned()
                    } else {
                        ks.join(", ")
                    }
                }
                None => {
                    let own = self.bind(SqlParam::Text(path.clone()));
                    let low = self.bind(SqlParam::Text(low));
                    let high = self.bind(SqlParam::Text(high));
                    format!(
                        "SELECT k FROM attr_keys WHERE directory_id = ?1 AND rtype = ?2 \
                         AND (path = {own} OR (path > {low} AND path < {high}))"
                    )
                }
            };
            return Some(Set::of(
                format!("SELECT {cols} FROM attr_index WHERE k IN ({keys})"),
                true,
            ));
        }
        if !a.ty.is_textual() {
            // Other types have an empty `v` only for present values of the
            // wrong type.
            return Some(Set::of_part(
                (self.lookup(a, "", pairs), one_each(a, pairs)),
                true,
            ));
        }
        if pairs {
            // Text shares the empty `v` between `""` (absent to `pr`) and
            // values of the wrong type: a superset.
            return Some(Set::of(self.lookup(a, "", pairs), false));
        }
        // A non-empty `v` is a non-empty string, present.
        let some = self.lookup(a, "v > ''", false);
        let doc = self.present(a, super::Scope::Resource).ok()?;
        let sql = self.with_empty_judged(a, some, &doc);
        Some(Set::of_part((sql, one_each(a, false)), true))
    }

    /// `some` (resources by their non-empty entries of `a`) and the few
    /// resources with an empty one (`""` or a value of the wrong type),
    /// judged by the document predicate `doc`, which reads only their
    /// documents. `UNION ALL` (a resource may be in both) streams, so that
    /// a count that stops early reads no further than it needs.
    fn with_empty_judged(&mut self, a: &AttrRef, some: String, doc: &str) -> String {
        let empty = self.lookup(a, "v = ''", false);
        format!("{some} UNION ALL SELECT r.r FROM resources r WHERE r.r IN ({empty}) AND {doc}")
    }

    fn test_set(&mut self, a: &AttrRef, test: &Test, pairs: bool) -> Option<Set> {
        if !pairs && let Some(set) = self.column_set(a, Some(test)) {
            return Some(set);
        }
        if !self.served(a) || a.ty == AttrType::Complex {
            return None;
        }
        if let Test::Text {
            op: op @ (TextOp::Co | TextOp::Ew),
            value,
            ..
        } = test
            && let Some(set) = self.search_set(a, *op, value, pairs)
        {
            return Some(set);
        }
        if let Test::Text {
            op: TextOp::Rel(Rel::Ne),
            value,
            ..
        } = test
            && value.chars().count() < CUT
        {
            return self.ne_set(a, test, value, pairs);
        }
        let (cond, exact) = match test {
            Test::Text { op, value, .. } => self.text_cond(*op, value),
            Test::Bool(b) => (format!("v = '{}'", bool_key(*b)), true),
            Test::Number(rel, x) => self.ordered_cond(*rel, number_key(*x)),
            Test::DateTime(rel, ns) => self.ordered_cond(*rel, instant_key(*ns)),
        };
        // One value of a multi-valued attribute without sub-attributes
        // (`schemas`): a resource has one entry per value of such an
        // attribute (`index::entries`), so it comes once.
        let one_value = matches!(
            test,
            Test::Text {
                op: TextOp::Rel(Rel::Eq),
                ..
            } | Test::Bool(_)
                | Test::Number(Rel::Eq, _)
                | Test::DateTime(Rel::Eq, _)
        );
        let once = one_each(a, pairs)
            || !pairs && one_value && a.multi_valued && a.sub.is_none() && !a.is_complex();
        Some(Set::of_part((self.lookup(a, &cond, pairs), once), exact))
    }

    /// `ne` on text (the checker leaves it only on multi-valued attributes:
    /// some value differs). Shorter than a cut value's head, the value
    /// differs from every cut entry, so the non-empty entries other than it
    /// are exact; the few resources with an empty entry (`""` or a value of
    /// the wrong type) are judged by their documents, as for `pr`. Inside a
    /// value filter the empty entries come along, a superset.
    fn ne_set(&mut self, a: &AttrRef, test: &Test, value: &str, pairs: bool) -> Option<Set> {
        let p = self.bind(SqlParam::Text(value.to_owned()));
        if pairs {
            return Some(Set::of(self.lookup(a, &format!("v <> {p}"), true), false));
        }
        let some = self.lookup(a, &format!("v <> {p} AND v > ''"), false);
        let doc = self
            .over_values(a, super::Scope::Resource, &mut |c, source| {
                Ok(c.compare(source, a, test))
            })
            .ok()?;
        Some(Set::of(self.with_empty_judged(a, some, &doc), true))
    }

    /// `co` or `ew` as a substring search (see `crate::index::text`), when
    /// the pattern is long enough for trigrams; `value` is already folded
    /// when the attribute is not `caseExact`, as the entries are.
    fn search_set(&mut self, a: &AttrRef, op: TextOp, value: &str, pairs: bool) -> Option<Set> {
        let len = value.chars().count();
        let suffix = op == TextOp::Ew;
        // Longer than a cut value's head: only cut values can hold it, and
        // SQLite's trigrams need three characters (`ew` adds the end mark).
        if len > CUT || len < if suffix { 2 } else { 3 } || !text::searchable(value) {
            return None;
        }
        let path = attr_path(a.extension.as_deref(), &a.attr, a.sub.as_deref());
        let cols = if pairs { "r, e" } else { "r" };
        let held = if pairs { "i.r, i.e" } else { "i.r" };
        let found = match self.dialect {
            Dialect::Sqlite => {
                // FTS5 gets the head only (see `text::WINDOW`): every value
                // found, moved into FTS5 or pending, is checked against the
                // whole pattern, so a long pattern's set is exact too.
                let mut phrase: String = value.chars().take(text::WINDOW).collect();
                if suffix && len <= text::WINDOW {
                    phrase.push(text::END);
                }
                let key = self.key(&path, KeyScope::Bound);
                let p = self.bind(SqlParam::Text(phrase));
                let whole = self.bind(SqlParam::Text(value.to_owned()));
                let contains = if suffix {
                    format!("substr(tv.v, -{len}) = {whole}")
                } else {
                    format!("instr(tv.v, {whole}) > 0")
                };
                // Values not yet moved into FTS5 are a range by number
                // (see `text::FLUSH_ROWS`). `+` keeps SQLite from reading
                // every value of the key through its index instead.
                format!(
                    "SELECT {held} {HOLDERS} AND tv.t IN \
                     (SELECT rowid FROM attr_text WHERE attr_text MATCH roster_text_match({key}, {p})) \
                     AND {contains} \
                     UNION ALL SELECT {held} {HOLDERS} \
                     AND tv.t > {moved} AND +tv.k = {key} AND {contains}",
                    moved = text::MOVED_SQL,
                )
            }
            Dialect::Postgres => {
                let escaped = like_escape(value);
                let pattern = if suffix {
                    format!("%{escaped}")
                } else {
                    format!("%{escaped}%")
                };
                let p = self.bind(SqlParam::Text(pattern));
                let cond = if len > text::WINDOW {
                    // The GIN index reads the postings of every trigram of
                    // its pattern, and a long pattern's tail is common
                    // (`@example.com`): 18 ms for a suffix of 19 characters
                    // at 100,000 users, 2 ms for its head. The index gets
                    // the head; the whole pattern is checked on the rows
                    // it finds (`v || ''` is no indexable expression).
                    let head: String = value.chars().take(text::WINDOW).collect();
                    let h = self.bind(SqlParam::Text(format!("%{}%", like_escape(&head))));
                    format!("tv.v LIKE {h} AND (tv.v || '') LIKE {p}")
                } else {
                    format!("tv.v LIKE {p}")
                };
                let key = self.key(&path, KeyScope::Bound);
                // The matching values of the key, then their holders. The
                // values are found by their trigrams, never by their key
                // (`+ 0` hides it from the primary key): without statistics
                // the planner would guess a key's values few and read every
                // value of `userName` to test the pattern on each.
                format!("SELECT {held} {HOLDERS} AND tv.k + 0 = {key} AND {cond}")
            }
        };
        // A match may lie past the head of a cut value: those resources are
        // candidates too, and when there are any the set is a superset (and
        // may name one twice: being no longer exact, it is not counted).
        // Moved and pending values are apart, so otherwise each holder of a
        // single value comes once.
        let cut = cut_path(&path);
        let cut_key = self.key(&cut, KeyScope::Bound);
        Some(Set {
            cut_paths: vec![cut],
            ..Set::of_part(
                (
                    format!("{found} UNION ALL SELECT {cols} FROM attr_index WHERE k = {cut_key}"),
                    one_each(a, pairs),
                ),
                true,
            )
        })
    }

    /// Keys of numbers and instants, which are never empty: an empty `v` is
    /// a value of the wrong type, which no comparison matches.
    fn ordered_cond(&mut self, rel: Rel, key: String) -> (String, bool) {
        let p = self.bind(SqlParam::Text(key));
        let cond = match rel {
            Rel::Eq => format!("v = {p}"),
            Rel::Ne => format!("v <> {p} AND v > ''"),
            Rel::Gt => format!("v > {p}"),
            Rel::Ge => format!("v >= {p}"),
            Rel::Lt => format!("v > '' AND v < {p}"),
            Rel::Le => format!("v > '' AND v <= {p}"),
        };
        (cond, true)
    }

    /// `value` is already folded when the attribute is not `caseExact`.
    pub(super) fn text_cond(&mut self, op: TextOp, value: &str) -> (String, bool) {
        let len = value.chars().count();
        // The first CUT characters: what a cut entry keeps of its value.
        let head: String = value.chars().take(CUT).collect();
        match op {
            TextOp::Rel(Rel::Eq) if len <= CUT => {
                let p = self.bind(SqlParam::Text(value.to_owned()));
                (format!("v = {p}"), !value.is_empty())
            }
            // Longer than any whole entry: only a cut one can be it.
            TextOp::Rel(Rel::Eq) => {
                let p = self.bind(SqlParam::Text(text_key(value, false)));
                (format!("v = {p}"), false)
            }
            TextOp::Rel(rel @ (Rel::Gt | Rel::Ge | Rel::Lt | Rel::Le)) => {
                if len >= CUT {
                    // A cut entry sharing the value's head may be on either
                    // side of it: widen the range to take it in.
                    return match rel {
                        Rel::Gt | Rel::Ge => {
                            let p = self.bind(SqlParam::Text(head));
                            (format!("v >= {p}"), false)
                        }
                        _ => {
                            let p = self.bind(SqlParam::Text(text_key(value, false)));
                            (format!("v <= {p}"), false)
                        }
                    };
                }
                let p = self.bind(SqlParam::Text(value.to_owned()));
                let op = super::sql_op(rel);
                // Whether the range takes in the empty `v`, which also holds
                // values of the wrong type.
                let takes_empty = match rel {
                    Rel::Lt => !value.is_empty(),
                    Rel::Le => true,
                    Rel::Ge => value.is_empty(),
                    _ => false,
                };
                (format!("v {op} {p}"), !takes_empty)
            }
            TextOp::Sw if !value.is_empty() => {
                let prefix = if len <= CUT { value.to_owned() } else { head };
                let low = self.bind(SqlParam::Text(prefix.clone()));
                let cond = match prefix_successor(&prefix) {
                    Some(next) => {
                        let high = self.bind(SqlParam::Text(next));
                        format!("v >= {low} AND v < {high}")
                    }
                    None => format!("v >= {low}"),
                };
                (cond, len <= CUT)
            }
            // `sw ""`, `co`, `ew` and `ne`: every value of the attribute.
            _ => (String::new(), false),
        }
    }
}

/// Whether a lookup of the attribute's key names each resource at most
/// once: a resource has one value there, so one entry (a value's entry and
/// its presence entry never go together), and a count of the entries is a
/// count of the resources, read from the index without a `DISTINCT`.
fn one_each(a: &AttrRef, pairs: bool) -> bool {
    a.one_value && !pairs
}

/// How likely a node's set is small, 0 likeliest: equality names one value,
/// an ordering or a substring a range of them, and the rest (presence, `ne`,
/// booleans, compounds) most often much of the directory.
fn rank(n: &Node) -> u8 {
    match n {
        Node::Test(
            _,
            Test::Text {
                op: TextOp::Rel(Rel::Eq),
                ..
            },
        )
        | Node::Test(_, Test::Number(Rel::Eq, _) | Test::DateTime(Rel::Eq, _)) => 0,
        Node::Test(
            _,
            Test::Text {
                op: TextOp::Rel(Rel::Ne),
                ..
            },
        )
        | Node::Test(_, Test::Bool(_))
        | Node::Test(_, Test::Number(Rel::Ne, _) | Test::DateTime(Rel::Ne, _)) => 2,
        Node::Test(..) => 1,
        Node::Element(_, inner) => match inner.as_ref() {
            Node::All(xs) => xs.iter().map(rank).min().unwrap_or(2),
            x => rank(x),
        },
        Node::All(_) | Node::AnyOf(_) | Node::Not(_) | Node::Present(_) => 2,
    }
}

/// The rows of `kept` that are not in `taken`.
fn except(kept: &Part, taken: &Part, pairs: bool) -> Part {
    let cols = if pairs { "r, e" } else { "r" };
    let sql = format!(
        "SELECT {cols} FROM ({}) AS k0 EXCEPT SELECT {cols} FROM ({}) AS t0",
        kept.0, taken.0
    );
    (sql, true)
}

/// `a INTERSECT b …` (or UNION) of sets, each wrapped so that either store
/// takes it as an operand.
fn compound(parts: &[Part], word: &str, pairs: bool) -> Part {
    if let [one] = parts {
        return one.clone();
    }
    let cols = if pairs { "r, e" } else { "r" };
    let sql = parts
        .iter()
        .enumerate()
        .map(|(i, (p, _))| format!("SELECT {cols} FROM ({p}) AS s{i}"))
        .collect::<Vec<_>>()
        .join(&format!(" {word} "));
    (sql, true)
}

#[cfg(test)]
mod tests {
    use roster_scim::schema::SchemaRegistry;

    use super::*;

    fn user_candidates(filter: &str) -> (Option<Candidates>, Vec<SqlParam>) {
        let reg = SchemaRegistry::core();
        let rt = reg.resource_type("User").unwrap();
        let f = roster_scim::filter::parse_filter(filter).unwrap();
        let f = roster_scim::filter::check_filter(&reg, rt, &f).unwrap();
        let mut c = Compiler::new(rt, Kind::User, "dir", 3);
        let cand = c.candidates(&f);
        (cand, c.into_params())
    }

    /// The plan of the form `rows::list` runs for a selective filter, which
    /// must not scan the resources or the index.
    fn selective_plan(
        conn: &rusqlite::Connection,
        filter: &str,
        cand: &Candidates,
        params: &[SqlParam],
    ) -> Vec<String> {
        let query = format!(
            "EXPLAIN QUERY PLAN SELECT r.id \
             FROM (SELECT DISTINCT r AS n FROM ({}) AS c0) AS c CROSS JOIN resources r \
             WHERE r.r = c.n ORDER BY r.id LIMIT 100",
            cand.sql
        );
        let plan = super::super::tests::explain(conn, &query, params);
        assert!(
            !plan
                .iter()
                .any(|d| d.starts_with("SCAN r") || d.starts_with("SCAN attr_index")),
            "{filter} scans: {plan:#?}"
        );
        plan
    }

    /// Candidate SQL of every shape runs (on SQLite; the property test runs
    /// it on both stores).
    #[test]
    fn candidate_sql_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn =
            crate::sqlite::conn::open_writer(&dir.path().join("c.db"), &Default::default())
                .unwrap();
        crate::sqlite::conn::migrate(&mut conn).unwrap();
        for filter in [
            r#"title co "abc" and emails[type eq "work" and value ew "x.io"]"#,
            r#"userName ew "a\"b" or title co "%_\\""#,
            r#"title eq "x""#,
            r#"name[(givenName pr or givenName eq "e") and givenName co "i"] and (schemas ge "i" or phoneNumbers.primary pr)"#,
            r#"emails[type eq "work" and value sw "a"]"#,
            r#"emails pr and active eq true"#,
            r#"title pr and (schemas ge "i" or (emails pr or name.familyName ne "x"))"#,
            r#"id sw "u" or externalId lt "x" or meta.created gt "2026-01-01T00:00:00.5Z""#,
            r#"meta.lastModified le "2026-01-01T00:00:00Z" and not (title ne "x")"#,
            r#"not (title pr) and (externalId pr or not (active eq true))"#,
            r#"title co "x" and not (meta[created lt "2026-01-01T00:00:00Z"])"#,
            r#"not (title eq "x") or emails.type eq "work""#,
            r#"not (id pr or meta.resourceType eq "User")"#,
        ] {
            let (cand, params) = user_candidates(filter);
            let cand = cand.unwrap_or_else(|| panic!("{filter} has candidates"));
            let sql = format!("SELECT count(*) FROM ({}) AS c", cand.sql);
            let n: rusqlite::Result<i64> =
                conn.query_row(&sql, super::super::tests::bound(&params), |r| r.get(0));
            assert_eq!(n.map_err(|e| format!("{e}: {sql}")), Ok(0), "{filter}");
        }
    }

    /// Right after a load, before any ANALYZE, the selective list query of
    /// each operator and kind of attribute reads attr_index and fetches
    /// resources by number: it never scans the resources table.
    #[test]
    fn selective_plans_read_the_index_not_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        let mut conn = crate::sqlite::conn::open_writer(&path, &Default::default()).unwrap();
        crate::sqlite::conn::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO directories (id, name, created_at) VALUES ('dir', 'd', 0);
             INSERT INTO attr_keys (directory_id, rtype, path) VALUES ('dir', 1, 'title');
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO resources (id, r, directory_id, rtype, name_key, display, doc, version, created, last_modified)
             SELECT printf('u%05d', i), i, 'dir', 1, 'user' || i, 'U', '{}', 1, 0, 0 FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO attr_index (k, v, r, e) SELECT 1, 't' || (i % 300), i, 0 FROM n;",
        )
        .unwrap();
        let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        for filter in [
            r#"title eq "t1""#.to_owned(),
            r#"title sw "t1""#.to_owned(),
            r#"title gt "t2""#.to_owned(),
            r#"title co "t1""#.to_owned(),
            r#"title co "t12""#.to_owned(),
            r#"title ew "12""#.to_owned(),
            r#"userName co "user12""#.to_owned(),
            r#"title pr"#.to_owned(),
            r#"active eq false"#.to_owned(),
            r#"schemas eq "x""#.to_owned(),
            format!(r#"{ent}:employeeNumber eq "7""#),
            format!(r#"{ent}:manager.value eq "m""#),
            r#"emails.value ew "x" and title eq "t1""#.to_owned(),
            r#"emails[type eq "work" and value ew "x"]"#.to_owned(),
            r#"emails pr or name.familyName sw "n""#.to_owned(),
        ] {
            let (cand, params) = user_candidates(&filter);
            let cand = cand.unwrap();
            let plan = selective_plan(&conn, &filter, &cand, &params);
            assert!(
                plan.iter().any(|d| d.contains("resources_number")),
                "{filter} does not fetch resources by number: {plan:#?}"
            );
            // Substring searches of three characters or more read the
            // trigrams, not every value of the attribute.
            let searched = ["t12", "\"12\"", "user12"]
                .iter()
                .any(|p| filter.contains(p));
            assert_eq!(
                plan.iter().any(|d| d.contains("attr_text VIRTUAL TABLE")),
                searched,
                "{filter}: {plan:#?}"
            );
            // Beside the values still waiting to move into FTS5, found by
            // number, not by reading every value.
            assert_eq!(
                plan.iter()
                    .filter(|d| d.starts_with("SEARCH tv USING INTEGER PRIMARY KEY"))
                    .count(),
                if searched { 2 } else { 0 },
                "{filter}: {plan:#?}"
            );
            assert!(!plan.iter().any(|d| d.starts_with("SCAN tv")), "{plan:#?}");
            assert!(
                plan.iter().any(|d| d.starts_with("SEARCH attr_index")),
                "{filter} does not search attr_index: {plan:#?}"
            );
        }
    }

    #[test]
    fn exactness_follows_the_operator_and_type() {
        let exact = |f: &str| user_candidates(f).0.map(|c| c.exact);
        assert_eq!(exact(r#"title eq "boss""#), Some(true));
        assert_eq!(exact(r#"title eq """#), Some(false));
        assert_eq!(exact(r#"title sw "b""#), Some(true));
        assert_eq!(exact(r#"title co "b""#), Some(false));
        assert_eq!(exact(r#"title co "boss""#), Some(true));
        assert_eq!(exact(r#"title ew "ss""#), Some(true));
        assert_eq!(exact(r#"title ew "s""#), Some(false));
        assert_eq!(exact(r#"userName co "ali""#), Some(true));
        // A long pattern's head is searched, the values found are checked
        // against the whole pattern.
        assert_eq!(exact(r#"userName co "alice@example""#), Some(true));
        assert_eq!(exact(r#"userName ew "@example""#), Some(true));
        assert_eq!(
            exact(&format!(r#"title co "{}""#, "x".repeat(CUT + 1))),
            Some(false)
        );
        assert_eq!(exact(r#"title lt "b""#), Some(false));
        assert_eq!(exact(r#"title gt "b""#), Some(true));
        assert_eq!(exact(r#"title pr"#), Some(true));
        assert_eq!(exact(r#"emails[value pr]"#), Some(false));
        assert_eq!(exact(r#"active pr"#), Some(true));
        assert_eq!(exact(r#"emails pr"#), Some(true));
        // Some value other than the one named: every other entry.
        assert_eq!(exact(r#"emails.type ne "work""#), Some(true));
        assert_eq!(exact(r#"emails.type ne """#), Some(true));
        // Inside a value filter it is `not eq` on the element: no set.
        assert_eq!(exact(r#"emails[type ne "work"]"#), None);
        assert_eq!(
            exact(&format!(r#"emails.type ne "{}""#, "x".repeat(CUT))),
            Some(false)
        );
        assert_eq!(exact(r#"title eq "a" and userName eq "b""#), Some(true));
        assert_eq!(
            exact(r#"title eq "a" and groups.value eq "b""#),
            Some(false)
        );
        assert_eq!(exact(r#"title eq "a" or groups.value eq "b""#), None);
        assert_eq!(exact(r#"not (title co "a")"#), None);
        assert_eq!(exact(r#"password pr"#), None);
        assert_eq!(
            exact(&format!(r#"title eq "{}""#, "x".repeat(CUT))),
            Some(true)
        );
        assert_eq!(
            exact(&format!(r#"title eq "{}""#, "x".repeat(CUT + 1))),
            Some(false)
        );
        assert_eq!(
            exact(
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#
            ),
            Some(true)
        );
    }

    /// What `candidates` gives: exact, and a complement.
    fn shape(filter: &str) -> Option<(bool, bool)> {
        user_candidates(filter).0.map(|c| (c.exact, c.complement))
    }

    #[test]
    fn columns_give_exact_sets_but_for_co_and_ew() {
        let ts = "2026-01-01T00:00:00Z";
        for filter in [
            r#"id eq "u1""#.to_owned(),
            r#"id sw "u""#.to_owned(),
            r#"externalId gt "x""#.to_owned(),
            r#"externalId sw """#.to_owned(),
            "externalId pr".to_owned(),
            format!(r#"meta.created gt "{ts}""#),
            format!(r#"meta.lastModified le "{ts}""#),
            format!(r#"meta[created ge "{ts}" and lastModified lt "{ts}"]"#),
            // An instant between two milliseconds equals none of them.
            r#"meta.created eq "2026-01-01T00:00:00.0005Z""#.to_owned(),
            r#"meta.resourceType eq "Group""#.to_owned(),
            format!(r#"id eq "u1" or title eq "t" or meta.created lt "{ts}""#),
            // Names are in attr_index as well as in their column.
            r#"userName gt "a""#.to_owned(),
        ] {
            assert_eq!(shape(&filter), Some((true, false)), "{filter}");
        }
        for filter in [
            r#"externalId co "x""#,
            r#"id ew "1""#,
            r#"meta.version eq "W/\"1\"""#,
        ] {
            assert_eq!(shape(filter), None, "{filter}");
        }
        // Millisecond columns against instants between two milliseconds.
        let (_, params) = user_candidates(r#"meta.created ge "2026-01-01T00:00:00.0005Z""#);
        assert_eq!(params, [SqlParam::Int(1767225600001)]);
        let (cand, params) = user_candidates(r#"meta.created eq "2026-01-01T00:00:00.0005Z""#);
        assert_eq!((cand.unwrap().sql.as_str(), params.len()), (NOTHING, 0));
    }

    #[test]
    fn negations_of_exact_sets_are_complements() {
        // Every resource: the complement of nothing.
        assert_eq!(shape("id pr"), Some((true, true)));
        assert_eq!(shape("meta pr"), Some((true, true)));
        assert_eq!(shape(r#"meta.resourceType eq "User""#), Some((true, true)));
        assert_eq!(shape(r#"not (title eq "a")"#), Some((true, true)));
        assert_eq!(shape(r#"title ne "a""#), Some((true, true)));
        assert_eq!(shape("not (title pr)"), Some((true, true)));
        assert_eq!(shape(r#"not (externalId sw "a")"#), Some((true, true)));
        assert_eq!(shape(r#"not (not (title eq "a"))"#), Some((true, false)));
        // `and` takes a complement away from a set, exact or not.
        assert_eq!(
            shape(r#"title eq "a" and active ne true"#),
            Some((true, false))
        );
        assert_eq!(
            shape(r#"title co "a" and active ne true"#),
            Some((false, false))
        );
        assert_eq!(
            shape(r#"not (title eq "a") and not (active eq true)"#),
            Some((true, true))
        );
        assert_eq!(shape(r#"not (title eq "a") and groups.value eq "b""#), None);
        assert_eq!(shape(r#"id pr and title co "a""#), Some((false, false)));
        assert_eq!(shape(r#"id pr and groups.value eq "b""#), None);
        // A set whose exactness waits for the cut check has no complement.
        assert_eq!(shape(r#"not (title co "abc")"#), None);
        // `or` with a complement is one.
        assert_eq!(
            shape(r#"title eq "a" or active ne true"#),
            Some((true, true))
        );
        assert_eq!(shape(r#"title co "a" or active ne true"#), None);
        assert_eq!(shape(r#"not (title co "a")"#), None);
        // Elements have none.
        assert_eq!(shape(r#"emails[not (type eq "work")]"#), None);
        let (cand, _) = user_candidates(r#"title eq "a" and not (active eq true)"#);
        assert!(cand.unwrap().sql.contains(" EXCEPT "));
    }

    /// Column sets, the non-empty part of text `pr` and complements read
    /// indexes, never the whole resources table: the selective list form of
    /// a set, and the count of a complement.
    #[test]
    fn column_sets_and_complements_search_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        let mut conn = crate::sqlite::conn::open_writer(&path, &Default::default()).unwrap();
        crate::sqlite::conn::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO directories (id, name, created_at) VALUES ('dir', 'd', 0);
             INSERT INTO attr_keys (directory_id, rtype, path) VALUES ('dir', 1, 'title');
             INSERT INTO attr_keys (directory_id, rtype, path) VALUES ('dir', 1, 'active');
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO resources (id, r, directory_id, rtype, name_key, display, external_id, doc, version, created, last_modified)
             SELECT printf('u%05d', i), i, 'dir', 1, 'user' || i, 'U', 'x' || i, '{}', 1, i, i FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO attr_index (k, v, r, e) SELECT 1, 't' || (i % 300), i, 0 FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO attr_index (k, v, r, e) SELECT 2, '1', i, 0 FROM n;",
        )
        .unwrap();
        let ts = |ms: i64| {
            roster_scim::values::format_timestamp_millis(
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                    .unwrap(),
            )
        };
        for (filter, index) in [
            (r#"id eq "u00007""#.to_owned(), "INDEX resources_by_type"),
            (r#"id sw "u0299""#.to_owned(), "INDEX resources_by_type"),
            (r#"id gt "u02990""#.to_owned(), "INDEX resources_by_type"),
            (
                r#"externalId eq "x7""#.to_owned(),
                "INDEX resources_external",
            ),
            (
                r#"externalId sw "x29""#.to_owned(),
                "INDEX resources_external",
            ),
            (
                r#"externalId le "x1""#.to_owned(),
                "INDEX resources_external",
            ),
            (
                format!(r#"meta.created gt "{}""#, ts(2990)),
                "INDEX resources_created",
            ),
            (
                format!(r#"meta.created le "{}""#, ts(10)),
                "INDEX resources_created",
            ),
            (
                format!(r#"meta[created lt "{}"]"#, ts(10)),
                "INDEX resources_created",
            ),
            (
                format!(r#"meta.lastModified ge "{}""#, ts(2990)),
                "INDEX resources_modified",
            ),
            (
                format!(r#"meta.lastModified lt "{}" and title eq "t1""#, ts(10)),
                "INDEX resources_modified",
            ),
            (
                format!(r#"meta.created lt "{}" or externalId eq "x9""#, ts(10)),
                "INDEX resources_created",
            ),
            (
                r#"title eq "t1" and active ne true"#.to_owned(),
                "SEARCH attr_index",
            ),
            (
                r#"title pr and externalId eq "x9""#.to_owned(),
                "INDEX resources_external",
            ),
        ] {
            let (cand, params) = user_candidates(&filter);
            let cand = cand.unwrap();
            assert!(!cand.complement, "{filter}");
            let plan = selective_plan(&conn, &filter, &cand, &params);
            assert!(
                plan.iter()
                    .any(|d| d.starts_with("SEARCH") && d.contains(index)),
                "{filter} does not search {index}: {plan:#?}"
            );
        }
        for filter in [
            r#"not (title eq "t1")"#,
            r#"title ne "t1""#,
            "not (title pr)",
            "not (externalId pr)",
            r#"not (title eq "t1" or active eq true)"#,
            r#"not (meta.created gt "2026-01-01T00:00:00Z")"#,
        ] {
            let (cand, params) = user_candidates(filter);
            let cand = cand.unwrap();
            assert!(cand.complement, "{filter}");
            // The form `rows::list` counts a complement with.
            let query = format!(
                "EXPLAIN QUERY PLAN SELECT {} - ({})",
                crate::rows::counts::of_kind_sql(Kind::User, "?1"),
                cand.count_sql()
            );
            let plan = super::super::tests::explain(&conn, &query, &params);
            assert!(
                !plan.iter().any(|d| d.starts_with("SCAN r")
                    || d.starts_with("SCAN resources")
                    || d.starts_with("SCAN attr_index")),
                "{filter} scans: {plan:#?}"
            );
            assert!(
                plan.iter().any(|d| d.contains("directory_counts")),
                "{filter} does not read the directory's count: {plan:#?}"
            );
            // A range of a resources index is counted without its rows.
            if filter.contains("meta.created") {
                assert!(
                    plan.iter()
                        .any(|d| d.contains("COVERING INDEX resources_created")),
                    "{filter} reads resources rows: {plan:#?}"
                );
            }
        }
    }

    #[test]
    fn sets_that_name_each_resource_once_say_so() {
        let distinct = |f: &str| user_candidates(f).0.map(|c| c.distinct);
        let ts = "2026-01-01T00:00:00Z";
        assert_eq!(
            distinct(&format!(r#"meta.lastModified lt "{ts}""#)),
            Some(true)
        );
        assert_eq!(distinct(r#"externalId sw "x""#), Some(true));
        // A lookup names a resource once per value.
        assert_eq!(distinct(r#"emails.type eq "work""#), Some(false));
        assert_eq!(distinct(r#"not (emails.type eq "work")"#), Some(false));
        // Set operations and DISTINCT name each once.
        assert_eq!(
            distinct(r#"emails.type eq "work" or title eq "a""#),
            Some(true)
        );
        assert_eq!(distinct(r#"emails[type eq "work"]"#), Some(true));
        // A singular attribute has one entry per resource at most.
        assert_eq!(distinct("title pr"), Some(true));
        assert_eq!(distinct(r#"title eq "a""#), Some(true));
        assert_eq!(distinct(r#"userName ge "m""#), Some(true));
        assert_eq!(distinct("name.familyName pr"), Some(true));
        assert_eq!(distinct(r#"displayName co "abc""#), Some(true));
        assert_eq!(distinct("emails.value pr"), Some(false));
        assert_eq!(distinct(r#"emails.type ne "work""#), Some(false));
        // A multi-valued attribute without sub-attributes holds a value once.
        assert_eq!(distinct(r#"schemas eq "urn:x""#), Some(true));
        assert_eq!(distinct(r#"schemas ne "urn:x""#), Some(false));
        assert_eq!(distinct("schemas pr"), Some(false));
        // Any sub-attribute of the element.
        assert_eq!(distinct("name pr"), Some(false));
        assert_eq!(distinct(r#"title eq "a" and active ne true"#), Some(true));
    }

    fn user_drivers(filter: &str) -> Vec<Driver> {
        let reg = SchemaRegistry::core();
        let rt = reg.resource_type("User").unwrap();
        let f = roster_scim::filter::parse_filter(filter).unwrap();
        let f = roster_scim::filter::check_filter(&reg, rt, &f).unwrap();
        Compiler::new(rt, Kind::User, "dir", 3).drivers(&f)
    }

    #[test]
    fn drivers_are_the_operands_of_a_top_and_likeliest_small_first() {
        let binds = |d: &Driver, xs: &[&str]| {
            xs.iter()
                .all(|x| d.params.contains(&SqlParam::Text((*x).into())))
        };
        // A complement (`not`) cannot drive; `eq` comes before `pr`.
        let d = user_drivers(r#"title pr and userName eq "ann" and not (nickName eq "x")"#);
        assert_eq!(d.len(), 2, "{d:#?}");
        assert!(binds(&d[0], &["userName", "ann"]), "{d:#?}");
        assert!(binds(&d[1], &["title"]), "{d:#?}");
        // Each is compiled on its own: its parameters start after the
        // directory's and the type's.
        for driver in &d {
            assert!(driver.sql.contains("?3"), "{}", driver.sql);
            assert!(
                !driver
                    .sql
                    .contains(&format!("?{}", 3 + driver.params.len())),
                "{}",
                driver.sql
            );
        }
        // A value filter's operands drive by resource.
        let d = user_drivers(r#"emails[type eq "work" and value ew "@example.com"]"#);
        assert_eq!(d.len(), 2, "{d:#?}");
        assert!(binds(&d[0], &["emails.type", "work"]), "{d:#?}");
        assert!(d[1].sql.starts_with("SELECT r FROM ("), "{}", d[1].sql);
        // `meta[...]` is its inner filter on the resource.
        let ts = "2026-01-01T00:00:00Z";
        assert_eq!(
            user_drivers(&format!(
                r#"meta[created gt "{ts}" and lastModified lt "{ts}"]"#
            ))
            .len(),
            2
        );
        // Nothing to choose between.
        for filter in [
            r#"userName eq "ann""#,
            r#"userName eq "ann" or title eq "boss""#,
            r#"not (userName eq "ann" and title eq "boss")"#,
            r#"userName eq "ann" and not (title eq "boss")"#,
        ] {
            assert!(user_drivers(filter).is_empty(), "{filter}");
        }
    }
}
