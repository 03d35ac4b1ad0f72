//! Changing what `models/` serves, as git commits: installing a promoted candidate under a new
//! timestamped name, pruning old versions, rolling back and pinning. Every change moves
//! `models/registry.json` and is committed with git2 (and pushed when the repo has the
//! configured remote), so every server that follows git follows it.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::registry::{Action, Registry, RegistryError};
use gitops::git::{self, Credentials, GitError, PushOutcome, Rebase};
use gitops::model_file::{ModelError, ModelFile, Sidecar, Verified};

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Params(#[from] gitops::params::ParamsError),
    #[error("{version} is already the serving model")]
    AlreadyServing { version: String },
    #[error("no version runs in shadow (models/registry.json `shadow`)")]
    NoShadow,
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Copies a verified candidate into `models/` as a new version (weights first, sidecar last)
/// and returns its sidecar. The bytes copied are the bytes whose hash was checked.
pub fn install(models: &Path, candidate: &ModelFile, mut sidecar: Sidecar) -> Result<Sidecar, ReleaseError> {
    let Verified { bytes, .. } = candidate.verify(&sidecar.task, Some(&sidecar.architecture))?;
    sidecar.created_at = Utc::now();
    let file = ModelFile::fresh(models, sidecar.created_at);
    file.write_weights(&bytes)?;
    sidecar.version = file.version.clone();
    sidecar.weights = format!("{}.safetensors", file.version);
    file.write_sidecar(&sidecar)?;
    Ok(sidecar)
}

/// Deletes the oldest versions beyond `keep`, never the served or a pinned one. Returns the
/// removed versions.
pub fn prune(models: &Path, registry: &Registry, keep: usize) -> Result<Vec<String>, ReleaseError> {
    let all = ModelFile::list(models)?;
    let mut removable: Vec<&ModelFile> = all.iter().filter(|m| !registry.protects(&m.version)).collect();
    let kept_protected = all.len() - removable.len();
    let excess = all.len().saturating_sub(keep.max(kept_protected));
    removable.truncate(excess);
    let mut removed = Vec::new();
    for m in removable {
        for path in [m.sidecar_path(), m.weights_path()] {
            std::fs::remove_file(&path).map_err(|source| ReleaseError::Io { path: path.clone(), source })?;
        }
        // `storage: dvc`: the pointer goes too; the cache and the remote keep the bytes.
        let pointer = crate::storage::pointer(&m.weights_path());
        if pointer.is_file() {
            std::fs::remove_file(&pointer).map_err(|source| ReleaseError::Io { path: pointer.clone(), source })?;
        }
        removed.push(m.version.clone());
    }
    Ok(removed)
}

/// Checks `version` of `repo` (task, hash, safetensors header; no libtorch), fetching its weights
/// by hash first when the repo keeps them in DVC and this clone lacks them.
fn verify(repo: &Path, version: &str) -> Result<(), ReleaseError> {
    let task = gitops::params::task(&repo.join("params.yaml"))?;
    crate::storage::open(&repo.join("models"), version)?.verify(&task, None)?;
    Ok(())
}

/// Points the registry back at an earlier version on disk, verifying it first (task, hash and
/// safetensors header; no libtorch).
pub fn rollback(repo: &Path, version: &str, reason: &str) -> Result<Registry, ReleaseError> {
    let models = repo.join("models");
    let registry = Registry::load(&models)?;
    if registry.serving == version {
        return Err(ReleaseError::AlreadyServing { version: version.to_string() });
    }
    verify(repo, version)?;
    let registry = registry.with_event(Action::Rollback, version, reason);
    registry.save(&models)?;
    commit_and_push(repo, &[Path::new("models")], &format!("Roll back to {version}\n\n{reason}"))?;
    Ok(registry)
}

/// Pins (or, with `pin == false`, unpins) a version so pruning keeps it.
pub fn pin(repo: &Path, version: &str, pin: bool) -> Result<Registry, ReleaseError> {
    let models = repo.join("models");
    ModelFile::new(&models, version)?.read_sidecar()?;
    let action = if pin { Action::Pin } else { Action::Unpin };
    let registry = Registry::load(&models)?.with_event(action, version, if pin { "pinned" } else { "unpinned" });
    registry.save(&models)?;
    let verb = if pin { "Pin" } else { "Unpin" };
    commit_and_push(repo, &[Path::new("models")], &format!("{verb} {version}"))?;
    Ok(registry)
}

/// Runs `version` (on disk, verified: task, hash, header) in shadow beside the serving model,
/// or with `None` ends the shadow: a commit every server follows.
pub fn shadow(repo: &Path, version: Option<&str>, reason: &str) -> Result<Registry, ReleaseError> {
    let models = repo.join("models");
    let registry = Registry::load(&models)?;
    let (registry, message) = match version {
        Some(version) => {
            if registry.serving == version {
                return Err(ReleaseError::AlreadyServing { version: version.to_string() });
            }
            verify(repo, version)?;
            (registry.with_event(Action::Shadow, version, reason), format!("Shadow {version}\n\n{reason}"))
        }
        None => {
            let Some(current) = registry.shadow.clone() else { return Err(ReleaseError::NoShadow) };
            (
                registry.with_event(Action::Unshadow, &current, reason),
                format!("End the shadow of {current}\n\n{reason}"),
            )
        }
    };
    registry.save(&models)?;
    commit_and_push(repo, &[Path::new("models")], &message)?;
    Ok(registry)
}

/// Serves the shadow version (verified again), ending its shadow: a commit.
pub fn promote_shadow(repo: &Path, reason: &str) -> Result<Registry, ReleaseError> {
    let models = repo.join("models");
    let registry = Registry::load(&models)?;
    let Some(version) = registry.shadow.clone() else { return Err(ReleaseError::NoShadow) };
    verify(repo, &version)?;
    let registry = registry.with_event(Action::Promote, &version, reason);
    registry.save(&models)?;
    commit_and_push(repo, &[Path::new("models")], &format!("Promote {version} from shadow\n\n{reason}"))?;
    Ok(registry)
}

/// Commits `paths` when `repo` is a git repository, then pushes when the configured remote
/// exists. Outside git this does nothing; offline, the commit waits for the next push.
pub fn commit_and_push(repo: &Path, paths: &[&Path], message: &str) -> Result<Option<PushOutcome>, ReleaseError> {
    if git2::Repository::open(repo).is_err() {
        return Ok(None);
    }
    if git::commit_paths(repo, paths, message)?.is_none() {
        return Ok(None);
    }
    let params = gitops::params::Params::load(repo)?.git;
    let has_remote = git2::Repository::open(repo).is_ok_and(|r| r.find_remote(&params.remote).is_ok());
    if !params.push || !has_remote {
        return Ok(None);
    }
    let outcome = git::push_with_retry(repo, &params, &Credentials::from_env(), &mut Rebase)?;
    if let PushOutcome::Offline { reason } = &outcome {
        tracing::warn!(%reason, "remote unreachable; the commit is queued for the next push");
    }
    Ok(Some(outcome))
}

/// What promote decided and why; also what the server shows as the retrain's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub promoted: bool,
    /// The new version in models/ when promoted; the candidate's name otherwise.
    pub candidate: Option<String>,
    pub serving_before: String,
    pub reasons: Vec<String>,
    pub metrics: BTreeMap<String, f64>,
    pub sub_sets: Vec<u32>,
    pub pruned: Vec<String>,
    /// The version now running in shadow (params `promote.shadow`: a candidate that passed
    /// waits for live evidence instead of serving at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}
