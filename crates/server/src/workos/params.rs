//! The query parameters of the WorkOS routes, read by the same functions as
//! `/api/v1`'s with the WorkOS bounds: `limit` 1 to 100, default 10, lists
//! newest first unless `order` says otherwise.

use roster_store::directory_api::{Order, Paging};

use super::WorkosError;
use crate::api::params;
use crate::request::QueryParams;

pub const DEFAULT_LIMIT: u64 = 10;
pub const MAX_LIMIT: u64 = 100;

/// Paging of directories, users and groups: `desc` unless asked.
pub fn paging(q: &QueryParams) -> Result<Paging, WorkosError> {
    Ok(params::paging(q, DEFAULT_LIMIT, MAX_LIMIT, Order::Desc)?)
}

pub fn text(q: &QueryParams, name: &str) -> Option<String> {
    params::text(q, name).map(str::to_owned)
}

/// The list envelope: `list_metadata` with both cursors, `null` at either end.
pub use params::list;
