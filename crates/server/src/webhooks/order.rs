//! Which events of an endpoint may go out now: events about one resource in
//! commit order, one at a time; events about different resources side by
//! side. It keeps the events read past the endpoint's cursor until each is
//! delivered or given up on, and knows the cursor they allow. No I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use roster_store::events::{self, Event};

/// What an event is about, for ordering: events with the same key go out
/// one after another in commit order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    User(String),
    /// A group's own events and its membership events.
    Group(String),
    /// A directory's own events (activated, deleted): they wait for every
    /// earlier event and hold back every later one.
    Barrier,
}

/// The ordering key of an event. Membership events order with their group;
/// an event whose payload names no resource orders as a barrier, which is
/// always safe.
pub fn key_of(e: &Event) -> Key {
    let id = |v: &serde_json::Value| v.get("id").and_then(|i| i.as_str()).map(str::to_owned);
    let t = e.event.as_str();
    let key = if t == events::GROUP_USER_ADDED || t == events::GROUP_USER_REMOVED {
        e.data.get("group").and_then(id).map(Key::Group)
    } else if t.starts_with("dsync.user.") {
        id(&e.data).map(Key::User)
    } else if t.starts_with("dsync.group.") {
        id(&e.data).map(Key::Group)
    } else {
        None
    };
    key.unwrap_or(Key::Barrier)
}

/// One event waiting to be delivered, with its retry state.
#[derive(Debug, Clone)]
pub struct Item {
    pub event: Event,
    key: Key,
    /// Attempts made so far (a possible attempt before a crash included).
    pub attempts: i64,
    /// When the first failed attempt came back (ms since the epoch).
    pub first_failure: Option<i64>,
}

/// The events of one endpoint past its cursor.
#[derive(Debug, Default)]
pub struct Lanes {
    items: BTreeMap<i64, Item>,
    /// Per resource, its waiting events' sequence numbers, oldest first; the
    /// first is the only one that may be in flight.
    lanes: HashMap<Key, VecDeque<i64>>,
    /// Heads of lanes free to go now.
    ready: BTreeSet<i64>,
    /// Heads of lanes waiting for a retry: (not before, seq).
    waiting: BTreeSet<(i64, i64)>,
    barriers: BTreeSet<i64>,
    /// The newest event added: every event up to it has been read.
    read_through: i64,
}

impl Lanes {
    pub fn new(cursor: i64) -> Self {
        Lanes {
            read_through: cursor,
            ..Lanes::default()
        }
    }

