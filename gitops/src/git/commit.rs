//! Committing the working-tree state of chosen paths.

use std::path::Path;

use git2::{Oid, Repository, Signature};

use super::tree::tree_with_paths;
use super::{GitError, repolock};

/// Commits the working-tree state of `paths` (relative to the repository root; files or
/// folders, deletions included) on top of HEAD, with nothing else: other staged changes stay
/// staged and out of the commit. Returns `None` when those paths already match HEAD.
pub fn commit_paths(repo_root: &Path, paths: &[&Path], message: &str) -> Result<Option<Oid>, GitError> {
    let repo = Repository::open(repo_root)?;
    commit_in(&repo, paths, message)
}

/// [`commit_paths`] in an open repository, under its [`repolock`](super::repolock) lock.
pub(crate) fn commit_in(repo: &Repository, paths: &[&Path], message: &str) -> Result<Option<Oid>, GitError> {
    repolock::write(repo, || {
        let head = match repo.head() {
            Ok(head) => Some(head.peel_to_commit()?),
            Err(e) if matches!(e.code(), git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let base = head.as_ref().map(|c| c.tree()).transpose()?;
        let tree_id = tree_with_paths(repo, base.as_ref(), paths)?;
        if base.as_ref().is_some_and(|b| b.id() == tree_id) {
            return Ok(None);
        }
        let tree = repo.find_tree(tree_id)?;
        let sig = signature(repo)?;
        let parents: Vec<_> = head.iter().collect();
        Ok(Some(repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)?))
    })
}

/// The repository's configured identity, or a fixed pipeline identity.
pub(crate) fn signature(repo: &Repository) -> Result<Signature<'static>, GitError> {
    Ok(repo.signature().or_else(|_| Signature::now("pipeline", "pipeline@localhost"))?)
}
