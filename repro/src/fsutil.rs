//! Path normalization and atomic file writes (write a temp file, then rename over).

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Joins `wdir` and a path as written in dvc.yaml into a root-relative, `/`-separated
/// path without `.` or `..` components.
pub fn normalize(wdir: &str, path: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for comp in Path::new(wdir).join(path).components() {
        match comp {
            Component::ParentDir => {
                if parts.pop().is_none() {
                    parts.push("..".into());
                }
            }
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    if parts.is_empty() { ".".into() } else { parts.join("/") }
}

/// True when `inner` is `outer` or lies inside it (both root-relative, normalized).
pub fn is_within(inner: &str, outer: &str) -> bool {
    inner == outer || (inner.starts_with(outer) && inner.as_bytes().get(outer.len()) == Some(&b'/'))
}

/// Writes `data` to `path` atomically: readers see the old or the new file, never a part.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(Error::io(dir))?;
    tmp.write_all(data).map_err(Error::io(tmp.path().to_path_buf()))?;
    tmp.as_file().sync_data().map_err(Error::io(path))?;
    tmp.persist(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e.error })?;
    Ok(())
}

/// Removes a file or a directory tree; a missing path is not an error.
pub fn remove_path(path: &Path) -> Result<()> {
    let res = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    res.map_err(Error::io(path))
}

/// `root` joined with a root-relative path.
pub fn abs(root: &Path, rel: &str) -> PathBuf {
    if rel == "." { root.to_path_buf() } else { root.join(rel) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize(".", "data/raw"), "data/raw");
        assert_eq!(normalize("sub", "../model.bin"), "model.bin");
        assert_eq!(normalize("a/b", "./c/../d"), "a/b/d");
        assert!(is_within("data/prepared/f1.txt", "data/prepared"));
        assert!(!is_within("data/prepared2", "data/prepared"));
    }
}
