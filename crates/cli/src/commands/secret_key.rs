//! `roster secret-key`: the key that encrypts webhook secrets and Google
//! Workspace credentials at rest.

use anyhow::{Context, Result};
use clap::Subcommand;
use roster_store::Store;
use roster_store::secrets::SecretKey;
use serde_json::json;

#[derive(Subcommand)]
pub enum SecretKeyCommand {
    /// Re-encrypt every stored webhook secret, then every Google Workspace
    /// credential, with secret_key (one transaction each); values under an
    /// old key need it in previous_secret_keys (or
    /// ROSTER_PREVIOUS_SECRET_KEYS). Prints how many changed; running it
    /// again changes none.
    Rotate {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(store: &dyn Store, key: Option<&SecretKey>, cmd: SecretKeyCommand) -> Result<()> {
    match cmd {
        SecretKeyCommand::Rotate { json } => {
            if key.is_none() {
                anyhow::bail!(
                    "no secret_key is configured: set secret_key (or ROSTER_SECRET_KEY) to the key to encrypt with, and previous_secret_keys (or ROSTER_PREVIOUS_SECRET_KEYS) to the old ones"
                );
            }
            let webhooks = store
                .check_webhook_secrets()
                .await
                .context("nothing was changed")?;
            let google = store.check_google_credentials().await.with_context(|| {
                format!("{webhooks} webhook secret(s) were re-encrypted; no Google credential was")
            })?;
            if json {
                println!(
                    "{}",
                    json!({"reencrypted": webhooks + google, "webhook_secrets": webhooks, "google_credentials": google})
                );
            } else {
                println!(
                    "re-encrypted {webhooks} webhook secret(s) and {google} Google Workspace credential(s) with the current secret_key"
                );
            }
        }
    }
    Ok(())
}
