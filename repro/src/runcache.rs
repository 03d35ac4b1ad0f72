//! DVC's run cache, `.dvc/cache/runs/<k[:2]>/<k>/<v>`: the lock entries of earlier runs,
//! keyed by the sha256 of the stage's command, dependencies and output paths, so outputs
//! can be restored from the cache instead of rerunning a command.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::lockfile::StageLock;
use crate::pyjson;
use crate::yaml::{self, Value};

/// The run cache of one repo.
pub struct RunCache {
    dir: PathBuf,
}

/// DVC's `dict_sha256(d, exclude=["size", "nfiles"])`.
fn dict_sha256(v: &Value) -> String {
    fn filter(v: &Value) -> Value {
        match v {
            Value::Map(m) => Value::Map(
                m.iter().filter(|(k, _)| k != "size" && k != "nfiles").map(|(k, v)| (k.clone(), filter(v))).collect(),
            ),
            Value::List(l) => Value::List(l.iter().map(filter).collect()),
            other => other.clone(),
        }
    }
    hex::encode(Sha256::digest(pyjson::dumps(&filter(v)).as_bytes()))
}

/// The key of a lock entry: everything but the output hashes.
pub fn key(lock: &StageLock) -> String {
    let mut v = lock.to_value();
    if let Value::Map(m) = &mut v {
        for (k, val) in m.iter_mut() {
            if k == "outs"
                && let Value::List(outs) = val
            {
                let paths = outs.iter().filter_map(|o| o.get("path").cloned()).collect();
                *val = Value::List(paths);
            }
        }
    }
    dict_sha256(&v)
}

impl RunCache {
    /// The run cache of the repo at `root`.
    pub fn new(root: &Path) -> RunCache {
        RunCache { dir: root.join(".dvc").join("cache").join("runs") }
    }

    /// Records a finished run (a no-op when the same entry is already there).
    pub fn save(&self, lock: &StageLock) -> Result<()> {
        let k = key(lock);
        let value = lock.to_value();
        let path = self.dir.join(&k[..2]).join(&k).join(dict_sha256(&value));
        if path.exists() {
            return Ok(());
        }
        write_atomic(&path, yaml::dump(&value).as_bytes())
    }

    /// The newest recorded run with the same key as `lock` (whose outs need only paths).
    pub fn lookup(&self, lock: &StageLock) -> Result<Option<StageLock>> {
        let k = key(lock);
        let dir = self.dir.join(&k[..2]).join(&k);
        let Ok(rd) = std::fs::read_dir(&dir) else { return Ok(None) };
        let newest = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .filter(|(_, p)| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .max_by_key(|(t, _)| *t);
        let Some((_, path)) = newest else { return Ok(None) };
        let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
        Ok(StageLock::from_value(&yaml::load(&text, &path)?.to_value()))
    }
}
