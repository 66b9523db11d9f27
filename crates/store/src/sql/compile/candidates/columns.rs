//! Candidate sets of the attributes that columns of `resources` serve:
//! `id` and `externalId` (case-exact text), `meta.created` and
//! `meta.lastModified` (milliseconds), and `meta.resourceType` (a constant).
//!
//! A set is a range of one of the `resources` indexes under the directory and
//! type (`resources_by_type`, `resources_external`, `resources_created`,
//! `resources_modified`), and always exact: it makes the comparison the
//! document predicate makes (`Compiler::compare`), on the same column, with
//! dateTimes rounded to milliseconds as [`millis_compare`] does. Comparisons
//! that hold for every resource (`id pr`, `meta.created gt "1000-01-01…"`)
//! or for none are the whole directory or nothing, without a query of their
//! own. `co` and `ew` have no set: no index serves them.

use roster_scim::filter::{AttrRef, Test, TextOp};

use super::Set;
use crate::sql::compile::{
    Compiler, MillisCmp, Source, SqlParam, millis_compare, prefix_successor, sql_op, text_matches,
};

impl Compiler<'_> {
    /// The set of `pr` (`test` None) or of a comparison on a column-served
    /// attribute, if it has one.
    pub(super) fn column_set(&mut self, a: &AttrRef, test: Option<&Test>) -> Option<Set> {
        let indexed = matches!(
            (a.attr.as_str(), a.sub.as_deref()),
            ("id" | "externalId", None)
                | (
                    "meta",
                    None | Some("created" | "lastModified" | "resourceType")
                )
        );
        if !a.is_core() || a.never_returned || !indexed {
            return None;
        }
        let cond = match (self.column_source(&a.attr, a.sub.as_deref())?, test) {
            (Source::Millis(_) | Source::Constant(_), None) => return Some(Set::everything()),
            (Source::Column { sql, nullable, .. }, None) => {
                if !nullable {
                    return Some(Set::everything());
                }
                format!("{sql} IS NOT NULL AND {sql} <> ''")
            }
            (Source::Constant(c), Some(Test::Text { op, value, fold })) => {
                let c = if *fold {
                    roster_scim::values::fold(&c)
                } else {
                    c
                };
                return Some(if text_matches(&c, *op, value) {
                    Set::everything()
                } else {
                    Set::nothing()
                });
            }
            (Source::Millis(col), Some(Test::DateTime(rel, ns))) => {
                match millis_compare(*rel, *ns) {
                    MillisCmp::Always(true) => return Some(Set::everything()),
                    MillisCmp::Always(false) => return Some(Set::nothing()),
                    MillisCmp::Compare(op, ms) => {
                        let p = self.bind(SqlParam::Int(ms));
                        format!("{col} {op} {p}")
                    }
                }
            }
            (Source::Column { sql, folded, .. }, Some(Test::Text { op, value, fold })) => {
                // A folded comparison of a column that holds unfolded text
                // (none of these: id and externalId are case-exact) is no
                // range of its index.
                if *fold && !folded {
                    return None;
                }
                self.column_text_cond(&sql, *op, value)?
            }
            // The checker types every comparison by the attribute's type:
            // no other pair reaches here.
            _ => return None,
        };
        let sql = format!(
            "SELECT r.r FROM resources r WHERE r.directory_id = ?1 AND r.rtype = ?2 AND {cond}"
        );
        Some(Set::of_part((sql, true), true))
    }

    /// A text column compared as `Compiler::text_compare` does, as an index
    /// range: both stores order these columns by code point (SQLite's
    /// BINARY, PostgreSQL's "C"), as Rust orders strings.
    fn column_text_cond(&mut self, col: &str, op: TextOp, value: &str) -> Option<String> {
        Some(match op {
            TextOp::Rel(rel) => {
                let p = self.bind(SqlParam::Text(value.to_owned()));
                format!("{col} {} {p}", sql_op(rel))
            }
            TextOp::Sw => {
                let low = self.bind(SqlParam::Text(value.to_owned()));
                match prefix_successor(value) {
                    Some(next) => {
                        let high = self.bind(SqlParam::Text(next));
                        format!("{col} >= {low} AND {col} < {high}")
                    }
                    None => format!("{col} >= {low}"),
                }
            }
            TextOp::Co | TextOp::Ew => return None,
        })
    }
}
