//! `roster webhook`: webhook endpoints.

use anyhow::Result;
use clap::Subcommand;
use roster_store::{Actor, DirectoryStore, WebhookStore};
use serde_json::json;

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Add an endpoint; prints its id and signing secret (shown once).
    Add {
        url: String,
        /// Payload and signature: `roster` (Roster-Signature) or `workos`
        /// (the WorkOS event, signed in WorkOS-Signature, for apps using a WorkOS SDK).
        #[arg(long, default_value = "roster")]
        format: String,
        /// Event types to deliver, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// Only events of this directory (default: all directories).
        #[arg(long)]
        directory: Option<String>,
        /// Requests in flight at once to this endpoint (default: the
        /// `webhook_max_in_flight` setting).
        #[arg(long)]
        max_in_flight: Option<u32>,
        /// Most events in one request (default 1); above 1, each request
        /// carries a JSON array of events.
        #[arg(long)]
        batch_max_events: Option<u32>,
        /// How long a batch waits to fill, in milliseconds (default 0).
        #[arg(long)]
        batch_max_wait_ms: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// List endpoints.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an endpoint.
    Remove { id: String },
}

/// Takes the webhook role, and the directory role to check a `--directory`.
pub async fn run<S>(store: &S, cmd: WebhookCommand) -> Result<()>
where
    S: WebhookStore + DirectoryStore + ?Sized,
{
    match cmd {
        WebhookCommand::Add {
            url,
            format,
            events,
            directory,
            max_in_flight,
            batch_max_events,
            batch_max_wait_ms,
            json,
        } => {
            roster_server::api::webhooks::validate(&url, &events)
                .map_err(|e| anyhow::anyhow!(e.message().to_owned()))?;
            let options = roster_server::api::webhooks::options(
                max_in_flight,
                batch_max_events,
                batch_max_wait_ms,
            )
            .map_err(|e| anyhow::anyhow!(e.message().to_owned()))?;
            let format = roster_server::api::webhooks::parse_format(&format)
                .map_err(|e| anyhow::anyhow!(e.message().to_owned()))?;
            if let Some(d) = &directory
                && store.get_directory(d).await?.is_none()
            {
                anyhow::bail!("no directory {d} (see `roster directory list`)");
            }
            let (endpoint, secret) = store
                .create_webhook_with(
                    &Actor::Cli,
                    &url,
                    format,
                    &events,
                    directory.as_deref(),
                    options,
                )
                .await?;
            if json {
                println!("{}", json!({"id": endpoint.id, "secret": secret}));
            } else {
                println!(
                    "webhook id: {}\nsigning secret: {secret}  (shown once)",
                    endpoint.id
                );
            }
        }
        WebhookCommand::List { json } => {
            let all = store.list_webhooks().await?;
            if json {
                let items: Vec<_> = all.iter().map(|e| e.to_json()).collect();
                println!("{}", serde_json::Value::Array(items));
            } else {
                for e in all {
                    let on = if e.enabled { "enabled" } else { "disabled" };
                    println!("{}  {}  {}  {on}  {}", e.id, e.url, e.format, e.state);
                }
            }
        }
        WebhookCommand::Remove { id } => {
            if !store.delete_webhook(&Actor::Cli, &id).await? {
                anyhow::bail!("no webhook endpoint {id} (see `roster webhook list`)");
            }
            println!("removed {id}");
        }
    }
    Ok(())
}
