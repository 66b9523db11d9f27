//! The state file: what the last runs applied, so that a run sends only what
//! changed and never creates a resource twice.
//!
//! JSON, rewritten whole through a temporary file and a rename, so a crash
//! leaves either the old or the new file, never half of one. It is saved
//! during a run (at most every couple of seconds) as the target acknowledges
//! items, and the checkpoint moves only at the end of a run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use roster_scim::ResourceKind;
use serde::{Deserialize, Serialize};

use crate::SyncError;

/// The state file format this version reads and writes.
pub const VERSION: u32 = 1;

/// One source resource the target has acknowledged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// The resource's id in the target.
    pub id: String,
    /// Digest of the source document last applied; empty when the last apply
    /// was incomplete (a reference could not be resolved) or the resource was
    /// deactivated, so the next sight of it applies it again.
    #[serde(rename = "h")]
    pub hash: String,
    /// Groups: the source keys of the members last applied, to send only the
    /// membership changes next time. Absent when unknown.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    /// The target's version (ETag) after our last write, when it has ETags:
    /// sent as `If-Match` so that an edit made in the target meanwhile is
    /// noticed (and reported) before it is overwritten.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Deactivated by a reconcile run (`--delete-mode deactivate`).
    #[serde(rename = "d", default, skip_serializing_if = "std::ops::Not::not")]
    pub deactivated: bool,
}

/// What earlier runs applied, for one source and one target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// What this state was built from and for: a state is never applied to another pair.
    pub source: String,
    pub target: String,
    /// The source's own `meta.lastModified` up to which every change is in the target.
    pub checkpoint: Option<String>,
    /// Unix seconds of the last completed reconcile run.
    pub last_reconcile: Option<i64>,
    /// Source key (the source's id, or the file record's key) → entry.
    pub users: BTreeMap<String, Entry>,
    pub groups: BTreeMap<String, Entry>,
}

impl State {
    /// Loads the state at `path`, or a fresh one when the file does not exist.
    /// A state made for another source or target is refused: its ids mean
    /// nothing there, and using it would update the wrong resources.
    pub fn load(path: &Path, source: &str, target: &str) -> Result<State, SyncError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    version: VERSION,
                    source: source.to_owned(),
                    target: target.to_owned(),
                    ..State::default()
                });
            }
            Err(e) => {
                return Err(SyncError::Read {
                    path: path.to_owned(),
                    source: e,
                });
            }
        };
        let state: State = serde_json::from_str(&text).map_err(|e| SyncError::StateFormat {
            path: path.to_owned(),
            source: e,
        })?;
        if state.version != VERSION {
            return Err(SyncError::StateVersion {
                path: path.to_owned(),
                found: state.version,
                expected: VERSION,
            });
        }
        if state.source != source || state.target != target {
            return Err(SyncError::StateOtherPair {
                path: path.to_owned(),
                state_source: state.source,
                state_target: state.target,
            });
        }
        Ok(state)
    }

    /// Writes the state atomically: a temporary file beside it, flushed to
    /// disk, then renamed over the old one.
    pub fn save(&self, path: &Path) -> Result<(), SyncError> {
        let tmp = tmp_path(path);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            let mut w = std::io::BufWriter::new(&mut f);
            serde_json::to_writer(&mut w, self)?;
            w.flush()?;
            drop(w);
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| SyncError::StateWrite {
            path: path.to_owned(),
            source: e,
        })
    }

    /// The entries of one kind, by source key.
    pub fn entries(&self, kind: ResourceKind) -> &BTreeMap<String, Entry> {
        match kind {
            ResourceKind::User => &self.users,
            ResourceKind::Group => &self.groups,
        }
    }

    pub fn entries_mut(&mut self, kind: ResourceKind) -> &mut BTreeMap<String, Entry> {
        match kind {
            ResourceKind::User => &mut self.users,
            ResourceKind::Group => &mut self.groups,
        }
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_another_pair() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut s = State::load(&path, "src", "dst").unwrap();
        s.users.insert(
            "u1".into(),
            Entry {
                id: "t1".into(),
                hash: "h".into(),
                ..Entry::default()
            },
        );
        s.checkpoint = Some("2026-01-01T00:00:00.000Z".into());
        s.save(&path).unwrap();
        let back = State::load(&path, "src", "dst").unwrap();
        assert_eq!(back.users["u1"].id, "t1");
        assert_eq!(back.checkpoint, s.checkpoint);
        assert!(State::load(&path, "src", "other").is_err());
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
