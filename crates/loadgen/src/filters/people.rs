//! The directory the filter benchmark loads. Every attribute of user `i`
//! follows from `i` alone, so the benchmark computes how many users each
//! filter of the corpus must match without asking the server.

use serde_json::{Map, Value, json};

use crate::users;

pub const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = users::ENTERPRISE;
/// The custom extension schema the benchmark registers with the server.
pub const BENCH: &str = "urn:example:params:scim:schemas:extension:bench:2.0:User";

const CLEARANCES: &[&str] = &["public", "internal", "secret", "top"];

/// User `i` of the benchmark's directory, as plain values.
pub struct Person {
    pub i: u64,
    pub user_name: String,
    pub given: &'static str,
    pub family: String,
    pub display: String,
    pub title: &'static str,
    pub active: bool,
    pub external_id: String,
    pub work_email: String,
    pub home_email: String,
    pub work_phone: String,
    /// Every fifth user also has a mobile number.
    pub mobile: Option<String>,
    /// All but one user in 50 carry the Enterprise extension.
    pub enterprise: Option<Enterprise>,
    /// All but one user in 10 carry the custom extension.
    pub custom: Option<Custom>,
}

pub struct Enterprise {
    pub department: &'static str,
    pub employee_number: String,
    /// Three users in four have a manager: 20 consecutive users share one.
    pub manager: Option<String>,
}

pub struct Custom {
    /// One of 50,000: a handful of users each in a large directory.
    pub cost_center: String,
    pub clearance: &'static str,
    pub level: i64,
    pub remote: bool,
}

pub fn work_email(i: u64) -> String {
    format!("u{i}@work.example.com")
}

pub fn home_email(i: u64) -> String {
    format!(
        "{}.{i}@home.example.net",
        users::family_name(i).to_lowercase()
    )
}

pub fn employee_number(i: u64) -> String {
    format!("{:07}", i + 1)
}

pub fn manager(i: u64) -> String {
    format!("mgr-{:05}", i / 20)
}

pub fn cost_center(i: u64) -> String {
    format!("CC-{:05}", i % 50_000)
}

pub fn work_phone(i: u64) -> String {
    format!("+1 555 {i:07}")
}

impl Person {
    pub fn new(i: u64) -> Person {
        let given = users::given_name(i);
        let family = users::family_name(i);
        Person {
            i,
            user_name: users::user_name(i),
            given,
            display: format!("{given} {family}"),
            family,
            title: users::title(i),
            active: i % 10 != 3,
            external_id: users::external_id(i),
            work_email: work_email(i),
            home_email: home_email(i),
            work_phone: work_phone(i),
            mobile: i.is_multiple_of(5).then(|| format!("+44 7700 {i:07}")),
            enterprise: (i % 50 != 49).then(|| Enterprise {
                department: users::department(i),
                employee_number: employee_number(i),
                manager: (!i.is_multiple_of(4)).then(|| manager(i)),
            }),
            custom: (i % 10 != 9).then(|| Custom {
                cost_center: cost_center(i),
                clearance: CLEARANCES[(i % 4) as usize],
                level: ((i / 10) % 10) as i64,
                remote: i.is_multiple_of(3),
            }),
        }
    }

    /// The schemas the user's body names.
    pub fn schemas(&self) -> Vec<&'static str> {
        let mut s = vec![CORE];
        if self.enterprise.is_some() {
            s.push(ENTERPRISE);
        }
        if self.custom.is_some() {
            s.push(BENCH);
        }
        s
    }

    /// The POST /Users body.
    pub fn body(&self) -> Value {
        let mut phones = vec![json!({"value": self.work_phone, "type": "work"})];
        if let Some(m) = &self.mobile {
            phones.push(json!({"value": m, "type": "mobile"}));
        }
        let mut b = Map::new();
        b.insert("schemas".into(), json!(self.schemas()));
        b.insert("userName".into(), json!(self.user_name));
        b.insert("externalId".into(), json!(self.external_id));
        b.insert(
            "name".into(),
            json!({"givenName": self.given, "familyName": self.family, "formatted": self.display}),
        );
        b.insert("displayName".into(), json!(self.display));
        b.insert("title".into(), json!(self.title));
        b.insert("active".into(), json!(self.active));
        b.insert(
            "emails".into(),
            json!([
                {"value": self.work_email, "type": "work", "primary": true},
                {"value": self.home_email, "type": "home"},
            ]),
        );
        b.insert("phoneNumbers".into(), Value::Array(phones));
        if let Some(e) = &self.enterprise {
            let mut v = json!({"department": e.department, "employeeNumber": e.employee_number});
            if let (Some(m), Value::Object(o)) = (&e.manager, &mut v) {
                o.insert("manager".into(), json!({"value": m}));
            }
            b.insert(ENTERPRISE.into(), v);
        }
        if let Some(c) = &self.custom {
            b.insert(
                BENCH.into(),
                json!({"costCenter": c.cost_center, "clearance": c.clearance,
                       "level": c.level, "remote": c.remote}),
            );
        }
        Value::Object(b)
    }
}

/// The custom extension's schema, in the `/Schemas` representation the
/// server's `[[extensions]]` files hold.
pub fn bench_schema() -> Value {
    json!({
        "id": BENCH,
        "name": "BenchUser",
        "description": "The filter benchmark's custom user attributes",
        "attributes": [
            {"name": "costCenter", "type": "string"},
            {"name": "clearance", "type": "string"},
            {"name": "level", "type": "integer"},
            {"name": "remote", "type": "boolean"}
        ]
    })
}

/// How many groups a directory of `n` users gets: up to 1,000, of 20 members each.
pub fn group_count(n: u64) -> u64 {
    (n / 20).min(1000)
}

/// The users in group `g` of `groups`: `g`, `g + groups`, … (20 of them),
/// so every user is in at most one group.
pub fn group_members(g: u64, groups: u64) -> impl Iterator<Item = u64> {
    (0..20).map(move |k| g + k * groups)
}

pub fn group_name(g: u64) -> String {
    format!("Group {g:05}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_the_issue_shape() {
        let p = Person::new(10);
        let b = p.body();
        assert_eq!(b["emails"].as_array().map(Vec::len), Some(2));
        assert_eq!(b["phoneNumbers"].as_array().map(Vec::len), Some(2));
        assert_eq!(b[ENTERPRISE]["employeeNumber"], "0000011");
        assert_eq!(b[ENTERPRISE]["manager"]["value"], "mgr-00000");
        assert_eq!(b[BENCH]["costCenter"], "CC-00010");
        assert_eq!(b["schemas"].as_array().map(Vec::len), Some(3));
        let lone = Person::new(49).body();
        assert!(lone.get(ENTERPRISE).is_none());
        assert!(lone.get(BENCH).is_none());
        assert_eq!(Person::new(3).body()["active"], false);
    }

    #[test]
    fn groups_do_not_overlap() {
        let g = group_count(100_000);
        let mut all: Vec<u64> = (0..g).flat_map(|x| group_members(x, g)).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
        assert!(all.iter().all(|i| *i < 100_000));
    }
}
