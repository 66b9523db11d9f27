//! The plan step: what the target needs, decided from the source records and
//! the state alone. Finding resources the state does not know in the target
//! is the engine's part (it asks the target); everything here is pure.

use std::collections::{BTreeMap, BTreeSet};

use roster_scim::ResourceKind;
use serde_json::Value;

use crate::options::DeleteMode;
use crate::progress::Meter;
use crate::source::{Doc, Record};
use crate::state::State;
use crate::work::{Action, Item};

/// Every key the source holds, users then groups: what a reconcile keeps.
pub type Keys = (BTreeSet<String>, BTreeSet<String>);

/// Source records sorted against the state.
#[derive(Debug, Default)]
pub struct Draft {
    /// Changed or new records, in source order.
    pub items: Vec<Item>,
    /// Records whose digest equals the one last applied.
    pub unchanged: u64,
    /// Items the state does not know (creates until matched in the target),
    /// by kind: indexes into `items`.
    pub unmatched: BTreeMap<ResourceKind, Vec<usize>>,
}

/// Sorts records against the state: unchanged ones (same digest as last
/// applied, not deactivated) are counted and dropped, known ones become
/// updates (guarded by the version our last write left when the target has
/// ETags), the rest become creates to be matched in the target first.
pub fn classify(records: Vec<Record>, state: &State, etag: bool, progress: &dyn Meter) -> Draft {
    let mut draft = Draft::default();
    for r in records {
        progress.inc(1);
        let mut if_match = None;
        let action = match state.entries(r.kind).get(&r.key) {
            Some(e) if e.hash == r.hash && !e.deactivated => {
                draft.unchanged += 1;
                continue;
            }
            Some(e) => {
                if_match = e.version.clone().filter(|_| etag);
                Action::Update {
                    id: e.id.clone(),
                    members_before: e.members.clone(),
                }
            }
            None => {
                draft
                    .unmatched
                    .entry(r.kind)
                    .or_default()
                    .push(draft.items.len());
                Action::Create
            }
        };
        let mut item = Item::new(r.kind, r.key, r.doc, r.hash, r.last_modified, action);
        item.if_match = if_match;
        draft.items.push(item);
    }
    draft
}

/// What a reconcile removes: every resource the state knows that is not in
/// `present`. Groups come first (deleting a group never fails because of its
/// members); users are deleted or deactivated as `mode` says, and a user
/// deactivated already is left alone.
pub fn removals(state: &State, present: &Keys, mode: DeleteMode) -> Vec<Item> {
    let (users, groups) = present;
    let mut out = Vec::new();
    for (kind, present) in [(ResourceKind::Group, groups), (ResourceKind::User, users)] {
        for (key, e) in state.entries(kind) {
            if present.contains(key) {
                continue;
            }
            let action = match (kind, mode) {
                (ResourceKind::User, DeleteMode::Deactivate) if e.deactivated => continue,
                (ResourceKind::User, DeleteMode::Deactivate) => {
                    Action::Deactivate { id: e.id.clone() }
                }
                _ => Action::Delete { id: e.id.clone() },
            };
            out.push(Item::new(
                kind,
                key.clone(),
                Doc::new(&Value::Null),
                String::new(),
                None,
                action,
            ));
        }
    }
    out
}

/// How many items delete or deactivate.
pub fn removal_count(items: &[Item]) -> usize {
    items
        .iter()
        .filter(|i| matches!(i.action, Action::Delete { .. } | Action::Deactivate { .. }))
        .count()
}

