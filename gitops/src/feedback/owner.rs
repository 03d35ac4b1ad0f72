//! Who owns the temp files in `new_data/.tmp/`, so that those of a process that died can be
//! removed at once and those of a live one never are.
//!
//! Every temp name starts with its process's token (`fsutil::unique_name`). Before a process
//! writes its first temp file outside the store lock (a sample being prepared), it creates
//! `.tmp/<token>.owner` already locked (an OS lock, taken under another name, then renamed into
//! place) and keeps it locked until it exits; the kernel drops the lock however the process
//! ends. A temp file whose owner file is unlocked, or gone, belongs to a dead process, and so
//! does one written under the store lock by a process that owns none, once the lock is ours.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use fs4::fs_std::FileExt;

use super::layout::COUNT_SPARE;
use crate::fsutil;

const OWNER: &str = ".owner";

/// The owner files this process holds, by temp folder; never closed before the process exits.
static HELD: Mutex<Option<HashMap<PathBuf, File>>> = Mutex::new(None);

/// Makes this process the owner of the temp files it writes in `tmp_dir` (once per folder).
pub(crate) fn claim(tmp_dir: &Path) -> io::Result<()> {
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    let held = held.get_or_insert_with(HashMap::new);
    let path = tmp_dir.join(format!("{}{OWNER}", fsutil::process_token()));
    if held.contains_key(tmp_dir) && path.exists() {
        return Ok(());
    }
    // Until the rename, this process owns nothing, so another one cleaning up orphans (under
    // the store lock) may take the staging file for a dead writer's and remove it: then again.
    let mut attempts = 0;
    loop {
        let staging = tmp_dir.join(fsutil::unique_name(".owner-new"));
        let file = OpenOptions::new().write(true).create_new(true).open(&staging)?;
        FileExt::lock_exclusive(&file)?;
        match fs::rename(&staging, &path) {
            Ok(()) => {
                held.insert(tmp_dir.to_path_buf(), file);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 10 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The temp files in `tmp_dir` left by processes that are gone, and the owner files of those
/// processes (a process that exits normally leaves its owner file too: that is no issue, only
/// litter). The spare `count.json` and anything of a live process are in neither.
pub(crate) fn orphans(tmp_dir: &Path) -> io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut by_token: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let entries = match fs::read_dir(tmp_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == COUNT_SPARE {
            continue;
        }
        let token = name.split(['-', '.']).next().unwrap_or_default().to_string();
        by_token.entry(token).or_default().push(entry.path());
    }
    let (mut temps, mut owners) = (Vec::new(), Vec::new());
    for (token, files) in by_token {
        if token == fsutil::process_token() || alive(&tmp_dir.join(format!("{token}{OWNER}")))? {
            continue;
        }
        let (own, rest): (Vec<_>, Vec<_>) =
            files.into_iter().partition(|p| p.extension().is_some_and(|e| e == "owner"));
        temps.extend(rest);
        owners.extend(own);
    }
    Ok((temps, owners))
}

/// Whether a process holds the lock on `owner` (a missing owner file means none does).
fn alive(owner: &Path) -> io::Result<bool> {
    let file = match File::open(owner) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match FileExt::try_lock_exclusive(&file) {
        Ok(true) => Ok(false),
        Ok(false) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(e) => Err(e),
    }
}

/// Removes [`orphans`], temp files first (while the owner file is there, a crash halfway
/// leaves the rest findable); returns how many temp files went. A file another process removed
/// first is not an error.
pub(crate) fn remove_orphans(tmp_dir: &Path) -> io::Result<usize> {
    let (temps, owners) = orphans(tmp_dir)?;
    for path in temps.iter().chain(&owners) {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(temps.len())
}
