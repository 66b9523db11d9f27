//! The checkpoint step: how far the next run may skip, and whether this
//! run counts as a completed reconcile.

use crate::work::{Action, Item, Outcome};

/// The new checkpoint (milliseconds): past everything listed (`max_seen`)
/// when every item is in the target; otherwise just before the oldest change
/// that is not, so the next run lists it again (what was applied meanwhile
/// is skipped by its digest). Never earlier than `old`.
pub fn next(items: &[Item], max_seen: Option<i128>, old: Option<i128>) -> Option<i128> {
    let held_back = items
        .iter()
        .filter(|i| i.outcome != Outcome::Done || !i.missing.is_empty())
        .filter(|i| matches!(i.action, Action::Create | Action::Update { .. }))
        .map(|i| i.last_modified)
        .min();
    match held_back {
        None => max_seen.max(old),
        // A record without lastModified cannot be bracketed: keep the old checkpoint.
        Some(None) => old,
        Some(Some(lm)) => Some(lm - 1).max(old),
    }
}

/// Whether every removal a reconcile planned is done.
pub fn removals_done(items: &[Item]) -> bool {
    !items.iter().any(|i| {
        matches!(i.action, Action::Delete { .. } | Action::Deactivate { .. })
            && i.outcome != Outcome::Done
    })
}

#[cfg(test)]
mod tests {
    use roster_scim::ResourceKind;
    use serde_json::json;

    use super::*;
    use crate::source::Record;

    fn item(lm: Option<i128>, outcome: Outcome) -> Item {
        let r = Record::new(ResourceKind::User, "k".into(), json!({"userName": "a"}), lm);
        let mut i = Item::new(r.kind, r.key, r.doc, r.hash, lm, Action::Create);
        i.outcome = outcome;
        i
    }

    #[test]
    fn moves_past_what_is_applied_and_stops_before_what_is_not() {
        let done = [item(Some(50), Outcome::Done), item(Some(90), Outcome::Done)];
        assert_eq!(next(&done, Some(90), Some(10)), Some(90));
        // Never backwards.
        assert_eq!(next(&done, Some(90), Some(100)), Some(100));
        let mut some_failed = done.to_vec();
        some_failed.push(item(Some(70), Outcome::Failed));
        some_failed.push(item(Some(80), Outcome::Pending));
        assert_eq!(next(&some_failed, Some(90), Some(10)), Some(69));
        // Applied with a reference still missing counts as not applied.
        let mut incomplete = item(Some(60), Outcome::Done);
        incomplete.missing = vec!["g".into()];
        assert_eq!(next(&[incomplete], Some(90), None), Some(59));
        // No lastModified to bracket: the checkpoint stays.
        let undated = [item(None, Outcome::Failed), item(Some(5), Outcome::Failed)];
        assert_eq!(next(&undated, Some(90), Some(10)), Some(10));
    }
}
