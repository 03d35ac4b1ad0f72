//! Tracked-path state. For each hashed directory, a fingerprint: an md5 over every file's relative path
//! and (inode, mtime, size) in `readdir` order, next to the directory's `.dir` md5. When a
//! later walk finds the same fingerprint nothing in the directory changed, so its md5 is
//! reused without looking up, sorting and listing 60,000 entries again. Any change (a file
//! added, removed, renamed or rewritten, a `.dvcignore` edit, even a new `readdir` order)
//! gives another fingerprint and the directory is hashed in full. For each tracked file
//! (a dep or out that is a file), its stamp and md5, so a no-op run need not load the big
//! per-file state of `state`. Stored in `.dvc/tmp/repro-dirs` as JSON; a missing or
//! unreadable file is an empty state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::Result;
use crate::fsutil::write_atomic;
use crate::state::Stamp;

/// What a directory hashed to, and the fingerprint it had then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownDir {
    pub fingerprint: [u8; 16],
    pub md5: String,
    pub size: u64,
    pub nfiles: u64,
}

/// Absolute path -> what the directory or file there hashed to last time.
pub struct DirState {
    path: PathBuf,
    dirs: HashMap<String, KnownDir>,
    files: HashMap<String, (Stamp, [u8; 16])>,
    dirty: bool,
}

impl DirState {
    /// Loads the fingerprints under `tmp_dir`.
    pub fn load(tmp_dir: &Path) -> DirState {
        let path = tmp_dir.join("repro-dirs");
        let json: Value =
            std::fs::read(&path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
        let section = |name: &str| json.get(name).and_then(Value::as_object).into_iter().flatten();
        let dirs = section("dirs").filter_map(|(k, v)| Some((k.clone(), parse_dir(v)?))).collect();
        let files = section("files").filter_map(|(k, v)| Some((k.clone(), parse_file(v)?))).collect();
        DirState { path, dirs, files, dirty: false }
    }

    /// The md5 of a tracked file whose stamp has not changed.
    pub fn file(&self, path: &str, stamp: &Stamp) -> Option<[u8; 16]> {
        self.files.get(path).filter(|(s, _)| s == stamp).map(|(_, md5)| *md5)
    }

    /// Remembers a tracked file's stamp and md5.
    pub fn insert_file(&mut self, path: String, stamp: Stamp, md5: [u8; 16]) {
        if self.files.get(&path) != Some(&(stamp, md5)) {
            self.files.insert(path, (stamp, md5));
            self.dirty = true;
        }
    }

    /// The directory's md5 when its fingerprint has not changed.
    pub fn get(&self, dir: &str, fingerprint: &[u8; 16]) -> Option<&KnownDir> {
        self.dirs.get(dir).filter(|k| &k.fingerprint == fingerprint)
    }

    /// Remembers what the directory hashed to.
    pub fn insert(&mut self, dir: String, known: KnownDir) {
        if self.dirs.get(&dir) != Some(&known) {
            self.dirs.insert(dir, known);
            self.dirty = true;
        }
    }

    /// Writes the map back (atomically) if anything changed.
    pub fn save(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let dirs: serde_json::Map<String, Value> = self
            .dirs
            .iter()
            .map(|(k, d)| (k.clone(), json!([hex::encode(d.fingerprint), d.md5, d.size, d.nfiles])))
            .collect();
        let files: serde_json::Map<String, Value> = self
            .files
            .iter()
            .map(|(k, (s, md5))| (k.clone(), json!([s.inode, s.mtime_ns, s.size, hex::encode(md5)])))
            .collect();
        let json = json!({ "dirs": dirs, "files": files });
        write_atomic(&self.path, &serde_json::to_vec(&json).expect("a JSON map serializes"))?;
        self.dirty = false;
        Ok(())
    }
}

fn parse_file(v: &Value) -> Option<(Stamp, [u8; 16])> {
    let [inode, mtime_ns, size, md5] = v.as_array()?.as_slice() else { return None };
    let mut bytes = [0u8; 16];
    hex::decode_to_slice(md5.as_str()?, &mut bytes).ok()?;
    Some((Stamp { inode: inode.as_u64()?, mtime_ns: mtime_ns.as_i64()?, size: size.as_u64()? }, bytes))
}

fn parse_dir(v: &Value) -> Option<KnownDir> {
    let [fp, md5, size, nfiles] = v.as_array()?.as_slice() else { return None };
    let mut fingerprint = [0u8; 16];
    hex::decode_to_slice(fp.as_str()?, &mut fingerprint).ok()?;
    Some(KnownDir { fingerprint, md5: md5.as_str()?.to_owned(), size: size.as_u64()?, nfiles: nfiles.as_u64()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_survive_a_save_and_a_changed_one_misses() {
        let tmp = tempfile::tempdir().unwrap();
        let known = KnownDir { fingerprint: [7; 16], md5: "abc.dir".into(), size: 10, nfiles: 2 };
        let mut state = DirState::load(tmp.path());
        state.insert("/repo/data".into(), known.clone());
        state.save().unwrap();
        let again = DirState::load(tmp.path());
        assert_eq!(again.get("/repo/data", &[7; 16]), Some(&known));
        assert_eq!(again.get("/repo/data", &[8; 16]), None);
        assert_eq!(again.get("/repo/other", &[7; 16]), None);
    }

    #[test]
    fn a_file_is_known_only_with_the_same_stamp() {
        let tmp = tempfile::tempdir().unwrap();
        let stamp = Stamp { inode: 12, mtime_ns: 1_700_000_000_123_456_789, size: 5 };
        let mut state = DirState::load(tmp.path());
        state.insert_file("/repo/params.yaml".into(), stamp, [3; 16]);
        state.save().unwrap();
        let again = DirState::load(tmp.path());
        assert_eq!(again.file("/repo/params.yaml", &stamp), Some([3; 16]));
        assert_eq!(again.file("/repo/params.yaml", &Stamp { size: 6, ..stamp }), None);
    }

    #[test]
    fn an_unreadable_file_is_an_empty_map() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("repro-dirs"), b"{not json").unwrap();
        assert_eq!(DirState::load(tmp.path()).get("/x", &[0; 16]), None);
    }
}
