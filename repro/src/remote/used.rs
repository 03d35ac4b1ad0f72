//! What `dvc push` and `dvc pull` move: the cached outs recorded in `dvc.lock` (outs with
//! `cache: false` stay in git) and the outs of every `.dvc` file in the workspace, each as
//! the md5 it was recorded with and where it is checked out.

use std::path::{Path, PathBuf};

use crate::dvcyaml::DVC_YAML;
use crate::error::Error;
use crate::fsutil::{abs, normalize, resolve};
use crate::ignore::Ignores;
use crate::lockfile::LockFile;
use crate::project::Project;
use crate::yaml::{self, Value};

use super::RemoteError;

/// One out to push or pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsedOut {
    /// The path relative to the repo root.
    pub rel: String,
    /// `<md5>` for a file, `<md5>.dir` for a directory.
    pub md5: String,
    pub isexec: bool,
}

/// Every out of dvc.lock and of the `.dvc` files under `root` (canonical), sorted by path.
pub fn collect(root: &Path) -> Result<Vec<UsedOut>, RemoteError> {
    let mut outs = Vec::new();
    if root.join(DVC_YAML).is_file() {
        // Open checks every out against the repo root, as before a repro.
        let project = Project::open(root)?;
        let lock = LockFile::load(root)?;
        for stage in project.stages() {
            let Some(entry) = lock.get(&stage.name) else { continue };
            for out in stage.outs.iter().filter(|o| o.cache) {
                let recorded = entry.outs.iter().find(|e| e.path == out.path);
                if let Some(md5) = recorded.and_then(|e| e.md5.clone()) {
                    let isexec = recorded.is_some_and(|e| e.isexec);
                    outs.push(UsedOut { rel: normalize(&stage.wdir, &out.path), md5, isexec });
                }
            }
        }
    }
    for file in dvc_files(root)? {
        outs.extend(dvc_file_outs(root, &file)?);
    }
    outs.sort_by(|a, b| a.rel.cmp(&b.rel));
    outs.dedup();
    Ok(outs)
}

/// The `.dvc` files of the workspace, outside what `.dvcignore`, `.git` and `.dvc` hide.
fn dvc_files(root: &Path) -> Result<Vec<PathBuf>, RemoteError> {
    let mut found = Vec::new();
    let mut stack = vec![(root.to_path_buf(), Ignores::for_dir(root, root))];
    while let Some((dir, ignores)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(Error::io(&dir))?;
        for entry in entries {
            let entry = entry.map_err(Error::io(&dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let kind = entry.file_type().map_err(Error::io(entry.path()))?;
            if ignores.is_ignored(&dir, name, kind.is_dir()) {
                continue;
            }
            if kind.is_dir() {
                let mut inner = ignores.clone();
                inner.push_dir(&entry.path());
                stack.push((entry.path(), inner));
            } else if kind.is_file() && name.ends_with(".dvc") {
                found.push(entry.path());
            }
        }
    }
    Ok(found)
}

/// The outs of one `.dvc` file, checked to stay inside the repo.
fn dvc_file_outs(root: &Path, file: &Path) -> Result<Vec<UsedOut>, RemoteError> {
    let err = |msg: String| RemoteError::DvcFile { file: file.to_path_buf(), msg };
    let text = std::fs::read_to_string(file).map_err(Error::io(file))?;
    let doc = yaml::load(&text, file)?.to_value();
    let dir = file.parent().and_then(|d| d.strip_prefix(root).ok()).and_then(Path::to_str).unwrap_or("");
    let dir = if dir.is_empty() { "." } else { dir };
    let Some(Value::List(items)) = doc.get("outs") else { return Ok(Vec::new()) };
    let mut outs = Vec::new();
    for item in items {
        let flag = |k: &str| !matches!(item.get(k), Some(Value::Bool(false)));
        let path = item.get("path").and_then(Value::as_str).ok_or_else(|| err("an out without a path".into()))?;
        let Some(md5) = item.get("md5").and_then(Value::as_str) else { continue };
        if !flag("cache") || !flag("push") {
            continue;
        }
        if item.get("hash").and_then(Value::as_str) != Some("md5") {
            return Err(err(format!(
                "out '{path}' has a DVC 2 hash (no `hash: md5`); update it with `dvc cache migrate --dvc-files`"
            )));
        }
        let rel = normalize(dir, path);
        if let Some(problem) = outside(root, &rel) {
            return Err(err(format!("out '{path}' {problem}")));
        }
        let isexec = matches!(item.get("isexec"), Some(Value::Bool(true)));
        outs.push(UsedOut { rel, md5: md5.to_owned(), isexec });
    }
    Ok(outs)
}

/// The md5s the outs of a `.dvc` file record (`<md5>.dir` for a directory), from its text
/// (`file` names it in errors): what a pointer committed to git asks a remote to hold.
pub fn pointer_md5s(text: &str, file: &Path) -> Result<Vec<String>, RemoteError> {
    let doc = yaml::load(text, file)?.to_value();
    let Some(Value::List(items)) = doc.get("outs") else { return Ok(Vec::new()) };
    Ok(items.iter().filter_map(|item| item.get("md5").and_then(Value::as_str).map(str::to_owned)).collect())
}

/// Why pulling into `rel` would write outside the repo or into its metadata, if it would.
fn outside(root: &Path, rel: &str) -> Option<String> {
    if rel.starts_with('/') || rel == ".." || rel.starts_with("../") || rel == "." {
        return Some(format!("is not inside the repository {}", root.display()));
    }
    let resolved = resolve(&abs(root, rel)).unwrap_or_default();
    let inside = resolved.starts_with(root) && resolved != root;
    let metadata = [".git", ".dvc"].iter().any(|m| resolved.starts_with(root.join(m)));
    (!inside || metadata)
        .then(|| format!("leads to {}, outside the repository or inside its metadata", resolved.display()))
}
