//! What the app-facing directory API asks the store for: pages of normalized
//! users and groups (the same payloads events carry), filtered in SQL and
//! paged by resource id so no request ever reads a whole directory.

use std::collections::HashMap;

use serde_json::Value;

/// The order of a list: by id, which is creation order (UUIDv7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// A keyset position: the objects right after, or right before, this id in
/// the list's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    After(String),
    Before(String),
}

/// Where a page starts, which way the list runs, and how long the page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    pub cursor: Option<Cursor>,
    pub order: Order,
    pub limit: u64,
}

impl Default for Paging {
    fn default() -> Self {
        Paging {
            cursor: None,
            order: Order::Asc,
            limit: 10,
        }
    }
}

impl Paging {
    /// The first `limit` objects in id order.
    pub fn first(limit: u64) -> Self {
        Paging {
            limit,
            ..Paging::default()
        }
    }

    /// The page after `after` in id order.
    pub fn after(after: Option<String>, limit: u64) -> Self {
        Paging {
            cursor: after.map(Cursor::After),
            order: Order::Asc,
            limit,
        }
    }

    pub fn cursor_id(&self) -> Option<&str> {
        match &self.cursor {
            Some(Cursor::After(id) | Cursor::Before(id)) => Some(id),
            None => None,
        }
    }
}

/// Directories, filtered and paged.
#[derive(Debug, Clone, Default)]
pub struct DirectoryQuery {
    pub organization_id: Option<String>,
    pub domain: Option<String>,
    /// A part of the name, case-insensitive.
    pub search: Option<String>,
    pub paging: Paging,
}

/// One page of a list; `before` / `after` are the cursors of the pages on
/// either side, `None` at either end.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// `state` of a normalized user: the SCIM `active` flag, absent meaning active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Active,
    Inactive,
}

/// Filters and paging for a directory's users.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Only direct members of this group.
    pub group: Option<String>,
    pub state: Option<UserState>,
    /// Only users changed after this instant (Unix milliseconds).
    pub updated_after: Option<i64>,
    /// The IdP's id (`externalId`).
    pub idp_id: Option<String>,
    /// Any of the user's email addresses, case-insensitive.
    pub email: Option<String>,
    pub paging: Paging,
}

/// Filters and paging for a directory's groups.
#[derive(Debug, Clone, Default)]
pub struct GroupQuery {
    /// Only the groups this user is a direct member of.
    pub user: Option<String>,
    pub updated_after: Option<i64>,
    pub paging: Paging,
}

/// One page of normalized objects (the payloads events carry); for users,
/// `groups` holds each user's groups, normalized, read for the whole page at
/// once.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectPage {
    pub data: Vec<Value>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub groups: HashMap<String, Vec<Value>>,
}

/// A rotated token: the new one (plaintext shown once) and the old one with
/// the time it stops working.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub new: crate::model::TokenInfo,
    pub token: String,
    pub old: crate::model::TokenInfo,
}

/// Events, filtered and paged by event id (oldest first unless `paging`
/// says `desc`).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only these types; every type when empty.
    pub types: Vec<String>,
    pub directory: Option<String>,
    /// Only events of the directories this organization owns (or owned).
    pub organization_id: Option<String>,
    /// Only events created strictly after this instant (Unix milliseconds).
    pub range_start: Option<i64>,
    /// Only events created strictly before this instant.
    pub range_end: Option<i64>,
    pub paging: Paging,
}
