//! Compiles a checked SCIM filter into a SQL boolean expression over `resources r`.
//!
//! The compiler takes only [`CheckedFilter`]s: every path is already resolved
//! and every value typed by `roster_scim::filter::check_filter`, so nothing
//! here looks a name up in the schemas or parses a value. The semantics are
//! exactly those of the in-memory evaluator in `roster_scim::filter` (a
//! property test runs both on random filters):
//! - every compiled leaf yields 0 or 1, never NULL, so `not` (and `ne` on a
//!   singular attribute, which the checker turns into `not eq`) is a plain
//!   negation and absent attributes compare false; `ne` on a multi-valued
//!   attribute is `!=` inside the "any value" `EXISTS`;
//! - case-insensitive text compares `scim_fold(x)` with a value folded by the
//!   checker; the indexed columns (`name_key`, `attr_index.v` of
//!   case-insensitive attributes) hold folded text;
//! - dateTime values compare as instants through `scim_ts` (a text key of the
//!   nanoseconds, see [`instant_key`]) or, for meta, the milliseconds columns;
//! - multi-valued attributes match when any value matches (`EXISTS` over
//!   `json_each`, membership rows or indexed values).
//!
//! Values never reach SQL text: every literal is a bound parameter.

use roster_scim::filter::{AttrRef, CheckedFilter, FilterScope, Node, Rel, Test, TextOp};
use roster_scim::schema::{AttrType, ResourceType};
use roster_scim::sort::SortKey;
use roster_scim::{Result, ScimError};

use std::collections::HashMap;

use crate::db::{Dialect, Val};
use crate::index::entries::{CUT, attr_path, text_key};
use crate::model::Kind;

mod candidates;
pub use candidates::{Candidates, Driver};

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    Text(String),
    Int(i64),
    Real(f64),
}

impl From<&SqlParam> for Val {
    fn from(p: &SqlParam) -> Self {
        match p {
            SqlParam::Text(s) => Val::Text(s.clone()),
            SqlParam::Int(i) => Val::Int(*i),
            SqlParam::Real(f) => Val::Real(*f),
        }
    }
}

/// Sub-attributes of users' multi-valued attributes that a filter on its own
/// (with no candidate set to drive it, as in a sorted list or a count) reads
/// from `attr_index` rather than from every document: the addresses identity
/// providers look users up by.
const INDEXED_VALUES: &[(&str, &str)] = &[("emails", "value"), ("phoneNumbers", "value")];

/// One directory's attribute keys (`attr_keys`) of one resource type, by
/// path, read in the statement's snapshot: a list that has them writes each
/// key as a constant, which the planner sees (see [`Compiler::with_keys`]).
pub type PathKeys = HashMap<String, i64>;

/// Where a key's subquery finds its directory and resource type.
#[derive(Clone, Copy)]
pub(crate) enum KeyScope {
    /// `?1` and `?2`, which every list statement binds.
    Bound,
    /// Placeholders of its own.
    Own,
}

/// `(SELECT k …)`: the key named by the placeholders `dir`, `rtype` and `path`.
pub(crate) fn key_subquery(dir: &str, rtype: &str, path: &str) -> String {
    format!(
        "(SELECT k FROM attr_keys WHERE directory_id = {dir} AND rtype = {rtype} AND path = {path})"
    )
}

/// `r.id IN (…)`: the resources with an `attr_index` entry of the key `key`
/// (a constant or [`key_subquery`]) whose `v` meets `cond`. By id, not by
/// number: with `r.r IN (…)` and a page ordered by id, SQLite walks the whole
/// directory in id order to skip the sort, while a list of ids drives
/// `resources_by_type` in that very order.
pub(crate) fn value_lookup(key: &str, cond: &str) -> String {
    format!(
        "r.id IN (SELECT m.id FROM attr_index JOIN resources m ON m.r = attr_index.r \
         WHERE attr_index.k = {key} AND {cond})"
    )
}

/// Where a value comes from once a path is resolved.
#[derive(Debug, Clone)]
enum Source {
    /// A column or SQL expression; `folded` when it already holds folded text.
    Column {
        sql: String,
        folded: bool,
        nullable: bool,
    },
    /// Milliseconds columns for meta.created / meta.lastModified.
    Millis(&'static str),
    /// A constant known at compile time (meta.resourceType).
    Constant(String),
    /// A JSON value at `path` inside the JSON document `doc`.
    Json { doc: String, path: JsonPath },
    /// The simple (non-object) elements of a json_each row.
    JsonElement,
}

/// The scope the paths of a (sub)filter are compiled in.
#[derive(Clone, Copy)]
enum Scope {
    Resource,
    /// Inside `attr[...]`: every leaf names a sub-attribute of the
    /// attribute, whose elements `elem` gives.
    Element(Elem),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Elem {
    /// A json_each row `e` whose value is an object.
    Json,
    /// A single-valued complex attribute of the resource document.
    SingleComplex,
    /// A membership row `gm` joined with the member resource `m` (group.members).
    Member,
    /// A membership row `gm` joined with the group resource `m` (user.groups).
    GroupOf,
}

pub struct Compiler<'a> {
    rt: &'a ResourceType,
    kind: Kind,
    params: Vec<SqlParam>,
    /// The directory id, for lookups in side tables that are keyed by directory.
    directory: String,
    /// Number of the first placeholder this compiler binds (`?N`): numbered
    /// placeholders keep binding order independent of where text lands in the SQL.
    first_param: usize,
    dialect: Dialect,
    /// Judging rows a candidate set already chose: each row's own values
    /// decide, with no lookup of the attribute's every value beside them.
    rechecking: bool,
    /// The directory's keys, when the caller read them: see [`Compiler::key`].
    keys: Option<&'a PathKeys>,
}

/// An ORDER BY for a sort attribute, plus the SQL for the key tuple used by cursors.
#[derive(Debug, Clone)]
pub struct CompiledSort {
    /// The sort expression (NULL when the resource has no value).
    pub expr: String,
    pub attr_type: AttrType,
}

impl<'a> Compiler<'a> {
    /// `first_param` is the number of the first `?N` placeholder the compiler may use.
    pub fn new(rt: &'a ResourceType, kind: Kind, directory: &str, first_param: usize) -> Self {
        Compiler {
            rt,
            kind,
            params: Vec::new(),
            directory: directory.to_owned(),
            first_param,
            dialect: Dialect::Sqlite,
            rechecking: false,
            keys: None,
        }
    }

