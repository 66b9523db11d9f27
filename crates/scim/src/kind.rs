//! The two resource types Roster serves and synchronises.

use crate::members::MemberType;

/// A SCIM resource type Roster knows: a User or a Group (RFC 7643 §4).
///
/// The discriminants are stable: stores persist them ([`ResourceKind::code`]).
/// Users order before groups, the order in which resources are listed and
/// created (a group names its users).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    User = 1,
    Group = 2,
}

impl ResourceKind {
    /// The small integer a store persists for the kind.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The kind a persisted [`code`](Self::code) stands for.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(ResourceKind::User),
            2 => Some(ResourceKind::Group),
            _ => None,
        }
    }

    /// The kind named by a resource type name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("User") {
            Some(ResourceKind::User)
        } else if name.eq_ignore_ascii_case("Group") {
            Some(ResourceKind::Group)
        } else {
            None
        }
    }

    /// The resource type name, "User" or "Group": also the value of `members[].type`.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The lower-case noun for messages: "user" or "group".
    pub fn noun(self) -> &'static str {
        match self {
            ResourceKind::User => "user",
            ResourceKind::Group => "group",
        }
    }

    /// The endpoint, relative to a SCIM base URL: "Users" or "Groups".
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }

    /// The human-readable unique attribute: userName or displayName.
    pub fn name_attr(self) -> &'static str {
        match self {
            ResourceKind::User => "userName",
            ResourceKind::Group => "displayName",
        }
    }

    /// The member type a resource of this kind is when a group names it.
    pub fn member_type(self) -> MemberType {
        match self {
            ResourceKind::User => MemberType::User,
            ResourceKind::Group => MemberType::Group,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ResourceKind;

    #[test]
    fn codes_and_names_round_trip() {
        for k in [ResourceKind::User, ResourceKind::Group] {
            assert_eq!(ResourceKind::from_code(k.code()), Some(k));
            assert_eq!(ResourceKind::from_name(k.name()), Some(k));
            assert_eq!(k.member_type().as_str(), k.name());
        }
        assert_eq!(ResourceKind::User.code(), 1);
        assert_eq!(ResourceKind::Group.code(), 2);
        assert_eq!(ResourceKind::from_code(3), None);
        assert_eq!(ResourceKind::from_name("group"), Some(ResourceKind::Group));
        assert!(ResourceKind::User < ResourceKind::Group);
    }
}
