//! Bulk requests (RFC 7644 §3.7): parsing, bulkId references and the order
//! that resolves them. Execution lives in the server; everything here is pure.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::error::{Result, ScimError};

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// The prefix of a reference to a resource created earlier in the same request.
pub const BULK_ID_PREFIX: &str = "bulkId:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// The target of an operation: `/Users`, `/Groups/{id}` or `/Groups/bulkId:x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// "Users" or "Groups" as written in the endpoint (matched case-insensitively).
    pub endpoint: String,
    pub id: Option<String>,
}

/// One operation as the client sent it. Fields a response echoes are kept raw,
/// so that even an invalid operation gets a result the client can correlate.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperation {
    pub method_text: String,
    pub bulk_id: Option<String>,
    pub version: Option<String>,
    pub path: String,
    pub data: Option<Value>,
    /// The parsed method and target, or why the operation is invalid.
    pub parsed: Result<(Method, Target)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    pub fail_on_errors: Option<u64>,
    pub operations: Vec<BulkOperation>,
}

impl BulkRequest {
    /// Parses a BulkRequest. Whole-request problems (not an object, no
    /// `Operations`, too many operations, duplicate bulkIds) are errors; a
    /// malformed single operation is kept and fails alone. Takes the body so
    /// that each operation's data is moved out of it, not copied: a copy and
    /// its drop were about 5% of what a user created through `/Bulk` cost.
    pub fn from_json(body: Value, max_operations: usize) -> Result<Self> {
        let Value::Object(mut obj) = body else {
            return Err(ScimError::invalid_syntax(
                "a BulkRequest must be a JSON object",
            ));
        };
        if let Some(schemas) = field(&obj, "schemas") {
            let ok = schemas.as_array().is_some_and(|a| {
                a.iter().any(|s| {
                    s.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(BULK_REQUEST))
                })
            });
            if !ok {
                return Err(ScimError::invalid_syntax(format!(
                    "schemas must contain {BULK_REQUEST}"
                )));
            }
        }
        let fail_on_errors = match field(&obj, "failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                ScimError::invalid_syntax("failOnErrors must be an integer of at least 1")
            })?),
        };
        let Some(Value::Array(ops)) = take_field(&mut obj, "Operations") else {
            return Err(ScimError::invalid_syntax(
                "a BulkRequest needs an \"Operations\" array",
            ));
        };
        if ops.len() > max_operations {
            return Err(ScimError::new(
                413,
                None,
                format!(
                    "the request has {} operations; maxOperations is {max_operations} (see /ServiceProviderConfig)",
                    ops.len()
                ),
            ));
        }
        let operations: Vec<BulkOperation> = ops.into_iter().map(parse_operation).collect();
        let mut seen = BTreeSet::new();
        for op in &operations {
            if let Some(id) = &op.bulk_id
                && !seen.insert(id.as_str())
            {
                return Err(ScimError::invalid_value(format!(
                    "bulkId {id:?} is used by more than one operation"
                )));
            }
        }
        Ok(BulkRequest {
            fail_on_errors,
            operations,
        })
    }
}

fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Removes the member `name` (in any case) from `obj`.
fn take_field(obj: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = obj.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone();
    obj.remove(&key)
}

