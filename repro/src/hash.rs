//! DVC 3 hashing: md5 of a file's bytes; for a directory, md5 of its `.dir` listing
//! (`[{"md5": .., "relpath": ..}]` sorted by relpath, as Python's `json.dumps` writes it).
//! Files are stat-ed and hashed in parallel and looked up in the state cache first; a
//! directory whose fingerprint is unchanged reuses its md5 (see `dirstate`).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use md5::{Digest, Md5};
use rayon::prelude::*;

use crate::dirstate::{DirState, KnownDir};
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
    File {
        md5: String,
        size: u64,
        isexec: bool,
    },
    /// `contents` is `None` when the md5 came from the directory's unchanged fingerprint.
    Dir {
        md5: String,
        size: u64,
        nfiles: u64,
        contents: Option<DirContents>,
    },
}

/// The files of a hashed directory and the bytes of its `.dir` listing.
#[derive(Clone, Debug)]
pub struct DirContents {
    pub entries: Arc<[DirEntry]>,
    pub listing: Arc<[u8]>,
}

impl Hashed {
    /// The md5 as DVC writes it (`<md5>.dir` for directories).
    pub fn md5(&self) -> &str {
        match self {
            Hashed::File { md5, .. } | Hashed::Dir { md5, .. } => md5,
        }
    }
}

/// Computes hashes, consulting and feeding the state cache and the directory fingerprints.
pub struct Hasher {
    root: PathBuf,
    tmp_dir: PathBuf,
    /// Loaded on first use: a no-op run over unchanged directories never needs it.
    state: Option<State>,
    dirs: DirState,
}

/// A file met by the walk, not yet stat-ed.
struct Found {
    relpath: String,
    entry: std::fs::DirEntry,
    symlink: bool,
}

/// A file of a hashed directory with its stamp (the target's, for a symlink).
struct Statted {
    relpath: String,
    stamp: Stamp,
}

/// Files per stat task: the walk hands batches to rayon's threads as it goes.
const STAT_BATCH: usize = 2048;

impl Hasher {
    /// A hasher for the repo at `root`, with its state under `.dvc/tmp`.
    pub fn new(root: &Path) -> Hasher {
        let tmp_dir = root.join(".dvc").join("tmp");
        Hasher { root: root.to_path_buf(), dirs: DirState::load(&tmp_dir), tmp_dir, state: None }
    }

    /// Saves the state cache and the directory fingerprints.
    pub fn save_state(&mut self) -> Result<()> {
        if let Some(state) = &mut self.state {
            state.save()?;
        }
        self.dirs.save()
    }

    fn state(&mut self) -> &mut State {
        let tmp_dir = &self.tmp_dir;
        self.state.get_or_insert_with(|| State::load(tmp_dir))
    }

    /// Hashes a file or directory; `None` when it does not exist. An unchanged directory
    /// comes back without its contents (see [`Hasher::hash_listed`]).
    pub fn hash(&mut self, path: &Path) -> Result<Option<Hashed>> {
        self.hash_path(path, true)
    }

    /// Like [`Hasher::hash`], but a directory always comes with its contents.
    pub fn hash_listed(&mut self, path: &Path) -> Result<Option<Hashed>> {
        self.hash_path(path, false)
    }

