//! Where model weights keep their bytes (params `storage`): `git`, the default for one machine,
//! commits them as blobs; `dvc` tracks each promoted version's `.safetensors` with DVC: a
//! `<weights>.dvc` pointer (its md5) goes to git beside the sidecar and registry, the bytes to
//! `.dvc/cache` and to the default remote of `.dvc/config` (`publish`, before the commit that
//! names them is pushed). A clone without the bytes (a server replica, a CI checkout) fetches
//! one version by its md5 (`materialize`) and verifies it by the sidecar's sha256 as always.

use std::path::{Path, PathBuf};

use gitops::model_file::{ModelError, ModelFile};
use gitops::params::ParamsError;
pub use gitops::params::Storage;
use repro::remote::{self, RemoteError, TransferOptions};

/// The models folder, relative to the repo root.
pub const MODELS: &str = "models";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error(transparent)]
    Repo(Box<repro::Error>),
    #[error(transparent)]
    Remote(Box<RemoteError>),
    #[error("{} object(s) of {what} are missing from remote '{}' ({}): {}", missing.len(), remote.0, remote.1, missing.join(", "))]
    Missing { what: String, remote: (String, String), missing: Vec<String> },
    #[error("{} object(s) are not in the local cache, so they were not pushed: {}", .0.len(), .0.join(", "))]
    NotPushed(Vec<String>),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Feedback(#[from] gitops::feedback::FeedbackError),
    #[error(transparent)]
    Git(#[from] Box<gitops::git::GitError>),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

// Boxed: the DVC errors carry several names each, and every release error carries these.
impl From<repro::Error> for StorageError {
    fn from(e: repro::Error) -> Self {
        Self::Repo(Box::new(e))
    }
}

impl From<RemoteError> for StorageError {
    fn from(e: RemoteError) -> Self {
        Self::Remote(Box::new(e))
    }
}

/// The weights of `version`, relative to the repo root (the out its `.dvc` pointer names).
fn weights_rel(version: &str) -> String {
    format!("{MODELS}/{version}.safetensors")
}

/// The `.dvc` pointer beside a version's weights file, where `storage: dvc` writes it.
pub fn pointer(weights: &Path) -> PathBuf {
    let mut name = weights.as_os_str().to_os_string();
    name.push(".dvc");
    PathBuf::from(name)
}

/// Tracks the weights of `version` with DVC (into the cache, a pointer beside them, ignored by
/// git) when the repo's storage is `dvc`; returns their md5, or `None` under `git` storage.
pub fn track(repo: &Path, version: &str) -> Result<Option<String>, StorageError> {
    if Storage::of(repo)? != Storage::Dvc {
        return Ok(None);
    }
    Ok(Some(repro::add(repo, &weights_rel(version))?.md5))
}

/// Sends to the default remote what the repo's pointers and dvc.lock name and it lacks
/// (`dvc push`), when the storage is `dvc`; returns the objects sent. `required` (md5s from
/// [`track`]) must all be on the remote afterwards; other outs, such as stage outputs never
/// built in this clone, may be missing from the cache. Done before the commit naming them is
/// pushed, so no clone sees a pointer whose bytes are not on the remote.
pub fn publish(repo: &Path, required: &[String]) -> Result<usize, StorageError> {
    if Storage::of(repo)? != Storage::Dvc {
        return Ok(0);
    }
    let report = remote::push(repo, &TransferOptions::default())?;
    let lost: Vec<String> = report.missing.into_iter().filter(|oid| required.contains(oid)).collect();
    if !lost.is_empty() {
        return Err(StorageError::NotPushed(lost));
    }
    Ok(report.pushed)
}

/// Brings the weights of `version` into `models/` from the DVC cache or the remote, by the md5
/// its pointer records, when they are missing and a pointer exists; returns whether it did.
/// The caller verifies them against the sidecar as for any weights.
pub fn materialize(repo: &Path, version: &str) -> Result<bool, StorageError> {
    let rel = weights_rel(version);
    if repo.join(&rel).exists() || !pointer(&repo.join(&rel)).is_file() {
        return Ok(false);
    }
    let report = remote::pull_paths(repo, &TransferOptions::default(), &[&rel])?;
    if !report.missing.is_empty() {
        return Err(StorageError::Missing { what: rel, remote: report.remote, missing: report.missing });
    }
    Ok(true)
}

/// Brings the feedback samples this clone lacks from the DVC cache or the remote, when the
/// storage is `dvc`: those of the open sub_set (and of a sealed one whose pointer is not
/// committed yet) by their journals' md5s, then the folders the sealed sub_sets' pointers
/// name; returns how many such folders there are. A retrain runs it (`pipeline data fetch`)
/// before it reads them.
pub fn fetch_feedback(repo: &Path) -> Result<usize, StorageError> {
    if Storage::of(repo)? != Storage::Dvc {
        return Ok(0);
    }
    gitops::git::restore_samples(&gitops::feedback::FeedbackStore::open(repo)?).map_err(Box::new)?;
    let new_data = repo.join(gitops::feedback::NEW_DATA);
    let folders = gitops::feedback::tracked_folders(&new_data)?;
    if folders.is_empty() {
        return Ok(0);
    }
    let rels: Vec<String> = folders.iter().map(|f| format!("{}/{}", gitops::feedback::NEW_DATA, f.display())).collect();
    let paths: Vec<&str> = rels.iter().map(String::as_str).collect();
    let report = remote::pull_paths(repo, &TransferOptions::default(), &paths)?;
    if !report.missing.is_empty() {
        return Err(StorageError::Missing {
            what: "sealed feedback".into(),
            remote: report.remote,
            missing: report.missing,
        });
    }
    Ok(folders.len())
}

/// `version` in the models folder `models` (of the repo above it), its weights first brought
/// in by [`materialize`] when the repo keeps them in DVC and this clone lacks them. Every
/// loader of a version (stages, servers, the CLI) opens it through here.
pub fn open(models: &Path, version: &str) -> Result<ModelFile, StorageError> {
    let repo = models.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    materialize(repo, version)?;
    Ok(ModelFile::new(models, version)?)
}

/// What to tell a user who just chose `storage: dvc`.
pub const REMOTE_HINT: &str = "storage: dvc; set the remote the weights go to: `dvc remote add -d NAME s3://BUCKET/PATH` (and `dvc remote modify NAME endpointurl URL` for an S3-compatible store)";

/// Sets `storage: dvc` in the repo's params.yaml, so that what trains or promotes from now on
/// is DVC-tracked (`pipeline init --dataset/--example --storage dvc`, before the base model
/// trains).
pub fn choose_dvc(repo: &Path) -> Result<(), StorageError> {
    let path = repo.join("params.yaml");
    let text = std::fs::read_to_string(&path).map_err(|source| StorageError::Io { path: path.clone(), source })?;
    std::fs::write(&path, with_storage_dvc(&text)).map_err(|source| StorageError::Io { path: path.clone(), source })?;
    if Storage::of(repo)? != Storage::Dvc {
        return Err(StorageError::Io {
            path,
            source: std::io::Error::other("`storage: dvc` did not take: edit it by hand"),
        });
    }
    Ok(())
}

/// [`choose_dvc`], then tracks every version's weights already in `models/` (`pipeline init
/// --storage dvc`, whose base model is embedded); returns the files to commit.
pub fn adopt(repo: &Path) -> Result<Vec<PathBuf>, StorageError> {
    choose_dvc(repo)?;
    let mut files = vec![PathBuf::from("params.yaml")];
    for model in ModelFile::list(&repo.join(MODELS))? {
        track(repo, &model.version)?;
        files.push(pointer(Path::new(&weights_rel(&model.version))));
    }
    files.push(PathBuf::from(MODELS).join(".gitignore"));
    Ok(files)
}

/// `params` with its top-level `storage:` line (whatever its value, spacing or comment) set to
/// `dvc`, or one appended; every other line as it was.
fn with_storage_dvc(params: &str) -> String {
    let mut found = false;
    let mut lines: Vec<&str> = params
        .lines()
        .map(|line| match line.strip_prefix("storage:") {
            Some(_) if !found => {
                found = true;
                "storage: dvc"
            }
            _ => line,
        })
        .collect();
    if !found {
        lines.push("storage: dvc");
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adopting_dvc_rewrites_only_the_storage_line() {
        let params = "task:\n  name: mnist\nstorage:   git   # one machine\nfinetune:\n  epochs: 3\n";
        assert_eq!(with_storage_dvc(params), "task:\n  name: mnist\nstorage: dvc\nfinetune:\n  epochs: 3\n");
        assert_eq!(with_storage_dvc("task:\n  name: mnist"), "task:\n  name: mnist\nstorage: dvc\n");
        // A nested `storage:` key belongs to another section and is left alone.
        assert_eq!(with_storage_dvc("server:\n  storage: x\n"), "server:\n  storage: x\nstorage: dvc\n");
    }

    #[test]
    fn a_pointer_sits_beside_its_weights() {
        assert_eq!(pointer(Path::new("models/v1.safetensors")), Path::new("models/v1.safetensors.dvc"));
    }
}
