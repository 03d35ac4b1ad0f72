//! Pushing, with replay on rejection, backoff, and offline detection.

use std::cell::{Cell, RefCell};
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::Duration;

use fs4::fs_std::FileExt;
use git2::{ErrorClass, ErrorCode, Oid, PushOptions, Repository};

use super::credentials::Credentials;
use super::dvc::DvcSamples;
use super::fetch::{fetch, move_branch, remote_url};
use super::replay::Replay;
use super::{GitError, repolock};
use crate::params::GitParams;

/// The longest wait between two push attempts (the backoff doubles up to it).
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The result of [`push_with_retry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The remote branch now points at `head`; `replays` rejected pushes were replayed first.
    Pushed { head: Oid, replays: u32 },
    /// The remote already had everything.
    UpToDate,
    /// The remote could not be reached; the commits stay local and go with the next push.
    Offline { reason: String },
}

/// Why a network operation failed.
#[derive(Debug)]
pub(crate) enum NetFailure {
    Auth {
        url: String,
        reason: String,
    },
    Rejected,
    Offline(String),
    Other(git2::Error),
    /// A local write (the remote-tracking ref) failed.
    Local(GitError),
}

impl NetFailure {
    pub fn classify(e: git2::Error, auth_failure: Option<String>, url: &str) -> Self {
        if let Some(reason) = auth_failure {
            return Self::Auth { url: url.to_string(), reason };
        }
        if e.code() == ErrorCode::Auth || e.class() == ErrorClass::Callback && e.message().contains("credentials") {
            return Self::Auth { url: url.to_string(), reason: e.message().to_string() };
        }
        // A git lock file is a local problem, never a network one (see `repolock`).
        if e.code() == ErrorCode::Locked {
            return Self::Other(e);
        }
        if e.code() == ErrorCode::NotFastForward
            || e.message().contains("non-fast")
            || e.message().contains("fetch first")
        {
            return Self::Rejected;
        }
        match e.class() {
            ErrorClass::Net | ErrorClass::Os | ErrorClass::Ssh | ErrorClass::Http | ErrorClass::Ssl => {
                Self::Offline(e.message().to_string())
            }
            ErrorClass::Repository if e.code() == ErrorCode::NotFound => Self::Offline(e.message().to_string()),
            _ => Self::Other(e),
        }
    }

    pub fn into_error(self) -> GitError {
        match self {
            Self::Auth { url, reason } => GitError::Auth { url, reason },
            Self::Rejected => GitError::Git(git2::Error::from_str("fetch was rejected")),
            Self::Offline(reason) => GitError::Git(git2::Error::from_str(&format!("remote unreachable: {reason}"))),
            Self::Other(e) => GitError::Git(e),
            Self::Local(e) => e,
        }
    }
}

/// Pushes `git.branch` to `git.remote`. A rejected push fetches, lets `replay` put our
/// commits on the remote head, and tries again after a doubling backoff (at most 5 s), up to
/// `git.push_attempts` times. A bad credential fails at once with [`GitError::Auth`]. Under
/// `storage: dvc` each attempt first uploads the feedback samples its commits name (`dvc`).
pub fn push_with_retry(
    repo_root: &Path,
    params: &GitParams,
    creds: &Credentials,
    replay: &mut dyn Replay,
) -> Result<PushOutcome, GitError> {
    let repo = Repository::open(repo_root)?;
    let mut backoff = Duration::from_millis(params.backoff_ms);
    let mut replays = 0;
    for attempt in 1..=params.push_attempts {
        let Ok(head) = repo.refname_to_id(&format!("refs/heads/{}", params.branch)) else {
            return Ok(PushOutcome::UpToDate);
        };
        let tracking = format!("refs/remotes/{}/{}", params.remote, params.branch);
        if repo.refname_to_id(&tracking).ok() == Some(head) {
            return Ok(PushOutcome::UpToDate);
        }
        if let Some(dvc) = DvcSamples::of(repo_root)? {
            // `storage: dvc`: the samples the pushed commits name reach the DVC remote first.
            dvc.upload(&repo, repo.refname_to_id(&tracking).ok(), head)?;
        }
        match push_once(&repo, params, creds) {
            Ok(()) => {
                repolock::write(&repo, || Ok(repo.reference(&tracking, head, true, "push")?.target()))?;
                return Ok(PushOutcome::Pushed { head, replays });
            }
            Err(NetFailure::Rejected) => {}
            Err(NetFailure::Offline(reason)) => return Ok(PushOutcome::Offline { reason }),
            Err(other) => return Err(other.into_error()),
        }
        tracing::info!(attempt, "push rejected; fetching and replaying");
        let upstream = match fetch(&repo, params, creds) {
            Ok(oid) => oid,
            Err(NetFailure::Offline(reason)) => return Ok(PushOutcome::Offline { reason }),
            Err(other) => return Err(other.into_error()),
        };
        if !repo.graph_descendant_of(head, upstream)? {
            // Even when we are only behind (nothing of ours to put on top), the replay moves the
            // branch: the feedback one does it under the store's lock.
            let base = repo.merge_base(head, upstream)?;
            let new_head = replay.replay(&repo, base, head, upstream)?;
            move_branch(&repo, &params.branch, new_head, "replay onto remote")?;
            replays += 1;
        }
        if attempt < params.push_attempts {
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
    Err(GitError::GaveUp { remote: params.remote.clone(), attempts: params.push_attempts })
}

/// Pushes the branch through an anonymous remote: it has no fetch refspec, so the push writes
/// no local ref (the caller records the remote-tracking ref under the repository's lock).
fn push_once(repo: &Repository, params: &GitParams, creds: &Credentials) -> Result<(), NetFailure> {
    let url = remote_url(repo, params, true)?;
    let _serialized = local_push_lock(&url)?;
    let mut remote = repo.remote_anonymous(&url).map_err(NetFailure::Other)?;
    let failure = Cell::new(None);
    let rejected = RefCell::new(None);
    let mut callbacks = creds.callbacks(&failure);
    callbacks.push_update_reference(|_, status| {
        if let Some(status) = status {
            *rejected.borrow_mut() = Some(status.to_string());
        }
        Ok(())
    });
    let mut options = PushOptions::new();
    options.remote_callbacks(callbacks);
    let spec = format!("refs/heads/{b}:refs/heads/{b}", b = params.branch);
    let result = remote.push(&[&spec], Some(&mut options));
    drop(options);
    result.map_err(|e| NetFailure::classify(e, failure.take(), &url))?;
    match rejected.into_inner() {
        Some(_) => Err(NetFailure::Rejected),
        None => Ok(()),
    }
}

/// For a remote that is a path on this machine: an OS lock in its git directory, held while
/// we push. libgit2 pushes to such a remote by writing its ref itself, checking for a
/// fast-forward against the head it saw at the start but writing without a compare-and-swap
/// (unlike `git receive-pack` behind every server), so two writers pushing at once could each
/// be told they landed while the second overwrote the first. `None` for network remotes and
/// for a path that is no repository (the push then fails as it would have).
fn local_push_lock(url: &str) -> Result<Option<File>, NetFailure> {
    let path = match url.strip_prefix("file://") {
        Some(path) => path,
        None if url.contains("://") || (url.contains(':') && !url.starts_with('/')) => return Ok(None),
        None => url,
    };
    let Ok(remote) = Repository::open_bare(path).or_else(|_| Repository::open(path)) else { return Ok(None) };
    let lock_path = remote.path().join("gitops-push.flock");
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path);
    let lock = lock
        .and_then(|file| FileExt::lock_exclusive(&file).map(|()| file))
        .map_err(|source| NetFailure::Local(GitError::Io { path: lock_path, source }))?;
    Ok(Some(lock))
}
