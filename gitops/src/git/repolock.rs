//! The lock every git write of ours holds, and git's own `*.lock` files left by a writer that
//! was killed (a SIGKILL while libgit2 updates a ref or the index leaves `refs/heads/main.lock`
//! or `index.lock` behind, and every later write fails on it).
//!
//! Every local git write of this crate (a commit, a branch move and its checkout, a
//! remote-tracking ref, a fetch's download, which rewrites `.git/shallow`) runs under an OS
//! lock (`flock`) on `.git/gitops.flock`, held for the write only (a push's upload writes
//! nothing here and runs without it). While it is held the file says who holds it and since
//! when (`<pid> <unix nanoseconds>`), and a holder that finishes empties it. The kernel drops
//! the lock of a killed process, but the file keeps naming it: the next holder then knows that
//! the git lock files at least as new as that write were left by it (no writer of ours is
//! alive, and the write they belong to was cut short), removes them and goes on.
//!
//! A lock file that no dead write of ours explains belongs to another git process (a person's
//! `git`, a writer of an older version): a write that meets one retries with backoff, removes
//! it once it is older than [`STALE_AFTER`] (git holds its locks for milliseconds), and
//! otherwise fails naming it. `pipeline fsck` reports such files and `--repair` removes them.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fs4::fs_std::FileExt;
use git2::{ErrorCode, Repository};

use super::GitError;

/// The OS lock file inside the git directory.
pub const LOCK_FILE: &str = "gitops.flock";
/// Age after which a git lock file that no write of ours explains is taken for abandoned.
pub const STALE_AFTER: Duration = Duration::from_secs(60);
/// Slack for file system timestamps that are coarser than the clock.
const CLOCK_SLACK: Duration = Duration::from_secs(1);
/// Tries of a write that meets a lock file held by another git process.
const LOCKED_ATTEMPTS: u32 = 6;
const LOCKED_BACKOFF: Duration = Duration::from_millis(50);

/// The repository's writer lock, held until dropped. See the module docs.
#[derive(Debug)]
pub struct RepoLock {
    file: File,
}

impl RepoLock {
    /// Takes the lock of the repository whose git directory is `git_dir` (blocking while another
    /// thread or process of ours writes), first removing what a killed holder left behind.
    pub fn acquire(git_dir: &Path) -> Result<Self, GitError> {
        let path = git_dir.join(LOCK_FILE);
        let io = |source| GitError::Io { path: path.clone(), source };
        let file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path).map_err(io)?;
        FileExt::lock_exclusive(&file).map_err(io)?;
        if let Some(since) = dead_holder(&file).map_err(io)? {
            for stale in lock_files(git_dir)?.into_iter().filter(|l| l.modified + CLOCK_SLACK >= since) {
                tracing::warn!(path = %stale.path.display(), "removing a git lock left by a writer that was killed");
                remove(&stale.path)?;
            }
        }
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let mark = format!("{} {nanos}\n", std::process::id());
        file.set_len(0).and_then(|()| file.write_all_at(mark.as_bytes(), 0)).map_err(io)?;
        Ok(Self { file })
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = FileExt::unlock(&self.file);
    }
}

/// When the write of a holder that died started, from the lock file's text.
fn dead_holder(file: &File) -> io::Result<Option<SystemTime>> {
    let len = file.metadata()?.len().min(256);
    if len == 0 {
        return Ok(None);
    }
    let mut bytes = vec![0; usize::try_from(len).unwrap_or(256)];
    file.read_exact_at(&mut bytes, 0)?;
    let text = String::from_utf8_lossy(&bytes);
    // An unreadable note still means a holder died: everything it may have left is suspect.
    let nanos = text.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    Ok(Some(UNIX_EPOCH + Duration::from_nanos(nanos)))
}

/// A git lock file (`*.lock`) and when it was last written.
#[derive(Debug, Clone)]
pub struct GitLockFile {
    pub path: PathBuf,
    pub modified: SystemTime,
}

impl GitLockFile {
    /// How long ago it was written.
    pub fn age(&self) -> Duration {
        SystemTime::now().duration_since(self.modified).unwrap_or_default()
    }
}

/// The git lock files of the repository whose git directory is `git_dir`: those at its top
/// (`index.lock`, `HEAD.lock`, `packed-refs.lock`, `config.lock`, ...) and under `refs/` and
/// `logs/`, where git locks what it writes.
pub fn lock_files(git_dir: &Path) -> Result<Vec<GitLockFile>, GitError> {
    let mut out = Vec::new();
    collect(git_dir, false, &mut out)?;
    for dir in ["refs", "logs"] {
        collect(&git_dir.join(dir), true, &mut out)?;
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn collect(dir: &Path, recurse: bool, out: &mut Vec<GitLockFile>) -> Result<(), GitError> {
    let io = |source| GitError::Io { path: dir.to_path_buf(), source };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io)?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(e)),
        };
        if meta.is_dir() {
            if recurse {
                collect(&entry.path(), true, out)?;
            }
        } else if entry.file_name().to_string_lossy().ends_with(".lock") {
            out.push(GitLockFile { path: entry.path(), modified: meta.modified().map_err(io)? });
        }
    }
    Ok(())
}

/// Removes a git lock file; one already gone is fine.
pub fn remove(path: &Path) -> Result<(), GitError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(GitError::Io { path: path.to_path_buf(), source: e }),
        _ => Ok(()),
    }
}

/// Runs the local git write `write` under the [`RepoLock`] of `repo`. When it fails on a git
/// lock file of another process, it is retried with backoff; lock files older than
/// [`STALE_AFTER`] are removed first; one that stays is reported as [`GitError::Locked`].
pub(crate) fn write<T>(repo: &Repository, mut write: impl FnMut() -> Result<T, GitError>) -> Result<T, GitError> {
    let mut backoff = LOCKED_BACKOFF;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let lock = RepoLock::acquire(repo.path())?;
        let locked = match write() {
            Err(GitError::Git(e)) if e.code() == ErrorCode::Locked => e,
            other => return other,
        };
        let held = lock_files(repo.path())?;
        let mut removed = false;
        for stale in held.iter().filter(|l| l.age() >= STALE_AFTER) {
            tracing::warn!(path = %stale.path.display(), age = ?stale.age(), "removing an abandoned git lock");
            remove(&stale.path)?;
            removed = true;
        }
        drop(lock);
        if attempt >= LOCKED_ATTEMPTS {
            let paths = held.into_iter().map(|l| l.path).collect();
            return Err(GitError::Locked { paths, reason: locked.message().to_string() });
        }
        if !removed {
            std::thread::sleep(backoff);
            backoff *= 2;
        }
    }
}