fn text_field(obj: &Map<String, Value>, name: &str) -> Option<String> {
    match field(obj, name) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_operation(v: Value) -> BulkOperation {
    let is_object = v.is_object();
    let mut obj = match v {
        Value::Object(obj) => obj,
        _ => Map::new(),
    };
    let method_text = text_field(&obj, "method").unwrap_or_default();
    let bulk_id = text_field(&obj, "bulkId");
    let version = text_field(&obj, "version");
    let path = text_field(&obj, "path").unwrap_or_default();
    let data = take_field(&mut obj, "data").filter(|d| !d.is_null());
    let parsed = if is_object {
        parse_target(&method_text, bulk_id.as_deref(), &path, data.as_ref())
    } else {
        Err(ScimError::invalid_syntax(
            "each operation must be a JSON object",
        ))
    };
    BulkOperation {
        method_text,
        bulk_id,
        version,
        path,
        data,
        parsed,
    }
}

fn parse_target(
    method: &str,
    bulk_id: Option<&str>,
    path: &str,
    data: Option<&Value>,
) -> Result<(Method, Target)> {
    let method = Method::parse(method).ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "method must be POST, PUT, PATCH or DELETE, not {method:?}"
        ))
    })?;
    if bulk_id.is_some_and(|b| b.is_empty() || b.contains('"')) {
        return Err(ScimError::invalid_value(
            "bulkId must be a non-empty string without quotes",
        ));
    }
    let trimmed = path.trim().trim_start_matches('/');
    let (endpoint, id) = match trimmed.split_once('/') {
        Some((e, id)) => (e, Some(id)),
        None => (trimmed, None),
    };
    if endpoint.is_empty() || id.is_some_and(|i| i.is_empty() || i.contains('/')) {
        return Err(ScimError::invalid_path(format!(
            "path must be \"/Users\", \"/Groups\" or \"/<endpoint>/<id>\", not {path:?}"
        )));
    }
    match (method, id) {
        (Method::Post, Some(_)) => {
            return Err(ScimError::invalid_path(
                "POST takes a resource endpoint, e.g. \"/Users\"",
            ));
        }
        (Method::Put | Method::Patch | Method::Delete, None) => {
            return Err(ScimError::invalid_path(format!(
                "{} needs a resource path, e.g. \"/Users/<id>\"",
                method.as_str()
            )));
        }
        _ => {}
    }
    if matches!(method, Method::Post | Method::Put | Method::Patch) && data.is_none() {
        return Err(ScimError::invalid_syntax(format!(
            "{} needs \"data\"",
            method.as_str()
        )));
    }
    Ok((
        method,
        Target {
            endpoint: endpoint.to_owned(),
            id: id.map(str::to_owned),
        },
    ))
}

/// The bulkId a whole-string reference names.
pub fn reference(s: &str) -> Option<&str> {
    s.strip_prefix(BULK_ID_PREFIX).filter(|r| !r.is_empty())
}

/// Every bulkId referenced in a value: whole strings `"bulkId:x"` and, inside
/// longer strings such as PATCH filters, `bulkId:x` up to a quote or bracket.
pub fn references_in(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(i) = find_reference(rest) {
                let after = &rest[i + BULK_ID_PREFIX.len()..];
                let end = after.find(is_ref_end).unwrap_or(after.len());
                if end > 0 {
                    out.insert(after[..end].to_owned());
                }
                rest = &after[end..];
            }
        }
        Value::Array(items) => items.iter().for_each(|i| references_in(i, out)),
        Value::Object(map) => map.values().for_each(|i| references_in(i, out)),
        _ => {}
    }
}

/// Where the first `bulkId:` in `s` starts. Looked for from its colon:
/// every string of every operation is searched, most have no colon, and a
/// search for the whole prefix set up a substring searcher for each.
fn find_reference(s: &str) -> Option<usize> {
    let name = &BULK_ID_PREFIX[..BULK_ID_PREFIX.len() - 1];
    let mut from = 0;
    while let Some(j) = s[from..].find(':') {
        let colon = from + j;
        if let Some(start) = colon.checked_sub(name.len())
            && s.as_bytes()[start..colon] == *name.as_bytes()
        {
            return Some(start);
        }
        from = colon + 1;
    }
    None
}

fn is_ref_end(c: char) -> bool {
    matches!(c, '"' | '\'' | ']' | ')' | ' ' | ',')
}

