//! The SCIM 2.0 protocol (RFC 7643, RFC 7644, RFC 9865), pure and synchronous:
//! schemas, attribute paths, filters, PATCH, projection, validation and the
//! message types. Nothing here does I/O or knows about HTTP or SQL.

pub mod bulk;
pub mod error;
pub mod filter;
pub mod json;
mod keys;
pub mod kind;
pub mod members;
pub mod patch;
pub mod path;
pub mod project;
pub mod schema;
pub mod sort;
pub mod validate;
pub mod values;

pub use error::{Result, ScimError, ScimType};
pub use kind::ResourceKind;
pub use path::AttrPath;
