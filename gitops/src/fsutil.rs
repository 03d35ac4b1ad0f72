//! Durable file primitives: write to a temp file, fsync, rename, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// This process's token: `p<pid>t<start time in hex nanoseconds>`, unique even when a pid is
/// reused, and free of `-` (the separator in [`unique_name`]).
pub(crate) fn process_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        format!("p{}t{nanos:x}", std::process::id())
    })
}

/// A file name unique across threads and processes: `<process token>-<counter><suffix>`. The
/// token before the first `-` says which process made it (see `feedback::owner`).
pub(crate) fn unique_name(suffix: &str) -> String {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}{suffix}", process_token())
}

/// Writes `bytes` to a new file at `path`, not synced: the caller fsyncs it before renaming.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    OpenOptions::new().write(true).create_new(true).open(path)?.write_all(bytes)
}

/// Writes `bytes` to a new file at `path` and fsyncs it (no rename, no directory sync).
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Replaces `path` with `bytes` atomically and durably: temp file in `tmp_dir` (same
/// filesystem), fsync, rename over `path`, fsync `path`'s directory.
pub(crate) fn replace_durable(path: &Path, bytes: &[u8], tmp_dir: &Path) -> io::Result<()> {
    let tmp = tmp_dir.join(unique_name(".tmp"));
    write_synced(&tmp, bytes)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(parent(path))
}

/// Puts `spare` in place of `path` atomically without freeing an inode: the two are swapped
/// (`renameat2(RENAME_EXCHANGE)`), so `spare` then holds the old contents, to be overwritten
/// next time. An ext4 without a journal skips every inode freed in the last minute when it
/// allocates one, so a rename over `path` on every write would make each new file in the
/// store slower than the last. Falls back to a plain rename where the exchange is not
/// supported or `path` does not exist yet.
pub(crate) fn exchange_or_rename(spare: &Path, path: &Path) -> io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::errno::Errno;
        use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
        match renameat2(AT_FDCWD, spare, AT_FDCWD, path, RenameFlags::RENAME_EXCHANGE) {
            Ok(()) => return Ok(()),
            Err(Errno::ENOENT | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    fs::rename(spare, path)
}

/// Fsyncs every file and directory in `paths` concurrently, so that the filesystem can
/// serve them with one journal commit; returns the first error.
pub(crate) fn sync_all_parallel(paths: &[&Path]) -> Result<(), (std::path::PathBuf, io::Error)> {
    if let [one] = paths {
        return File::open(one).and_then(|f| f.sync_all()).map_err(|e| (one.to_path_buf(), e));
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .iter()
            .map(|p| s.spawn(move || File::open(p).and_then(|f| f.sync_all()).map_err(|e| (p.to_path_buf(), e))))
            .collect();
        handles.into_iter().try_for_each(|h| h.join().expect("fsync threads do not panic"))
    })
}

/// Fsyncs a directory so that renames and creations inside it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` (and missing parents), fsyncing each new directory's parent.
pub(crate) fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    create_dir_durable(parent(dir))?;
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent(dir)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spare_takes_the_place_and_keeps_the_old_contents() {
        let dir = tempfile::tempdir().unwrap();
        let (spare, path) = (dir.path().join("spare"), dir.path().join("count.json"));
        fs::write(&spare, "first").unwrap();
        exchange_or_rename(&spare, &path).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "first", "no file yet: a plain rename");
        fs::write(&spare, "second").unwrap();
        exchange_or_rename(&spare, &path).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(fs::read_to_string(&spare).unwrap(), "first", "swapped, not freed");
    }
}
