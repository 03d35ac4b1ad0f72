//! Git with git2: commit chosen paths, push with credentials and replay on rejection, fetch and
//! fast-forward.
//!
//! - [`commit_paths`] commits the working-tree state of some paths (`new_data`, `models/...`)
//!   on top of HEAD, leaving anything else that is staged alone.
//! - [`push_with_retry`] pushes; a rejected push fetches, replays our commits on the remote
//!   head through a [`Replay`] and retries with backoff; an unreachable remote is reported as
//!   [`PushOutcome::Offline`] and the commits stay queued for the next push.
//! - [`fetch_fast_forward`] is what model servers poll with.
//! - [`FeedbackSync`] ties this to the feedback store: coalesced commits, sample replay, and
//!   one retrain trigger per seal, fired by the writer whose push landed it (`seals`).
//! - [`RepoLock`]: every local git write holds it; it clears the git lock files a killed
//!   writer left (`repolock`).
//! - `dvc`: under `storage: dvc`, the feedback samples live in the DVC cache and remote, and
//!   git holds their journals and pointers; [`restore_samples`] brings a clone's missing ones.

mod commit;
mod credentials;
mod dvc;
mod fetch;
mod push;
mod replay;
mod repolock;
mod seals;
mod sync;
mod tree;

pub use commit::commit_paths;
pub use credentials::Credentials;
pub use fetch::{FastForward, fetch_fast_forward};
pub use push::{PushOutcome, push_with_retry};
pub use replay::{Rebase, Replay};
pub use repolock::{GitLockFile, RepoLock, STALE_AFTER, lock_files, remove as remove_lock_file};
pub use seals::FiredSeal;
pub use sync::{Committer, FeedbackSync, SyncOutcome};

/// Under `storage: dvc`, puts in place (from the DVC cache or remote) the samples the store's
/// open sub_sets name and this clone lacks, under the store's lock; nothing under `git`.
pub fn restore_samples(store: &crate::feedback::FeedbackStore) -> Result<(), GitError> {
    let _locked = store.lock()?;
    match dvc::DvcSamples::of(store.repo_root())? {
        Some(dvc) => dvc.restore(),
        None => Ok(()),
    }
}

use std::path::PathBuf;

/// Errors of the git layer.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("authentication to {url} failed: {reason}")]
    Auth { url: String, reason: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("remote {remote} has no branch {branch}")]
    NoUpstream { remote: String, branch: String },
    #[error("cannot replay {commit} on {onto}: conflict in {path}")]
    Conflict { commit: String, onto: String, path: String },
    #[error("push to {remote} still rejected after {attempts} attempts")]
    GaveUp { remote: String, attempts: u32 },
    #[error("the local branch {branch} has diverged from the remote; refusing to fast-forward")]
    Diverged { branch: String },
    #[error(
        "{reason}: git lock file(s) {} are held by another git process, or were left by one that was killed; if no git runs in this clone, `pipeline fsck --repair` removes them",
        list(paths)
    )]
    Locked { paths: Vec<PathBuf>, reason: String },
    #[error(transparent)]
    Feedback(#[from] crate::feedback::FeedbackError),
    /// `storage: dvc`: the DVC cache.
    #[error(transparent)]
    Dvc(Box<repro::Error>),
    /// `storage: dvc`: the DVC remote.
    #[error(transparent)]
    DvcRemote(Box<repro::remote::RemoteError>),
    #[error("{} sample(s) of {what} are in neither the working tree nor the DVC cache: {}", missing.len(), missing.join(", "))]
    SamplesMissing { what: String, missing: Vec<String> },
    /// One failure handed to everyone who waited for the same sync.
    #[error("{0}")]
    Shared(std::sync::Arc<GitError>),
}

fn list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
