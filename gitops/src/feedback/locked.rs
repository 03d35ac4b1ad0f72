//! The store under its lock: the dedup cache, locating the open sub_set, full scans.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::sync::{Mutex, MutexGuard, PoisonError};

use fs4::fs_std::FileExt;
use serde::Serialize;

use super::count::{CountFile, Totals, new_epoch};
use super::layout::{GITIGNORE_TEXT, LOCK, Layout, SEALED, SubSetScan, TRAINED, TrainedMarker};
use super::{FeedbackError, io_err};
use crate::fsutil;
use crate::params::FeedbackParams;

/// Process-wide state behind the in-process mutex: the lock file and the dedup cache.
#[derive(Debug)]
pub(crate) struct LockState {
    file: File,
    pub cache: Cache,
}

/// What this process knows about the sealed sub_sets `0..sealed_upto`. Sealed sub_sets never
/// change except through git sync or repair, which change `count.json`'s epoch.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    pub epoch: String,
    pub sealed_upto: u32,
    /// Sample key -> sub_set holding it.
    pub keys: HashMap<String, u32>,
    pub totals: Totals,
    pub pending: Vec<u32>,
}

impl Cache {
    pub fn absorb_sealed(&mut self, n: u32, scan: SubSetScan) {
        self.totals.absorb(&scan);
        if !scan.trained {
            self.pending.push(n);
        }
        self.keys.extend(scan.keys.into_iter().map(|k| (k, n)));
        self.sealed_upto = n + 1;
    }
}

/// The open sub_set: the lowest one without `sealed.json`.
#[derive(Debug)]
pub(crate) struct OpenSubSet {
    pub index: u32,
    pub scan: SubSetScan,
}

/// One sub_set in [`FeedbackStore::status`](super::FeedbackStore::status).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubSetStatus {
    pub sub_set: u32,
    pub counted: u32,
    pub unsure: u32,
    pub sealed: bool,
    pub trained: bool,
}

/// The store with its lock held; dropping it releases the lock.
#[derive(Debug)]
pub struct Locked<'a> {
    pub(crate) layout: &'a Layout,
    pub(crate) params: &'a FeedbackParams,
    state: MutexGuard<'a, Option<LockState>>,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if let Some(state) = self.state.as_ref() {
            let _ = FileExt::unlock(&state.file);
        }
    }
}

impl<'a> Locked<'a> {
    pub(crate) fn acquire(
        layout: &'a Layout,
        params: &'a FeedbackParams,
        state: &'a Mutex<Option<LockState>>,
    ) -> Result<Self, FeedbackError> {
        let mut guard = state.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            fsutil::create_dir_durable(&layout.data).map_err(io_err(&layout.data))?;
            let path = layout.data.join(LOCK);
            let file =
                OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_err(&path))?;
            *guard = Some(LockState { file, cache: Cache::default() });
        }
        let file = &guard.as_ref().expect("set above").file;
        FileExt::lock_exclusive(file).map_err(io_err(&layout.data.join(LOCK)))?;
        let locked = Self { layout, params, state: guard };
        locked.ensure_scaffold()?;
        Ok(locked)
    }

    fn ensure_scaffold(&self) -> Result<(), FeedbackError> {
        let tmp = self.layout.tmp();
        fsutil::create_dir_durable(&tmp).map_err(io_err(&tmp))?;
        let ignore = self.layout.data.join(".gitignore");
        if !ignore.exists() {
            fsutil::replace_durable(&ignore, GITIGNORE_TEXT.as_bytes(), &tmp).map_err(io_err(&ignore))?;
        }
        Ok(())
    }

    pub(crate) fn cache(&mut self) -> &mut Cache {
        &mut self.state.as_mut().expect("set in acquire").cache
    }

    /// Reads `count.json`; a missing or unparsable file is `None` (it is derivable).
    pub(crate) fn read_count(&self) -> Option<CountFile> {
        let text = fs::read(self.layout.count()).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Brings the cache up to date and scans the open sub_set.
    pub(crate) fn load_open(&mut self) -> Result<OpenSubSet, FeedbackError> {
        let epoch = self.read_count().map(|c| c.epoch).unwrap_or_default();
        let layout = self.layout;
        let cache = self.cache();
        if epoch.is_empty() || epoch != cache.epoch {
            *cache = Cache { epoch: if epoch.is_empty() { new_epoch() } else { epoch }, ..Cache::default() };
        }
        loop {
            let dir = layout.sub_set(cache.sealed_upto);
            if !dir.join(SEALED).exists() {
                let scan = SubSetScan::read(&dir).map_err(io_err(&dir))?;
                return Ok(OpenSubSet { index: cache.sealed_upto, scan });
            }
            let scan = SubSetScan::read(&dir).map_err(io_err(&dir))?;
            cache.absorb_sealed(cache.sealed_upto, scan);
        }
    }

    /// The summary as the hot path sees it (cache + open sub_set), without writing.
    pub(crate) fn derive(&mut self, open: &OpenSubSet) -> CountFile {
        let threshold = self.params.threshold;
        let cache = self.cache();
        CountFile::derive(&cache.totals, cache.pending.clone(), open.index, &open.scan, threshold, cache.epoch.clone())
    }

    /// Rescans every sub_set from scratch (dropping the cache) and returns the summary and
    /// per-sub_set status, without writing anything.
    pub fn scan_all(&mut self) -> Result<(CountFile, Vec<SubSetStatus>), FeedbackError> {
        *self.cache() = Cache::default();
        let open = self.load_open()?;
        let count = self.derive(&open);
        let data = &self.layout.data;
        let mut subs = Vec::new();
        for n in self.layout.sub_sets().map_err(io_err(data))? {
            let dir = self.layout.sub_set(n);
            let scan = SubSetScan::read(&dir).map_err(io_err(&dir))?;
            subs.push(SubSetStatus {
                sub_set: n,
                counted: scan.counted(),
                unsure: scan.unsure,
                sealed: scan.sealed,
                trained: scan.trained,
            });
        }
        Ok((count, subs))
    }

    /// Rescans everything and rewrites `count.json` with a new epoch, so every process drops
    /// its cache. Git sync calls this after it changed `new_data/`.
    pub fn recompute(&mut self) -> Result<CountFile, FeedbackError> {
        *self.cache() = Cache::default();
        let open = self.load_open()?;
        let mut count = self.derive(&open);
        count.epoch = new_epoch();
        self.cache().epoch = count.epoch.clone();
        self.write_count(&count)?;
        Ok(count)
    }

    pub(crate) fn write_count(&self, count: &CountFile) -> Result<(), FeedbackError> {
        let path = self.layout.count();
        let mut text =
            serde_json::to_vec_pretty(count).map_err(|source| FeedbackError::Json { path: path.clone(), source })?;
        text.push(b'\n');
        fsutil::replace_durable(&path, &text, &self.layout.tmp()).map_err(io_err(&path))
    }

    pub(crate) fn mark_trained(&mut self, sub_set: u32, model_version: &str) -> Result<CountFile, FeedbackError> {
        let dir = self.layout.sub_set(sub_set);
        if !dir.join(SEALED).exists() {
            return Err(FeedbackError::NotSealed { sub_set });
        }
        let marker =
            TrainedMarker { sub_set, trained_at: chrono::Utc::now(), model_version: model_version.to_string() };
        let path = dir.join(TRAINED);
        let text =
            serde_json::to_vec_pretty(&marker).map_err(|source| FeedbackError::Json { path: path.clone(), source })?;
        fsutil::replace_durable(&path, &text, &self.layout.tmp()).map_err(io_err(&path))?;
        self.recompute()
    }
}
