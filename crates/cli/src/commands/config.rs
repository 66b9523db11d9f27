//! `roster config`: the settings in effect.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use crate::commands::serve::ServeArgs;
use crate::config::Settings;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print every setting, its value and where it came from; secrets as ***.
    ///
    /// Sources: default, the config file, a ROSTER_* variable or a flag. Takes
    /// `roster serve`'s flags, to show what it would run with.
    Show {
        #[command(flatten)]
        serve: ServeArgs,
        /// Print {"config_file": …, "settings": {KEY: {"value", "source", "origin"}}}.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(settings: &Settings, cmd: ConfigCommand) -> Result<()> {
    let ConfigCommand::Show { json, .. } = cmd;
    let entries = settings.entries()?;
    if json {
        let mut out = serde_json::Map::new();
        for e in entries {
            out.insert(
                e.key,
                json!({"value": e.value, "source": e.source.kind(), "origin": e.source.origin()}),
            );
        }
        let file = settings
            .config_file
            .as_ref()
            .map(|p| p.display().to_string());
        println!(
            "{}",
            json!({"config_file": file, "settings": serde_json::Value::Object(out)})
        );
        return Ok(());
    }
    match &settings.config_file {
        Some(p) => println!("# config file: {}", p.display()),
        None => println!("# no config file (--config, ROSTER_CONFIG)"),
    }
    let rows: Vec<(String, String, String)> = entries
        .into_iter()
        .map(|e| {
            let value = match &e.value {
                serde_json::Value::Null => "(not set)".to_owned(),
                v => toml_value(v),
            };
            let from = match e.source.origin() {
                Some(o) => format!("{} {o}", e.source.kind()),
                None => e.source.kind().to_owned(),
            };
            (e.key, value, from)
        })
        .collect();
    let key_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let value_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).min(30);
    for (key, value, from) in rows {
        println!("{key:key_width$} = {value:value_width$}  # {from}");
    }
    Ok(())
}

/// A value as TOML writes it, so that the output reads like a config file.
fn toml_value(v: &serde_json::Value) -> String {
    toml::Value::try_from(without_nulls(v)).map_or_else(|_| v.to_string(), |t| t.to_string())
}

/// TOML has no null: an unset field of a table is left out.
fn without_nulls(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), without_nulls(v)))
            .collect(),
        serde_json::Value::Array(items) => items.iter().map(without_nulls).collect(),
        other => other.clone(),
    }
}