    /// Writes each attribute key as a constant from `keys` (every key of the
    /// directory and resource type, read in the snapshot the SQL will run
    /// in), and a path without one as `NULL`, which matches nothing. A
    /// subquery on `attr_keys` hides the key from PostgreSQL's planner: it
    /// then guesses a key's entries, and guessed a million for one that
    /// does not exist.
    pub fn with_keys(mut self, keys: &'a PathKeys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The key of `path` in this compiler's directory and resource type: a
    /// constant from [`Compiler::with_keys`], or else a subquery on the
    /// directory and type. `KeyScope::Bound` names the placeholders every list
    /// statement binds (`?1`, `?2`); `KeyScope::Own` binds both anew, for a
    /// condition that may run where those mean something else.
    fn key(&mut self, path: &str, scope: KeyScope) -> String {
        if let Some(keys) = self.keys {
            return keys
                .get(path)
                .map_or_else(|| "NULL".to_owned(), i64::to_string);
        }
        let (dir, rtype) = match scope {
            KeyScope::Bound => ("?1".to_owned(), "?2".to_owned()),
            KeyScope::Own => (
                self.bind(SqlParam::Text(self.directory.clone())),
                self.bind(SqlParam::Int(self.kind.code())),
            ),
        };
        let path = self.bind(SqlParam::Text(path.to_owned()));
        key_subquery(&dir, &rtype, &path)
    }

    /// Compiles the recheck of a candidate set's few rows: a lookup of every
    /// `emails.value` containing `x` would cost the directory's addresses,
    /// reading the few documents costs the few rows.
    pub fn rechecking(mut self) -> Self {
        self.rechecking = true;
        self
    }

    /// Compiles for another SQL dialect than SQLite's.
    pub fn with_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    fn pg(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    /// A boolean literal: SQLite's are integers.
    fn lit(&self, b: bool) -> String {
        match (self.pg(), b) {
            (false, b) => bool_sql(b),
            (true, true) => "true".into(),
            (true, false) => "false".into(),
        }
    }

    /// `NULL` read as false.
    fn falsy(&self, cond: &str) -> String {
        format!("COALESCE({cond}, {})", self.lit(false))
    }

    /// The rows of a JSON array inside `doc` as `e` (`e.value` each element).
    fn elements(&self, doc: &str, path: &JsonPath) -> String {
        if self.pg() {
            let j = path.pg(doc);
            format!(
                "json_array_elements(CASE WHEN json_typeof({j}) = 'array' THEN {j} ELSE '[]'::json END) e(value)"
            )
        } else {
            format!("json_each({doc}, '{}') e", path.sqlite())
        }
    }

    /// The JSON value a source points at (PostgreSQL: a `json` expression; the
    /// documents are `json`, not `jsonb`, so attribute order survives storage).
    fn json_of(&self, source: &Source) -> Option<String> {
        match source {
            Source::Json { doc, path } => Some(path.pg(doc)),
            Source::JsonElement => Some("e.value".into()),
            _ => None,
        }
    }

    /// Text of a JSON string value (NULL for anything else), or a column.
    fn text_value(&self, source: &Source) -> String {
        match (self.pg(), self.json_of(source)) {
            (true, Some(j)) => {
                format!("(CASE WHEN json_typeof({j}) = 'string' THEN {j} #>> '{{}}' END)")
            }
            _ => match source {
                Source::Column { sql, .. } => sql.clone(),
                _ => format!(
                    "(CASE WHEN {} = 'text' THEN {} END)",
                    type_expr(source),
                    value_expr(source)
                ),
            },
        }
    }

    fn fold_sql(&self, expr: &str) -> String {
        if self.pg() {
            format!("roster_fold({expr})")
        } else {
            format!("scim_fold({expr})")
        }
    }

    /// The sortable instant key of a dateTime value (see [`instant_key`]).
    fn instant_sql(&self, source: &Source) -> String {
        if self.pg() {
            format!("roster_ts({})", self.text_value(source))
        } else {
            format!("scim_ts({})", value_expr(source))
        }
    }

    pub fn into_params(self) -> Vec<SqlParam> {
        self.params
    }

    pub fn params(&self) -> &[SqlParam] {
        &self.params
    }

    fn bind(&mut self, p: SqlParam) -> String {
        self.params.push(p);
        format!("?{}", self.first_param + self.params.len() - 1)
    }

    /// Compiles a filter on resources (alias `r`).
    pub fn filter(&mut self, f: &CheckedFilter) -> Result<String> {
        if f.scope() != FilterScope::Resource {
            return Err(ScimError::internal(
                "a value filter was given where a resource filter belongs",
            ));
        }
        self.expr(f.root(), Scope::Resource)
    }

    /// Compiles a value filter on a group's membership rows (`gm` joined with
    /// member `m`), for PATCH removals like `members[display sw "x"]`.
    pub fn member_filter(&mut self, f: &CheckedFilter) -> Result<String> {
        if f.scope() != FilterScope::Element || self.kind != Kind::Group {
            return Err(ScimError::internal(
                "a membership filter must be a value filter on a group's members",
            ));
        }
        self.expr(f.root(), Scope::Element(Elem::Member))
    }

    fn expr(&mut self, n: &Node, scope: Scope) -> Result<String> {
        Ok(match n {
            Node::All(xs) => self.chain(xs, scope, " AND ")?,
            Node::AnyOf(xs) => self.chain(xs, scope, " OR ")?,
            Node::Not(a) => format!("(NOT {})", self.expr(a, scope)?),
            Node::Present(a) => self.present(a, scope)?,
            Node::Test(a, test) => self.test(a, test, scope)?,
            Node::Element(parent, inner) => match scope {
                Scope::Resource => self.value_path(parent, inner)?,
                // The checker refuses nested value filters.
                Scope::Element(_) => {
                    return Err(ScimError::internal("a value filter inside another"));
                }
            },
        })
    }

    fn chain(&mut self, xs: &[Node], scope: Scope, word: &str) -> Result<String> {
        let parts = xs
            .iter()
            .map(|x| self.expr(x, scope))
            .collect::<Result<Vec<_>>>()?;
        Ok(format!("({})", parts.join(word)))
    }

    /// `attr[inner]`: one element must satisfy `inner` as a whole.
    fn value_path(&mut self, parent: &AttrRef, inner: &Node) -> Result<String> {
        let name = parent.attr.as_str();
        if self.kind == Kind::Group && parent.is_core() && name == "members" {
            let cond = self.expr(inner, Scope::Element(Elem::Member))?;
            return Ok(format!(
                "EXISTS (SELECT 1 FROM group_members gm JOIN resources m ON m.id = gm.member_id \
                 WHERE gm.group_id = r.id AND {cond})"
            ));
        }
        if self.kind == Kind::User && parent.is_core() && name == "groups" {
            let cond = self.expr(inner, Scope::Element(Elem::GroupOf))?;
            return Ok(format!(
                "EXISTS (SELECT 1 FROM group_members gm JOIN resources m ON m.id = gm.group_id \
                 WHERE gm.member_id = r.id AND {cond})"
            ));
        }
        if parent.multi_valued {
            let list = json_path(parent.extension.as_deref(), &[name]);
            let cond = self.expr(inner, Scope::Element(Elem::Json))?;
            let exists = format!(
                "EXISTS (SELECT 1 FROM {} WHERE {cond})",
                self.elements("r.doc", &list)
            );
            // An indexed `value eq` inside the brackets narrows the scan to an index lookup
            // (Entra ID looks users up by `emails[type eq "work"].value eq "…"`).
            if let Some(lookup) = self.indexed_prefilter(parent, inner) {
                return Ok(format!("({lookup} AND {exists})"));
            }
            Ok(exists)
        } else {
            // Like a multi-valued attribute with no elements, an absent one has no
            // element to satisfy `inner`: `name[not (givenName pr)]` is false without `name`.
            let exists = self.present(parent, Scope::Resource)?;
            let cond = self.expr(inner, Scope::Element(Elem::SingleComplex))?;
            Ok(format!("({exists} AND {cond})"))
        }
    }

    fn indexed_prefilter(&mut self, parent: &AttrRef, inner: &Node) -> Option<String> {
        if self.rechecking || !parent.is_core() || self.kind != Kind::User {
            return None;
        }
        let (attr, sub) = INDEXED_VALUES.iter().find(|(a, _)| *a == parent.attr)?;
        // Folded by the checker when the sub-attribute is case-insensitive, as
        // the index entries are. The lookup only narrows (the element
        // predicate beside it decides), so a value longer than an entry
        // holds may look up its cut form.
        let value = text_key(find_eq(inner, sub)?, false);
        let v = self.bind(SqlParam::Text(value));
        Some(self.indexed_lookup(&attr_path(None, attr, Some(sub)), &format!("v = {v}")))
    }

    /// [`value_lookup`] of `path` in this compiler's directory and resource type.
    fn indexed_lookup(&mut self, path: &str, cond: &str) -> String {
        let key = self.key(path, KeyScope::Own);
        value_lookup(&key, cond)
    }

    /// A comparison: of every value of the attribute in the documents, or of
    /// the indexed values of an [`INDEXED_VALUES`] sub-attribute.
    fn test(&mut self, a: &AttrRef, test: &Test, scope: Scope) -> Result<String> {
        let indexed = matches!(scope, Scope::Resource)
            && !self.rechecking
            && self.kind == Kind::User
            && a.is_core()
            && !a.never_returned
            && a.sub
                .as_deref()
                .is_some_and(|sub| INDEXED_VALUES.contains(&(a.attr.as_str(), sub)));
        let lookup = match test {
            Test::Text { op, value, .. } if indexed => {
                self.indexed_text_cond(*op, value).map(|(cond, exact)| {
                    let path = attr_path(None, &a.attr, a.sub.as_deref());
                    (self.indexed_lookup(&path, &cond), exact)
                })
            }
            _ => None,
        };
        let documents =
            |c: &mut Self| c.over_values(a, scope, &mut |c, source| Ok(c.compare(source, a, test)));
        Ok(match lookup {
            Some((sql, true)) => sql,
            // A superset of the matches: the documents of its resources decide.
            Some((sql, false)) => format!("({sql} AND {})", documents(self)?),
            None => documents(self)?,
        })
    }

    /// The condition on `attr_index.v` for a text comparison of an indexed
    /// value, and whether it is exact: the candidate set's where it has one;
    /// for `co` and `ew` the entries that compare so plus every cut one, whose
    /// tail the entry does not hold. None for `ne` and `sw ""`, which most
    /// values meet: the documents, read in page order, stop after a page.
    fn indexed_text_cond(&mut self, op: TextOp, value: &str) -> Option<(String, bool)> {
        let (cond, exact) = self.text_cond(op, value);
        if !cond.is_empty() {
            return Some((cond, exact));
        }
        if !matches!(op, TextOp::Co | TextOp::Ew) {
            return None;
        }
        let test = self.text_compare("v", op, value);
        Some((format!("({test} OR length(v) > {CUT})"), false))
    }

    fn present(&mut self, a: &AttrRef, scope: Scope) -> Result<String> {
        self.over_values(a, scope, &mut |c, source| Ok(c.present_sql(source, a)))
    }

    /// Builds `cond(source)` for every place the attribute's values live, with
    /// "any value matches" for multi-valued attributes.
    fn over_values(
        &mut self,
        a: &AttrRef,
        scope: Scope,
        cond: &mut dyn FnMut(&mut Self, &Source) -> Result<String>,
    ) -> Result<String> {
        // `returned: never` attributes (password) are in the stored document but in
        // no resource a client sees, and filters judge what the client sees: they
        // are absent. Anything else would let `password sw "$argon2"` probe hashes.
        if a.never_returned {
            return Ok(self.lit(false));
        }
        let sub_name = a.sub.as_deref();
        if let Scope::Element(elem) = scope {
            // A single-valued complex attribute has one element, the resource's own:
            // `meta[created gt …]` must read the `created` column and
            // `…:User:manager[value eq …]` the extension object, exactly as
            // `meta.created` and `…:User:manager.value` do.
            if elem == Elem::SingleComplex {
                return self.over_values(a, Scope::Resource, cond);
            }
            let source = element_source(elem, &a.attr, sub_name.unwrap_or("value"))?;
            return cond(self, &source);
        }
        let name = a.attr.as_str();
        if a.is_core() {
            if let Some(source) = self.column_source(name, sub_name) {
                return cond(self, &source);
            }
            if self.kind == Kind::Group && name == "members" {
                let source = element_source(Elem::Member, name, sub_name.unwrap_or("value"))?;
                let c = cond(self, &source)?;
                return Ok(format!(
                    "EXISTS (SELECT 1 FROM group_members gm JOIN resources m ON m.id = gm.member_id \
                     WHERE gm.group_id = r.id AND {c})"
                ));
            }
            if self.kind == Kind::User && name == "groups" {
                let source = element_source(Elem::GroupOf, name, sub_name.unwrap_or("value"))?;
                let c = cond(self, &source)?;
                return Ok(format!(
                    "EXISTS (SELECT 1 FROM group_members gm JOIN resources m ON m.id = gm.group_id \
                     WHERE gm.member_id = r.id AND {c})"
                ));
            }
        }
        let container = a.extension.as_deref();
        if a.multi_valued {
            let list = json_path(container, &[name]);
            let source = match sub_name {
                Some(sub) => Source::Json {
                    doc: "e.value".into(),
                    path: json_path(None, &[sub]),
                },
                None => Source::JsonElement,
            };
            let c = cond(self, &source)?;
            return Ok(format!(
                "EXISTS (SELECT 1 FROM {} WHERE {c})",
                self.elements("r.doc", &list)
            ));
        }
        let segments: Vec<&str> = std::iter::once(name).chain(sub_name).collect();
        let source = Source::Json {
            doc: "r.doc".into(),
            path: json_path(container, &segments),
        };
        cond(self, &source)
    }

    /// Attributes that live in columns rather than in the document.
    fn column_source(&self, name: &str, sub: Option<&str>) -> Option<Source> {
        let col = |sql: &str, folded: bool, nullable: bool| Source::Column {
            sql: sql.to_owned(),
            folded,
            nullable,
        };
        match (name, sub) {
            ("id", None) => Some(col("r.id", false, false)),
            ("externalId", None) => Some(col("r.external_id", false, true)),
            ("userName", None) if self.kind == Kind::User => Some(col("r.name_key", true, false)),
            ("displayName", None) if self.kind == Kind::Group => {
                Some(col("r.name_key", true, false))
            }
            ("meta", Some("created")) => Some(Source::Millis("r.created")),
            ("meta", Some("lastModified")) => Some(Source::Millis("r.last_modified")),
            ("meta", Some("resourceType")) => Some(Source::Constant(self.rt.name.clone())),
            ("meta", Some("version")) => Some(col("('W/\"' || r.version || '\"')", false, false)),
            ("meta", Some("location")) => Some(col(
                &format!("('{}/' || r.id)", self.rt.endpoint.trim_start_matches('/')),
                false,
                false,
            )),
            ("meta", None) => Some(Source::Constant(self.rt.name.clone())),
            _ => None,
        }
    }

    fn compare(&mut self, source: &Source, a: &AttrRef, test: &Test) -> String {
        match (source, test) {
            (Source::Constant(c), Test::Text { op, value, fold }) => {
                let lhs = if *fold {
                    roster_scim::values::fold(c)
                } else {
                    c.clone()
                };
                self.lit(text_matches(&lhs, *op, value))
            }
            (Source::Constant(_), _) => self.lit(false),
            (Source::Millis(col), Test::DateTime(rel, ns)) => match millis_compare(*rel, *ns) {
                MillisCmp::Always(b) => self.lit(b),
                // Bound, not written into the SQL: every value would otherwise
                // be a new statement to prepare (and to cache).
                MillisCmp::Compare(sql_op, ms) => {
                    let p = self.bind(SqlParam::Int(ms));
                    format!("{col} {sql_op} {p}")
                }
            },
            (Source::Millis(_), _) => self.lit(false),
            // Columns hold text; only text compares with them.
            (Source::Column { .. }, _) if self.pg() && !matches!(test, Test::Text { .. }) => {
                self.lit(false)
            }
            (_, Test::Text { op, value, .. }) => {
                let (expr, nullable) = self.text_expr(source, a);
                let cond = self.text_compare(&expr, *op, value);
                guard(&expr, nullable, &cond)
            }
            (_, Test::Bool(b)) => {
                let want = if *b { "true" } else { "false" };
                match self.json_of(source).filter(|_| self.pg()) {
                    Some(j) => self.falsy(&format!(
                        "json_typeof({j}) = 'boolean' AND ({j})::text = '{want}'"
                    )),
                    None => self.falsy(&format!("{} = '{want}'", type_expr(source))),
                }
            }
            (_, Test::Number(rel, n)) => {
                let p = self.bind(SqlParam::Real(*n));
                let op = sql_op(*rel);
                match self.json_of(source).filter(|_| self.pg()) {
                    Some(j) => self.falsy(&format!(
                        "(CASE WHEN json_typeof({j}) = 'number' THEN ({j} #>> '{{}}')::float8 END) {op} {p}"
                    )),
                    None => self.falsy(&format!(
                        "{} IN ('integer', 'real') AND {} {op} {p}",
                        type_expr(source),
                        value_expr(source)
                    )),
                }
            }
            (_, Test::DateTime(rel, ns)) => {
                let expr = self.instant_sql(source);
                let p = self.bind(SqlParam::Text(instant_key(*ns)));
                let c = if self.pg() { " COLLATE \"C\"" } else { "" };
                self.falsy(&format!("{expr}{c} {} {p}", sql_op(*rel)))
            }
        }
    }

    /// The text expression to compare, folded when the attribute is case-insensitive.
    fn text_expr(&self, source: &Source, a: &AttrRef) -> (String, bool) {
        match source {
            Source::Column {
                sql,
                folded,
                nullable,
            } => {
                if *folded || a.case_exact {
                    (sql.clone(), *nullable)
                } else {
                    (self.fold_sql(sql), *nullable)
                }
            }
            _ => {
                let text = self.text_value(source);
                if a.case_exact {
                    (text, true)
                } else {
                    (self.fold_sql(&text), true)
                }
            }
        }
    }

    fn text_compare(&mut self, expr: &str, op: TextOp, v: &str) -> String {
        if self.pg() {
            return self.pg_text_compare(expr, op, v);
        }
        match op {
            TextOp::Co => {
                let p = self.bind(SqlParam::Text(v.to_owned()));
                format!("instr({expr}, {p}) > 0")
            }
            TextOp::Sw => {
                let p = self.bind(SqlParam::Text(format!("{}*", glob_escape(v))));
                format!("{expr} GLOB {p}")
            }
            TextOp::Ew => {
                let p = self.bind(SqlParam::Text(format!("*{}", glob_escape(v))));
                format!("{expr} GLOB {p}")
            }
            TextOp::Rel(rel) => {
                let p = self.bind(SqlParam::Text(v.to_owned()));
                format!("{expr} {} {p}", sql_op(rel))
            }
        }
    }

    /// PostgreSQL: code-point order (as Rust compares strings) whatever the
    /// database's collation; `sw` as a range, so a B-tree index serves it;
    /// `co` and `ew` as LIKE with escaped wildcards, which pg_trgm indexes serve.
    fn pg_text_compare(&mut self, expr: &str, op: TextOp, v: &str) -> String {
        let e = format!("({expr}) COLLATE \"C\"");
        match op {
            TextOp::Sw => {
                let lo = self.bind(SqlParam::Text(v.to_owned()));
                match prefix_successor(v) {
                    Some(hi) => {
                        let hi = self.bind(SqlParam::Text(hi));
                        format!("({e} >= {lo} AND {e} < {hi})")
                    }
                    None => format!("{e} >= {lo}"),
                }
            }
            TextOp::Co | TextOp::Ew => {
                let esc = like_escape(v);
                let pattern = if op == TextOp::Co {
                    format!("%{esc}%")
                } else {
                    format!("%{esc}")
                };
                let p = self.bind(SqlParam::Text(pattern));
                format!("{e} LIKE {p}")
            }
            TextOp::Rel(rel) => {
                let p = self.bind(SqlParam::Text(v.to_owned()));
                format!("{e} {} {p}", sql_op(rel))
            }
        }
    }

    fn present_sql(&self, source: &Source, a: &AttrRef) -> String {
        let Some(j) = self.json_of(source).filter(|_| self.pg()) else {
            let sql = present_sql(source, a);
            return match sql.as_str() {
                "1" => self.lit(true),
                _ => sql,
            };
        };
        if a.ty.is_textual() {
            self.falsy(&format!(
                "json_typeof({j}) = 'string' AND {j} #>> '{{}}' != ''"
            ))
        } else if a.is_complex() {
            self.falsy(&format!("json_typeof({j}) = 'object'"))
        } else {
            self.falsy(&format!(
                "json_typeof({j}) NOT IN ('null', 'array', 'object')"
            ))
        }
    }

    /// ORDER BY expression for a resolved `sortBy` (a singular attribute).
    pub fn sort(&mut self, key: &SortKey) -> CompiledSort {
        let a = key.attr();
        let sub = a.sub.as_deref();
        let column = if a.is_core() {
            self.column_source(&a.attr, sub)
        } else {
            None
        };
        let source = column.unwrap_or_else(|| {
            let segments: Vec<&str> = std::iter::once(a.attr.as_str()).chain(sub).collect();
            Source::Json {
                doc: "r.doc".into(),
                path: json_path(a.extension.as_deref(), &segments),
            }
        });
        let pg = self.pg();
        let expr = match (&source, a.ty) {
            (Source::Millis(col), _) => (*col).to_owned(),
            (Source::Constant(_), _) => "NULL".to_owned(),
            (_, t) if t.is_textual() && pg => {
                format!("({}) COLLATE \"C\"", self.text_expr(&source, a).0)
            }
            (_, t) if t.is_textual() => self.text_expr(&source, a).0,
            (_, AttrType::DateTime) if pg => {
                format!("({}) COLLATE \"C\"", self.instant_sql(&source))
            }
            (_, AttrType::DateTime) => self.instant_sql(&source),
            (_, AttrType::Boolean) if pg => match self.json_of(&source) {
                // false before true, as SQLite's json_extract gives 0 and 1.
                Some(j) => format!(
                    "(CASE WHEN json_typeof({j}) = 'boolean' THEN (CASE WHEN ({j})::text = 'true' THEN 1 ELSE 0 END) END)"
                ),
                None => "NULL".to_owned(),
            },
            _ if pg => match self.json_of(&source) {
                Some(j) => format!(
                    "(CASE WHEN json_typeof({j}) = 'number' THEN ({j} #>> '{{}}')::float8 END)"
                ),
                None => "NULL".to_owned(),
            },
            _ => value_expr(&source),
        };
        CompiledSort {
            expr,
            attr_type: a.ty,
        }
    }
}

/// The string of the first `sub eq "…"` found through the `and`s of a value
/// filter, as the checker typed it.
fn find_eq<'f>(n: &'f Node, sub: &str) -> Option<&'f str> {
    match n {
        Node::All(xs) => xs.iter().find_map(|x| find_eq(x, sub)),
        Node::Test(
            a,
            Test::Text {
                op: TextOp::Rel(Rel::Eq),
                value,
                ..
            },
        ) if a.sub.as_deref() == Some(sub) => Some(value),
        _ => None,
    }
}

/// Where sub-attribute `sub` of the elements of `parent` (named so) is.
fn element_source(elem: Elem, parent: &str, sub: &str) -> Result<Source> {
    let col = |sql: &str, nullable: bool| Source::Column {
        sql: sql.to_owned(),
        folded: false,
        nullable,
    };
    match elem {
        Elem::Json => Ok(Source::Json {
            doc: "e.value".into(),
            path: json_path(None, &[sub]),
        }),
        // Resolved as resource paths by `over_values`; never reaches here.
        Elem::SingleComplex => Err(ScimError::internal(format!(
            "{parent}.{sub} reached the element compiler"
        ))),
        Elem::Member | Elem::GroupOf => {
            let id_col = if elem == Elem::Member {
                "gm.member_id"
            } else {
                "gm.group_id"
            };
            match sub {
                "value" => Ok(col(id_col, false)),
                "display" => Ok(col("m.display", false)),
                "type" => Ok(if elem == Elem::Member {
                    col(
                        "(CASE gm.member_type WHEN 1 THEN 'User' ELSE 'Group' END)",
                        false,
                    )
                } else {
                    col("'direct'", false)
                }),
                "$ref" => Ok(col(
                    if elem == Elem::Member {
                        "((CASE gm.member_type WHEN 1 THEN 'Users/' ELSE 'Groups/' END) || gm.member_id)"
                    } else {
                        "('Groups/' || gm.group_id)"
                    },
                    false,
                )),
                other => Err(ScimError::invalid_filter(format!(
                    "{parent}.{other} cannot be filtered"
                ))),
            }
        }
    }
}

/// `$.a.b` with every segment quoted, so URNs with dots and colons are single keys.
/// A path of keys into a JSON document. Keys are schema names (validated
/// ATTRNAMEs or URNs, never client text) and are stripped of quotes anyway.
#[derive(Debug, Clone)]
struct JsonPath(Vec<String>);

impl JsonPath {
    /// SQLite's JSON path: `$."key"."key"`.
    fn sqlite(&self) -> String {
        let mut p = String::from("$");
        for s in &self.0 {
            p.push_str(".\"");
            p.push_str(s);
            p.push('"');
        }
        p
    }

