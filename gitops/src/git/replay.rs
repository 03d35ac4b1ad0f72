//! Putting our local commits on top of the remote head after a rejected push.

use git2::{Oid, Repository, Sort};

use super::GitError;

/// How [`push_with_retry`](super::push_with_retry) replays local commits on a new remote head.
pub trait Replay {
    /// Returns a commit descending from `upstream` that carries what `base..ours` carried.
    fn replay(&mut self, repo: &Repository, base: Oid, ours: Oid, upstream: Oid) -> Result<Oid, GitError>;
}

/// Cherry-picks each local commit onto the remote head; a conflict is an error. Model
/// promotion and rollback commits (under `models/`) use this.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rebase;

impl Replay for Rebase {
    fn replay(&mut self, repo: &Repository, base: Oid, ours: Oid, upstream: Oid) -> Result<Oid, GitError> {
        rebase_excluding(repo, base, ours, upstream, None)
    }
}

/// Cherry-picks `base..ours` onto `upstream`, one commit at a time. With `exclude`, that
/// top-level folder is taken from `upstream` unchanged (its conflicts are ignored): the caller
/// replays it its own way.
pub(crate) fn rebase_excluding(
    repo: &Repository,
    base: Oid,
    ours: Oid,
    upstream: Oid,
    exclude: Option<&str>,
) -> Result<Oid, GitError> {
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
    walk.push(ours)?;
    walk.hide(base)?;
    let mut onto = repo.find_commit(upstream)?;
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        let mut index = repo.cherrypick_commit(&commit, &onto, 0, None)?;
        if index.has_conflicts() {
            let conflicts: Vec<_> = index.conflicts()?.collect::<Result<_, _>>()?;
            for conflict in conflicts {
                let entry = conflict.our.or(conflict.their).or(conflict.ancestor).expect("a conflict has a side");
                let path = String::from_utf8_lossy(&entry.path).into_owned();
                if exclude.is_none_or(|dir| !path.starts_with(&format!("{dir}/"))) {
                    return Err(GitError::Conflict {
                        commit: oid_short(commit.id()),
                        onto: oid_short(onto.id()),
                        path,
                    });
                }
                index.conflict_remove(std::path::Path::new(&path))?;
            }
        }
        let mut tree_id = index.write_tree_to(repo)?;
        if let Some(dir) = exclude {
            let mut builder = repo.treebuilder(Some(&repo.find_tree(tree_id)?))?;
            match onto.tree()?.get_name(dir) {
                Some(entry) => {
                    builder.insert(dir, entry.id(), entry.filemode())?;
                }
                None if builder.get(dir)?.is_some() => builder.remove(dir)?,
                None => {}
            }
            tree_id = builder.write()?;
        }
        if tree_id == onto.tree_id() {
            continue; // nothing left of this commit
        }
        onto = recommit(repo, &commit, &onto, tree_id)?;
    }
    Ok(onto.id())
}

fn recommit<'r>(
    repo: &'r Repository,
    original: &git2::Commit<'_>,
    parent: &git2::Commit<'_>,
    tree: Oid,
) -> Result<git2::Commit<'r>, GitError> {
    let tree = repo.find_tree(tree)?;
    let committer = super::commit::signature(repo)?;
    let oid = repo.commit(None, &original.author(), &committer, original.message().unwrap_or(""), &tree, &[parent])?;
    Ok(repo.find_commit(oid)?)
}

fn oid_short(oid: Oid) -> String {
    oid.to_string()[..10].to_string()
}
