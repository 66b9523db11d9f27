//! `roster sync`: a SCIM client with no database of its own.

use anyhow::Result;

/// Runs the sync and exits with its code (0 in sync, 1 failed, 2 partial; see docs/sync.md).
pub async fn run(args: Box<crate::sync::SyncArgs>) -> Result<()> {
    let code = crate::sync::run(*args).await?;
    std::process::exit(code);
}
