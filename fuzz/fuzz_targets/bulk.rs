//! Bulk requests: reading any JSON as a BulkRequest and planning its
//! operations never panics, and the plan runs every valid operation once.
#![no_main]

use std::collections::{BTreeSet, HashMap};

use libfuzzer_sys::fuzz_target;
use roster_scim::bulk::{BulkRequest, Method, Step, plan, references_in, substitute};
use roster_scim::json::{JsonLimits, parse_limited};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_limited(data, &JsonLimits::default()) else {
        return;
    };
    let Ok(request) = BulkRequest::from_json(body, 64) else {
        return;
    };
    let ops = &request.operations;
    let refs: Vec<BTreeSet<String>> = ops
        .iter()
        .map(|op| {
            let mut r = BTreeSet::new();
            if let Some(d) = &op.data {
                references_in(d, &mut r);
            }
            references_in(&Value::String(op.path.clone()), &mut r);
            r
        })
        .collect();
    let defines: Vec<Option<String>> = ops
        .iter()
        .map(|op| match Method::parse(&op.method_text) {
            Some(Method::Post) => op.bulk_id.clone(),
            _ => None,
        })
        .collect();
    let steps = plan(&refs, &defines);
    let mut ran = vec![0usize; ops.len()];
    for step in &steps {
        match step {
            Step::Run(i) | Step::CreateWithout(i, _) => ran[*i] += 1,
            Step::Complete(_) => {}
        }
    }
    assert!(
        ran.iter().all(|&n| n == 1),
        "plan {steps:?} for {refs:?} / {defines:?}"
    );
    let ids: HashMap<String, String> = defines
        .iter()
        .flatten()
        .map(|d| (d.clone(), format!("id-{d}")))
        .collect();
    for op in ops {
        if let Some(d) = &op.data {
            let mut d = d.clone();
            let _ = substitute(&mut d, &ids);
        }
    }
});