    /// Events held (waiting, retrying or in flight).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn read_through(&self) -> i64 {
        self.read_through
    }

    /// Takes in the next event read, which must be newer than every other.
    pub fn push(&mut self, event: Event, attempts: i64) {
        let seq = event.seq;
        self.read_through = self.read_through.max(seq);
        let key = key_of(&event);
        if key == Key::Barrier {
            self.barriers.insert(seq);
        }
        let lane = self.lanes.entry(key.clone()).or_default();
        lane.push_back(seq);
        if lane.len() == 1 {
            self.ready.insert(seq);
        }
        self.items.insert(
            seq,
            Item {
                event,
                key,
                attempts,
                first_failure: None,
            },
        );
    }

    /// Marks skipped events as read: nothing between the cursor and `seq`
    /// concerns the endpoint.
    pub fn read_to(&mut self, seq: i64) {
        self.read_through = self.read_through.max(seq);
    }

    /// Every event up to the returned one is delivered or given up on.
    pub fn cursor(&self) -> i64 {
        match self.items.keys().next() {
            Some(first) => first - 1,
            None => self.read_through,
        }
    }

    fn wake(&mut self, now: i64) {
        while let Some(&(at, seq)) = self.waiting.first() {
            if at > now {
                break;
            }
            self.waiting.pop_first();
            self.ready.insert(seq);
        }
    }

    /// How many events could go out now.
    pub fn ready_count(&mut self, now: i64) -> usize {
        self.wake(now);
        let limit = self.barrier_limit();
        self.ready.range(..=limit).count()
    }

    /// Events past the oldest waiting barrier wait for it; the barrier itself
    /// goes once it is the oldest event held.
    fn barrier_limit(&self) -> i64 {
        match (self.barriers.first(), self.items.keys().next()) {
            (Some(&b), Some(&first)) if b == first => b,
            (Some(&b), _) => b - 1,
            (None, _) => i64::MAX,
        }
    }

    /// One event held.
    pub fn get(&self, seq: i64) -> Option<&Item> {
        self.items.get(&seq)
    }

    /// Takes up to `n` events free to go now, oldest first; they are in
    /// flight until [`Lanes::done`] or [`Lanes::fail`].
    pub fn take(&mut self, now: i64, n: usize) -> Vec<i64> {
        self.wake(now);
        let limit = self.barrier_limit();
        let mut taken = Vec::new();
        while taken.len() < n {
            match self.ready.first() {
                Some(&seq) if seq <= limit => {
                    self.ready.pop_first();
                    taken.push(seq);
                }
                _ => break,
            }
        }
        taken
    }

    /// The event went out (or was given up on): its resource's next event is free.
    pub fn done(&mut self, seq: i64) {
        let Some(item) = self.items.remove(&seq) else {
            return;
        };
        self.barriers.remove(&seq);
        if let Some(lane) = self.lanes.get_mut(&item.key) {
            lane.retain(|s| *s != seq);
            match lane.front() {
                Some(&next) => {
                    self.ready.insert(next);
                }
                None => {
                    self.lanes.remove(&item.key);
                }
            }
        }
    }

    /// The event failed: it goes again at `at`, and until it succeeds its
    /// resource's later events wait; unless it has failed for `window_ms`,
    /// when it is given up on (true) and its resource moves on.
    pub fn fail(&mut self, seq: i64, now: i64, at: i64, window_ms: i64) -> bool {
        let Some(item) = self.items.get_mut(&seq) else {
            return false;
        };
        let first = *item.first_failure.get_or_insert(now);
        if now - first >= window_ms {
            self.done(seq);
            return true;
        }
        self.waiting.insert((at, seq));
        false
    }

    /// Counts an attempt at an event in flight.
    pub fn attempted(&mut self, seq: i64) -> i64 {
        match self.items.get_mut(&seq) {
            Some(item) => {
                item.attempts += 1;
                item.attempts
            }
            None => 0,
        }
    }

    /// When the next retry is due, if one waits.
    pub fn next_retry(&self) -> Option<i64> {
        self.waiting.first().map(|(at, _)| *at)
    }

    /// The most attempts and the oldest failure among the events held, for
    /// the endpoint's record.
    pub fn summary(&self) -> (i64, Option<i64>) {
        let attempts = self
            .items
            .values()
            .filter(|i| i.first_failure.is_some())
            .map(|i| i.attempts)
            .max()
            .unwrap_or(0);
        let first = self.items.values().filter_map(|i| i.first_failure).min();
        (attempts, first)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ev(seq: i64, t: &str, data: serde_json::Value) -> Event {
        Event {
            seq,
            directory_id: "d".into(),
            event: t.into(),
            created_at: 0,
            data,
        }
    }

    fn user(seq: i64, id: &str) -> Event {
        ev(seq, events::USER_UPDATED, json!({"id": id}))
    }

    fn seqs(l: &mut Lanes, now: i64, n: usize) -> Vec<i64> {
        l.take(now, n)
    }

    #[test]
    fn keys_follow_the_resource_and_membership_follows_its_group() {
        assert_eq!(key_of(&user(1, "u")), Key::User("u".into()));
        let m = ev(
            2,
            events::GROUP_USER_ADDED,
            json!({"user": {"id": "u"}, "group": {"id": "g"}}),
        );
        assert_eq!(key_of(&m), Key::Group("g".into()));
        let g = ev(3, events::GROUP_DELETED, json!({"id": "g"}));
        assert_eq!(key_of(&g), Key::Group("g".into()));
        let d = ev(4, events::DIRECTORY_DELETED, json!({"id": "d"}));
        assert_eq!(key_of(&d), Key::Barrier);
    }

    #[test]
    fn one_resource_in_order_others_side_by_side() {
        let mut l = Lanes::new(0);
        l.push(user(1, "a"), 0);
        l.push(user(2, "a"), 0);
        l.push(user(3, "b"), 0);
        assert_eq!(seqs(&mut l, 0, 10), vec![1, 3]);
        assert_eq!(seqs(&mut l, 0, 10), Vec::<i64>::new());
        l.done(3);
        assert_eq!(l.cursor(), 0);
        l.done(1);
        assert_eq!(l.cursor(), 1);
        assert_eq!(seqs(&mut l, 0, 10), vec![2]);
        l.done(2);
        assert_eq!(l.cursor(), 3);
        assert!(l.is_empty());
    }

    #[test]
    fn a_retry_holds_back_only_its_own_resource() {
        let mut l = Lanes::new(10);
        l.push(user(11, "a"), 0);
        l.push(user(12, "a"), 0);
        l.push(user(13, "b"), 0);
        l.push(user(14, "b"), 0);
        assert_eq!(seqs(&mut l, 0, 10), vec![11, 13]);
        assert_eq!(l.attempted(11), 1);
        assert!(!l.fail(11, 0, 100, 1_000));
        l.done(13);
        assert_eq!(seqs(&mut l, 50, 10), vec![14]);
        l.done(14);
        assert_eq!(l.cursor(), 10, "the retried event holds the cursor");
        assert_eq!(l.next_retry(), Some(100));
        assert_eq!(seqs(&mut l, 100, 10), vec![11]);
        l.done(11);
        assert_eq!(seqs(&mut l, 100, 10), vec![12]);
        l.done(12);
        assert_eq!(l.cursor(), 14);
    }

    #[test]
    fn an_event_failing_past_the_window_is_given_up_and_its_resource_moves_on() {
        let mut l = Lanes::new(0);
        l.push(user(1, "a"), 0);
        l.push(user(2, "a"), 0);
        assert_eq!(seqs(&mut l, 0, 10), vec![1]);
        assert!(!l.fail(1, 0, 10, 1_000));
        assert_eq!(seqs(&mut l, 10, 10), vec![1]);
        assert!(l.fail(1, 1_000, 1_010, 1_000));
        assert_eq!(l.cursor(), 1);
        assert_eq!(seqs(&mut l, 1_000, 10), vec![2]);
    }

    #[test]
    fn a_barrier_waits_for_everything_before_and_holds_everything_after() {
        let mut l = Lanes::new(0);
        l.push(user(1, "a"), 0);
        l.push(ev(2, events::DIRECTORY_DELETED, json!({"id": "d"})), 0);
        l.push(user(3, "b"), 0);
        assert_eq!(seqs(&mut l, 0, 10), vec![1]);
        l.done(1);
        assert_eq!(seqs(&mut l, 0, 10), vec![2]);
        assert_eq!(seqs(&mut l, 0, 10), Vec::<i64>::new());
        l.done(2);
        assert_eq!(seqs(&mut l, 0, 10), vec![3]);
    }

    #[test]
    fn skipped_events_move_the_cursor_when_nothing_is_held() {
        let mut l = Lanes::new(5);
        l.read_to(9);
        assert_eq!(l.cursor(), 9);
        l.push(user(12, "a"), 0);
        assert_eq!(l.cursor(), 11);
    }
}
