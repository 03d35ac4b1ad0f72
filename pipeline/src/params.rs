//! Typed views of the `task`, `data`, `model` and `train` sections of `params.yaml`; every key has a
//! default so a missing file or section means "embedded defaults".

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: section `{section}`: {source}")]
    Parse { path: PathBuf, section: String, source: serde_yaml::Error },
    #[error("{path}: {source}")]
    Task { path: PathBuf, source: gitops::task::TaskError },
}

/// The `task:` section, checked: what the models of this repo classify and read.
pub fn task(path: &Path) -> Result<gitops::task::Task, ParamsError> {
    let task: gitops::task::Task = section(path, "task")?;
    task.validate().map_err(|source| ParamsError::Task { path: path.to_path_buf(), source })?;
    Ok(task)
}

/// Reads one top-level section of a params file, or its defaults when the file or the section
/// is missing. Unknown keys inside the section are errors, so typos do not pass silently.
pub fn section<T: DeserializeOwned + Default>(path: &Path, name: &str) -> Result<T, ParamsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(source) => return Err(ParamsError::Read { path: path.to_path_buf(), source }),
    };
    let parse_err = |source| ParamsError::Parse { path: path.to_path_buf(), section: name.to_string(), source };
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(parse_err)?;
    match doc.get(name) {
        None | Some(serde_yaml::Value::Null) => Ok(T::default()),
        Some(value) => serde_yaml::from_value(value.clone()).map_err(parse_err),
    }
}

/// `data:` — where the base dataset lives, relative to the repo root: MNIST's IDX files or an
/// image folder (`pipeline::data::open` tells them apart).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DataParams {
    #[serde(alias = "mnist_dir")]
    pub dir: PathBuf,
    /// The share of an image folder without a test split held out for testing (by file hash).
    pub test_share: f64,
}

impl Default for DataParams {
    fn default() -> Self {
        Self { dir: PathBuf::from("data/mnist"), test_share: 0.2 }
    }
}

/// `train:` — the seeded optimisation settings of `pipeline train-base`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrainParams {
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Seeded augmented copies (params `augment:`, the transforms the task allows) of every
    /// training image, added to the base training set: small image sets need them.
    pub augment_copies: usize,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self { seed: 0, epochs: 8, batch_size: 64, learning_rate: 1e-3, augment_copies: 0 }
    }
}
