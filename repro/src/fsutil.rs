//! Path normalization and atomic file writes (write a temp file, then rename over).

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Joins `wdir` and a path as written in dvc.yaml into a root-relative, `/`-separated
/// path without `.` components. A `..` cancels only a name before it, so a path that climbs
/// out of the root keeps every leading `..` (`../../x` stays `../../x`), and an absolute path
/// stays absolute; `confine` refuses both.
pub fn normalize(wdir: &str, path: &str) -> String {
    let mut absolute = false;
    let mut parts: Vec<String> = Vec::new();
    for comp in Path::new(wdir).join(path).components() {
        match comp {
            Component::ParentDir => match parts.last() {
                Some(last) if last != ".." => drop(parts.pop()),
                // `/..` is `/`.
                _ if absolute => {}
                _ => parts.push("..".into()),
            },
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::RootDir => absolute = true,
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
    match (absolute, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".into(),
        (false, false) => parts.join("/"),
    }
}

/// The absolute `path` with every symlink along it followed, like `realpath -m`: the parts
/// that do not exist yet are taken as written, so the result is where a write to `path`
/// would land, or what removing it would remove.
pub fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    /// Linux's own limit on links followed while resolving one path.
    const MAX_LINKS: usize = 40;
    let one = |c: Component| PathBuf::from(c.as_os_str());
    let mut pending: Vec<PathBuf> = path.components().rev().map(one).collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(next) = pending.pop() {
        match next.components().next() {
            Some(Component::RootDir) => resolved = PathBuf::from("/"),
            Some(Component::ParentDir) => drop(resolved.pop()),
            Some(Component::Normal(name)) => {
                let candidate = resolved.join(name);
                if std::fs::symlink_metadata(&candidate).is_ok_and(|m| m.is_symlink()) {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(nix::errno::Errno::ELOOP.into());
                    }
                    // A relative target continues from the link's folder, which `resolved` is.
                    pending.extend(std::fs::read_link(&candidate)?.components().rev().map(one));
                } else {
                    resolved = candidate;
                }
            }
            Some(Component::CurDir | Component::Prefix(_)) | None => {}
        }
    }
    Ok(resolved)
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
        assert_eq!(normalize(".", "../../x"), "../../x");
        assert_eq!(normalize("sub", "../../x"), "../x");
        assert_eq!(normalize("..", "a/../../x"), "../../x");
        assert_eq!(normalize(".", "a/.."), ".");
        assert_eq!(normalize("sub", "/abs/../p"), "/p");
        assert_eq!(normalize(".", "/.."), "/");
        assert!(is_within("data/prepared/f1.txt", "data/prepared"));
        assert!(!is_within("data/prepared2", "data/prepared"));
    }

    #[test]
    fn resolves_links_along_the_path_and_keeps_missing_parts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("repo/data")).unwrap();
        std::fs::create_dir(root.join("outside")).unwrap();
        std::os::unix::fs::symlink("../outside", root.join("repo/out")).unwrap();
        std::os::unix::fs::symlink(root.join("repo/data"), root.join("repo/abs")).unwrap();
        std::os::unix::fs::symlink("nowhere/../../gone", root.join("repo/dangling")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("repo/loop")).unwrap();
        let check = |rel: &str, want: PathBuf| assert_eq!(resolve(&root.join(rel)).unwrap(), want, "{rel}");
        check("repo/data/new/file", root.join("repo/data/new/file"));
        check("repo/out/x", root.join("outside/x"));
        check("repo/abs/x", root.join("repo/data/x"));
        check("repo/dangling", root.join("gone"));
        check("repo/data/../out", root.join("outside"));
        let err = resolve(&root.join("repo/loop/x")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::ELOOP), "{err}");
    }
}
