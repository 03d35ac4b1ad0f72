//! The checkout half of a pull, as `dvc pull` does it: every out whose workspace copy differs
//! from its recorded md5 is replaced by a copy from the cache (`Cache::checkout`, as a repro
//! restores cached outs). Files that would be lost, because the cache has no copy of them,
//! stop the checkout before anything is touched unless forced.

use std::collections::HashMap;

use crate::cache::Cache;
use crate::fsutil::abs;
use crate::hash::{Hashed, Hasher};

use super::RemoteError;
use super::used::UsedOut;

/// What a checkout changed: lines like `dvc pull` prints (`A\tdata/`), per-file counts, and
/// the outs it could not check out because objects are missing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub lines: Vec<String>,
    pub added: usize,
    pub modified: usize,
    pub deleted: usize,
    pub failed: Vec<String>,
}

/// The files of a hashed out: relative path (empty for a file out) to md5.
fn files(cache: &Cache, hashed: &Hashed) -> HashMap<String, String> {
    match hashed {
        Hashed::File { md5, .. } => HashMap::from([(String::new(), md5.clone())]),
        Hashed::Dir { contents: Some(c), .. } => c.entries.iter().map(|e| (e.relpath.clone(), e.md5_hex())).collect(),
        Hashed::Dir { md5, contents: None, .. } => listing(cache, md5),
    }
}

fn listing(cache: &Cache, md5: &str) -> HashMap<String, String> {
    let entries = cache.read_listing(md5).unwrap_or_default();
    entries
        .into_iter()
        .map(|e| {
            let md5 = e.md5_hex();
            (e.relpath, md5)
        })
        .collect()
}

/// Checks out `outs` from `cache` into the workspace at `root`.
pub fn checkout(root: &std::path::Path, cache: &Cache, outs: &[UsedOut], force: bool) -> Result<Changes, RemoteError> {
    let mut hasher = Hasher::new(root);
    let mut changes = Changes::default();
    let mut todo = Vec::new();
    let mut unsaved = Vec::new();
    for out in outs {
        let path = abs(root, &out.rel);
        let current = hasher.hash_listed(&path)?;
        if current.as_ref().is_some_and(|h| h.md5() == out.md5) {
            continue;
        }
        if !cache.has_all(&out.md5) {
            changes.failed.push(out.rel.clone());
            continue;
        }
        let want = if out.md5.ends_with(".dir") {
            listing(cache, &out.md5)
        } else {
            HashMap::from([(String::new(), out.md5.clone())])
        };
        let have = current.as_ref().map(|h| files(cache, h)).unwrap_or_default();
        for (rel, md5) in &have {
            if !cache.contains(md5) && want.get(rel) != Some(md5) {
                unsaved.push(if rel.is_empty() { out.rel.clone() } else { format!("{}/{rel}", out.rel) });
            }
        }
        changes.added += want.keys().filter(|r| !have.contains_key(*r)).count();
        changes.modified += want.iter().filter(|(r, m)| have.get(*r).is_some_and(|h| h != *m)).count();
        changes.deleted += have.keys().filter(|r| !want.contains_key(*r)).count();
        let shown = if out.md5.ends_with(".dir") { format!("{}/", out.rel) } else { out.rel.clone() };
        changes.lines.push(format!("{}\t{shown}", if current.is_none() { 'A' } else { 'M' }));
        todo.push(out);
    }
    if !unsaved.is_empty() && !force {
        unsaved.sort();
        return Err(RemoteError::Unsaved { paths: unsaved });
    }
    for out in todo {
        cache.checkout(&out.md5, &abs(root, &out.rel), out.isexec)?;
    }
    hasher.save_state()?;
    Ok(changes)
}
