//! `roster secret-key`: the key that encrypts webhook secrets at rest.

use anyhow::{Context, Result};
use clap::Subcommand;
use roster_store::WebhookStore;
use roster_store::secrets::SecretKey;
use serde_json::json;

#[derive(Subcommand)]
pub enum SecretKeyCommand {
    /// Re-encrypt every stored webhook secret with secret_key, in one
    /// transaction; secrets under an old key need it in previous_secret_keys
    /// (or ROSTER_PREVIOUS_SECRET_KEYS). Prints how many changed; running it
    /// again changes none.
    Rotate {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(
    store: &dyn WebhookStore,
    key: Option<&SecretKey>,
    cmd: SecretKeyCommand,
) -> Result<()> {
    match cmd {
        SecretKeyCommand::Rotate { json } => {
            if key.is_none() {
                anyhow::bail!(
                    "no secret_key is configured: set secret_key (or ROSTER_SECRET_KEY) to the key to encrypt with, and previous_secret_keys (or ROSTER_PREVIOUS_SECRET_KEYS) to the old ones"
                );
            }
            let changed = store
                .check_webhook_secrets()
                .await
                .context("nothing was changed")?;
            if json {
                println!("{}", json!({"reencrypted": changed}));
            } else {
                println!("re-encrypted {changed} webhook secret(s) with the current secret_key");
            }
        }
    }
    Ok(())
}
