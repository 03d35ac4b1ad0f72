//! `models/registry.json`: which model version the servers serve, which are pinned, and the
//! history of promotions and rollbacks. It is the one pointer every replica follows through git.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const FILE: &str = "registry.json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not a model registry: {source}", path.display())]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("{} does not exist: no model is registered for serving (run `pipeline train-base`)", path.display())]
    Missing { path: PathBuf },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Base,
    Promote,
    Rollback,
    Pin,
    Unpin,
    /// A version starts running in shadow beside the serving one (answering nothing).
    Shadow,
    /// The shadow stops.
    Unshadow,
}

/// One change of the pointer or of the pins, with why it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub action: Action,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    pub serving: String,
    /// A version the servers run beside the serving one on a share of live traffic, whose
    /// answers are only compared (`pipeline models promote-shadow` promotes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<String>,
    #[serde(default)]
    pub pinned: Vec<String>,
    #[serde(default)]
    pub history: Vec<Event>,
}

impl Registry {
    pub fn path(models_dir: &Path) -> PathBuf {
        models_dir.join(FILE)
    }

    pub fn load(models_dir: &Path) -> Result<Self, RegistryError> {
        let path = Self::path(models_dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(RegistryError::Missing { path }),
            Err(source) => return Err(RegistryError::Io { path, source }),
        };
        serde_json::from_slice(&bytes).map_err(|source| RegistryError::Parse { path, source })
    }

    /// A registry serving `version` from the start.
    pub fn new_base(version: &str, reason: &str) -> Self {
        Self { serving: version.to_string(), shadow: None, pinned: Vec::new(), history: Vec::new() }.with_event(
            Action::Base,
            version,
            reason,
        )
    }

    /// Records `action` on `version`; promotions and rollbacks move the pointer (and end a
    /// shadow of the version that now serves).
    pub fn with_event(mut self, action: Action, version: &str, reason: &str) -> Self {
        let previous = matches!(action, Action::Promote | Action::Rollback).then(|| self.serving.clone());
        match action {
            Action::Base | Action::Promote | Action::Rollback => {
                self.serving = version.to_string();
                if self.shadow.as_deref() == Some(version) {
                    self.shadow = None;
                }
            }
            Action::Shadow => self.shadow = Some(version.to_string()),
            Action::Unshadow => self.shadow = None,
            Action::Pin if !self.pinned.iter().any(|v| v == version) => self.pinned.push(version.to_string()),
            Action::Pin => {}
            Action::Unpin => self.pinned.retain(|v| v != version),
        }
        self.history.push(Event {
            at: Utc::now(),
            action,
            version: version.to_string(),
            previous,
            reason: reason.to_string(),
        });
        self
    }

    /// Whether pruning must keep `version`.
    pub fn protects(&self, version: &str) -> bool {
        self.serving == version || self.shadow.as_deref() == Some(version) || self.pinned.iter().any(|v| v == version)
    }

    /// Writes the registry atomically (temp file, fsync, rename).
    pub fn save(&self, models_dir: &Path) -> Result<PathBuf, RegistryError> {
        let path = Self::path(models_dir);
        let io = |source| RegistryError::Io { path: path.clone(), source };
        std::fs::create_dir_all(models_dir).map_err(io)?;
        let tmp = models_dir.join(format!(".{FILE}.partial"));
        let mut text = serde_json::to_vec_pretty(self).expect("a registry serializes");
        text.push(b'\n');
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&text).and_then(|()| file.sync_all()).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(path)
    }
}
