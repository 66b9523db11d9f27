//! What the store hands out and takes in.

use roster_scim::ScimError;
use roster_scim::filter::CheckedFilter;
use roster_scim::members::{MemberOp, MemberRef};
use roster_scim::sort::SortKey;
use serde_json::Value;

/// The two resource types, defined with the protocol; stored as small
/// integers ([`Kind::code`]).
pub use roster_scim::ResourceKind as Kind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    /// Last change of the directory itself (name, organization, domain, type).
    pub updated_at: i64,
    /// The app's own id for the customer that owns the directory.
    pub organization_id: Option<String>,
    /// The customer's domain, as the app names it.
    pub domain: Option<String>,
    /// Which provider feeds the directory, in the WorkOS spelling
    /// (`okta scim v2.0`); `None` until detected from its requests or set.
    pub provider: Option<String>,
}

/// What a directory's creator may give besides its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryAttrs {
    pub organization_id: Option<String>,
    pub domain: Option<String>,
    pub provider: Option<String>,
}

/// A change of a directory's own attributes; `None` fields stay as they are,
/// `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryChange {
    pub name: Option<String>,
    pub organization_id: Option<Option<String>>,
    pub domain: Option<Option<String>>,
    pub provider: Option<Option<String>>,
}

/// How many users (active, inactive) and groups a directory holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectoryCounts {
    pub active_users: i64,
    pub inactive_users: i64,
    pub groups: i64,
}

/// The provider types Roster recognises, in the WorkOS spelling.
pub const PROVIDER_TYPES: &[&str] = &[
    "azure scim v2.0",
    "okta scim v2.0",
    "onelogin scim v2.0",
    "jump cloud scim v2.0",
    "pingfederate scim v2.0",
    "cyberark scim v2.0",
    "sailpoint scim v2.0",
    "rippling scim v2.0",
    "generic scim v2.0",
];

/// The type of a directory whose provider is not known.
pub const GENERIC_PROVIDER: &str = "generic scim v2.0";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub directory_id: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// When a rotated token stops working (Unix milliseconds).
    pub expires_at: Option<i64>,
}

/// A stored resource: the canonical document plus what the server derives `meta` from.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: String,
    pub kind: Kind,
    pub doc: Value,
    pub version: i64,
    pub created: i64,
    pub last_modified: i64,
}

/// One membership row with what `members[]` / `groups[]` show of the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub id: String,
    pub kind: Kind,
    pub display: String,
}

/// A new resource: its canonical document and, for groups, its initial
/// members; for users, the ids of the groups it joins (a user's `groups` sent
/// with the user, a tolerance: RFC 7643 makes them readOnly).
#[derive(Debug, Clone)]
pub struct NewResource {
    pub kind: Kind,
    pub doc: Value,
    pub members: Vec<MemberRef>,
    pub groups: Vec<String>,
}

/// What an update turns a resource into.
#[derive(Debug, Clone)]
pub struct Update {
    pub doc: Value,
    pub members: Vec<MemberOp>,
    /// For users: the exact set of groups the user is a direct member of
    /// afterwards; `None` leaves memberships alone.
    pub groups: Option<Vec<String>>,
}

/// Computes an update from the current state, inside the store's transaction,
/// so that read-modify-write (PUT, PATCH) never loses a concurrent update.
pub type UpdateFn = Box<dyn FnOnce(&Stored) -> Result<Update, ScimError> + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Ascending,
    Descending,
}

/// A list request, already parsed and checked against the schemas.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub kind: Kind,
    pub filter: Option<CheckedFilter>,
    /// A singular attribute, or `None` for the default order (by id).
    pub sort: Option<SortKey>,
    pub sort_order: SortOrder,
    pub page: Page,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// 1-based index paging.
    Index { start: u64, count: u64 },
    /// RFC 9865 cursor paging; `None` asks for the first page.
    Cursor { cursor: Option<String>, count: u64 },
}

#[derive(Debug, Clone)]
pub struct ListResult {
    pub total: u64,
    pub resources: Vec<Stored>,
    pub next_cursor: Option<String>,
    pub previous_cursor: Option<String>,
}

/// An admin API key's metadata; never the key, which is shown only when
/// created or rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminKeyInfo {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// When the key last got a new secret.
    pub rotated_at: Option<i64>,
    pub scope: AdminKeyScope,
}

impl AdminKeyInfo {
    /// The key's metadata as the API and the CLI show it; never the key.
    pub fn to_json(&self) -> serde_json::Value {
        let ts = |ms: Option<i64>| ms.map(roster_scim::values::format_unix_millis);
        serde_json::json!({
            "object": "admin_key",
            "id": self.id,
            "name": self.name,
            "access": self.scope.access(),
            "directories": self.scope.directories,
            "created_at": roster_scim::values::format_unix_millis(self.created_at),
            "rotated_at": ts(self.rotated_at),
            "revoked_at": ts(self.revoked_at),
        })
    }
}

