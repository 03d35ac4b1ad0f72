//! `dvc add` of one file or directory: hashed, saved into the cache, recorded in `<path>.dvc`
//! beside it in DVC 3's layout (`outs: [{md5, size, [nfiles,] hash: md5, path}]`) and ignored
//! by git, so git keeps the pointer and the cache (then the remote, by `push`) the bytes.

use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::gitignore;
use crate::hash::{DirEntry, Hashed, Hasher, dir_listing};
use crate::repolock::RepoLock;
use crate::yaml::{self, Value};

/// What [`add`] recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Added {
    /// `<md5>` for a file, `<md5>.dir` for a directory.
    pub md5: String,
    pub size: u64,
    /// The `.dvc` file written.
    pub dvc_file: PathBuf,
}

/// Tracks `rel` (a file or directory under `root`) as `dvc add` does.
pub fn add(root: &Path, rel: &str) -> Result<Added> {
    let root = root.canonicalize().map_err(Error::io(root))?;
    let _lock = RepoLock::acquire(&root)?;
    let path = root.join(rel);
    let mut hasher = Hasher::new(&root);
    let hashed = hasher
        .hash_listed(&path)?
        .ok_or_else(|| Error::Io { path: path.clone(), source: std::io::ErrorKind::NotFound.into() })?;
    hasher.save_state()?;
    Cache::new(&root).save(&path, &hashed)?;
    let (md5, size, nfiles) = match &hashed {
        Hashed::File { md5, size, .. } => (md5.clone(), *size, None),
        Hashed::Dir { md5, size, nfiles, .. } => (md5.clone(), *size, Some(*nfiles)),
    };
    let added = write_pointer(&root, rel, md5, size, nfiles)?;
    gitignore::ignore(&root, rel)?;
    Ok(added)
}

/// Tracks the directory `rel` as made of `entries`, whose files the cache already holds (the
/// feedback committer saves each sample into the cache when it commits its journal line): its
/// `.dir` listing goes into the cache and `<rel>.dvc` beside it, the same pointer [`add`]
/// would write for those files, without reading them. It takes no repo lock and leaves git's
/// ignore files alone (the caller's own ignore rule covers `rel`).
pub fn add_listed(root: &Path, rel: &str, mut entries: Vec<DirEntry>) -> Result<Added> {
    entries.sort_by(|a, b| a.relpath.cmp(&b.relpath));
    let listing = dir_listing(&entries);
    let md5 = format!("{}.dir", hex::encode(Md5::digest(&listing)));
    let cache = Cache::new(root);
    if let Some(missing) = entries.iter().find(|e| !cache.contains(&e.md5_hex())) {
        return Err(Error::CacheMissing(missing.md5_hex()));
    }
    cache.save_bytes(&md5, &listing)?;
    let size = entries.iter().map(|e| e.size).sum();
    write_pointer(root, rel, md5, size, Some(entries.len() as u64))
}

/// Writes `<rel>.dvc` in DVC 3's layout for an out of this md5, size and (for a directory)
/// file count.
fn write_pointer(root: &Path, rel: &str, md5: String, size: u64, nfiles: Option<u64>) -> Result<Added> {
    let name = Path::new(rel).file_name().and_then(|n| n.to_str()).unwrap_or(rel).to_owned();
    let mut out = vec![("md5".to_owned(), Value::Str(md5.clone())), ("size".into(), Value::Int(size as i64))];
    if let Some(n) = nfiles {
        out.push(("nfiles".into(), Value::Int(n as i64)));
    }
    out.push(("hash".into(), Value::Str("md5".into())));
    out.push(("path".into(), Value::Str(name)));
    let doc = Value::Map(vec![("outs".into(), Value::List(vec![Value::Map(out)]))]);
    let dvc_file = root.join(format!("{rel}.dvc"));
    write_atomic(&dvc_file, yaml::dump(&doc).as_bytes())?;
    Ok(Added { md5, size, dvc_file })
}
