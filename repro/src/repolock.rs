//! The repo lock, `.dvc/tmp/lock`, the same file and `flock` DVC's zc.lockfile uses, so
//! this runner and DVC exclude each other; a second run fails with "locked by pid N". A stage's
//! own command (`DVC_STAGE` set, `DVC_ROOT` this repo) works under the lock its repro holds.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Held for the duration of a status or repro; released on drop.
#[derive(Debug)]
pub struct RepoLock {
    /// `None` inside a stage of a repro of this repo, which holds the lock for it.
    file: Option<File>,
}

impl RepoLock {
    /// Takes the lock or fails at once naming the pid that holds it.
    pub fn acquire(root: &Path) -> Result<RepoLock> {
        if held_by_parent_repro(root) {
            return Ok(RepoLock { file: None });
        }
        let dir = root.join(".dvc").join("tmp");
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                let pid = s.trim().to_owned();
                return Err(Error::Locked { pid: if pid.is_empty() { "unknown".into() } else { pid }, path });
            }
            Err(TryLockError::Error(e)) => return Err(Error::Io { path, source: e }),
        }
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.seek(SeekFrom::Start(0))?;
            writeln!(f, " {}", std::process::id())
        };
        write(&mut file).map_err(Error::io(&path))?;
        Ok(RepoLock { file: Some(file) })
    }
}

/// Whether this process is a stage command that a repro of `root` runs (it sets `DVC_ROOT` and
/// `DVC_STAGE`, as DVC does, and holds the lock until the stage ends).
fn held_by_parent_repro(root: &Path) -> bool {
    let (Some(parent_root), Some(_)) = (std::env::var_os("DVC_ROOT"), std::env::var_os("DVC_STAGE")) else {
        return false;
    };
    let same = |p: &Path| p.canonicalize().ok();
    same(Path::new(&parent_root)).is_some_and(|p| Some(p) == same(root))
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            let _ = file.set_len(0);
            let _ = file.unlock();
        }
    }
}