/// A reconcile that would remove more than half of the resources synced so
/// far (and more than 10) is more likely a broken source than a real change.
pub fn mass_delete(deletes: usize, known: usize) -> bool {
    deletes > 10 && deletes * 2 > known
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::progress::NoProgress;
    use crate::state::Entry;

    fn user(key: &str, name: &str) -> Record {
        Record::new(
            ResourceKind::User,
            key.into(),
            json!({"userName": name}),
            Some(1),
        )
    }

    fn entry(id: &str, hash: &str) -> Entry {
        Entry {
            id: id.into(),
            hash: hash.into(),
            ..Entry::default()
        }
    }

    #[test]
    fn mass_delete_guard_needs_both_many_and_most() {
        assert!(!mass_delete(10, 10));
        assert!(mass_delete(11, 20));
        assert!(!mass_delete(11, 22));
        assert!(!mass_delete(5000, 100_000));
    }

    #[test]
    fn classify_drops_unchanged_updates_known_and_creates_the_rest() {
        let same = user("u1", "ann");
        let changed = user("u2", "bob");
        let new = user("u3", "cy");
        let mut state = State::default();
        state.users.insert("u1".into(), entry("t1", &same.hash));
        state.users.insert(
            "u2".into(),
            Entry {
                version: Some("W/\"7\"".into()),
                ..entry("t2", "old")
            },
        );
        // Deactivated by a reconcile: the same digest is applied again.
        let back = user("u4", "di");
        state.users.insert(
            "u4".into(),
            Entry {
                deactivated: true,
                ..entry("t4", &back.hash)
            },
        );
        let records = vec![same, changed, new, back];

        let draft = classify(records.clone(), &state, true, &NoProgress);
        assert_eq!(draft.unchanged, 1);
        let planned: Vec<(&str, &Action)> = draft
            .items
            .iter()
            .map(|i| (i.key.as_str(), &i.action))
            .collect();
        let update = |id: &str| Action::Update {
            id: id.into(),
            members_before: None,
        };
        assert_eq!(
            planned,
            vec![
                ("u2", &update("t2")),
                ("u3", &Action::Create),
                ("u4", &update("t4")),
            ]
        );
        assert_eq!(draft.items[0].if_match.as_deref(), Some("W/\"7\""));
        assert_eq!(
            draft.unmatched,
            BTreeMap::from([(ResourceKind::User, vec![1])])
        );

        // Without ETags in the target, no If-Match.
        let draft = classify(records, &state, false, &NoProgress);
        assert_eq!(draft.items[0].if_match, None);
    }

    #[test]
    fn classify_keeps_the_members_last_applied_for_a_membership_patch() {
        let g = Record::new(
            ResourceKind::Group,
            "g1".into(),
            json!({"displayName": "Eng", "members": [{"value": "u1"}]}),
            None,
        );
        let mut state = State::default();
        state.groups.insert(
            "g1".into(),
            Entry {
                members: Some(vec!["u0".into()]),
                ..entry("tg", "old")
            },
        );
        let draft = classify(vec![g], &state, false, &NoProgress);
        assert_eq!(
            draft.items[0].action,
            Action::Update {
                id: "tg".into(),
                members_before: Some(vec!["u0".into()]),
            }
        );
        assert!(draft.unmatched.is_empty());
    }

    #[test]
    fn removals_take_groups_first_and_deactivate_users_once() {
        let mut state = State::default();
        state.users.insert("u1".into(), entry("t1", "h"));
        state.users.insert("u2".into(), entry("t2", "h"));
        state.users.insert(
            "u3".into(),
            Entry {
                deactivated: true,
                ..entry("t3", "")
            },
        );
        state.groups.insert("g1".into(), entry("tg1", "h"));
        state.groups.insert("g2".into(), entry("tg2", "h"));
        let present: Keys = (BTreeSet::from(["u1".into()]), BTreeSet::from(["g2".into()]));

        let gone = |items: &[Item]| -> Vec<(ResourceKind, String, Action)> {
            items
                .iter()
                .map(|i| (i.kind, i.key.clone(), i.action.clone()))
                .collect()
        };
        let deleted = removals(&state, &present, DeleteMode::Delete);
        assert_eq!(
            gone(&deleted),
            vec![
                (
                    ResourceKind::Group,
                    "g1".into(),
                    Action::Delete { id: "tg1".into() }
                ),
                (
                    ResourceKind::User,
                    "u2".into(),
                    Action::Delete { id: "t2".into() }
                ),
                (
                    ResourceKind::User,
                    "u3".into(),
                    Action::Delete { id: "t3".into() }
                ),
            ]
        );
        assert_eq!(removal_count(&deleted), 3);

        let deactivated = removals(&state, &present, DeleteMode::Deactivate);
        assert_eq!(
            gone(&deactivated),
            vec![
                (
                    ResourceKind::Group,
                    "g1".into(),
                    Action::Delete { id: "tg1".into() }
                ),
                (
                    ResourceKind::User,
                    "u2".into(),
                    Action::Deactivate { id: "t2".into() }
                ),
            ]
        );
    }
}