    /// PostgreSQL: `(doc #> '{"key","key"}')`, a json value.
    fn pg(&self, doc: &str) -> String {
        let keys: Vec<String> = self.0.iter().map(|k| format!("\"{k}\"")).collect();
        format!("({doc} #> '{{{}}}')", keys.join(","))
    }
}

fn json_path(container: Option<&str>, segments: &[&str]) -> JsonPath {
    JsonPath(
        container
            .into_iter()
            .chain(segments.iter().copied())
            .map(|s| s.replace(['"', '\'', '\\', '{', '}', ','], ""))
            .collect(),
    )
}

fn value_expr(source: &Source) -> String {
    match source {
        Source::Column { sql, .. } => sql.clone(),
        Source::Millis(col) => (*col).to_owned(),
        Source::Constant(_) => "NULL".into(),
        Source::Json { doc, path } => format!("json_extract({doc}, '{}')", path.sqlite()),
        Source::JsonElement => "e.value".into(),
    }
}

fn type_expr(source: &Source) -> String {
    match source {
        Source::Json { doc, path } => format!("json_type({doc}, '{}')", path.sqlite()),
        Source::JsonElement => "e.type".into(),
        Source::Column { sql, .. } => {
            format!("(CASE WHEN {sql} IS NULL THEN NULL ELSE 'text' END)")
        }
        Source::Millis(_) => "'integer'".into(),
        Source::Constant(_) => "'text'".into(),
    }
}

fn present_sql(source: &Source, a: &AttrRef) -> String {
    match source {
        Source::Column { sql, nullable, .. } => {
            if *nullable {
                format!("({sql} IS NOT NULL AND {sql} != '')")
            } else {
                "1".into()
            }
        }
        Source::Millis(_) | Source::Constant(_) => "1".into(),
        _ => {
            let ty = type_expr(source);
            let val = value_expr(source);
            if a.ty.is_textual() {
                format!("COALESCE({ty} = 'text' AND {val} != '', 0)")
            } else if a.is_complex() {
                format!("COALESCE({ty} = 'object', 0)")
            } else {
                format!("COALESCE({ty} NOT IN ('null', 'array', 'object'), 0)")
            }
        }
    }
}

/// Keeps a comparison on a nullable expression at 0 or 1, in a form that can still use an index.
fn guard(expr: &str, nullable: bool, cond: &str) -> String {
    if nullable {
        format!("({expr} IS NOT NULL AND {cond})")
    } else {
        cond.to_owned()
    }
}

fn sql_op(rel: Rel) -> &'static str {
    match rel {
        Rel::Eq => "=",
        Rel::Ne => "!=",
        Rel::Gt => ">",
        Rel::Ge => ">=",
        Rel::Lt => "<",
        Rel::Le => "<=",
    }
}

