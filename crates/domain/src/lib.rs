//! Roster's domain, between the protocol (`roster-scim`) and storage
//! (`roster-store`): what a directory holds and what the app is told about it.
//!
//! - [`model`]: resource kinds, stored resources and what a write asks for,
//!   list queries and pages, directories, tokens and settings;
//! - [`events`]: the directory-sync event types and their payloads (users,
//!   groups and memberships as the app sees them), built from stored
//!   resources;
//! - [`custom_attributes`]: a directory's mapping of SCIM attributes to the
//!   `custom_attributes` of its users;
//! - [`error`]: [`DomainError`], what can go wrong, in the domain's terms;
//! - [`directory_api`]: the queries and pages of the app-facing directory API;
//! - [`requests`]: the provider request log and the connection status read from it;
//! - [`google`]: Google Workspace Directory API users and groups as SCIM documents.
//!
//! Nothing here does I/O: the store persists these types and the server
//! renders them.

pub mod custom_attributes;
pub mod directory_api;
pub mod error;
pub mod events;
pub mod google;
pub mod model;
pub mod requests;

pub use error::{DomainError, DomainResult};
pub use model::*;
