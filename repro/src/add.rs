//! `dvc add` of one file or directory: hashed, saved into the cache, recorded in `<path>.dvc`
//! beside it in DVC 3's layout (`outs: [{md5, size, [nfiles,] hash: md5, path}]`) and ignored
//! by git, so git keeps the pointer and the cache (then the remote, by `push`) the bytes.

use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::gitignore;
use crate::hash::{Hashed, Hasher};
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
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(rel).to_owned();
    let (md5, size, nfiles) = match &hashed {
        Hashed::File { md5, size, .. } => (md5.clone(), *size, None),
        Hashed::Dir { md5, size, nfiles, .. } => (md5.clone(), *size, Some(*nfiles)),
    };
    let mut out = vec![("md5".to_owned(), Value::Str(md5.clone())), ("size".into(), Value::Int(size as i64))];
    if let Some(n) = nfiles {
        out.push(("nfiles".into(), Value::Int(n as i64)));
    }
    out.push(("hash".into(), Value::Str("md5".into())));
    out.push(("path".into(), Value::Str(name)));
    let doc = Value::Map(vec![("outs".into(), Value::List(vec![Value::Map(out)]))]);
    let dvc_file = root.join(format!("{rel}.dvc"));
    write_atomic(&dvc_file, yaml::dump(&doc).as_bytes())?;
    gitignore::ignore(&root, rel)?;
    Ok(Added { md5, size, dvc_file })
}