fn bool_sql(b: bool) -> String {
    if b { "1".into() } else { "0".into() }
}

fn text_matches(lhs: &str, op: TextOp, rhs: &str) -> bool {
    match op {
        TextOp::Rel(Rel::Eq) => lhs == rhs,
        TextOp::Rel(Rel::Ne) => lhs != rhs,
        TextOp::Rel(Rel::Gt) => lhs > rhs,
        TextOp::Rel(Rel::Ge) => lhs >= rhs,
        TextOp::Rel(Rel::Lt) => lhs < rhs,
        TextOp::Rel(Rel::Le) => lhs <= rhs,
        TextOp::Co => lhs.contains(rhs),
        TextOp::Sw => lhs.starts_with(rhs),
        TextOp::Ew => lhs.ends_with(rhs),
    }
}

/// A milliseconds column compared with an instant in nanoseconds.
#[derive(Debug, PartialEq, Eq)]
enum MillisCmp {
    /// The comparison has the same outcome for every row.
    Always(bool),
    /// `column <op> milliseconds`.
    Compare(&'static str, i64),
}

/// Compares a milliseconds column with an instant in nanoseconds, exactly and
/// in a form that can use the column's index.
fn millis_compare(rel: Rel, ns: i128) -> MillisCmp {
    // Every dateTime that parses (years 1 to 9999) is well inside i64 milliseconds.
    let floor = i64::try_from(ns.div_euclid(1_000_000)).unwrap_or(i64::MAX);
    let exact = ns.rem_euclid(1_000_000) == 0;
    let ceil = if exact { floor } else { floor + 1 };
    match rel {
        Rel::Eq if exact => MillisCmp::Compare("=", floor),
        Rel::Eq => MillisCmp::Always(false),
        Rel::Ne if exact => MillisCmp::Compare("!=", floor),
        Rel::Ne => MillisCmp::Always(true),
        Rel::Gt => MillisCmp::Compare(">", floor),
        Rel::Ge => MillisCmp::Compare(">=", ceil),
        Rel::Lt => MillisCmp::Compare("<", ceil),
        Rel::Le => MillisCmp::Compare("<=", floor),
    }
}

/// The sortable text form of an instant (nanoseconds since the epoch) that
/// `scim_ts` returns and dateTime filters bind. Nanoseconds over years 1 to
/// 9999 overflow SQLite's 64-bit integers, which covers only 1677 to 2262;
/// shifted to be non-negative and zero-padded to one width, text order is
/// numeric order, for every dateTime the evaluator accepts.
pub fn instant_key(ns: i128) -> String {
    const SHIFT: i128 = 10_i128.pow(30);
    format!("{:031}", ns.saturating_add(SHIFT).max(0))
}

/// The smallest string greater than every string that starts with `prefix`
/// (in code-point order), if there is one: `sw prefix` is the range
/// `[prefix, successor)`.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Escapes LIKE's wildcards and its escape character (backslash).
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes GLOB's wildcards so a prefix or suffix matches literally.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use roster_scim::schema::SchemaRegistry;
    use roster_scim::values::{datetime_key, parse_datetime};

