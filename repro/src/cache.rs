//! DVC's content-addressed cache, `.dvc/cache/files/md5/xx/rest` (plus `.dir` listings):
//! saving outputs into it and checking them out again. Objects are read-only, written
//! through a temp file and a rename so a crash never leaves a partial object.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::fsutil::remove_path;
use crate::hash::{DirContents, DirEntry, Hashed};

/// The object database under `.dvc/cache/files/md5`.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache of the repo at `root`.
    pub fn new(root: &Path) -> Cache {
        Cache { dir: root.join(".dvc").join("cache").join("files").join("md5") }
    }

    /// Where the object with this md5 (`.dir` suffix included) lives.
    pub fn object_path(&self, md5: &str) -> PathBuf {
        self.dir.join(&md5[..2]).join(&md5[2..])
    }

    /// True when the object is in the cache.
    pub fn contains(&self, md5: &str) -> bool {
        md5.len() > 2 && self.object_path(md5).is_file()
    }

    /// Copies the workspace file or directory at `path`, already hashed, into the cache. A
    /// directory hashed without its contents must already be in the cache in full
    /// (`Workspace::with_contents` lists it again otherwise), so there is nothing to copy.
    pub fn save(&self, path: &Path, hashed: &Hashed) -> Result<()> {
        match hashed {
            Hashed::File { md5, .. } => self.save_file(path, md5),
            Hashed::Dir { md5, contents: None, .. } => {
                debug_assert!(self.has_all(md5), "{md5} was passed without contents but is not cached");
                Ok(())
            }
            Hashed::Dir { md5, contents: Some(DirContents { entries, listing }), .. } => {
                entries.par_iter().try_for_each(|e| self.save_file(&path.join(&e.relpath), &e.md5_hex()))?;
                if !self.contains(md5) {
                    self.write_object(md5, |tmp| std::fs::write(tmp, &listing[..]))?;
                }
                Ok(())
            }
        }
    }

    /// Saves the file `src`, whose md5 the caller computed, unless the cache has it.
    pub fn save_file(&self, src: &Path, md5: &str) -> Result<()> {
        if self.contains(md5) {
            return Ok(());
        }
        self.write_object(md5, |tmp| std::fs::copy(src, tmp).map(drop))
    }

    /// Saves `bytes` as the object `md5` (a `.dir` listing), unless the cache has it.
    pub fn save_bytes(&self, md5: &str, bytes: &[u8]) -> Result<()> {
        if self.contains(md5) {
            return Ok(());
        }
        self.write_object(md5, |tmp| std::fs::write(tmp, bytes))
    }

    fn write_object(&self, md5: &str, fill: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
        let dst = self.object_path(md5);
        let parent = dst.parent().expect("objects live in a subdirectory");
        std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        let tmp = tempfile::Builder::new().prefix(".tmp").tempfile_in(parent).map_err(Error::io(parent))?;
        let tmp_path = tmp.into_temp_path();
        fill(&tmp_path).map_err(Error::io(&dst))?;
        std::fs::set_permissions(&tmp_path, std::fs::Permissions::from_mode(0o444)).map_err(Error::io(&dst))?;
        tmp_path.persist(&dst).map_err(|e| Error::Io { path: dst.clone(), source: e.error })?;
        Ok(())
    }

    /// Reads a `.dir` listing from the cache.
    pub fn read_listing(&self, md5: &str) -> Result<Vec<DirEntry>> {
        let path = self.object_path(md5);
        let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| Error::CacheMissing(md5.to_owned()))?;
        let items = json.as_array().ok_or_else(|| Error::CacheMissing(md5.to_owned()))?;
        items
            .iter()
            .map(|it| {
                let field = |k: &str| it.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                match (field("md5"), field("relpath")) {
                    (Some(hex_md5), Some(relpath)) => {
                        let mut md5 = [0u8; 16];
                        hex::decode_to_slice(&hex_md5, &mut md5).map_err(|_| Error::CacheMissing(hex_md5.clone()))?;
                        Ok(DirEntry { relpath, md5, size: 0 })
                    }
                    _ => Err(Error::CacheMissing(md5.to_owned())),
                }
            })
            .collect()
    }

    /// True when the object and, for a directory, every file it lists are in the cache.
    pub fn has_all(&self, md5: &str) -> bool {
        if !self.contains(md5) {
            return false;
        }
        if md5.ends_with(".dir") {
            return self.read_listing(md5).is_ok_and(|l| l.par_iter().all(|e| self.contains(&e.md5_hex())));
        }
        true
    }

    /// Replaces whatever is at `dst` with a copy of the object `md5`.
    pub fn checkout(&self, md5: &str, dst: &Path, isexec: bool) -> Result<()> {
        remove_path(dst)?;
        if md5.ends_with(".dir") {
            let listing = self.read_listing(md5)?;
            std::fs::create_dir_all(dst).map_err(Error::io(dst))?;
            listing.par_iter().try_for_each(|e| self.copy_out(&e.md5_hex(), &dst.join(&e.relpath), false))
        } else {
            self.copy_out(md5, dst, isexec)
        }
    }

    fn copy_out(&self, md5: &str, dst: &Path, isexec: bool) -> Result<()> {
        let src = self.object_path(md5);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        std::fs::copy(&src, dst).map_err(|_| Error::CacheMissing(md5.to_owned()))?;
        let mode = if isexec { 0o755 } else { 0o644 };
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode)).map_err(Error::io(dst))
    }
}
