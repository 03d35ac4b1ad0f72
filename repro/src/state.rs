//! The state cache: md5s of files keyed by (inode, mtime, size), so an unchanged file is
//! never read twice. Stored in `.dvc/tmp/repro-state`, a small binary file.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fsutil::write_atomic;

const MAGIC: &[u8; 8] = b"RPSTATE1";
const RECORD: usize = 8 + 8 + 8 + 16;
/// Beyond this many entries the oldest generation is dropped on save.
const MAX_ENTRIES: usize = 4_000_000;

/// What identifies a file version without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub inode: u64,
    pub mtime_ns: i64,
    pub size: u64,
}

impl Stamp {
    /// The stamp of a file's metadata.
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp { inode: meta.ino(), mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(), size: meta.size() }
    }
}

/// inode -> (stamp, md5), loaded once per run and saved when new hashes were added.
pub struct State {
    path: PathBuf,
    map: HashMap<u64, (Stamp, [u8; 16])>,
    dirty: bool,
}

impl State {
    /// Loads the state file under `tmp_dir`; a missing or unreadable file is an empty state.
    pub fn load(tmp_dir: &Path) -> State {
        let path = tmp_dir.join("repro-state");
        let mut map = HashMap::new();
        if let Ok(bytes) = std::fs::read(&path)
            && bytes.len() >= MAGIC.len()
            && &bytes[..MAGIC.len()] == MAGIC
        {
            map.reserve((bytes.len() - MAGIC.len()) / RECORD);
            for rec in bytes[MAGIC.len()..].chunks_exact(RECORD) {
                let u = |i: usize| u64::from_le_bytes(rec[i..i + 8].try_into().expect("8 bytes"));
                let stamp = Stamp { inode: u(0), mtime_ns: u(8) as i64, size: u(16) };
                let md5: [u8; 16] = rec[24..40].try_into().expect("16 bytes");
                map.insert(stamp.inode, (stamp, md5));
            }
        }
        State { path, map, dirty: false }
    }

    /// The remembered md5 of a file whose stamp has not changed.
    pub fn get(&self, stamp: &Stamp) -> Option<[u8; 16]> {
        self.map.get(&stamp.inode).filter(|(s, _)| s == stamp).map(|(_, md5)| *md5)
    }

    /// Remembers a freshly computed md5.
    pub fn insert(&mut self, stamp: Stamp, md5: [u8; 16]) {
        if self.map.insert(stamp.inode, (stamp, md5)).is_none_or(|(s, m)| s != stamp || m != md5) {
            self.dirty = true;
        }
    }

    /// Writes the state back (atomically) if anything was added.
    pub fn save(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if self.map.len() > MAX_ENTRIES {
            self.map.clear();
        }
        let mut out = Vec::with_capacity(MAGIC.len() + self.map.len() * RECORD);
        out.extend_from_slice(MAGIC);
        for (stamp, md5) in self.map.values() {
            out.extend_from_slice(&stamp.inode.to_le_bytes());
            out.extend_from_slice(&(stamp.mtime_ns as u64).to_le_bytes());
            out.extend_from_slice(&stamp.size.to_le_bytes());
            out.extend_from_slice(md5);
        }
        write_atomic(&self.path, &out)?;
        self.dirty = false;
        Ok(())
    }
}
