//! Building a commit tree from the working-tree state of chosen paths, spliced into a base
//! tree, so that nothing else that happens to be staged goes along.

use std::path::Path;

use git2::{FileMode, IndexAddOption, Oid, Repository, Tree};

use super::GitError;

/// `base` with each of `paths` (relative to the repository root) replaced by its working-tree
/// state: a missing path is removed, ignored files are left out. The paths are staged in the
/// repository's index (which keeps git's stat cache, so unchanged files are not re-hashed);
/// only their entries are taken from it.
pub(crate) fn tree_with_paths(repo: &Repository, base: Option<&Tree<'_>>, paths: &[&Path]) -> Result<Oid, GitError> {
    let specs: Vec<String> = paths.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let mut index = repo.index()?;
    index.update_all(&specs, None)?;
    index.add_all(&specs, IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let staged = repo.find_tree(index.write_tree()?)?;
    let mut tree = match base {
        Some(t) => t.id(),
        None => repo.treebuilder(None)?.write()?,
    };
    for rel in paths {
        let entry = staged.get_path(rel).ok().map(|e| (e.id(), e.filemode()));
        let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        let current = repo.find_tree(tree)?;
        tree = splice(repo, Some(&current), &parts, entry)?.unwrap_or(repo.treebuilder(None)?.write()?);
    }
    Ok(tree)
}

/// Puts `entry` at `parts` inside `tree`; returns `None` when the result is empty.
fn splice(
    repo: &Repository,
    tree: Option<&Tree<'_>>,
    parts: &[String],
    entry: Option<(Oid, i32)>,
) -> Result<Option<Oid>, GitError> {
    let mut builder = repo.treebuilder(tree)?;
    let name = &parts[0];
    let new = if parts.len() == 1 {
        entry
    } else {
        let child = tree
            .and_then(|t| t.get_name(name))
            .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
            .map(|e| repo.find_tree(e.id()))
            .transpose()?;
        splice(repo, child.as_ref(), &parts[1..], entry)?.map(|oid| (oid, i32::from(FileMode::Tree)))
    };
    match new {
        Some((oid, mode)) => {
            builder.insert(name, oid, mode)?;
        }
        None => {
            if builder.get(name)?.is_some() {
                builder.remove(name)?;
            }
        }
    }
    if builder.is_empty() { Ok(None) } else { Ok(Some(builder.write()?)) }
}
