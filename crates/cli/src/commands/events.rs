//! `roster events`: the directory-sync event stream.

use anyhow::{Context, Result};
use clap::Subcommand;
use roster_store::EventLog;

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Print events, one JSON object per line, oldest first.
    Tail {
        /// Start after this event id (default: from the beginning).
        #[arg(long)]
        after: Option<String>,
        /// Keep waiting for new events.
        #[arg(long)]
        follow: bool,
        /// Only events of this directory.
        #[arg(long)]
        directory: Option<String>,
    },
}

pub async fn run(store: &dyn EventLog, cmd: EventsCommand) -> Result<()> {
    let EventsCommand::Tail {
        after,
        follow,
        directory,
    } = cmd;
    let mut cursor = match after {
        Some(id) => roster_store::events::parse_event_id(&id)
            .with_context(|| format!("{id:?} is not an event id (evt_…)"))?,
        None => 0,
    };
    loop {
        let batch = store
            .list_events(
                cursor,
                1000,
                &[],
                directory.as_ref().map(std::slice::from_ref),
            )
            .await?;
        for e in &batch {
            println!("{}", e.to_json());
        }
        if let Some(last) = batch.last() {
            cursor = last.seq;
        }
        if batch.len() == 1000 {
            continue;
        }
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
