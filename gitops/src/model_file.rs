//! A model on disk: `models/model_<UTC YYYYMMDDTHHMMSSZ>.safetensors` plus a JSON sidecar
//! `model_<ts>.json` with the weights' sha256, the task it was trained for, the architecture,
//! the parent model, the training data's fingerprint, metrics, the drift reference and creation
//! time. Weights are
//! written first and renamed into place, the sidecar last, so a reader that finds a sidecar
//! always finds complete weights. [`ModelFile::verify`] re-hashes the weights and checks the
//! task, the architecture and the safetensors header, all without libtorch: `pipeline models
//! rollback` and `release::install` verify with it, and `model::weights` loads the very bytes
//! it verified.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::architecture::Architecture;
use crate::task::Task;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not a model sidecar: {source}", path.display())]
    Sidecar { path: PathBuf, source: serde_json::Error },
    #[error("{}: sha256 is {got} but its sidecar says {expected}; the weights are damaged or were replaced", path.display())]
    Checksum { path: PathBuf, got: String, expected: String },
    #[error("{}: architecture {found:?} does not match the expected {expected:?}", path.display())]
    Architecture { path: PathBuf, found: Box<Architecture>, expected: Box<Architecture> },
    #[error("{}: the model was trained for another task ({}); this repo's task is `{task}` (params.yaml `task:`)", path.display(), differences.join("; "))]
    Task { path: PathBuf, task: String, differences: Vec<String> },
    #[error("{}: weights do not fit the architecture: {reason}", path.display())]
    Weights { path: PathBuf, reason: String },
    #[error("no model named {version} in {}", dir.display())]
    NotFound { version: String, dir: PathBuf },
    #[error("`{0}` is not a model version (expected model_YYYYMMDDTHHMMSSZ)")]
    BadVersion(String),
}

/// Everything known about a saved model besides its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    pub version: String,
    pub weights: String,
    pub sha256: String,
    /// The task it was trained for; a sidecar written before tasks existed is MNIST's.
    #[serde(default)]
    pub task: Task,
    pub architecture: Architecture,
    pub parent: Option<String>,
    pub data_fingerprint: String,
    pub metrics: BTreeMap<String, f64>,
    /// `confusion[true][predicted]` on the evaluation set the metrics come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Vec<Vec<u64>>>,
    /// Its signals on the held-out test set, which the model server compares live traffic with
    /// (`None` for models from before drift was watched: the server then reports no drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<crate::drift::Reference>,
    pub created_at: DateTime<Utc>,
}

/// A model's pair of files in a models directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    pub dir: PathBuf,
    pub version: String,
}

const TIMESTAMP: &str = "%Y%m%dT%H%M%SZ";

impl ModelFile {
    /// Names a model `version` (`model_<ts>`) in `dir`, checking the name's shape.
    pub fn new(dir: &Path, version: &str) -> Result<Self, ModelError> {
        let ts = version.strip_prefix("model_").ok_or_else(|| ModelError::BadVersion(version.into()))?;
        chrono::NaiveDateTime::parse_from_str(ts, TIMESTAMP).map_err(|_| ModelError::BadVersion(version.into()))?;
        Ok(Self { dir: dir.to_path_buf(), version: version.to_string() })
    }

    /// A fresh version stamped `now`, moved forward a second at a time past any taken name.
    pub fn fresh(dir: &Path, now: DateTime<Utc>) -> Self {
        let mut at = now;
        loop {
            let file = Self { dir: dir.to_path_buf(), version: format!("model_{}", at.format(TIMESTAMP)) };
            if !file.weights_path().exists() && !file.sidecar_path().exists() {
                return file;
            }
            at += chrono::Duration::seconds(1);
        }
    }

    pub fn weights_path(&self) -> PathBuf {
        self.dir.join(format!("{}.safetensors", self.version))
    }

    pub fn sidecar_path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.version))
    }

    /// When the version was stamped.
    pub fn timestamp(&self) -> DateTime<Utc> {
        let ts = &self.version["model_".len()..];
        chrono::NaiveDateTime::parse_from_str(ts, TIMESTAMP).expect("checked in new").and_utc()
    }

    /// Every complete model (one with a sidecar) in `dir`, oldest first.
    pub fn list(dir: &Path) -> Result<Vec<Self>, ModelError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(ModelError::Io { path: dir.to_path_buf(), source }),
        };
        let mut models: Vec<Self> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|name| Self::new(dir, name.strip_suffix(".json")?).ok())
            .collect();
        models.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(models)
    }

    pub fn read_sidecar(&self) -> Result<Sidecar, ModelError> {
        let path = self.sidecar_path();
        let text = std::fs::read(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        serde_json::from_slice(&text).map_err(|source| ModelError::Sidecar { path, source })
    }

    /// Writes `bytes` as the weights, atomically and durably (temp file, fsync, rename, fsync
    /// the folder): before the sidecar that names them.
    pub fn write_weights(&self, bytes: &[u8]) -> Result<(), ModelError> {
        let path = self.weights_path();
        std::fs::create_dir_all(&self.dir)
            .and_then(|()| crate::fsutil::replace_durable(&path, bytes, &self.dir))
            .map_err(|source| ModelError::Io { path, source })
    }

    /// Writes the sidecar atomically and durably, after the weights it names are in place.
    pub fn write_sidecar(&self, sidecar: &Sidecar) -> Result<(), ModelError> {
        let path = self.sidecar_path();
        let mut text = serde_json::to_vec_pretty(sidecar).expect("a sidecar serializes");
        text.push(b'\n');
        crate::fsutil::replace_durable(&path, &text, &self.dir).map_err(|source| ModelError::Io { path, source })
    }

    /// Checks the model without running it: it was trained for `task` (and with `expected`, is
    /// that architecture), its weights hash to the sidecar's sha256 and are a safetensors file.
    /// Returns the sidecar and the verified bytes, which is all loading needs.
    pub fn verify(&self, task: &Task, expected: Option<&Architecture>) -> Result<Verified, ModelError> {
        let sidecar = self.read_sidecar()?;
        let path = self.weights_path();
        let differences = task.differences(&sidecar.task);
        if !differences.is_empty() {
            return Err(ModelError::Task { path: self.sidecar_path(), task: task.name.clone(), differences });
        }
        if let Some(expected) = expected.filter(|e| **e != sidecar.architecture) {
            return Err(ModelError::Architecture {
                path,
                found: Box::new(sidecar.architecture),
                expected: Box::new(expected.clone()),
            });
        }
        let bytes = std::fs::read(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        let got = hex::encode(Sha256::digest(&bytes));
        if got != sidecar.sha256 {
            return Err(ModelError::Checksum { path, got, expected: sidecar.sha256 });
        }
        if let Err(e) = safetensors::SafeTensors::deserialize(&bytes) {
            return Err(ModelError::Weights { path, reason: format!("not a safetensors file: {e}") });
        }
        Ok(Verified { sidecar, bytes })
    }
}

/// A model whose sidecar matched and whose weights hashed right: the bytes that were hashed.
#[derive(Debug)]
pub struct Verified {
    pub sidecar: Sidecar,
    pub bytes: Vec<u8>,
}

pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}
