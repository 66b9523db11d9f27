//! A directory's connection status, read from its counts and its request
//! log: what `/api/v1/directories/{id}/connection` answers and the portal shows.

use roster_domain::requests::{ConnectionStatus, RequestQuery, RequestSummary, connection_status};
use roster_store::{Store, StoreResult};

/// The newest requests the status is decided from.
const NEWEST: u64 = 20;

/// The status and the summary it was read from; `None` for an unknown directory.
pub async fn status(
    store: &dyn Store,
    directory: &str,
) -> StoreResult<Option<(ConnectionStatus, RequestSummary)>> {
    let Some(dir) = store.get_directory(directory).await? else {
        return Ok(None);
    };
    let ids = [directory.to_owned()];
    let counts = store
        .directory_counts(&ids)
        .await?
        .remove(directory)
        .unwrap_or_default();
    let summary = store.request_summary(directory).await?;
    let newest = store
        .requests(
            directory,
            RequestQuery {
                before: None,
                limit: NEWEST,
                failed_only: false,
            },
        )
        .await?;
    let records: Vec<_> = newest.into_iter().map(|r| r.record).collect();
    let status = connection_status(
        dir.provider.as_deref(),
        counts.active_users + counts.inactive_users,
        counts.groups,
        &summary,
        &records,
        roster_store::now_ms(),
    );
    Ok(Some((status, summary)))
}
