//! Fetching the remote branch, and fast-forwarding the local branch and working tree to it.

use std::cell::Cell;
use std::path::Path;

use git2::{AutotagOption, ErrorCode, FetchOptions, Oid, Repository, build::CheckoutBuilder};

use super::credentials::Credentials;
use super::dvc::DvcSamples;
use super::{GitError, push::NetFailure, repolock};
use crate::params::GitParams;

/// The result of [`fetch_fast_forward`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastForward {
    pub old_head: Option<Oid>,
    pub new_head: Oid,
}

impl FastForward {
    pub fn changed(&self) -> bool {
        self.old_head != Some(self.new_head)
    }
}

/// Fetches `git.branch` from `git.remote` and fast-forwards the local branch and working tree
/// to it. Local commits not on the remote are an error ([`GitError::Diverged`]); a local branch
/// ahead of the remote is left as it is. Under `storage: dvc` the new commit's open feedback
/// samples come from the DVC remote first (`dvc`).
pub fn fetch_fast_forward(repo_root: &Path, params: &GitParams, creds: &Credentials) -> Result<FastForward, GitError> {
    let repo = Repository::open(repo_root)?;
    let upstream = fetch(&repo, params, creds).map_err(NetFailure::into_error)?;
    let old_head = repo.head().ok().and_then(|h| h.target());
    match old_head {
        Some(old) if old == upstream || repo.graph_descendant_of(old, upstream)? => {
            Ok(FastForward { old_head, new_head: old })
        }
        Some(old) if !repo.graph_descendant_of(upstream, old)? => {
            Err(GitError::Diverged { branch: params.branch.clone() })
        }
        _ => {
            // `storage: dvc`: the samples the new commit names, fetched before the branch moves.
            let dvc = DvcSamples::of(repo_root)?;
            let prefetched = dvc.as_ref().map(|d| d.prefetch(&repo, upstream)).transpose()?;
            move_branch(&repo, &params.branch, upstream, "fast-forward")?;
            if let Some(prefetched) = prefetched {
                prefetched.link()?;
            }
            Ok(FastForward { old_head, new_head: upstream })
        }
    }
}

/// Fetches the branch and returns its head, which the remote-tracking ref then names. It runs
/// through an anonymous remote, so that the download writes no ref, and under the repository's
/// lock (the download's own write, `.git/shallow`, and then the remote-tracking ref).
pub(crate) fn fetch(repo: &Repository, params: &GitParams, creds: &Credentials) -> Result<Oid, NetFailure> {
    let url = remote_url(repo, params, false)?;
    let mut remote = repo.remote_anonymous(&url).map_err(NetFailure::Other)?;
    let failure = Cell::new(None);
    let mut options = FetchOptions::new();
    options.remote_callbacks(creds.callbacks(&failure));
    options.download_tags(AutotagOption::None);
    let branch = format!("refs/heads/{}", params.branch);
    // The download ends with a local write (libgit2 rewrites `.git/shallow` through
    // `shallow.lock`), so it runs under the repository's lock like every other write of ours.
    let mut failed = None;
    repolock::write(repo, || match remote.download(&[&branch], Some(&mut options)) {
        Err(e) if e.code() == ErrorCode::Locked => Err(GitError::Git(e)),
        Err(e) => {
            failed = Some(e);
            Ok(())
        }
        Ok(()) => Ok(()),
    })
    .map_err(NetFailure::Local)?;
    if let Some(e) = failed {
        return Err(NetFailure::classify(e, failure.take(), &url));
    }
    let head = remote.list().map_err(NetFailure::Other)?.iter().find(|h| h.name() == branch).map(|h| h.oid());
    let _ = remote.disconnect();
    let Some(head) = head else {
        return Err(NetFailure::Other(git2::Error::from_str(&format!(
            "remote {} has no branch {}",
            params.remote, params.branch
        ))));
    };
    let tracking = format!("refs/remotes/{}/{}", params.remote, params.branch);
    repolock::write(repo, || Ok(repo.reference(&tracking, head, true, "fetch")?.target()))
        .map_err(NetFailure::Local)?;
    Ok(head)
}

/// The URL of the configured remote (its push URL, when `push` and one is set).
pub(crate) fn remote_url(repo: &Repository, params: &GitParams, push: bool) -> Result<String, NetFailure> {
    let remote = repo.find_remote(&params.remote).map_err(NetFailure::Other)?;
    let url = if push { remote.pushurl().ok().flatten().or(remote.url().ok()) } else { remote.url().ok() };
    url.map(str::to_string).ok_or_else(|| {
        NetFailure::Other(git2::Error::from_str(&format!("remote {} has no URL (or it is not UTF-8)", params.remote)))
    })
}

/// Checks out `target` (safe mode: local edits are kept or the checkout fails) and points the
/// branch and HEAD at it, under the repository's lock.
pub(crate) fn move_branch(repo: &Repository, branch: &str, target: Oid, why: &str) -> Result<(), GitError> {
    repolock::write(repo, || {
        let commit = repo.find_commit(target)?;
        let mut checkout = CheckoutBuilder::new();
        checkout.safe();
        repo.checkout_tree(commit.as_object(), Some(&mut checkout))?;
        let refname = format!("refs/heads/{branch}");
        repo.reference(&refname, target, true, why)?;
        repo.set_head(&refname)?;
        Ok(())
    })
}
