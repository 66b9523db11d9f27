//! The client side of Roster: a typed SCIM 2.0 client ([`ScimClient`]: discovery,
//! list with filters and index or cursor paging, single-resource calls, /Bulk,
//! bulk chunking and retry timing), a typed client for the app-facing `/api/v1`
//! ([`api::ApiClient`]) and webhook signature verification for receivers.

pub mod api;
pub mod bulk;
mod client;
mod discovery;
mod error;
pub mod retry;
pub mod webhook;

pub use bulk::{BulkOpResult, BulkResponse, ChunkBuilder};
pub use client::{ClientOptions, ListPage, ListQuery, Paging, Resource, ScimClient, Stats};
pub use discovery::{BulkConfig, PaginationConfig, ServiceProviderConfig};
pub use error::{Error, ScimErrorBody};

/// The SCIM schema URNs a client needs to build messages.
pub mod schemas {
    pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
    pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
}
