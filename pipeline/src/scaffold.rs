//! `pipeline init DIR`: scaffolds a GitOps retraining repo for a team adopting the tool — the
//! DAG, params, workflows, an empty feedback store, the base model with its registry pointer,
//! ignores, and a README saying what to set. Existing files are never overwritten unless
//! `force` is given; the check happens before anything is written. Plain `init` makes the MNIST
//! repo with the embedded base model; `stages::init` makes one for a team's own images (it
//! trains, so it lives with libtorch) from these same files and helpers.

use std::path::{Path, PathBuf};

use crate::registry::Registry;

macro_rules! repo_file {
    ($path:literal) => {
        ($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../", $path)).as_slice())
    };
}

pub const FILES: &[(&str, &[u8])] = &[
    repo_file!("dvc.yaml"),
    repo_file!("params.yaml"),
    repo_file!(".dvcignore"),
    repo_file!(".dvc/config"),
    repo_file!(".dvc/.gitignore"),
    repo_file!(".github/workflows/retrain.yml"),
    repo_file!(".github/workflows/ci.yml"),
    repo_file!("new_data/count.json"),
    repo_file!("new_data/.gitignore"),
    (".gitignore", b"/target\n/.libtorch\n/data/\n/artifacts/\n/.pipeline/\n"),
    ("README.md", README.as_bytes()),
];

const BASE: &str = env!("BASE_MODEL");
const BASE_WEIGHTS: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/", env!("BASE_MODEL"), ".safetensors"));
const BASE_SIDECAR: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/", env!("BASE_MODEL"), ".json"));

pub const README: &str = "# Digit classifier, retrained from feedback through git

Scaffolded by `pipeline init`. What to set:

- **Remote**: `git remote add origin <url>` and push; `params.yaml` `git.remote` / `git.branch`
  name it (defaults `origin` / `main`). Model servers and the retrain push and pull there.
- **Token**: HTTPS pushes and the `github` trigger use `GITHUB_TOKEN` (or `GH_TOKEN`, or
  `GIT_TOKEN`) from the environment; SSH uses your agent. The retrain workflow uses the workflow token and needs `contents: write`.
- **Trigger**: `params.yaml` `trigger.kind` (or `PIPELINE_TRIGGER`): `local` runs the retrain
  on the machine that took the feedback, `github` dispatches `.github/workflows/retrain.yml`
  (set `trigger.github.owner` and `repo`; the token needs `actions: write`), `none` leaves it
  to the push-triggered workflow.

Then: `pipeline data fetch`, `model-server --port 8000`, and feedback flows into
`new_data/sub_set_N/`; every `feedback.threshold` samples a retrain runs `dvc.yaml`.
";

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{} already exist (use --force to overwrite): {}", files.len(), files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Exists { files: Vec<PathBuf> },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("git init {}: {source}", path.display())]
    Git { path: PathBuf, source: git2::Error },
    #[error("{}: {what}", path.display())]
    Dataset { path: PathBuf, what: String },
    #[error("training the base model: {0}")]
    Train(String),
}

/// The embedded file `name` (one of [`FILES`]).
pub fn file(name: &str) -> &'static [u8] {
    FILES.iter().find(|(p, _)| *p == name).map(|(_, b)| *b).expect("an embedded file")
}

/// Refuses to overwrite any of `targets` in `dir` unless `force`.
pub fn check_free(dir: &Path, targets: &[PathBuf], force: bool) -> Result<(), ScaffoldError> {
    let existing: Vec<PathBuf> = targets.iter().map(|p| dir.join(p)).filter(|p| p.exists()).collect();
    if !force && !existing.is_empty() {
        return Err(ScaffoldError::Exists { files: existing });
    }
    Ok(())
}

/// Writes every file, creating folders, and makes `dir` a git repository when it is not one.
pub fn write_files(dir: &Path, files: &[(PathBuf, &[u8])]) -> Result<(), ScaffoldError> {
    for (rel, bytes) in files {
        let path = dir.join(rel);
        let io = |source| ScaffoldError::Io { path: path.clone(), source };
        std::fs::create_dir_all(path.parent().expect("files live in folders")).map_err(io)?;
        std::fs::write(&path, bytes).map_err(io)?;
    }
    if git2::Repository::open(dir).is_err() {
        git2::Repository::init_opts(dir, git2::RepositoryInitOptions::new().initial_head("main"))
            .map_err(|source| ScaffoldError::Git { path: dir.to_path_buf(), source })?;
    }
    Ok(())
}

/// Writes the scaffold into `dir`; returns the files written (relative to `dir`).
pub fn init(dir: &Path, force: bool) -> Result<Vec<PathBuf>, ScaffoldError> {
    let mut files: Vec<(PathBuf, &[u8])> = FILES.iter().map(|(p, b)| (PathBuf::from(p), *b)).collect();
    files.push((PathBuf::from(format!("models/{BASE}.safetensors")), BASE_WEIGHTS));
    files.push((PathBuf::from(format!("models/{BASE}.json")), BASE_SIDECAR));
    let registry = PathBuf::from("models").join(crate::registry::FILE);
    let mut targets: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    targets.push(registry.clone());
    check_free(dir, &targets, force)?;
    write_files(dir, &files)?;
    Registry::new_base(BASE, "base model installed by `pipeline init`").save(&dir.join("models"))?;
    Ok(targets)
}
