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
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(rel).to_owned();
    let dvc_file = root.join(format!("{rel}.dvc"));
    write_pointer(&dvc_file, &[PointerOut { path: name, md5: md5.clone(), size, nfiles }])?;
    gitignore::ignore(&root, rel)?;
    Ok(Added { md5, size, dvc_file })
}

/// Tracks directories whose files the cache already holds, all in one `.dvc` file at
/// `dvc_file` (relative to `root`), as DVC reads a `.dvc` file with several outs: each of
/// `dirs` is (its path relative to the `.dvc` file's folder, its files), and its `.dir`
/// listing goes into the cache. The files are not read: the feedback committer saved each
/// sample into the cache when it committed its journal line. It takes no repo lock and leaves
/// git's ignore files alone (the caller's own ignore rule covers the folders). Returns each
/// folder's `<md5>.dir`.
pub fn add_listed(root: &Path, dvc_file: &str, dirs: Vec<(String, Vec<DirEntry>)>) -> Result<Vec<String>> {
    let cache = Cache::new(root);
    let mut outs = Vec::new();
    for (path, mut entries) in dirs {
        entries.sort_by(|a, b| a.relpath.cmp(&b.relpath));
        if let Some(missing) = entries.iter().find(|e| !cache.contains(&e.md5_hex())) {
            return Err(Error::CacheMissing(missing.md5_hex()));
        }
        let listing = dir_listing(&entries);
        let md5 = format!("{}.dir", hex::encode(Md5::digest(&listing)));
        cache.save_bytes(&md5, &listing)?;
        let size = entries.iter().map(|e| e.size).sum();
        outs.push(PointerOut { path, md5, size, nfiles: Some(entries.len() as u64) });
    }
    write_pointer(&root.join(dvc_file), &outs)?;
    Ok(outs.into_iter().map(|o| o.md5).collect())
}

/// One out of a `.dvc` file.
struct PointerOut {
    /// Relative to the `.dvc` file's folder.
    path: String,
    md5: String,
    size: u64,
    /// For a directory.
    nfiles: Option<u64>,
}

/// Writes a `.dvc` file in DVC 3's layout (`outs: [{md5, size, [nfiles,] hash: md5, path}]`).
fn write_pointer(dvc_file: &Path, outs: &[PointerOut]) -> Result<()> {
    let outs = outs
        .iter()
        .map(|o| {
            let mut out =
                vec![("md5".to_owned(), Value::Str(o.md5.clone())), ("size".into(), Value::Int(o.size as i64))];
            if let Some(n) = o.nfiles {
                out.push(("nfiles".into(), Value::Int(n as i64)));
            }
            out.push(("hash".into(), Value::Str("md5".into())));
            out.push(("path".into(), Value::Str(o.path.clone())));
            Value::Map(out)
        })
        .collect();
    let doc = Value::Map(vec![("outs".into(), Value::List(outs))]);
    write_atomic(dvc_file, yaml::dump(&doc).as_bytes())?;
    Ok(())
}