    use super::*;

    #[test]
    fn millis_compare_is_exact_at_sub_millisecond_bounds() {
        use MillisCmp::{Always, Compare};
        assert_eq!(millis_compare(Rel::Gt, 1_500_000), Compare(">", 1));
        assert_eq!(millis_compare(Rel::Ge, 1_500_000), Compare(">=", 2));
        assert_eq!(millis_compare(Rel::Lt, 1_500_000), Compare("<", 2));
        assert_eq!(millis_compare(Rel::Le, 1_500_000), Compare("<=", 1));
        assert_eq!(millis_compare(Rel::Eq, 1_500_000), Always(false));
        assert_eq!(millis_compare(Rel::Eq, 2_000_000), Compare("=", 2));
    }

    #[test]
    fn instant_keys_sort_as_instants_over_the_whole_datetime_range() {
        let first = datetime_key(parse_datetime("0001-01-01T00:00:00Z").unwrap());
        let last = datetime_key(parse_datetime("9999-12-31T23:59:59.999999999Z").unwrap());
        let ns = [first, -1, 0, 1, i128::from(i64::MAX) + 1, last];
        let keys: Vec<String> = ns.iter().map(|n| instant_key(*n)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(keys.iter().all(|k| k.len() == 31));
        assert_eq!(
            millis_compare(Rel::Gt, last),
            MillisCmp::Compare(">", 253402300799999)
        );
    }

    #[test]
    fn prefix_ranges_cover_exactly_the_prefixed_strings() {
        assert_eq!(prefix_successor("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_successor(""), None);
        let max = char::MAX.to_string();
        assert_eq!(prefix_successor(&format!("a{max}")).as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(like_escape(r"5%_a\b"), r"5\%\_a\\b");
    }

    #[test]
    fn glob_escape_quotes_wildcards() {
        assert_eq!(glob_escape("a*b?c[d"), "a[*]b[?]c[[]d");
    }

    #[test]
    fn json_path_quotes_urns() {
        assert_eq!(
            json_path(Some("urn:x:2.0:User"), &["manager", "value"]).sqlite(),
            "$.\"urn:x:2.0:User\".\"manager\".\"value\""
        );
    }

    /// SQLite values for directory "dir", resource type 1 and then `params`,
    /// as the list binds them.
    pub(crate) fn bound(
        params: &[SqlParam],
    ) -> rusqlite::ParamsFromIter<Vec<rusqlite::types::Value>> {
        let mut values = vec![
            rusqlite::types::Value::Text("dir".into()),
            rusqlite::types::Value::Integer(1),
        ];
        values.extend(params.iter().map(|p| match p {
            SqlParam::Text(s) => rusqlite::types::Value::Text(s.clone()),
            SqlParam::Int(i) => rusqlite::types::Value::Integer(*i),
            SqlParam::Real(f) => rusqlite::types::Value::Real(*f),
        }));
        rusqlite::params_from_iter(values)
    }

    /// The details of SQLite's `EXPLAIN QUERY PLAN` for `query`, bound as
    /// [`bound`] binds.
    pub(crate) fn explain(
        conn: &rusqlite::Connection,
        query: &str,
        params: &[SqlParam],
    ) -> Vec<String> {
        let mut stmt = conn.prepare(query).unwrap();
        stmt.query_map(bound(params), |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn user_sql(filter: &str) -> (String, Vec<SqlParam>) {
        let reg = SchemaRegistry::core();
        let rt = reg.resource_type("User").unwrap();
        let f = roster_scim::filter::parse_filter(filter).unwrap();
        let f = roster_scim::filter::check_filter(&reg, rt, &f).unwrap();
        let mut c = Compiler::new(rt, Kind::User, "dir", 3);
        let sql = c.filter(&f).unwrap();
        (sql, c.into_params())
    }

    #[test]
    fn user_name_eq_uses_the_folded_name_key_column() {
        let (sql, params) = user_sql(r#"userName eq "Alice@Example.com""#);
        assert_eq!(sql, "r.name_key = ?3");
        assert_eq!(params, [SqlParam::Text("alice@example.com".into())]);
    }

    #[test]
    fn email_value_eq_looks_up_the_attribute_index() {
        let (sql, params) = user_sql(r#"emails.value eq "A@x.io""#);
        assert_eq!(
            sql,
            "r.id IN (SELECT m.id FROM attr_index JOIN resources m ON m.r = attr_index.r \
             WHERE attr_index.k = (SELECT k FROM attr_keys WHERE directory_id = ?4 \
             AND rtype = ?5 AND path = ?6) AND v = ?3)"
        );
        assert_eq!(
            params,
            [
                SqlParam::Text("a@x.io".into()),
                SqlParam::Text("dir".into()),
                SqlParam::Int(Kind::User.code()),
                SqlParam::Text("emails.value".into()),
            ]
        );
        // Entra ID's lookup: the indexed prefilter narrows the json_each scan.
        let (sql, _) = user_sql(r#"emails[type eq "work" and value eq "A@x.io"]"#);
        assert!(
            sql.starts_with("(r.id IN (SELECT m.id FROM attr_index JOIN"),
            "{sql}"
        );
    }

    /// An entry holds the first CUT characters of a longer value: a lookup
    /// that its cut could answer wrongly keeps the document predicate.
    #[test]
    fn a_recheck_reads_the_rows_documents_not_every_indexed_value() {
        let reg = SchemaRegistry::core();
        let rt = reg.resource_type("User").unwrap();
        for filter in [
            r#"emails.value co "u123@work""#,
            r#"emails[type eq "work" and value eq "a@x.io"]"#,
        ] {
            let f = roster_scim::filter::parse_filter(filter).unwrap();
            let f = roster_scim::filter::check_filter(&reg, rt, &f).unwrap();
            let walking = Compiler::new(rt, Kind::User, "dir", 3).filter(&f).unwrap();
            assert!(walking.contains("attr_index"), "{filter}: {walking}");
            let rechecking = Compiler::new(rt, Kind::User, "dir", 3)
                .rechecking()
                .filter(&f)
                .unwrap();
            assert!(!rechecking.contains("attr_index"), "{filter}: {rechecking}");
        }
    }

    #[test]
    fn indexed_values_keep_the_document_predicate_where_a_cut_entry_could_decide() {
        let documents = |f: &str| user_sql(f).0.contains("json_each");
        let long = "x".repeat(CUT + 1);
        let whole = "x".repeat(CUT);
        assert!(!documents(&format!(r#"emails.value eq "{whole}""#)));
        assert!(documents(&format!(r#"emails.value eq "{long}""#)));
        assert!(!documents(r#"emails.value sw "x""#));
        assert!(documents(&format!(r#"emails.value sw "{long}""#)));
        assert!(documents(&format!(r#"emails.value gt "{whole}""#)));
        // `co` and `ew` look up the entries that match and every cut one.
        for f in [r#"emails.value co "x""#, r#"phoneNumbers.value ew "1""#] {
            let (sql, _) = user_sql(f);
            assert!(
                sql.starts_with("(r.id IN (SELECT m.id FROM attr_index"),
                "{sql}"
            );
            assert!(sql.contains(&format!("OR length(v) > {CUT})")), "{sql}");
            assert!(sql.contains("json_each"), "{sql}");
        }
        // Broad by nature: the documents alone, read in page order.
        assert!(!user_sql(r#"emails.value ne "x""#).0.contains("attr_index"));
        let (sql, params) = user_sql(&format!(r#"emails[type eq "work" and value eq "{long}"]"#));
        assert!(sql.contains("json_each"), "{sql}");
        assert!(params.contains(&SqlParam::Text(text_key(&long, false))));
    }

    #[test]
    fn last_modified_gt_compares_the_millis_column() {
        let (sql, params) = user_sql(r#"meta.lastModified gt "2026-01-01T00:00:00.5Z""#);
        assert_eq!(sql, "r.last_modified > ?3");
        assert_eq!(params, [SqlParam::Int(1767225600500)]);
        let (sql, _) = user_sql(r#"externalId eq "X-1""#);
        assert_eq!(sql, "(r.external_id IS NOT NULL AND r.external_id = ?3)");
    }

    /// The query `list` runs (ordered by id, paged) must find its rows through
    /// the index made for the filter, never by scanning the resources table.
    #[test]
    fn indexed_filters_do_not_scan_the_resources_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        let mut conn = crate::sqlite::conn::open_writer(&path, &Default::default()).unwrap();
        crate::sqlite::conn::migrate(&mut conn).unwrap();
        // A search on (directory_id, rtype) alone is a scan of the directory
        // too, so each filter must name the index that does the narrowing.
        for (filter, index) in [
            (r#"userName eq "alice""#, "INDEX resources_name ("),
            (
                r#"emails.value eq "a@x.io""#,
                "attr_index USING PRIMARY KEY (k=? AND v=?)",
            ),
            (
                r#"emails[type eq "work" and value eq "a@x.io"]"#,
                "attr_index USING PRIMARY KEY (k=? AND v=?)",
            ),
            (
                r#"phoneNumbers.value sw "+1 555""#,
                "attr_index USING PRIMARY KEY (k=? AND v>? AND v<?)",
            ),
            (r#"externalId eq "X-1""#, "INDEX resources_external ("),
            (
                r#"meta.lastModified gt "2026-01-01T00:00:00Z""#,
                "INDEX resources_modified (",
            ),
        ] {
            let (sql, params) = user_sql(filter);
            let query = format!(
                "EXPLAIN QUERY PLAN SELECT r.id FROM resources r \
                 WHERE r.directory_id = ?1 AND r.rtype = ?2 AND {sql} ORDER BY r.id LIMIT 100"
            );
            let plan = explain(&conn, &query, &params);
            assert!(
                !plan.iter().any(|d| d.starts_with("SCAN r")
                    || d.starts_with("SEARCH r ") && d.ends_with("(directory_id=? AND rtype=?)")),
                "{filter} reads the whole directory: {plan:#?}"
            );
            assert!(
                plan.iter()
                    .any(|d| d.starts_with("SEARCH") && d.contains(index)),
                "{filter} does not search {index}: {plan:#?}"
            );
        }
    }
}