/// Replaces every reference with the id it resolved to. Returns the first
/// reference that has no id (the operation must then fail).
pub fn substitute(v: &mut Value, ids: &HashMap<String, String>) -> std::result::Result<(), String> {
    match v {
        Value::String(s) if find_reference(s).is_some() => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(i) = find_reference(rest) {
                out.push_str(&rest[..i]);
                let after = &rest[i + BULK_ID_PREFIX.len()..];
                let end = after.find(is_ref_end).unwrap_or(after.len());
                let name = &after[..end];
                match ids.get(name) {
                    Some(id) => out.push_str(id),
                    None => return Err(name.to_owned()),
                }
                rest = &after[end..];
            }
            out.push_str(rest);
            *s = out;
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|i| substitute(i, ids)),
        Value::Object(map) => map.values_mut().try_for_each(|i| substitute(i, ids)),
        _ => Ok(()),
    }
}

/// Removes, below the top level, every array element or object member whose
/// value holds a reference in `unresolved`: a group created in a reference
/// cycle is created without those members and completed afterwards.
pub fn strip_references(v: &mut Value, unresolved: &BTreeSet<String>) {
    let holds = |v: &Value| {
        let mut refs = BTreeSet::new();
        references_in(v, &mut refs);
        refs.iter().any(|r| unresolved.contains(r))
    };
    match v {
        Value::Array(items) => {
            items.retain(|i| !holds(i));
        }
        Value::Object(map) => {
            map.retain(|_, child| match child {
                Value::String(_) => !holds(child),
                Value::Object(inner) if inner.values().any(|x| x.is_string() && holds(x)) => false,
                _ => true,
            });
            for child in map.values_mut() {
                strip_references(child, unresolved);
            }
        }
        _ => {}
    }
}

/// One step of executing a bulk request, in execution order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run operation `i` as sent (its references resolve to earlier results).
    Run(usize),
    /// Create POST `i` of a reference cycle without the references to the cycle.
    CreateWithout(usize, BTreeSet<String>),
    /// Complete POST `i` of a cycle: replace it with its full data, now resolvable.
    Complete(usize),
}

/// Orders operations so that every reference is resolved before it is needed
/// (RFC 7644 §3.7.1), keeping request order wherever dependencies allow.
/// `refs[i]` are the bulkIds operation `i` references; `defines[i]` the bulkId
/// its POST defines.
///
/// Operations run in request order; one that needs a later create has that
/// create (and what it needs) pulled forward. Moving the creates rather than
/// deferring their users keeps every other operation in the client's order:
/// two writes to one resource must not swap because one of them waits.
pub fn plan(refs: &[BTreeSet<String>], defines: &[Option<String>]) -> Vec<Step> {
    let n = refs.len();
    let owner: HashMap<&str, usize> = defines
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.as_deref().map(|d| (d, i)))
        .collect();
    let deps: Vec<Vec<usize>> = refs
        .iter()
        .map(|r| {
            r.iter()
                .filter_map(|b| owner.get(b.as_str()).copied())
                .collect()
        })
        .collect();
    let sccs = tarjan(n, &deps);
    let mut comp_of = vec![0; n];
    for (c, members) in sccs.iter().enumerate() {
        for &m in members {
            comp_of[m] = c;
        }
    }
    let first = |c: usize| sccs[c].iter().min().copied().unwrap_or(usize::MAX);
    let comp_deps: Vec<Vec<usize>> = sccs
        .iter()
        .enumerate()
        .map(|(c, members)| {
            let mut d: Vec<usize> = members
                .iter()
                .flat_map(|&m| deps[m].iter().map(|&x| comp_of[x]))
                .filter(|&x| x != c)
                .collect();
            d.sort_unstable_by_key(|&x| first(x));
            d.dedup();
            d
        })
        .collect();
    // Depth-first over the (acyclic) components, roots in request order;
    // iterative, so a long chain of references cannot overflow the stack.
    let mut done = vec![false; sccs.len()];
    let mut steps = Vec::with_capacity(n);
    for root in (0..n).map(|i| comp_of[i]) {
        if done[root] {
            continue;
        }
        done[root] = true;
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (c, ref mut next)) = work.last_mut() {
            if let Some(&d) = comp_deps[c].get(*next) {
                *next += 1;
                if !done[d] {
                    done[d] = true;
                    work.push((d, 0));
                }
            } else {
                work.pop();
                emit_component(&sccs[c], refs, defines, &deps, &mut steps);
            }
        }
    }
    steps
}

