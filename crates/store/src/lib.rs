//! Storage for Roster: the [`Store`] trait and its SQLite implementation.
//!
//! Every operation that changes a resource runs in one transaction with
//! everything derived from it (index rows, membership rows), so nothing is
//! ever half-applied.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cursor;
pub mod error;
pub mod model;
pub mod sql;
pub mod sqlite;
mod tokens;

use std::collections::HashMap;

use async_trait::async_trait;

pub use error::{StoreError, StoreResult};
pub use model::*;
pub use sqlite::{SqliteOptions, SqliteStore};
pub use tokens::{hash_token, new_token};

/// Settings that shape list results.
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// How long a cursor stays valid, in seconds.
    pub cursor_timeout_secs: i64,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            cursor_timeout_secs: 3600,
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn create_directory(&self, name: &str) -> StoreResult<Directory>;
    async fn list_directories(&self) -> StoreResult<Vec<Directory>>;
    async fn get_directory(&self, id: &str) -> StoreResult<Option<Directory>>;

    /// Mints a new bearer token for a directory; the plaintext is returned once and never stored.
    async fn issue_token(&self, directory_id: &str) -> StoreResult<(TokenInfo, String)>;
    async fn list_tokens(&self, directory_id: &str) -> StoreResult<Vec<TokenInfo>>;
    /// Revokes a token by id; false when there is no such live token.
    async fn revoke_token(&self, token_id: &str) -> StoreResult<bool>;
    /// The directory a bearer token belongs to, if the token is live.
    async fn authenticate(&self, token: &str) -> StoreResult<Option<String>>;

    async fn create(&self, directory: &str, new: NewResource) -> StoreResult<Stored>;
    async fn get(&self, directory: &str, kind: Kind, id: &str) -> StoreResult<Option<Stored>>;
    /// Read-modify-write inside one transaction; `if_match` is the expected version.
    async fn update(
        &self,
        directory: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
        f: UpdateFn,
    ) -> StoreResult<Stored>;
    async fn delete(
        &self,
        directory: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
    ) -> StoreResult<()>;
    async fn list(&self, directory: &str, query: ListQuery) -> StoreResult<ListResult>;
    /// Members of each group, with what `members[].display` shows.
    async fn members(
        &self,
        directory: &str,
        group_ids: &[String],
    ) -> StoreResult<HashMap<String, Vec<MemberRow>>>;
    /// Groups each resource is a direct member of.
    async fn groups_of(
        &self,
        directory: &str,
        member_ids: &[String],
    ) -> StoreResult<HashMap<String, Vec<MemberRow>>>;
}
