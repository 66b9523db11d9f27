//! `roster admin-key`: keys for the admin API under `/api/v1`.

use anyhow::Result;
use clap::Subcommand;
use roster_store::TokenStore;
use serde_json::json;

#[derive(Subcommand)]
pub enum AdminKeyCommand {
    /// Create an admin API key (shown once).
    Create {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(store: &dyn TokenStore, cmd: AdminKeyCommand) -> Result<()> {
    match cmd {
        AdminKeyCommand::Create { name, json } => {
            let (info, key) = store.create_admin_key(&roster_store::Actor::Cli, &name, &Default::default()).await?;
            if json {
                println!("{}", json!({"id": info.id, "key": key}));
            } else {
                println!(
                    "admin key id: {}\nkey: {key}  (shown once; send it as Authorization: Bearer)",
                    info.id
                );
            }
        }
    }
    Ok(())
}
