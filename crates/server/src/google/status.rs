//! A Google directory's poll state in words, for the dashboard and the
//! portal: waiting, polling, synced, or failing with what fixes it. Pure:
//! it reads a [`GoogleSource`] and the time, nothing else.

use roster_store::google::{GoogleSource, failure};

use super::account::SCOPES;

/// Where a Google directory's polling stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollStatus {
    /// No poll has finished yet.
    Waiting,
    /// The last poll succeeded.
    Synced {
        users: i64,
        groups: i64,
        changes: i64,
        last_poll_secs: i64,
    },
    /// The last poll failed; `kind` is a [`failure`] constant.
    Failing {
        kind: String,
        message: String,
        last_poll_secs: i64,
    },
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl PollStatus {
    pub fn of(source: &GoogleSource, now_ms: i64) -> Self {
        let Some(at) = source.last_poll_at else {
            return PollStatus::Waiting;
        };
        let last_poll_secs = (now_ms - at).max(0) / 1000;
        match source.last_result.as_deref() {
            Some("error") => PollStatus::Failing {
                kind: source
                    .last_error_kind
                    .clone()
                    .unwrap_or_else(|| failure::OTHER.to_owned()),
                message: source.last_error.clone().unwrap_or_default(),
                last_poll_secs,
            },
            _ => PollStatus::Synced {
                users: source.users_seen.unwrap_or(0),
                groups: source.groups_seen.unwrap_or(0),
                changes: source.changes_applied.unwrap_or(0),
                last_poll_secs,
            },
        }
    }

    /// `waiting`, `connected` or `failing`: the same codes as a SCIM
    /// directory's connection status, so pages style them alike.
    pub fn code(&self) -> &'static str {
        match self {
            PollStatus::Waiting => "waiting",
            PollStatus::Synced { .. } => "connected",
            PollStatus::Failing { .. } => "failing",
        }
    }

    /// One line: "synced: 1,240 users, 37 groups, last poll 12 s ago".
    pub fn headline(&self) -> String {
        match self {
            PollStatus::Waiting => "waiting for the first poll".to_owned(),
            PollStatus::Synced {
                users,
                groups,
                last_poll_secs,
                ..
            } => format!(
                "synced: {}, {}, last poll {last_poll_secs} s ago",
                plural(*users, "user", "users"),
                plural(*groups, "group", "groups")
            ),
            PollStatus::Failing {
                kind,
                last_poll_secs,
                ..
            } => format!(
                "failing: {}, last poll {last_poll_secs} s ago",
                match kind.as_str() {
                    failure::FORBIDDEN => "Google denied access",
                    failure::UNAUTHORIZED => "Google refused the key",
                    failure::UNAVAILABLE => "Google is unavailable or rate-limiting",
                    _ => "the poll stopped",
                }
            ),
        }
    }

    /// What Google (or Roster) said, when the poll failed.
    pub fn explanation(&self) -> Option<&str> {
        match self {
            PollStatus::Failing { message, .. } => Some(message),
            _ => None,
        }
    }

    /// What fixes a failure, in steps a Google admin can follow; `client_id`
    /// is the key's, when known.
    pub fn fix(&self, client_id: Option<&str>, admin_email: &str) -> Option<String> {
        let PollStatus::Failing { kind, .. } = self else {
            return None;
        };
        let client = client_id.map_or_else(
            || "the service account's client id (client_id in the key file)".to_owned(),
            |id| format!("client id {id}"),
        );
        Some(match kind.as_str() {
            failure::FORBIDDEN => format!(
                "Domain-wide delegation or its scopes are missing. In the Google Admin console, Security → Access and data control → API controls → Domain-wide delegation, add {client} with exactly these scopes: {}. Check too that {admin_email} is a Google Workspace administrator. Roster polls again within a minute.",
                SCOPES.replace(' ', ", ")
            ),
            failure::UNAUTHORIZED => "Google refused the service-account key: it is wrong, or it was deleted or disabled in Google Cloud. Create a new JSON key for the service account (Google Cloud console → IAM & Admin → Service accounts → Keys) and replace the key here.".to_owned(),
            failure::UNAVAILABLE => "Google answered 429 (quota) or 5xx, or could not be reached. Roster retries each request with backoff, honouring Retry-After, and polls again within a minute; nothing needs doing unless this lasts.".to_owned(),
            _ => "Roster polls again within a minute. If the same error comes back, check the customer id and the domain, then the server log.".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> GoogleSource {
        GoogleSource {
            directory_id: "d".into(),
            admin_email: "admin@example.com".into(),
            customer: "my_customer".into(),
            domain: None,
            interval_secs: 600,
            next_poll_at: 0,
            last_poll_at: None,
            last_result: None,
            last_error: None,
            client_id: Some("1234567890".into()),
            last_poll_started_at: None,
            users_seen: None,
            groups_seen: None,
            changes_applied: None,
            last_error_kind: None,
        }
    }

    #[test]
    fn waits_then_counts_what_the_last_poll_listed() {
        let mut s = source();
        assert_eq!(
            PollStatus::of(&s, 0).headline(),
            "waiting for the first poll"
        );
        s.last_poll_at = Some(1_000);
        s.last_result = Some("ok".into());
        s.users_seen = Some(1);
        s.groups_seen = Some(2);
        let st = PollStatus::of(&s, 13_000);
        assert_eq!(st.code(), "connected");
        assert_eq!(
            st.headline(),
            "synced: 1 user, 2 groups, last poll 12 s ago"
        );
        assert_eq!(st.fix(None, "a@b"), None);
    }

    #[test]
    fn a_403_names_the_client_id_and_the_three_scopes() {
        let mut s = source();
        s.last_poll_at = Some(0);
        s.last_result = Some("error".into());
        s.last_error = Some("Google denied access (403): Not Authorized".into());
        s.last_error_kind = Some(failure::FORBIDDEN.into());
        let st = PollStatus::of(&s, 0);
        assert_eq!(st.code(), "failing");
        let fix = st.fix(s.client_id.as_deref(), &s.admin_email).unwrap();
        assert!(fix.contains("Domain-wide delegation") && fix.contains("client id 1234567890"));
        for scope in SCOPES.split(' ') {
            assert!(fix.contains(scope), "{fix}");
        }
        assert!(st.explanation().unwrap().contains("403"));
    }

    #[test]
    fn a_bad_key_and_a_busy_google_say_different_things() {
        let mut s = source();
        s.last_poll_at = Some(0);
        s.last_result = Some("error".into());
        s.last_error_kind = Some(failure::UNAUTHORIZED.into());
        let key = PollStatus::of(&s, 0).fix(None, "a@b").unwrap();
        assert!(key.contains("replace the key"), "{key}");
        s.last_error_kind = Some(failure::UNAVAILABLE.into());
        let busy = PollStatus::of(&s, 0).fix(None, "a@b").unwrap();
        assert!(
            busy.contains("backoff") && busy.contains("Retry-After"),
            "{busy}"
        );
    }
}
