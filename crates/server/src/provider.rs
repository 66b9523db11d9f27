//! Which provider feeds a directory (a directory's WorkOS `type`), detected
//! from the `User-Agent` of its SCIM requests. Looked for once per directory
//! and process, and recorded only while the directory has no type, so a
//! type set by an administrator is never overwritten.

use std::collections::HashSet;
use std::sync::Mutex;

use axum::http::header;
use axum::http::request::Parts;

use crate::state::AppState;

/// User-Agent fragments (lower case) and the type they mean.
const AGENTS: &[(&str, &str)] = &[
    ("okta", "okta scim v2.0"),
    ("azure", "azure scim v2.0"),
    ("microsoft", "azure scim v2.0"),
    ("entra", "azure scim v2.0"),
    ("onelogin", "onelogin scim v2.0"),
    ("jumpcloud", "jump cloud scim v2.0"),
    ("pingfederate", "pingfederate scim v2.0"),
    ("pingidentity", "pingfederate scim v2.0"),
    ("cyberark", "cyberark scim v2.0"),
    ("sailpoint", "sailpoint scim v2.0"),
    ("rippling", "rippling scim v2.0"),
];

/// The provider type a `User-Agent` names, if any.
pub fn from_user_agent(agent: &str) -> Option<&'static str> {
    let agent = agent.to_ascii_lowercase();
    AGENTS
        .iter()
        .find(|(fragment, _)| agent.contains(fragment))
        .map(|(_, provider)| *provider)
}

/// The directories already looked at by this process.
#[derive(Debug, Default)]
pub struct Detected(Mutex<HashSet<String>>);

impl Detected {
    /// True the first time a directory is seen.
    fn first_time(&self, dir: &str) -> bool {
        match self.0.lock() {
            Ok(mut seen) => seen.insert(dir.to_owned()),
            Err(_) => false,
        }
    }

    fn forget(&self, dir: &str) {
        if let Ok(mut seen) = self.0.lock() {
            seen.remove(dir);
        }
    }
}

/// Records the provider of an authenticated SCIM request's directory the
/// first time its requests name one. Never fails the request: a failed
/// write is logged and tried again on a later request.
pub async fn note(state: &AppState, dir: &str, parts: &Parts) {
    let Some(provider) = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(from_user_agent)
    else {
        return;
    };
    if !state.providers.first_time(dir) {
        return;
    }
    if let Err(e) = state.store.detect_provider(dir, provider).await {
        tracing::warn!(directory = dir, error = %e, "could not record the directory's provider");
        state.providers.forget(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_map_to_workos_types() {
        assert_eq!(
            from_user_agent("Okta SCIM Client 1.0.0"),
            Some("okta scim v2.0")
        );
        assert_eq!(
            from_user_agent("Microsoft.Identity.Provisioning"),
            Some("azure scim v2.0")
        );
        assert_eq!(from_user_agent("OneLogin SCIM"), Some("onelogin scim v2.0"));
        assert_eq!(from_user_agent("JumpCloud"), Some("jump cloud scim v2.0"));
        assert_eq!(from_user_agent("curl/8.5.0"), None);
        let d = Detected::default();
        assert!(d.first_time("a"));
        assert!(!d.first_time("a"));
        d.forget("a");
        assert!(d.first_time("a"));
    }
}
