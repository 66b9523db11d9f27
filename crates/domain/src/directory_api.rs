//! What the app-facing directory API asks the store for: pages of normalized
//! users and groups (the same payloads events carry), filtered in SQL and
//! paged by resource id so no request ever reads a whole directory.

use serde_json::Value;

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
    /// The id of the last user of the previous page.
    pub after: Option<String>,
    pub limit: u64,
}

/// Filters and paging for a directory's groups.
#[derive(Debug, Clone, Default)]
pub struct GroupQuery {
    pub updated_after: Option<i64>,
    pub after: Option<String>,
    pub limit: u64,
}

/// One page of normalized objects; `after` is the cursor of the next page,
/// `None` on the last one.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectPage {
    pub data: Vec<Value>,
    pub after: Option<String>,
}

/// A rotated token: the new one (plaintext shown once) and the old one with
/// the time it stops working.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub new: crate::model::TokenInfo,
    pub token: String,
    pub old: crate::model::TokenInfo,
}