    fn hash_path(&mut self, path: &Path, reuse_fingerprint: bool) -> Result<Option<Hashed>> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Io { path: path.to_path_buf(), source: e }),
        };
        if meta.is_dir() {
            return self.hash_dir(path, reuse_fingerprint).map(Some);
        }
        let stamp = Stamp::of(&meta);
        let key = path.to_string_lossy().into_owned();
        let md5 = match self.dirs.file(&key, &stamp) {
            Some(m) => m,
            None => {
                let m = md5_file(path)?;
                self.dirs.insert_file(key, stamp, m);
                m
            }
        };
        let isexec = meta.permissions().mode() & 0o111 != 0;
        Ok(Some(Hashed::File { md5: hex::encode(md5), size: meta.len(), isexec }))
    }

    fn hash_dir(&mut self, dir: &Path, reuse_fingerprint: bool) -> Result<Hashed> {
        let files = stat_tree(dir, &Ignores::for_dir(&self.root, dir))?;
        let fingerprint = fingerprint(&files);
        let key = dir.to_string_lossy().into_owned();
        if reuse_fingerprint && let Some(known) = self.dirs.get(&key, &fingerprint) {
            return Ok(Hashed::Dir { md5: known.md5.clone(), size: known.size, nfiles: known.nfiles, contents: None });
        }
        let state = &*self.state();
        // (relpath, size, freshly computed stamp+md5 for the state, md5)
        type Hashed1 = (String, u64, Option<(Stamp, [u8; 16])>, [u8; 16]);
        let hashed: Vec<Hashed1> = files
            .into_par_iter()
            .map(|f| {
                Ok(match state.get(&f.stamp) {
                    Some(md5) => (f.relpath, f.stamp.size, None, md5),
                    None => {
                        let md5 = md5_file(&dir.join(&f.relpath))?;
                        (f.relpath, f.stamp.size, Some((f.stamp, md5)), md5)
                    }
                })
            })
            .collect::<Result<_>>()?;
        let mut entries = Vec::with_capacity(hashed.len());
        for (relpath, size, fresh, md5) in hashed {
            if let Some((stamp, md5)) = fresh {
                self.state().insert(stamp, md5);
            }
            entries.push(DirEntry { relpath, md5, size });
        }
        entries.par_sort_unstable_by(|a, b| a.relpath.cmp(&b.relpath));
        let listing = dir_listing(&entries);
        let md5 = format!("{}.dir", hex::encode(Md5::digest(&listing)));
        let size = entries.iter().map(|e| e.size).sum();
        let nfiles = entries.len() as u64;
        self.dirs.insert(key, KnownDir { fingerprint, md5: md5.clone(), size, nfiles });
        Ok(Hashed::Dir {
            md5,
            size,
            nfiles,
            contents: Some(DirContents { entries: entries.into(), listing: listing.into() }),
        })
    }
}

/// md5 over every file's relative path and stamp, in walk order.
fn fingerprint(files: &[Statted]) -> [u8; 16] {
    let mut md5 = Md5::new();
    for f in files {
        md5.update(f.relpath.as_bytes());
        md5.update([0]);
        md5.update(f.stamp.inode.to_le_bytes());
        md5.update(f.stamp.mtime_ns.to_le_bytes());
        md5.update(f.stamp.size.to_le_bytes());
    }
    md5.finalize().into()
}

/// Walks `dir` and stats every file DVC would list, in walk order. The walk hands batches
/// of entries to rayon's threads as it goes, so reading the directory overlaps the stats.
fn stat_tree(dir: &Path, ignores: &Ignores) -> Result<Vec<Statted>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let walked = rayon::scope(|s| {
        let mut spawned = 0;
        let mut spawn = |batch: Vec<Found>| {
            let tx = tx.clone();
            let index = spawned;
            spawned += 1;
            s.spawn(move |_| drop(tx.send((index, stat_batch(batch)))));
        };
        let mut batch = Vec::with_capacity(STAT_BATCH);
        let walked = walk(dir, "", ignores, &mut |found| {
            batch.push(found);
            if batch.len() == STAT_BATCH {
                spawn(std::mem::replace(&mut batch, Vec::with_capacity(STAT_BATCH)));
            }
        });
        if !batch.is_empty() {
            spawn(batch);
        }
        walked
    });
    drop(tx);
    walked?;
    let mut batches: Vec<(usize, Result<Vec<Statted>>)> = rx.into_iter().collect();
    batches.sort_unstable_by_key(|(index, _)| *index);
    let mut files = Vec::with_capacity(batches.len() * STAT_BATCH);
    for (_, batch) in batches {
        files.extend(batch?);
    }
    Ok(files)
}

fn stat_batch(batch: Vec<Found>) -> Result<Vec<Statted>> {
    batch
        .into_iter()
        .map(|f| {
            let meta = if f.symlink { std::fs::metadata(f.entry.path()) } else { f.entry.metadata() };
            let meta = meta.map_err(|e| Error::io(f.entry.path())(e))?;
            Ok(Statted { relpath: f.relpath, stamp: Stamp::of(&meta) })
        })
        .collect()
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

fn walk(dir: &Path, prefix: &str, ignores: &Ignores, out: &mut impl FnMut(Found)) -> Result<()> {
    let mut ignores_here;
    let mut ignores = ignores;
    if !prefix.is_empty() && dir.join(DVCIGNORE).is_file() {
        ignores_here = ignores.clone();
        ignores_here.push_dir(dir);
        ignores = &ignores_here;
    }
    let rd = std::fs::read_dir(dir).map_err(Error::io(dir))?;
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir)(e))?;
        let ft = entry.file_type().map_err(|e| Error::io(entry.path())(e))?;
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
            out(Found { relpath, entry, symlink });
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
