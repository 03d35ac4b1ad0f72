//! DVC 3 hashing: md5 of a file's bytes; for a directory, md5 of its `.dir` listing
//! (`[{"md5": .., "relpath": ..}]` sorted by relpath, as Python's `json.dumps` writes it).
//! Files are hashed in parallel and looked up in the state cache first.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use md5::{Digest, Md5};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::ignore::{DVCIGNORE, Ignores};
use crate::pyjson::write_str;
use crate::state::{Stamp, State};

/// One file inside a hashed directory.
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub relpath: String,
    pub md5: [u8; 16],
    pub size: u64,
}

impl DirEntry {
    /// The entry's md5 in hex, as cache object names use it.
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }
}

/// The hash of a file or directory, with the metadata DVC records next to it.
#[derive(Clone, Debug)]
pub enum Hashed {
    File { md5: String, size: u64, isexec: bool },
    Dir { md5: String, size: u64, nfiles: u64, entries: Arc<[DirEntry]>, listing: Arc<[u8]> },
}

impl Hashed {
    /// The md5 as DVC writes it (`<md5>.dir` for directories).
    pub fn md5(&self) -> &str {
        match self {
            Hashed::File { md5, .. } | Hashed::Dir { md5, .. } => md5,
        }
    }
}

/// Computes hashes, consulting and feeding the state cache.
pub struct Hasher {
    root: PathBuf,
    state: State,
}

struct Found {
    relpath: String,
    entry: std::fs::DirEntry,
    symlink: bool,
}

impl Hasher {
    /// A hasher for the repo at `root`, with its state cache under `.dvc/tmp`.
    pub fn new(root: &Path) -> Hasher {
        Hasher { root: root.to_path_buf(), state: State::load(&root.join(".dvc").join("tmp")) }
    }

    /// Saves the state cache.
    pub fn save_state(&mut self) -> Result<()> {
        self.state.save()
    }

    /// Hashes a file or directory; `None` when it does not exist.
    pub fn hash(&mut self, path: &Path) -> Result<Option<Hashed>> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Io { path: path.to_path_buf(), source: e }),
        };
        if meta.is_dir() {
            return self.hash_dir(path).map(Some);
        }
        let stamp = Stamp::of(&meta);
        let md5 = match self.state.get(&stamp) {
            Some(m) => m,
            None => {
                let m = md5_file(path)?;
                self.state.insert(stamp, m);
                m
            }
        };
        let isexec = meta.permissions().mode() & 0o111 != 0;
        Ok(Some(Hashed::File { md5: hex::encode(md5), size: meta.len(), isexec }))
    }

    fn hash_dir(&mut self, dir: &Path) -> Result<Hashed> {
        let mut found = Vec::new();
        walk(dir, "", &Ignores::for_dir(&self.root, dir), &mut found)?;
        let state = &self.state;
        // (relpath, size, freshly computed stamp+md5 for the state, md5)
        type Hashed1 = (String, u64, Option<(Stamp, [u8; 16])>, [u8; 16]);
        let hashed: Vec<Hashed1> = found
            .into_par_iter()
            .map(|f| {
                let meta = if f.symlink { std::fs::metadata(f.entry.path()) } else { f.entry.metadata() };
                let meta = meta.map_err(Error::io(f.entry.path()))?;
                let stamp = Stamp::of(&meta);
                Ok(match state.get(&stamp) {
                    Some(md5) => (f.relpath, meta.len(), None, md5),
                    None => {
                        let md5 = md5_file(&f.entry.path())?;
                        (f.relpath, meta.len(), Some((stamp, md5)), md5)
                    }
                })
            })
            .collect::<Result<_>>()?;
        let mut entries = Vec::with_capacity(hashed.len());
        for (relpath, size, fresh, md5) in hashed {
            if let Some((stamp, md5)) = fresh {
                self.state.insert(stamp, md5);
            }
            entries.push(DirEntry { relpath, md5, size });
        }
        entries.par_sort_unstable_by(|a, b| a.relpath.cmp(&b.relpath));
        let listing = dir_listing(&entries);
        let md5 = format!("{}.dir", hex::encode(Md5::digest(&listing)));
        let size = entries.iter().map(|e| e.size).sum();
        Ok(Hashed::Dir { md5, size, nfiles: entries.len() as u64, entries: entries.into(), listing: listing.into() })
    }
}

/// The bytes of a `.dir` object: `json.dumps(entries, sort_keys=True)`.
pub fn dir_listing(entries: &[DirEntry]) -> Vec<u8> {
    let mut out = String::with_capacity(entries.len() * 80 + 2);
    out.push('[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"md5\": \"");
        let mut hex_buf = [0u8; 32];
        hex::encode_to_slice(e.md5, &mut hex_buf).expect("32 bytes hold 16 in hex");
        out.push_str(std::str::from_utf8(&hex_buf).expect("hex is ASCII"));
        out.push_str("\", \"relpath\": ");
        write_str(&mut out, &e.relpath);
        out.push('}');
    }
    out.push(']');
    out.into_bytes()
}

fn walk(dir: &Path, prefix: &str, ignores: &Ignores, out: &mut Vec<Found>) -> Result<()> {
    let mut ignores_here;
    let mut ignores = ignores;
    if !prefix.is_empty() && dir.join(DVCIGNORE).is_file() {
        ignores_here = ignores.clone();
        ignores_here.push_dir(dir);
        ignores = &ignores_here;
    }
    let rd = std::fs::read_dir(dir).map_err(Error::io(dir))?;
    for entry in rd {
        let entry = entry.map_err(Error::io(dir))?;
        let ft = entry.file_type().map_err(Error::io(entry.path()))?;
        let symlink = ft.is_symlink();
        let is_dir = if symlink { entry.path().is_dir() } else { ft.is_dir() };
        let name = entry.file_name().to_string_lossy().into_owned();
        if ignores.is_ignored(dir, &name, is_dir) {
            continue;
        }
        let relpath = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        if is_dir {
            walk(&entry.path(), &relpath, ignores, out)?;
        } else {
            out.push(Found { relpath, entry, symlink });
        }
    }
    Ok(())
}

/// The md5 of a file's bytes.
pub fn md5_file(path: &Path) -> Result<[u8; 16]> {
    let mut f = File::open(path).map_err(Error::io(path))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(Error::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}