fn emit_component(
    members: &[usize],
    refs: &[BTreeSet<String>],
    defines: &[Option<String>],
    deps: &[Vec<usize>],
    steps: &mut Vec<Step>,
) {
    let mut members = members.to_vec();
    members.sort_unstable();
    let cyclic = members.len() > 1 || deps[members[0]].contains(&members[0]);
    if !cyclic {
        steps.push(Step::Run(members[0]));
        return;
    }
    // Only creates define bulkIds, so every member of a cycle is a create: each
    // is created without its references into the cycle, then completed.
    let cycle_ids: BTreeSet<String> = members.iter().filter_map(|&m| defines[m].clone()).collect();
    for &m in &members {
        let unresolved = refs[m].intersection(&cycle_ids).cloned().collect();
        steps.push(Step::CreateWithout(m, unresolved));
    }
    steps.extend(members.iter().map(|&m| Step::Complete(m)));
}

/// Strongly connected components, each emitted after the components it depends on.
fn tarjan(n: usize, deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State {
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    let mut st = State {
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    // Iterative, so a long chain of references cannot overflow the stack.
    for root in 0..n {
        if st.index[root].is_some() {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        st.index[root] = Some(st.next);
        st.low[root] = st.next;
        st.next += 1;
        st.stack.push(root);
        st.on_stack[root] = true;
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if *edge < deps[v].len() {
                let w = deps[v][*edge];
                *edge += 1;
                match st.index[w] {
                    None => {
                        st.index[w] = Some(st.next);
                        st.low[w] = st.next;
                        st.next += 1;
                        st.stack.push(w);
                        st.on_stack[w] = true;
                        work.push((w, 0));
                    }
                    Some(iw) if st.on_stack[w] => st.low[v] = st.low[v].min(iw),
                    Some(_) => {}
                }
            } else {
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    st.low[parent] = st.low[parent].min(st.low[v]);
                }
                if Some(st.low[v]) == st.index[v] {
                    let mut comp = Vec::new();
                    while let Some(w) = st.stack.pop() {
                        st.on_stack[w] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    st.out.push(comp);
                }
            }
        }
    }
    st.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_operations_and_keeps_bad_ones_for_their_own_result() {
        let body = json!({
            "schemas": [BULK_REQUEST],
            "failOnErrors": 2,
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"userName": "a"}},
                {"method": "patch", "path": "/Groups/bulkId:g1", "data": {"Operations": []}},
                {"method": "FETCH", "path": "/Users"},
                {"method": "DELETE", "path": "/Users"}
            ]
        });
        let req = BulkRequest::from_json(body.clone(), 10).unwrap();
        assert_eq!(req.fail_on_errors, Some(2));
        let (m, t) = req.operations[1].parsed.clone().unwrap();
        assert_eq!(m, Method::Patch);
        assert_eq!(t.id.as_deref(), Some("bulkId:g1"));
        assert!(req.operations[2].parsed.is_err());
        assert!(req.operations[3].parsed.is_err());
    }

    #[test]
    fn rejects_duplicate_bulk_ids_and_too_many_operations() {
        let op = json!({"method": "POST", "path": "/Users", "bulkId": "x", "data": {}});
        let body = json!({"Operations": [op.clone(), op]});
        assert_eq!(
            BulkRequest::from_json(body.clone(), 10).unwrap_err().status,
            400
        );
        assert_eq!(
            BulkRequest::from_json(body.clone(), 1).unwrap_err().status,
            413
        );
    }

    #[test]
    fn finds_and_substitutes_references_in_values_and_filters() {
        let mut v = json!({
            "members": [{"value": "bulkId:u1"}, {"value": "fixed"}],
            "path": "members[value eq \"bulkId:u2\"]"
        });
        let mut refs = BTreeSet::new();
        references_in(&v, &mut refs);
        assert_eq!(refs, set(&["u1", "u2"]));
        let ids = HashMap::from([
            ("u1".to_owned(), "ID1".to_owned()),
            ("u2".to_owned(), "ID2".to_owned()),
        ]);
        substitute(&mut v, &ids).unwrap();
        assert_eq!(v["members"][0]["value"], "ID1");
        assert_eq!(v["path"], "members[value eq \"ID2\"]");
        let mut missing = json!(["bulkId:nope"]);
        assert_eq!(substitute(&mut missing, &ids), Err("nope".to_owned()));
    }

    proptest::proptest! {
        #[test]
        fn a_reference_is_found_where_the_prefix_is(
            parts in proptest::collection::vec(
                proptest::sample::select(vec!["bulkId", ":", "bulk", "Id:", "é", "x", "urn:a"]),
                0..12,
            )
        ) {
            let s = parts.concat();
            proptest::prop_assert_eq!(find_reference(&s), s.find(BULK_ID_PREFIX));
        }
    }

    #[test]
    fn plans_forward_references_before_their_users() {
        // 0: group referencing user 1 (defined later); 1: the user.
        let refs = vec![set(&["u"]), set(&[])];
        let defines = vec![Some("g".into()), Some("u".into())];
        assert_eq!(plan(&refs, &defines), vec![Step::Run(1), Step::Run(0)]);
    }

    #[test]
    fn pulls_creates_forward_instead_of_reordering_the_rest() {
        // 0 and 1 both write group g; 0 also waits for e. They must not swap.
        let refs = vec![set(&["g", "e"]), set(&["g"]), set(&[]), set(&[])];
        let defines = vec![None, None, Some("g".into()), Some("e".into())];
        assert_eq!(
            plan(&refs, &defines),
            vec![Step::Run(2), Step::Run(3), Step::Run(0), Step::Run(1)]
        );
    }

    #[test]
    fn keeps_request_order_without_dependencies() {
        let refs = vec![set(&[]), set(&[]), set(&[])];
        let defines = vec![None, Some("a".into()), None];
        assert_eq!(
            plan(&refs, &defines),
            vec![Step::Run(0), Step::Run(1), Step::Run(2)]
        );
    }

    #[test]
    fn breaks_cycles_among_creates_and_fails_others() {
        let refs = vec![set(&["b"]), set(&["a"])];
        let defines = vec![Some("a".into()), Some("b".into())];
        assert_eq!(
            plan(&refs, &defines),
            vec![
                Step::CreateWithout(0, set(&["b"])),
                Step::CreateWithout(1, set(&["a"])),
                Step::Complete(0),
                Step::Complete(1)
            ]
        );
        // A reference to a PATCH's bulkId defines no edge: only creates define ids,
        // so there is no cycle and the create fails later for an unresolved reference.
        let refs = vec![set(&["p"]), set(&["a"])];
        let defines = vec![Some("a".into()), None];
        let steps = plan(&refs, &defines);
        assert_eq!(steps, vec![Step::Run(0), Step::Run(1)]);
        let self_ref = plan(&[set(&["a"])], &[Some("a".into())]);
        assert_eq!(
            self_ref,
            vec![Step::CreateWithout(0, set(&["a"])), Step::Complete(0)]
        );
    }

    #[test]
    fn strips_cycle_references_below_the_top_level() {
        let mut v = json!({
            "displayName": "g",
            "members": [{"value": "bulkId:b"}, {"value": "x"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "bulkId:b"}}
        });
        strip_references(&mut v, &set(&["b"]));
        assert_eq!(v["members"], json!([{"value": "x"}]));
        assert_eq!(
            v["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            json!({})
        );
    }
}
