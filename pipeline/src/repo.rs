//! Paths inside a pipeline repository (the git checkout holding `params.yaml`, `new_data/`,
//! `models/` and `dvc.yaml`).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPaths {
    pub root: PathBuf,
}

impl RepoPaths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn params(&self) -> PathBuf {
        self.root.join("params.yaml")
    }

    pub fn models(&self) -> PathBuf {
        self.root.join(crate::storage::MODELS)
    }

    pub fn new_data(&self) -> PathBuf {
        self.root.join(gitops::feedback::NEW_DATA)
    }

    /// A path from params.yaml, taken relative to the repo root unless absolute.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.root.join(path)
    }
}

/// The repository `given` (`--repo`), or else the nearest folder from the current one upwards
/// that holds params.yaml or dvc.yaml, or else the current folder.
pub fn find(given: Option<PathBuf>) -> std::io::Result<PathBuf> {
    if let Some(root) = given {
        return Ok(root);
    }
    let cwd = std::env::current_dir()?;
    Ok(cwd
        .ancestors()
        .find(|d| d.join("params.yaml").is_file() || d.join("dvc.yaml").is_file())
        .unwrap_or(&cwd)
        .to_path_buf())
}
