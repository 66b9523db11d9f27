//! The published filter corpus: each operator against each kind of
//! attribute (core strings, caseExact strings, booleans, dateTimes,
//! multi-valued complex attributes and value filters, the Enterprise and a
//! custom extension, `schemas`, Groups' `members`) and their compositions,
//! each labelled selective (at most 1,000 matches at every size up to
//! 1,000,000 users) or broad (a tenth of the directory or more).
//!
//! Each case knows, from the data's definition in [`super::people`], which
//! users it must match (RFC 7644 §3.4.2.2: a comparison on a multi-valued
//! attribute matches when any value matches, `ne` included; on a singular
//! attribute `ne` is `not eq`, true when it is absent), so the report shows both the
//! server's `totalResults` and the right answer. dateTime cases compare with
//! the times the server stamped, so only the server knows their counts.

use super::people::{
    BENCH, ENTERPRISE, Person, cost_center, employee_number, group_members, group_name, manager,
    work_email, work_phone,
};
use crate::users;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Users,
    Groups,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Users => "Users",
            Endpoint::Groups => "Groups",
        }
    }

    /// The one attribute a page returns: the page's cost is the filter's.
    pub fn attributes(self) -> &'static str {
        match self {
            Endpoint::Users => "userName",
            Endpoint::Groups => "displayName",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// At most 1,000 matches at every directory size up to 1,000,000.
    Selective,
    /// A tenth of the directory or more.
    Broad,
}

impl Class {
    pub fn label(self) -> &'static str {
        match self {
            Class::Selective => "selective",
            Class::Broad => "broad",
        }
    }
}

/// Which resources a case must match.
#[derive(Clone, Copy)]
pub enum Expect {
    Users(fn(&Ctx, &Person) -> bool),
    /// Group `g` of the directory's groups.
    Groups(fn(&Ctx, u64) -> bool),
    /// Compares with times the server stamped: only the server knows.
    Stamped,
}

pub struct Case {
    /// Stable across sizes and runs: reports are compared by it.
    pub name: &'static str,
    /// The attribute kind the case exercises.
    pub kind: &'static str,
    pub class: Class,
    pub endpoint: Endpoint,
    pub filter: fn(&Ctx) -> String,
    pub expect: Expect,
}

/// Times the server stamped on four users, read back after the load.
#[derive(Debug, Clone, Default)]
pub struct Stamps {
    /// meta.created of user n − 300.
    pub created_late: Option<String>,
    /// meta.lastModified of user n − 200.
    pub modified_late: Option<String>,
    /// meta.lastModified of user n / 2.
    pub modified_mid: Option<String>,
    /// meta.created of user 199.
    pub created_early: Option<String>,
}

/// What the filters are built from.
pub struct Ctx {
    pub n: u64,
    /// The user the selective lookups look for: near the end of the load.
    pub k: u64,
    pub groups: u64,
    /// The ids the server gave users 0..n (empty when only listing the corpus).
    pub ids: Vec<String>,
    pub stamps: Stamps,
}

impl Ctx {
    pub fn new(n: u64, ids: Vec<String>, stamps: Stamps) -> Ctx {
        Ctx {
            n,
            k: n - n / 10 - 7,
            groups: super::people::group_count(n),
            ids,
            stamps,
        }
    }

    /// Users whose times the dateTime cases compare with.
    pub fn stamped_users(n: u64) -> [u64; 4] {
        [n - 300, n - 200, n / 2, 199]
    }

    pub fn id(&self, i: u64) -> String {
        self.ids
            .get(i as usize)
            .cloned()
            .unwrap_or_else(|| format!("<id of user {i}>"))
    }

    /// A member of some group (every user below 20 × groups is in one).
    pub fn member(&self) -> u64 {
        self.groups * 20 - 13
    }

