//! `roster webhook`: webhook endpoints.

use anyhow::Result;
use clap::Subcommand;
use roster_store::{DirectoryStore, WebhookStore};
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
            json,
        } => {
            roster_server::api::webhooks::validate(&url, &events)
                .map_err(|e| anyhow::anyhow!(e.message().to_owned()))?;
            let format = roster_server::api::webhooks::parse_format(&format)
                .map_err(|e| anyhow::anyhow!(e.message().to_owned()))?;
            if let Some(d) = &directory
                && store.get_directory(d).await?.is_none()
            {
                anyhow::bail!("no directory {d} (see `roster directory list`)");
            }
            let (endpoint, secret) = store
                .create_webhook(&url, format, &events, directory.as_deref())
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
            if !store.delete_webhook(&id).await? {
                anyhow::bail!("no webhook endpoint {id} (see `roster webhook list`)");
            }
            println!("removed {id}");
        }
    }
    Ok(())
}
