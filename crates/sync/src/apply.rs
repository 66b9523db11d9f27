//! The apply step: pushing the plan to the target in an order that lets
//! references resolve, then a second pass for what named a resource that did
//! not exist yet, then the removals. Stops sending when interrupted.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::Ordering;

use roster_scim::ResourceKind;

use crate::SyncError;
use crate::engine::Engine;
use crate::progress::{Phase, Progress};
use crate::work::{Action, Item, Outcome};

/// Applies `items`. When `interrupt` completes, no new request is sent: what
/// is in flight finishes and the step returns, leaving the rest pending.
pub async fn apply(
    engine: &Engine<'_>,
    items: &mut [Item],
    progress: &dyn Progress,
    interrupt: impl Future<Output = ()>,
) -> Result<(), SyncError> {
    let work = passes(engine, items, progress);
    tokio::pin!(work);
    tokio::pin!(interrupt);
    let mut interrupted = false;
    loop {
        tokio::select! {
            r = &mut work => return r,
            () = &mut interrupt, if !interrupted => {
                interrupted = true;
                engine.stop.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Creates and updates, the follow-up pass, then deletes and deactivations.
async fn passes(
    engine: &Engine<'_>,
    items: &mut [Item],
    progress: &dyn Progress,
) -> Result<(), SyncError> {
    let (upserts, removals): (Vec<usize>, Vec<usize>) = (0..items.len())
        .partition(|&i| matches!(items[i].action, Action::Create | Action::Update { .. }));
    let meter = progress.begin(Phase::Apply, Some(upserts.len() as u64));
    if engine.opts.use_bulk {
        // One stream of chunks: a group can name users created in the same request.
        engine
            .execute(items, upserts.clone(), meter.as_ref())
            .await?;
    } else {
        for pass in single_request_passes(items, &upserts) {
            engine.execute(items, pass, meter.as_ref()).await?;
        }
    }
    meter.finish();
    // Second pass: items sent before a resource they name existed.
    let followups: Vec<usize> = upserts
        .iter()
        .copied()
        .filter(|&i| items[i].outcome == Outcome::Done && !items[i].missing.is_empty())
        .collect();
    if !followups.is_empty() {
        let meter = progress.begin(Phase::References, Some(followups.len() as u64));
        for &i in &followups {
            if let Some(id) = engine.target_id_of(&items[i]) {
                let item = &mut items[i];
                item.action = Action::Update {
                    id,
                    members_before: None,
                };
                item.outcome = Outcome::Pending;
                item.attempts = 0;
                // Written moments ago by this run: nothing to guard.
                item.if_match = None;
            }
        }
        engine.execute(items, followups, meter.as_ref()).await?;
        meter.finish();
    }
    let meter = progress.begin(Phase::Delete, Some(removals.len() as u64));
    engine.execute(items, removals, meter.as_ref()).await?;
    meter.finish();
    Ok(())
}

/// The order of creates and updates without /Bulk: users, then groups that
/// name no group created in this run, then the rest; what still misses a
/// reference gets the follow-up pass.
fn single_request_passes(items: &[Item], upserts: &[usize]) -> [Vec<usize>; 3] {
    let (users, groups): (Vec<usize>, Vec<usize>) = upserts
        .iter()
        .partition(|&&i| items[i].kind == ResourceKind::User);
    let new_groups: BTreeSet<&str> = groups
        .iter()
        .filter(|&&i| items[i].action == Action::Create)
        .map(|&i| items[i].key.as_str())
        .collect();
    let (later, first): (Vec<usize>, Vec<usize>) = groups.iter().partition(|&&i| {
        items[i].doc.value()["members"]
            .as_array()
            .is_some_and(|ms| {
                ms.iter()
                    .any(|m| m["value"].as_str().is_some_and(|k| new_groups.contains(k)))
            })
    });
    [users, first, later]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::source::Record;

    fn item(kind: ResourceKind, key: &str, doc: serde_json::Value, action: Action) -> Item {
        let r = Record::new(kind, key.into(), doc, None);
        Item::new(r.kind, r.key, r.doc, r.hash, None, action)
    }

    #[test]
    fn without_bulk_users_go_first_and_groups_naming_new_groups_last() {
        let update = Action::Update {
            id: "t".into(),
            members_before: None,
        };
        let items = vec![
            item(
                ResourceKind::Group,
                "parent",
                json!({"displayName": "P", "members": [{"value": "child"}, {"value": "u1"}]}),
                Action::Create,
            ),
            item(
                ResourceKind::User,
                "u1",
                json!({"userName": "a"}),
                Action::Create,
            ),
            item(
                ResourceKind::Group,
                "child",
                json!({"displayName": "C", "members": [{"value": "u1"}]}),
                Action::Create,
            ),
            item(
                ResourceKind::Group,
                "old",
                json!({"displayName": "O", "members": [{"value": "known"}]}),
                update,
            ),
            item(
                ResourceKind::User,
                "u2",
                json!({"userName": "b"}),
                Action::Create,
            ),
        ];
        let [users, first, later] = single_request_passes(&items, &[0, 1, 2, 3, 4]);
        assert_eq!(users, vec![1, 4]);
        assert_eq!(first, vec![2, 3]);
        assert_eq!(later, vec![0]);
        // Only what is passed in is ordered.
        let [users, first, later] = single_request_passes(&items, &[0, 3]);
        assert!(users.is_empty() && later.is_empty());
        assert_eq!(first, vec![0, 3]);
    }
}
