//! `roster portal link`: a one-time Admin Portal link for a directory, to
//! hand to the customer's IT admin.

use anyhow::Result;
use clap::Subcommand;
use roster_server::ServerConfig;
use roster_store::{Actor, PortalStore};
use serde_json::json;

#[derive(Subcommand)]
pub enum PortalCommand {
    /// Make a link that opens the Admin Portal of one directory, once.
    Link {
        directory: String,
        /// Where the portal's "back" link leads (the app's own page).
        #[arg(long)]
        return_url: Option<String>,
        /// Seconds the link stays valid (at most `portal_link_max_secs`).
        #[arg(long, default_value_t = 300)]
        expires_in: u64,
        #[arg(long)]
        json: bool,
    },
}

/// Where users reach the server: `public_url`, else the listen address.
fn root(config: &ServerConfig) -> String {
    match &config.public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => format!("http://{}", config.listen),
    }
}

pub async fn run(store: &dyn PortalStore, config: &ServerConfig, cmd: PortalCommand) -> Result<()> {
    match cmd {
        PortalCommand::Link {
            directory,
            return_url,
            expires_in,
            json,
        } => {
            let max = config.portal_link_max_secs.max(1);
            anyhow::ensure!(
                (1..=max).contains(&expires_in),
                "--expires-in must be 1 to {max} seconds (the portal_link_max_secs setting)"
            );
            if let Some(url) = &return_url {
                roster_server::api::check_return_url(url)
                    .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
            }
            let expires_at = roster_store::now_ms()
                .saturating_add(i64::try_from(expires_in)?.saturating_mul(1000));
            let (link, secret) = store
                .create_portal_link(&Actor::Cli, &directory, return_url.as_deref(), expires_at)
                .await
                .map_err(|e| match e {
                    roster_store::StoreError::NotFound(m) => {
                        anyhow::anyhow!("{m} (see `roster directory list`)")
                    }
                    other => other.into(),
                })?;
            let url = format!("{}/portal/open/{secret}", root(config));
            let expires = roster_scim::values::format_unix_millis(link.expires_at);
            if json {
                println!("{}", json!({"url": url, "expires_at": expires}));
            } else {
                println!("{url}\nopens once, until {expires}");
            }
        }
    }
    Ok(())
}
