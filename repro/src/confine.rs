//! Keeps a stage inside its repo. Every path a stage names (its wdir, deps, params files and
//! outs) must stay inside the repo as written: no absolute path, no `..` past the root. The
//! paths that are written (outs, deleted before their stage runs, and the wdir, where its
//! command runs) must also stay inside once symlinks are followed, and an out may not be the
//! root itself or lie in `.git` or `.dvc`. A dependency may be a symlink to data kept
//! elsewhere: it is only read.

use std::path::Path;

/// Folders of the repo that hold its history and cache: removing an output there would lose them.
const METADATA: [&str; 2] = [".git", ".dvc"];

use crate::dvcyaml::{DVC_YAML, Stage};
use crate::error::{Error, Result};
use crate::fsutil::{abs, normalize, resolve};

/// What a path is to its stage.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Wdir,
    Dependency,
    Params,
    Output,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Wdir => "wdir",
            Role::Dependency => "dependency",
            Role::Params => "params file",
            Role::Output => "output",
        }
    }
}

/// Refuses the first path of `stage` that leaves the repo at `root` (canonical), with the
/// dvc.yaml line it is written on. Reads the file system to follow symlinks, so it is run
/// again right before a stage's outputs are removed or saved: an earlier command may have
/// made a link since.
pub fn check(root: &Path, stage: &Stage) -> Result<()> {
    let wdir = std::iter::once((Role::Wdir, stage.wdir.as_str(), stage.wdir_line));
    let deps = stage.deps.iter().map(|d| (Role::Dependency, d.path.as_str(), d.line));
    let params = stage.params.iter().map(|p| (Role::Params, p.file.as_str(), p.line));
    let outs = stage.outs.iter().map(|o| (Role::Output, o.path.as_str(), o.line));
    for (role, path, line) in wdir.chain(deps).chain(params).chain(outs) {
        let rel = normalize(&stage.wdir, if role == Role::Wdir { "." } else { path });
        if let Some(problem) = problem(root, role, &rel)? {
            return Err(Error::OutsideRepo {
                file: root.join(DVC_YAML),
                line,
                what: role.name(),
                path: path.to_owned(),
                stage: stage.name.clone(),
                problem,
            });
        }
    }
    Ok(())
}

/// What is wrong with the root-relative, normalized `rel`, if anything.
fn problem(root: &Path, role: Role, rel: &str) -> Result<Option<String>> {
    if rel.starts_with('/') {
        return Ok(Some("is an absolute path: paths in dvc.yaml are relative to the stage's wdir".into()));
    }
    if rel == ".." || rel.starts_with("../") {
        return Ok(Some(format!("is outside the repository {}", root.display())));
    }
    if role == Role::Output && rel == "." {
        return Ok(Some("is the repository itself".into()));
    }
    if !matches!(role, Role::Output | Role::Wdir) {
        return Ok(None);
    }
    let path = abs(root, rel);
    let resolved = resolve(&path).map_err(Error::io(&path))?;
    if !resolved.starts_with(root) {
        let outside =
            format!("leads through a symlink to {}, outside the repository {}", resolved.display(), root.display());
        return Ok(Some(outside));
    }
    if role == Role::Output && resolved == root {
        return Ok(Some("leads through a symlink to the repository itself".into()));
    }
    let metadata = METADATA.iter().find(|m| role == Role::Output && resolved.starts_with(root.join(m)));
    Ok(metadata.map(|meta| format!("is inside {meta}, the repository's own metadata, which a stage never writes")))
}
