//! The operations that end SCIM tokens before their time, each of which
//! forgets the proven tokens of this process's [`crate::token_cache`] itself,
//! so that no handler (API, dashboard, portal, WorkOS route) can end a token
//! and leave its cached proof working for up to `token_cache_secs`.

use roster_store::directory_api::Rotation;
use roster_store::google::{GoogleSettings, GoogleSource};
use roster_store::{Actor, Directory, StoreResult};

use crate::state::AppState;

/// Revokes a live token of `directory` now; false when there is none.
pub async fn revoke(
    s: &AppState,
    actor: &Actor,
    directory: &str,
    token_id: &str,
) -> StoreResult<bool> {
    let revoked = s
        .store
        .revoke_directory_token(actor, directory, token_id)
        .await?;
    if revoked {
        s.tokens.clear();
    }
    Ok(revoked)
}

/// A successor of `token_id`; the old token works for `overlap_secs` (0:
/// it ends at once). `None` when there is no such live token.
pub async fn rotate(
    s: &AppState,
    actor: &Actor,
    directory: Option<&str>,
    token_id: &str,
    overlap_secs: i64,
) -> StoreResult<Option<Rotation>> {
    let r = s
        .store
        .rotate_token(actor, directory, token_id, overlap_secs)
        .await?;
    if r.is_some() {
        s.tokens.clear();
    }
    Ok(r)
}

/// Deletes directory `id`, its tokens with it; false when there is none.
pub async fn delete_directory(s: &AppState, actor: &Actor, id: &str) -> StoreResult<bool> {
    let deleted = s.store.delete_directory(actor, id).await?;
    if deleted {
        s.tokens.clear();
    }
    Ok(deleted)
}

/// Turns an unused SCIM directory into a Google Workspace one, revoking its tokens.
pub async fn convert_to_google(
    s: &AppState,
    actor: &Actor,
    directory: &str,
    settings: GoogleSettings,
) -> StoreResult<(Directory, GoogleSource)> {
    let out = s
        .store
        .convert_to_google_directory(actor, directory, settings)
        .await?;
    s.tokens.clear();
    Ok(out)
}
