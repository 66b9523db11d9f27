//! Realistic, reproducible users: every attribute follows from the user's index,
//! so lookups can pick any created user without keeping the bodies around.

use serde_json::{Value, json};

const GIVEN: &[&str] = &[
    "Amara", "Ben", "Chloé", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kavya",
    "Liam", "Maya", "Noah", "Olga", "Pedro", "Qing", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei",
    "Ximena", "Yusuf", "Zoe", "Anouk", "Bruno", "Carmen", "Diego", "Emma", "Felix",
];

/// Family names are built from syllables (16³ = 4,096 of them), so a `sw` on a
/// whole family name matches a handful of users, as in a real directory.
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ren", "sa", "to", "vel", "an", "bor", "dul", "fen", "gri", "hal", "jor",
    "mar", "nes",
];

const TITLES: &[&str] = &[
    "Software Engineer",
    "Account Executive",
    "Product Manager",
    "Designer",
    "Support Specialist",
    "Data Analyst",
    "Recruiter",
    "Finance Manager",
];

const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Sales",
    "Product",
    "Design",
    "Support",
    "Finance",
    "People",
    "Legal",
];

pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A cheap, well-mixed hash so attributes of neighbouring indexes differ.
fn mix(i: u64, salt: u64) -> u64 {
    let mut x = i
        .wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x632B_E59B_D9B4_E019);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn pick<'a>(list: &[&'a str], i: u64, salt: u64) -> &'a str {
    list[(mix(i, salt) % list.len() as u64) as usize]
}

/// The job title of user `i`: one of 8, evenly spread.
pub fn title(i: u64) -> &'static str {
    pick(TITLES, i, 2)
}

/// The Enterprise department of user `i`: one of 8, evenly spread.
pub fn department(i: u64) -> &'static str {
    pick(DEPARTMENTS, i, 3)
}

pub fn given_name(i: u64) -> &'static str {
    pick(GIVEN, i, 1)
}

pub fn family_name(i: u64) -> String {
    let mut s: String = (0..3).map(|k| pick(SYLLABLES, i, 10 + k)).collect();
    // Capitalised, as a person's name is written.
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    s
}

pub fn user_name(i: u64) -> String {
    format!(
        "{}.{}.{i}@example.com",
        ascii_lower(given_name(i)),
        family_name(i).to_lowercase()
    )
}

/// The work address differs from userName, as it often does (aliases, domains).
pub fn work_email(i: u64) -> String {
    format!(
        "{}.{}{i}@corp.example.org",
        ascii_lower(given_name(i)),
        family_name(i).to_lowercase()
    )
}

fn ascii_lower(s: &str) -> String {
    s.to_lowercase()
        .replace('é', "e")
        .chars()
        .filter(char::is_ascii)
        .collect()
}

/// The identity provider's id for user `i` (an Okta-style id).
pub fn external_id(i: u64) -> String {
    format!("00u{:016x}", mix(i, 7))
}

/// The POST /Users body of user `i`; `manager` is the id of an existing user.
pub fn user_body(i: u64, manager: Option<&str>) -> Value {
    let given = given_name(i);
    let family = family_name(i);
    let mut enterprise = json!({
        "employeeNumber": format!("{:06}", i + 1),
        "department": department(i),
    });
    if let (Some(m), Value::Object(o)) = (manager, &mut enterprise) {
        o.insert("manager".into(), json!({ "value": m }));
    }
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            ENTERPRISE,
        ],
        "userName": user_name(i),
        "externalId": external_id(i),
        "name": { "givenName": given, "familyName": family, "formatted": format!("{given} {family}") },
        "displayName": format!("{given} {family}"),
        "title": title(i),
        "active": true,
        "emails": [{ "value": work_email(i), "type": "work", "primary": true }],
        "phoneNumbers": [{ "value": format!("+1 555 {:03} {:04}", (i / 10_000) % 1000, i % 10_000), "type": "work" }],
        ENTERPRISE: enterprise,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_unique_and_stable() {
        let names: std::collections::HashSet<_> = (0..5000).map(user_name).collect();
        assert_eq!(names.len(), 5000);
        assert_eq!(user_name(42), user_name(42));
    }

    #[test]
    fn bodies_carry_every_attribute() {
        let b = user_body(7, Some("m1"));
        for k in [
            "userName",
            "name",
            "displayName",
            "emails",
            "phoneNumbers",
            "title",
            "active",
            "externalId",
        ] {
            assert!(b.get(k).is_some(), "{k}");
        }
        assert_eq!(b[ENTERPRISE]["manager"]["value"], "m1");
    }
}