    fn stamp(v: &Option<String>, what: &str) -> String {
        v.clone().unwrap_or_else(|| format!("<{what}>"))
    }
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

fn ci_eq(a: &str, b: &str) -> bool {
    lower(a) == lower(b)
}

fn ci_co(a: &str, b: &str) -> bool {
    lower(a).contains(&lower(b))
}

fn ci_sw(a: &str, b: &str) -> bool {
    lower(a).starts_with(&lower(b))
}

fn ci_ew(a: &str, b: &str) -> bool {
    lower(a).ends_with(&lower(b))
}

fn ent(a: &str) -> String {
    format!("{ENTERPRISE}:{a}")
}

fn bench(a: &str) -> String {
    format!("{BENCH}:{a}")
}

fn emails(p: &Person) -> [(&str, &str, bool); 2] {
    [
        (p.work_email.as_str(), "work", true),
        (p.home_email.as_str(), "home", false),
    ]
}

fn phones(p: &Person) -> Vec<(&str, &str)> {
    let mut v = vec![(p.work_phone.as_str(), "work")];
    if let Some(m) = &p.mobile {
        v.push((m.as_str(), "mobile"));
    }
    v
}

fn employee(p: &Person) -> Option<&str> {
    p.enterprise.as_ref().map(|e| e.employee_number.as_str())
}

fn department(p: &Person) -> Option<&str> {
    p.enterprise.as_ref().map(|e| e.department)
}

/// "given.family." of user k: the users who share both names.
fn name_prefix(c: &Ctx) -> String {
    let name = users::user_name(c.k);
    let mut parts = name.split('.');
    format!(
        "{}.{}.",
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default()
    )
}

/// The family name of user k.
fn family_k(c: &Ctx) -> String {
    users::family_name(c.k)
}

use Class::{Broad, Selective};
use Endpoint::{Groups, Users};

pub const CORPUS: &[Case] = &[
    // Core strings (caseExact false).
    Case {
        name: "userName eq",
        kind: "string",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("userName eq \"{}\"", users::user_name(c.k)),
        expect: Expect::Users(|c, p| ci_eq(&p.user_name, &users::user_name(c.k))),
    },
    Case {
        name: "userName eq (other case)",
        kind: "string",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("userName eq \"{}\"", users::user_name(c.k).to_uppercase()),
        expect: Expect::Users(|c, p| ci_eq(&p.user_name, &users::user_name(c.k))),
    },
    Case {
        name: "userName ne",
        kind: "string",
        class: Broad,
        endpoint: Users,
        filter: |c| format!("userName ne \"{}\"", users::user_name(c.k)),
        expect: Expect::Users(|c, p| !ci_eq(&p.user_name, &users::user_name(c.k))),
    },
    Case {
        name: "userName co",
        kind: "string",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("userName co \".{}@\"", c.k),
        expect: Expect::Users(|c, p| ci_co(&p.user_name, &format!(".{}@", c.k))),
    },
    Case {
        name: "userName sw",
        kind: "string",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("userName sw \"{}\"", name_prefix(c)),
        expect: Expect::Users(|c, p| ci_sw(&p.user_name, &name_prefix(c))),
    },
    Case {
        name: "userName ew",
        kind: "string",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("userName ew \".{}@example.com\"", c.k),
        expect: Expect::Users(|c, p| ci_ew(&p.user_name, &format!(".{}@example.com", c.k))),
    },
    Case {
        name: "userName gt",
        kind: "string",
        class: Selective,
        endpoint: Users,
        filter: |_| "userName gt \"zoe.velvel\"".into(),
        expect: Expect::Users(|_, p| lower(&p.user_name).as_str() > "zoe.velvel"),
    },
    Case {
        name: "userName lt",
        kind: "string",
        class: Selective,
        endpoint: Users,
        filter: |_| "userName lt \"amara.anbor\"".into(),
        expect: Expect::Users(|_, p| lower(&p.user_name).as_str() < "amara.anbor"),
    },
    Case {
        name: "userName ge",
        kind: "string",
        class: Broad,
        endpoint: Users,
        filter: |_| "userName ge \"m\"".into(),
        expect: Expect::Users(|_, p| lower(&p.user_name).as_str() >= "m"),
    },
    Case {
        name: "name.familyName eq",
        kind: "string (complex sub-attribute)",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("name.familyName eq \"{}\"", family_k(c)),
        expect: Expect::Users(|c, p| ci_eq(&p.family, &family_k(c))),
    },
    Case {
        name: "name.familyName sw",
        kind: "string (complex sub-attribute)",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("name.familyName sw \"{}\"", family_k(c)),
        expect: Expect::Users(|c, p| ci_sw(&p.family, &family_k(c))),
    },
    Case {
        name: "name.familyName le",
        kind: "string (complex sub-attribute)",
        class: Selective,
        endpoint: Users,
        filter: |_| "name.familyName le \"Ananan\"".into(),
        expect: Expect::Users(|_, p| lower(&p.family).as_str() <= "ananan"),
    },
    Case {
        name: "displayName co",
        kind: "string",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("displayName co \"{}\"", lower(&family_k(c))),
        expect: Expect::Users(|c, p| ci_co(&p.display, &family_k(c))),
    },
    Case {
        name: "displayName ew",
        kind: "string",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("displayName ew \" {}\"", family_k(c)),
        expect: Expect::Users(|c, p| ci_ew(&p.display, &format!(" {}", family_k(c)))),
    },
    Case {
        name: "title eq",
        kind: "string",
        class: Broad,
        endpoint: Users,
        filter: |_| "title eq \"Designer\"".into(),
        expect: Expect::Users(|_, p| ci_eq(p.title, "Designer")),
    },
    Case {
        name: "title ne",
        kind: "string",
        class: Broad,
        endpoint: Users,
        filter: |_| "title ne \"Designer\"".into(),
        expect: Expect::Users(|_, p| !ci_eq(p.title, "Designer")),
    },
    Case {
        name: "title co",
        kind: "string",
        class: Broad,
        endpoint: Users,
        filter: |_| "title co \"manager\"".into(),
        expect: Expect::Users(|_, p| ci_co(p.title, "manager")),
    },
    Case {
        name: "title pr",
        kind: "string",
        class: Broad,
        endpoint: Users,
        filter: |_| "title pr".into(),
        expect: Expect::Users(|_, _| true),
    },
    Case {
        name: "nickName pr (nobody has one)",
        kind: "string",
        class: Selective,
        endpoint: Users,
        filter: |_| "nickName pr".into(),
        expect: Expect::Users(|_, _| false),
    },
    // caseExact strings.
    Case {
        name: "id eq",
        kind: "caseExact string",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("id eq \"{}\"", c.id(c.k)),
        expect: Expect::Users(|c, p| p.i == c.k),
    },
    Case {
        name: "externalId eq",
        kind: "caseExact string",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("externalId eq \"{}\"", users::external_id(c.k)),
        expect: Expect::Users(|c, p| p.external_id == users::external_id(c.k)),
    },
    Case {
        name: "externalId eq (other case: no match)",
        kind: "caseExact string",
        class: Selective,
        endpoint: Users,
        filter: |c| {
            format!(
                "externalId eq \"{}\"",
                users::external_id(c.k).to_uppercase()
            )
        },
        expect: Expect::Users(|c, p| p.external_id == users::external_id(c.k).to_uppercase()),
    },
    Case {
        name: "externalId sw",
        kind: "caseExact string",
        class: Selective,
        endpoint: Users,
        filter: |_| "externalId sw \"00u000\"".into(),
        expect: Expect::Users(|_, p| p.external_id.starts_with("00u000")),
    },
    Case {
        name: "externalId gt",
        kind: "caseExact string",
        class: Selective,
        endpoint: Users,
        filter: |_| "externalId gt \"00ufff\"".into(),
        expect: Expect::Users(|_, p| p.external_id.as_str() > "00ufff"),
    },
    // Booleans.
    Case {
        name: "active eq false",
        kind: "boolean",
        class: Broad,
        endpoint: Users,
        filter: |_| "active eq false".into(),
        expect: Expect::Users(|_, p| !p.active),
    },
    Case {
        name: "active eq true",
        kind: "boolean",
        class: Broad,
        endpoint: Users,
        filter: |_| "active eq true".into(),
        expect: Expect::Users(|_, p| p.active),
    },
    // dateTimes.
    Case {
        name: "meta.created gt",
        kind: "dateTime",
        class: Selective,
        endpoint: Users,
        filter: |c| {
            format!(
                "meta.created gt \"{}\"",
                Ctx::stamp(&c.stamps.created_late, "created of user n-300")
            )
        },
        expect: Expect::Stamped,
    },
    Case {
        name: "meta.lastModified ge",
        kind: "dateTime",
        class: Selective,
        endpoint: Users,
        filter: |c| {
            format!(
                "meta.lastModified ge \"{}\"",
                Ctx::stamp(&c.stamps.modified_late, "lastModified of user n-200")
            )
        },
        expect: Expect::Stamped,
    },
    Case {
        name: "meta.created le",
        kind: "dateTime",
        class: Selective,
        endpoint: Users,
        filter: |c| {
            format!(
                "meta.created le \"{}\"",
                Ctx::stamp(&c.stamps.created_early, "created of user 199")
            )
        },
        expect: Expect::Stamped,
    },
    Case {
        name: "meta.lastModified lt",
        kind: "dateTime",
        class: Broad,
        endpoint: Users,
        filter: |c| {
            format!(
                "meta.lastModified lt \"{}\"",
                Ctx::stamp(&c.stamps.modified_mid, "lastModified of user n/2")
            )
        },
        expect: Expect::Stamped,
    },
    // Multi-valued complex attributes.
    Case {
        name: "emails.value eq",
        kind: "multi-valued complex",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("emails.value eq \"{}\"", work_email(c.k)),
        expect: Expect::Users(|c, p| emails(p).iter().any(|e| ci_eq(e.0, &work_email(c.k)))),
    },
    Case {
        name: "emails.value co",
        kind: "multi-valued complex",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("emails.value co \"u{}@work\"", c.k),
        expect: Expect::Users(|c, p| {
            emails(p)
                .iter()
                .any(|e| ci_co(e.0, &format!("u{}@work", c.k)))
        }),
    },
    Case {
        name: "emails.value sw",
        kind: "multi-valued complex",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("emails.value sw \"u{}@\"", c.k),
        expect: Expect::Users(|c, p| emails(p).iter().any(|e| ci_sw(e.0, &format!("u{}@", c.k)))),
    },
    Case {
        name: "emails.value ew",
        kind: "multi-valued complex",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("emails.value ew \".{}@home.example.net\"", c.k),
        expect: Expect::Users(|c, p| {
            emails(p)
                .iter()
                .any(|e| ci_ew(e.0, &format!(".{}@home.example.net", c.k)))
        }),
    },
    Case {
        name: "emails.type eq",
        kind: "multi-valued complex",
        class: Broad,
        endpoint: Users,
        filter: |_| "emails.type eq \"home\"".into(),
        expect: Expect::Users(|_, p| emails(p).iter().any(|e| e.1 == "home")),
    },
    Case {
        name: "emails.type ne",
        kind: "multi-valued complex",
        class: Broad,
        endpoint: Users,
        filter: |_| "emails.type ne \"work\"".into(),
        expect: Expect::Users(|_, p| emails(p).iter().any(|e| e.1 != "work")),
    },
    Case {
        name: "emails.primary eq true",
        kind: "multi-valued complex",
        class: Broad,
        endpoint: Users,
        filter: |_| "emails.primary eq true".into(),
        expect: Expect::Users(|_, p| emails(p).iter().any(|e| e.2)),
    },
    Case {
        name: "emails[type eq work and value ew]",
        kind: "value filter",
        class: Selective,
        endpoint: Users,
        filter: |c| {
            format!(
                "emails[type eq \"work\" and value ew \"u{}@work.example.com\"]",
                c.k
            )
        },
        expect: Expect::Users(|c, p| {
            emails(p)
                .iter()
                .any(|e| e.1 == "work" && ci_ew(e.0, &format!("u{}@work.example.com", c.k)))
        }),
    },
    Case {
        name: "emails[type eq home and value co]",
        kind: "value filter",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("emails[type eq \"home\" and value co \".{}@home\"]", c.k),
        expect: Expect::Users(|c, p| {
            emails(p)
                .iter()
                .any(|e| e.1 == "home" && ci_co(e.0, &format!(".{}@home", c.k)))
        }),
    },
    Case {
        name: "phoneNumbers.value eq",
        kind: "multi-valued complex",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("phoneNumbers.value eq \"{}\"", work_phone(c.k)),
        expect: Expect::Users(|c, p| phones(p).iter().any(|x| ci_eq(x.0, &work_phone(c.k)))),
    },
    Case {
        name: "phoneNumbers.value sw",
        kind: "multi-valued complex",
        class: Selective,
        endpoint: Users,
        filter: |_| "phoneNumbers.value sw \"+44 7700 0000\"".into(),
        expect: Expect::Users(|_, p| phones(p).iter().any(|x| ci_sw(x.0, "+44 7700 0000"))),
    },
    Case {
        name: "phoneNumbers.type eq",
        kind: "multi-valued complex",
        class: Broad,
        endpoint: Users,
        filter: |_| "phoneNumbers.type eq \"mobile\"".into(),
        expect: Expect::Users(|_, p| phones(p).iter().any(|x| x.1 == "mobile")),
    },
    Case {
        name: "phoneNumbers.type ne",
        kind: "multi-valued complex",
        class: Broad,
        endpoint: Users,
        filter: |_| "phoneNumbers.type ne \"work\"".into(),
        expect: Expect::Users(|_, p| phones(p).iter().any(|x| x.1 != "work")),
    },
    // The Enterprise extension.
    Case {
        name: "enterprise employeeNumber eq",
        kind: "Enterprise extension",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("{} eq \"{}\"", ent("employeeNumber"), employee_number(c.k)),
        expect: Expect::Users(|c, p| employee(p) == Some(employee_number(c.k).as_str())),
    },
    Case {
        name: "enterprise employeeNumber ge",
        kind: "Enterprise extension",
        class: Selective,
        endpoint: Users,
        filter: |c| {
            format!(
                "{} ge \"{}\"",
                ent("employeeNumber"),
                employee_number(c.n - 200)
            )
        },
        expect: Expect::Users(|c, p| {
            employee(p).is_some_and(|e| e >= employee_number(c.n - 200).as_str())
        }),
    },
    Case {
        name: "enterprise department eq",
        kind: "Enterprise extension",
        class: Broad,
        endpoint: Users,
        filter: |_| format!("{} eq \"Legal\"", ent("department")),
        expect: Expect::Users(|_, p| department(p) == Some("Legal")),
    },
    Case {
        name: "enterprise department ne",
        kind: "Enterprise extension",
        class: Broad,
        endpoint: Users,
        filter: |_| format!("{} ne \"Legal\"", ent("department")),
        // `ne` on a singular attribute is `not eq`: users without the
        // extension match too.
        expect: Expect::Users(|_, p| department(p) != Some("Legal")),
    },
    Case {
        name: "enterprise department co",
        kind: "Enterprise extension",
        class: Broad,
        endpoint: Users,
        filter: |_| format!("{} co \"ineer\"", ent("department")),
        expect: Expect::Users(|_, p| department(p).is_some_and(|d| ci_co(d, "ineer"))),
    },
    Case {
        name: "enterprise manager.value eq",
        kind: "Enterprise extension",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("{} eq \"{}\"", ent("manager.value"), manager(c.k)),
        expect: Expect::Users(|c, p| {
            p.enterprise
                .as_ref()
                .and_then(|e| e.manager.as_deref())
                .is_some_and(|m| ci_eq(m, &manager(c.k)))
        }),
    },
    Case {
        name: "enterprise manager.value pr",
        kind: "Enterprise extension",
        class: Broad,
        endpoint: Users,
        filter: |_| format!("{} pr", ent("manager.value")),
        expect: Expect::Users(|_, p| p.enterprise.as_ref().is_some_and(|e| e.manager.is_some())),
    },
    // The custom extension.
    Case {
        name: "custom costCenter eq",
        kind: "custom extension",
        class: Selective,
        endpoint: Users,
        filter: |c| format!("{} eq \"{}\"", bench("costCenter"), cost_center(c.k)),
        expect: Expect::Users(|c, p| {
            p.custom
                .as_ref()
                .is_some_and(|x| ci_eq(&x.cost_center, &cost_center(c.k)))
        }),
    },
    Case {
        name: "custom costCenter sw",
        kind: "custom extension",
        class: Selective,
        endpoint: Users,
        filter: |_| format!("{} sw \"CC-0000\"", bench("costCenter")),
        expect: Expect::Users(|_, p| {
            p.custom
                .as_ref()
                .is_some_and(|x| ci_sw(&x.cost_center, "CC-0000"))
        }),
    },
    Case {
        name: "custom clearance eq",
        kind: "custom extension",
        class: Broad,
        endpoint: Users,
        filter: |_| format!("{} eq \"secret\"", bench("clearance")),
        expect: Expect::Users(|_, p| p.custom.as_ref().is_some_and(|x| x.clearance == "secret")),
    },
    Case {
        name: "custom level gt (integer)",
        kind: "custom extension",
        class: Broad,
        endpoint: Users,
        filter: |_| format!("{} gt 7", bench("level")),
        expect: Expect::Users(|_, p| p.custom.as_ref().is_some_and(|x| x.level > 7)),
    },
    Case {
        name: "custom remote eq true (boolean)",
        kind: "custom extension",
        class: Broad,
        endpoint: Users,
        filter: |_| format!("{} eq true", bench("remote")),
        expect: Expect::Users(|_, p| p.custom.as_ref().is_some_and(|x| x.remote)),
    },
    Case {
        name: "custom costCenter pr",
        kind: "custom extension",
        class: Broad,
        endpoint: Users,
        filter: |_| format!("{} pr", bench("costCenter")),
        expect: Expect::Users(|_, p| p.custom.is_some()),
    },
    // schemas.
    Case {
        name: "schemas eq custom",
        kind: "schemas",
        class: Broad,
        endpoint: Users,
        filter: |_| format!("schemas eq \"{BENCH}\""),
        expect: Expect::Users(|_, p| p.custom.is_some()),
    },
    Case {
        name: "schemas eq enterprise",
        kind: "schemas",
        class: Broad,
        endpoint: Users,
        filter: |_| format!("schemas eq \"{ENTERPRISE}\""),
        expect: Expect::Users(|_, p| p.enterprise.is_some()),
    },
    // Compositions.
    Case {
        name: "and: userName eq and title eq",
        kind: "and",
        class: Selective,
        endpoint: Users,
        filter: |c| {
            format!(
                "userName eq \"{}\" and title eq \"{}\"",
                users::user_name(c.k),
                users::title(c.k)
            )
        },
        expect: Expect::Users(|c, p| p.i == c.k),
    },
    Case {
        name: "or: userName eq or emails.value eq",
        kind: "or",
        class: Selective,
        endpoint: Users,
        filter: |c| {
            format!(
                "userName eq \"{}\" or emails.value eq \"{}\"",
                users::user_name(c.k),
                work_email(c.k - 1000)
            )
        },
        expect: Expect::Users(|c, p| p.i == c.k || p.i == c.k - 1000),
    },
    Case {
        name: "and: employeeNumber eq and costCenter pr",
        kind: "and (extensions)",
        class: Selective,
        endpoint: Users,
        filter: |c| {
            format!(
                "{} eq \"{}\" and {} pr",
                ent("employeeNumber"),
                employee_number(c.k),
                bench("costCenter")
            )
        },
        expect: Expect::Users(|c, p| {
            employee(p) == Some(employee_number(c.k).as_str()) && p.custom.is_some()
        }),
    },
    Case {
        name: "not: not (active eq true)",
        kind: "not",
        class: Broad,
        endpoint: Users,
        filter: |_| "not (active eq true)".into(),
        expect: Expect::Users(|_, p| !p.active),
    },
    Case {
        name: "or: title eq or title eq",
        kind: "or",
        class: Broad,
        endpoint: Users,
        filter: |_| "title eq \"Designer\" or title eq \"Recruiter\"".into(),
        expect: Expect::Users(|_, p| p.title == "Designer" || p.title == "Recruiter"),
    },
    Case {
        name: "and not: department eq and not title eq",
        kind: "and, not",
        class: Broad,
        endpoint: Users,
        filter: |_| {
            format!(
                "{} eq \"Engineering\" and not (title eq \"Designer\")",
                ent("department")
            )
        },
        expect: Expect::Users(|_, p| department(p) == Some("Engineering") && p.title != "Designer"),
    },
    // Groups.
    Case {
        name: "Groups members.value eq",
        kind: "multi-valued complex (Groups)",
        class: Selective,
        endpoint: Groups,
        filter: |c| format!("members.value eq \"{}\"", c.id(c.member())),
        expect: Expect::Groups(|c, g| group_members(g, c.groups).any(|i| i == c.member())),
    },
    Case {
        name: "Groups members.value ne",
        kind: "multi-valued complex (Groups)",
        class: Broad,
        endpoint: Groups,
        filter: |c| format!("members.value ne \"{}\"", c.id(c.member())),
        expect: Expect::Groups(|c, g| group_members(g, c.groups).any(|i| i != c.member())),
    },
    Case {
        name: "Groups displayName eq",
        kind: "string (Groups)",
        class: Selective,
        endpoint: Groups,
        filter: |c| format!("displayName eq \"{}\"", group_name(c.groups / 2)),
        expect: Expect::Groups(|c, g| g == c.groups / 2),
    },
];

/// How many resources each case must match, in corpus order (None: stamped).
pub fn expected_counts(c: &Ctx) -> Vec<Option<u64>> {
    let mut counts: Vec<Option<u64>> = CORPUS
        .iter()
        .map(|case| match case.expect {
            Expect::Stamped => None,
            _ => Some(0),
        })
        .collect();
    for i in 0..c.n {
        let p = Person::new(i);
        for (case, n) in CORPUS.iter().zip(counts.iter_mut()) {
            if let (Expect::Users(f), Some(n)) = (case.expect, n.as_mut())
                && f(c, &p)
            {
                *n += 1;
            }
        }
    }
    for g in 0..c.groups {
        for (case, n) in CORPUS.iter().zip(counts.iter_mut()) {
            if let (Expect::Groups(f), Some(n)) = (case.expect, n.as_mut())
                && f(c, g)
            {
                *n += 1;
            }
        }
    }
    counts
}

/// The corpus as a Markdown table, its filters as written for `n` users.
pub fn markdown(n: u64) -> String {
    let c = Ctx::new(n, Vec::new(), Stamps::default());
    let counts = expected_counts(&c);
    let mut s = format!(
        "| # | case | kind | class | filter (at {n} users) | matches at {n} |\n|---|---|---|---|---|---|\n"
    );
    for (k, (case, count)) in CORPUS.iter().zip(counts).enumerate() {
        let prefix = if case.endpoint == Endpoint::Groups {
            "/Groups: "
        } else {
            ""
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {prefix}`{}` | {} |\n",
            k + 1,
            case.name,
            case.kind,
            case.class.label(),
            (case.filter)(&c).replace('|', "\\|"),
            count.map_or("(server's times)".to_owned(), |n| n.to_string()),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_is_large_and_its_names_unique() {
        assert!(CORPUS.len() >= 40);
        let mut names: Vec<&str> = CORPUS.iter().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CORPUS.len());
    }

    /// The labels hold: selective cases match at most 1,000 users, broad
    /// ones a tenth of the directory or more, at two sizes.
    #[test]
    fn classes_match_the_counts() {
        for n in [10_000, 100_000] {
            let c = Ctx::new(n, Vec::new(), Stamps::default());
            for (case, count) in CORPUS.iter().zip(expected_counts(&c)) {
                let Some(count) = count else { continue };
                let total = match case.endpoint {
                    Endpoint::Users => n,
                    Endpoint::Groups => c.groups,
                };
                match case.class {
                    Class::Selective => assert!(count <= 1000, "{} at {n}: {count}", case.name),
                    Class::Broad => {
                        assert!(count * 10 >= total, "{} at {n}: {count}", case.name)
                    }
                }
            }
        }
    }

    #[test]
    fn lookups_find_their_user() {
        let c = Ctx::new(10_000, Vec::new(), Stamps::default());
        let counts = expected_counts(&c);
        let of = |name: &str| {
            CORPUS
                .iter()
                .position(|x| x.name == name)
                .and_then(|k| counts[k])
        };
        for name in [
            "userName eq",
            "emails.value eq",
            "emails.value co",
            "externalId eq",
            "enterprise employeeNumber eq",
            "emails[type eq work and value ew]",
            "Groups members.value eq",
        ] {
            assert_eq!(of(name), Some(1), "{name}");
        }
        assert_eq!(of("externalId eq (other case: no match)"), Some(0));
        assert_eq!(of("emails.type ne"), Some(10_000));
    }
}
