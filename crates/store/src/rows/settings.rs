//! A directory's settings: read once per transaction by the writes that need
//! them, and changed by the admin API.

use std::cell::OnceCell;

use crate::db::Db;
use crate::events::CustomAttributes;
use crate::model::{Actor, Deactivation, DirectorySettings, SettingsChange};
use crate::{StoreError, StoreResult, vals};

/// What the writes of one transaction to one directory read about it, read
/// at most once: building an event's payload needs the custom-attribute
/// mapping for every created or changed user, and a bulk request creates a
/// thousand of them in one transaction. It also carries what those writes
/// do to the directory's counts, written once before the commit.
pub struct DirSettings {
    dir: String,
    loaded: OnceCell<DirectorySettings>,
    /// The directory's attribute keys (`attr_keys`), read at first use.
    keys: crate::index::IndexMemo,
    counts: super::counts::Pending,
}

impl DirSettings {
    pub fn new(dir: &str) -> Self {
        DirSettings {
            dir: dir.to_owned(),
            loaded: OnceCell::new(),
            keys: Default::default(),
            counts: Default::default(),
        }
    }

    /// Starts from the attribute keys on the store's shelf (`index::KeyShelf`).
    pub fn with_known_keys(mut self, known: Option<std::sync::Arc<crate::index::DirKeys>>) -> Self {
        self.keys = crate::index::IndexMemo::starting_from(known);
        self
    }

    /// The attribute keys this transaction read or made, for the shelf once
    /// it has committed.
    pub fn learned_keys(self) -> Option<crate::index::DirKeys> {
        self.keys.learned()
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// The directory's attribute keys, for writing index rows.
    pub fn index_keys(&self) -> &crate::index::IndexMemo {
        &self.keys
    }

    /// The directory's counts as this transaction has changed them so far.
    pub fn counts(&self) -> &super::counts::Pending {
        &self.counts
    }

    /// Writes what the transaction's writes held back: their index rows
    /// (see `IndexMemo::write_held`) and their changes to the directory's
    /// counts. The last statements of every write transaction that changes
    /// resources.
    pub fn finish(&self, c: &dyn Db) -> StoreResult<()> {
        self.keys.write_held(c)?;
        super::counts::flush(c, &self.dir, &self.counts)
    }

    fn get(&self, c: &dyn Db) -> StoreResult<&DirectorySettings> {
        if let Some(s) = self.loaded.get() {
            return Ok(s);
        }
        // `query_held`: the directory row is never a held insert, so
        // PostgreSQL need not send the held ones first, and a bulk load
        // keeps batching them.
        let s = load(c, &self.dir, true)?.unwrap_or_default();
        Ok(self.loaded.get_or_init(|| s))
    }

    /// How deactivation is reported (`update` for an unknown directory).
    pub fn deactivation(&self, c: &dyn Db) -> StoreResult<Deactivation> {
        Ok(self.get(c)?.deactivation)
    }

    /// The custom-attribute mapping, if the directory has one.
    pub fn custom(&self, c: &dyn Db) -> StoreResult<Option<&CustomAttributes>> {
        Ok(self.get(c)?.custom_attributes.as_ref())
    }
}

/// A directory's settings; `None` for an unknown directory.
pub fn load(c: &dyn Db, dir: &str, held: bool) -> StoreResult<Option<DirectorySettings>> {
    let sql = "SELECT deactivation, custom_attributes FROM directories WHERE id = ?";
    let rows = if held {
        c.query_held(sql, vals![dir])?
    } else {
        c.query(sql, vals![dir])?
    };
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let mode: String = row.get(0)?;
    let custom = row
        .get::<Option<String>>(1)?
        .map(|text| {
            CustomAttributes::from_stored(&text).map_err(|e| {
                StoreError::internal_from(format!("cannot read the settings of directory {dir}"), e)
            })
        })
        .transpose()?;
    Ok(Some(DirectorySettings {
        deactivation: Deactivation::parse(&mode).unwrap_or(Deactivation::Update),
        custom_attributes: custom,
    }))
}

/// Applies a change; returns the settings after it, `None` for an unknown directory.
pub fn update(
    c: &dyn Db,
    actor: &Actor,
    dir: &str,
    change: &SettingsChange,
) -> StoreResult<Option<DirectorySettings>> {
    if let Some(mode) = change.deactivation
        && c.exec(
            "UPDATE directories SET deactivation = ? WHERE id = ?",
            vals![mode.as_str(), dir],
        )? == 0
    {
        return Ok(None);
    }
    if let Some(custom) = &change.custom_attributes
        && c.exec(
            "UPDATE directories SET custom_attributes = ? WHERE id = ?",
            vals![custom.as_ref().map(CustomAttributes::to_stored), dir],
        )? == 0
    {
        return Ok(None);
    }
    if let Some(secs) = change.poll_interval_secs {
        crate::google::check_interval(secs).map_err(StoreError::Invalid)?;
        if load(c, dir, false)?.is_none() {
            return Ok(None);
        }
        if !super::google::set_interval(c, dir, secs)? {
            return Err(StoreError::Invalid(format!(
                "directory {dir} receives SCIM from its identity provider; poll_interval_secs is for google-workspace directories"
            )));
        }
    }
    let mut details = serde_json::Map::new();
    if let Some(mode) = change.deactivation {
        details.insert("deactivation".into(), mode.as_str().into());
    }
    if let Some(custom) = &change.custom_attributes {
        details.insert(
            "custom_attributes".into(),
            custom
                .as_ref()
                .map_or(serde_json::Value::Null, CustomAttributes::to_json),
        );
    }
    if let Some(secs) = change.poll_interval_secs {
        details.insert("poll_interval_secs".into(), secs.into());
    }
    let settings = load(c, dir, false)?;
    if settings.is_some() {
        super::audit::record(
            c,
            actor,
            "settings.updated",
            super::audit::Target::directory(dir),
            &details.into(),
        )?;
    }
    Ok(settings)
}
