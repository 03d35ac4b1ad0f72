//! Building trees from the working tree for chosen paths, spliced into a base tree.

use std::path::Path;

use git2::{FileMode, Oid, Repository, Tree};

use super::GitError;

/// `base` with each of `paths` (relative to the repository root) replaced by its working-tree
/// state: a missing path is removed, ignored files are left out.
pub(crate) fn tree_with_paths(repo: &Repository, base: Option<&Tree<'_>>, paths: &[&Path]) -> Result<Oid, GitError> {
    let root = repo.workdir().expect("not a bare repository");
    let mut tree = match base {
        Some(t) => t.id(),
        None => repo.treebuilder(None)?.write()?,
    };
    for rel in paths {
        let entry = from_workdir(repo, &root.join(rel), rel)?;
        let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        let current = repo.find_tree(tree)?;
        tree = splice(repo, Some(&current), &parts, entry)?.unwrap_or(repo.treebuilder(None)?.write()?);
    }
    Ok(tree)
}

/// A blob or tree for the working-tree path `abs`; `None` if missing, ignored or empty.
fn from_workdir(repo: &Repository, abs: &Path, rel: &Path) -> Result<Option<(Oid, i32)>, GitError> {
    let io = |source| GitError::Io { path: abs.to_path_buf(), source };
    let meta = match std::fs::symlink_metadata(abs) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if repo.is_path_ignored(rel)? {
        return Ok(None);
    }
    if meta.is_file() {
        use std::os::unix::fs::PermissionsExt;
        let mode = if meta.permissions().mode() & 0o111 != 0 { FileMode::BlobExecutable } else { FileMode::Blob };
        return Ok(Some((repo.blob_path(abs)?, mode.into())));
    }
    if !meta.is_dir() {
        return Ok(None);
    }
    let mut builder = repo.treebuilder(None)?;
    for entry in std::fs::read_dir(abs).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        if let Some((oid, mode)) = from_workdir(repo, &entry.path(), &rel.join(&name))? {
            builder.insert(&name, oid, mode)?;
        }
    }
    if builder.is_empty() {
        return Ok(None);
    }
    Ok(Some((builder.write()?, FileMode::Tree.into())))
}

/// Puts `entry` at `parts` inside `tree`; returns `None` when the result is empty.
fn splice(repo: &Repository, tree: Option<&Tree<'_>>, parts: &[String], entry: Option<(Oid, i32)>) -> Result<Option<Oid>, GitError> {
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
        splice(repo, child.as_ref(), &parts[1..], entry)?.map(|oid| (oid, FileMode::Tree.into()))
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
