//! `roster serve`: the SCIM server.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use roster_scim::schema::SchemaRegistry;
use roster_server::ServerConfig;
use roster_store::Store;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080] [env: ROSTER_LISTEN].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The URL clients reach Roster at, when it differs from http://HOST (behind a
    /// proxy) [env: ROSTER_PUBLIC_URL].
    #[arg(long)]
    pub public_url: Option<String>,
    /// Answer group PATCH with 204 No Content instead of the group (saves echoing
    /// large groups) [env: ROSTER_GROUP_PATCH_NO_CONTENT].
    #[arg(long)]
    pub group_patch_no_content: bool,
    /// The longest one database read may run before it is stopped and its
    /// request answered 503 [default: 80% of request_timeout_secs]
    /// [env: ROSTER_STATEMENT_TIMEOUT_MS].
    #[arg(long)]
    pub statement_timeout_ms: Option<u64>,
}

pub async fn run(store: Arc<dyn Store>, reg: Arc<SchemaRegistry>, cfg: ServerConfig) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another server using it? try --listen)",
                cfg.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let metrics = match cfg.metrics_listen {
        Some(at) => {
            let l = tokio::net::TcpListener::bind(at).await.with_context(|| {
                format!("cannot listen for metrics on {at} (setting `metrics_listen`)")
            })?;
            let metrics_addr = l.local_addr()?;
            tracing::info!(%metrics_addr, "Prometheus metrics at http://{metrics_addr}/metrics");
            Some(l)
        }
        None => None,
    };
    // A wrong or missing secret_key stops the start, rather than every delivery.
    let sealed = store
        .check_webhook_secrets()
        .await
        .context("cannot read the webhook secrets")?;
    if sealed > 0 {
        tracing::info!(
            endpoints = sealed,
            "encrypted webhook secrets stored in plaintext or under a previous key with the current secret_key"
        );
    }
    let sealed = store
        .check_google_credentials()
        .await
        .context("cannot read the Google Workspace credentials")?;
    if sealed > 0 {
        tracing::info!(
            directories = sealed,
            "encrypted Google Workspace credentials stored in plaintext or under a previous key with the current secret_key"
        );
    }
    let public = cfg
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    if let Some((dir, _, token)) = store
        .create_first_directory(&roster_store::Actor::Cli, "default")
        .await?
    {
        println!(
            "Roster created the directory \"default\". Paste these into your identity provider:"
        );
        println!(
            "  SCIM base URL: {}/scim/v2/{}",
            public.trim_end_matches('/'),
            dir.id
        );
        println!("  Bearer token:  {token}");
        println!(
            "The token is shown only this once; `roster token issue {}` makes another.",
            dir.id
        );
    }
    tracing::info!(%addr, "Roster is serving SCIM at {public}/scim/v2/{{directory_id}}");
    roster_server::serve_with_metrics(listener, metrics, store, reg, cfg, shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