/// What an admin key may do: change things or only read them, in every
/// directory or only in some.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdminKeyScope {
    /// Reads only: events, users, groups and directories.
    pub read_only: bool,
    /// The directories the key sees; `None`: all of them.
    pub directories: Option<Vec<String>>,
}

impl AdminKeyScope {
    /// Neither read-only nor limited to directories.
    pub fn is_full(&self) -> bool {
        !self.read_only && self.directories.is_none()
    }

    /// Whether the key sees `directory`.
    pub fn sees(&self, directory: &str) -> bool {
        self.directories
            .as_ref()
            .is_none_or(|dirs| dirs.iter().any(|d| d == directory))
    }

    /// `full`, `read_only`, or either limited to directories (`directories`).
    pub fn access(&self) -> &'static str {
        if self.read_only { "read_only" } else { "full" }
    }
}

/// Who made an administrative change, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A request authenticated by this admin key (its id).
    AdminKey(String),
    /// The `roster` command on the server's machine.
    Cli,
    /// A dashboard session (its id).
    Dashboard(String),
    /// An Admin Portal session, opened by this portal link (its id).
    Portal(String),
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::AdminKey(id) => write!(f, "admin_key:{id}"),
            Actor::Cli => f.write_str("cli"),
            Actor::Dashboard(session) => write!(f, "dashboard:{session}"),
            Actor::Portal(link) => write!(f, "portal:{link}"),
        }
    }
}

/// One administrative change, as recorded in the audit log. Never holds a
/// secret: targets are ids, details are names and settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Position in the log, increasing in commit order.
    pub seq: i64,
    pub at: i64,
    /// [`Actor`] as text: `admin_key:<id>`, `cli`, `dashboard:<session>`.
    pub actor: String,
    /// What happened: `directory.created`, `token.revoked`, ...
    pub action: String,
    /// What it happened to: `directory`, `token`, `admin_key`, `webhook`.
    pub target_type: String,
    pub target_id: String,
    /// The directory the target belongs to, when it belongs to one.
    pub directory_id: Option<String>,
    /// What changed (a new name, settings, a scope), never a secret.
    pub details: serde_json::Value,
}

/// An audit record's id in the API and the CLI: `aud_` and the sequence
/// number in hex, so ids sort as the log does.
pub fn audit_id(seq: i64) -> String {
    format!("aud_{seq:016x}")
}

/// The sequence number inside an audit record id, if it is one.
pub fn parse_audit_id(id: &str) -> Option<i64> {
    let hex = id.strip_prefix("aud_")?;
    (hex.len() == 16)
        .then(|| i64::from_str_radix(hex, 16).ok())
        .flatten()
}

impl AuditRecord {
    pub fn id(&self) -> String {
        audit_id(self.seq)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "object": "audit_record",
            "id": self.id(),
            "at": roster_scim::values::format_unix_millis(self.at),
            "actor": self.actor,
            "action": self.action,
            "target": {
                "type": self.target_type,
                "id": self.target_id,
                "directory_id": self.directory_id,
            },
            "details": self.details,
        })
    }
}

/// A read of the audit log: records after `after`, oldest first, or the
/// newest `limit` when `newest` is set.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub after: i64,
    pub limit: u64,
    pub newest: bool,
    /// Only records with this target id.
    pub target_id: Option<String>,
    /// Only records by this actor (as text).
    pub actor: Option<String>,
}

/// How a directory reports a user's deactivation (`active` turning false) to
/// the app: as `dsync.user.updated` with state `inactive`, or, for apps that
/// prefer it, as `dsync.user.deleted` (and reactivation as `dsync.user.created`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deactivation {
    #[default]
    Update,
    Delete,
}

impl Deactivation {
    pub fn as_str(self) -> &'static str {
        match self {
            Deactivation::Update => "update",
            Deactivation::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "update" => Some(Deactivation::Update),
            "delete" => Some(Deactivation::Delete),
            _ => None,
        }
    }
}

/// A directory's settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DirectorySettings {
    pub deactivation: Deactivation,
    /// How `custom_attributes` of users is filled; `None`: from the
    /// Enterprise User extension, under snake_case names.
    pub custom_attributes: Option<crate::custom_attributes::CustomAttributes>,
}

/// A change of a directory's settings; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    pub deactivation: Option<Deactivation>,
    /// `Some(None)` removes the mapping.
    pub custom_attributes: Option<Option<crate::custom_attributes::CustomAttributes>>,
    /// How often a Google Workspace directory is polled (seconds).
    pub poll_interval_secs: Option<i64>,
}
