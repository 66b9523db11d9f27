//! `roster token`: a directory's SCIM bearer tokens.

use anyhow::Result;
use clap::Subcommand;
use roster_store::{Actor, TokenStore};
use serde_json::json;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Issue another bearer token for a directory (the token is shown once).
    Issue {
        directory: String,
        #[arg(long)]
        json: bool,
    },
    /// List a directory's tokens (ids and dates, never the tokens themselves).
    List {
        directory: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id.
    Revoke { token_id: String },
    /// Issue a successor to a token; the old one keeps working for the overlap window.
    Rotate {
        token_id: String,
        /// Seconds the old token keeps working.
        #[arg(long, default_value_t = 3600)]
        overlap: i64,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(store: &dyn TokenStore, cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Issue { directory, json } => {
            let (info, token) = store
                .issue_token(&Actor::Cli, &directory)
                .await
                .map_err(|e| match e {
                    roster_store::StoreError::NotFound(m) => {
                        anyhow::anyhow!("{m} (see `roster directory list`)")
                    }
                    other => other.into(),
                })?;
            if json {
                println!(
                    "{}",
                    json!({"id": info.id, "directory_id": info.directory_id, "token": token})
                );
            } else {
                println!("token id: {}\nbearer token: {token}  (shown once)", info.id);
            }
        }
        TokenCommand::List { directory, json } => {
            let tokens = store.list_tokens(&directory).await?;
            if json {
                let items: Vec<_> = tokens
                    .iter()
                    .map(|t| json!({"id": t.id, "directory_id": t.directory_id, "created_at": t.created_at, "revoked_at": t.revoked_at, "expires_at": t.expires_at}))
                    .collect();
                println!("{}", serde_json::Value::Array(items));
            } else {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                for t in tokens {
                    let state = match (t.revoked_at, t.expires_at) {
                        (Some(_), _) => "revoked".to_owned(),
                        (None, Some(e)) if e <= now => "expired".to_owned(),
                        (None, Some(e)) => format!("expires in {}s", (e - now) / 1000),
                        (None, None) => "live".to_owned(),
                    };
                    println!("{}  {state}", t.id);
                }
            }
        }
        TokenCommand::Rotate {
            token_id,
            overlap,
            json,
        } => {
            anyhow::ensure!(overlap >= 0, "--overlap must be 0 or more seconds");
            let Some(r) = store
                .rotate_token(&Actor::Cli, None, &token_id, overlap)
                .await?
            else {
                anyhow::bail!("no live token {token_id} (see `roster token list DIRECTORY`)");
            };
            if json {
                println!(
                    "{}",
                    json!({"id": r.new.id, "directory_id": r.new.directory_id, "token": r.token,
                           "previous": {"id": r.old.id, "expires_at": r.old.expires_at}})
                );
            } else {
                println!(
                    "token id: {}\nbearer token: {}  (shown once)\nthe old token {} stops working in {overlap}s",
                    r.new.id, r.token, r.old.id
                );
            }
        }
        TokenCommand::Revoke { token_id } => {
            if store.revoke_token(&Actor::Cli, &token_id).await? {
                println!("revoked {token_id}");
            } else {
                anyhow::bail!("no live token {token_id} (see `roster token list DIRECTORY`)");
            }
        }
    }
    Ok(())
}
