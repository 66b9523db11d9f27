//! The schemas of RFC 7643 §4 (User, Group), §4.3 (Enterprise User) and the
//! common attributes of §3.1, as the server validates with and publishes.

use super::{AttrType as T, AttributeDef as A, Mutability as M, Returned as R, Schema, Uniqueness};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn s(name: &str) -> A {
    A::new(name, T::String)
}

fn b(name: &str) -> A {
    A::new(name, T::Boolean)
}

fn complex(name: &str, subs: Vec<A>) -> A {
    A::new(name, T::Complex).subs(subs)
}

/// The `value`/`display`/`type`/`primary` shape shared by most multi-valued attributes.
fn multi_valued(name: &str, value: A, types: &[&str], desc: &str) -> A {
    complex(
        name,
        vec![
            value,
            s("display").describe("A human-readable name, primarily used for display purposes."),
            s("type")
                .canonical(types)
                .describe("A label indicating the attribute's function."),
            b("primary").describe("Indicates the 'primary' or preferred attribute value."),
        ],
    )
    .multi()
    .describe(desc)
}

/// `id`, `externalId` and `meta`, which every resource has whatever its schema.
pub fn common_attributes() -> Vec<A> {
    vec![
        s("id")
            .case_exact()
            .mutability(M::ReadOnly)
            .returned(R::Always)
            .uniqueness(Uniqueness::Server)
            .describe(
                "Unique identifier for the SCIM resource as defined by the service provider.",
            ),
        s("externalId")
            .case_exact()
            .describe("An identifier for the resource as defined by the provisioning client."),
        complex(
            "meta",
            vec![
                s("resourceType").case_exact().mutability(M::ReadOnly),
                A::new("created", T::DateTime).mutability(M::ReadOnly),
                A::new("lastModified", T::DateTime).mutability(M::ReadOnly),
                A::new("location", T::Reference)
                    .case_exact()
                    .mutability(M::ReadOnly)
                    .refs(&["uri"]),
                s("version").case_exact().mutability(M::ReadOnly),
            ],
        )
        .mutability(M::ReadOnly)
        .describe("A complex attribute containing resource metadata."),
    ]
}

pub fn user_schema() -> Schema {
    let name = complex(
        "name",
        vec![
            s("formatted"),
            s("familyName"),
            s("givenName"),
            s("middleName"),
            s("honorificPrefix"),
            s("honorificSuffix"),
        ],
    )
    .describe("The components of the user's real name.");
    let addresses = complex(
        "addresses",
        vec![
            s("formatted"),
            s("streetAddress"),
            s("locality"),
            s("region"),
            s("postalCode"),
            s("country"),
            s("type").canonical(&["work", "home", "other"]),
            b("primary"),
        ],
    )
    .multi()
    .describe("A physical mailing address for this User.");
    let groups = complex(
        "groups",
        vec![
            s("value").mutability(M::ReadOnly),
            A::new("$ref", T::Reference)
                .case_exact()
                .mutability(M::ReadOnly)
                .refs(&["User", "Group"]),
            s("display").mutability(M::ReadOnly),
            s("type")
                .canonical(&["direct", "indirect"])
                .mutability(M::ReadOnly),
        ],
    )
    .multi()
    .mutability(M::ReadOnly)
    .describe("A list of groups to which the user belongs.");
    Schema {
        id: USER_SCHEMA.to_owned(),
        name: "User".to_owned(),
        description: "User Account".to_owned(),
        attributes: vec![
            s("userName")
                .required()
                .uniqueness(Uniqueness::Server)
                .describe(
                    "Unique identifier for the User, typically used to directly authenticate.",
                ),
            name,
            s("displayName"),
            s("nickName"),
            A::new("profileUrl", T::Reference).refs(&["external"]),
            s("title"),
            s("userType"),
            s("preferredLanguage"),
            s("locale"),
            s("timezone"),
            b("active").describe("A Boolean value indicating the User's administrative status."),
            s("password")
                .mutability(M::WriteOnly)
                .returned(R::Never)
                .describe("The User's cleartext password, stored only as a hash."),
            multi_valued(
                "emails",
                s("value"),
                &["work", "home", "other"],
                "Email addresses for the user.",
            ),
            multi_valued(
                "phoneNumbers",
                s("value"),
                &["work", "home", "mobile", "fax", "pager", "other"],
                "Phone numbers for the User.",
            ),
            multi_valued(
                "ims",
                s("value"),
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
                "Instant messaging addresses for the User.",
            ),
            multi_valued(
                "photos",
                A::new("value", T::Reference).refs(&["external"]),
                &["photo", "thumbnail"],
                "URLs of photos of the User.",
            ),
            addresses,
            groups,
            multi_valued(
                "entitlements",
                s("value"),
                &[],
                "A list of entitlements for the User.",
            ),
            multi_valued("roles", s("value"), &[], "A list of roles for the User."),
            multi_valued(
                "x509Certificates",
                A::new("value", T::Binary),
                &[],
                "A list of certificates issued to the User.",
            ),
        ],
    }
}

pub fn group_schema() -> Schema {
    Schema {
        id: GROUP_SCHEMA.to_owned(),
        name: "Group".to_owned(),
        description: "Group".to_owned(),
        attributes: vec![
            s("displayName")
                .required()
                .uniqueness(Uniqueness::Server)
                .describe("A human-readable name for the Group."),
            complex(
                "members",
                vec![
                    s("value").case_exact().mutability(M::Immutable),
                    A::new("$ref", T::Reference)
                        .case_exact()
                        .mutability(M::Immutable)
                        .refs(&["User", "Group"]),
                    s("display").mutability(M::ReadOnly),
                    s("type")
                        .canonical(&["User", "Group"])
                        .mutability(M::Immutable),
                ],
            )
            .multi()
            .describe("A list of members of the Group."),
        ],
    }
}

pub fn enterprise_user_schema() -> Schema {
    Schema {
        id: ENTERPRISE_USER_SCHEMA.to_owned(),
        name: "EnterpriseUser".to_owned(),
        description: "Enterprise User".to_owned(),
        attributes: vec![
            s("employeeNumber"),
            s("costCenter"),
            s("organization"),
            s("division"),
            s("department"),
            complex(
                "manager",
                vec![
                    s("value").case_exact(),
                    A::new("$ref", T::Reference).case_exact().refs(&["User"]),
                    s("displayName").mutability(M::ReadOnly),
                ],
            )
            .describe("The User's manager."),
        ],
    }
}
