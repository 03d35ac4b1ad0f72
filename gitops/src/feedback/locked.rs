//! The store under its lock: the dedup cache, locating the open sub_set, full scans.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::sync::{Mutex, MutexGuard, PoisonError};

use fs4::fs_std::FileExt;
use serde::Serialize;

use super::count::{CountFile, Totals, new_epoch};
use super::layout::{GITIGNORE_TEXT, JOURNAL, LOCK, Layout, SEALED, SubSetScan, TRAINED, TrainedMarker};
use super::{FeedbackError, FeedbackRecord, io_err, owner};
use crate::fsutil;
use crate::params::FeedbackParams;

/// A line of the lock file while a batch writes: `journal <sub_set>`.
const BATCH_MARK: &str = "journal";

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
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            *guard = Some(LockState { file, cache: Cache::default() });
        }
        let file = &guard.as_ref().expect("set above").file;
        FileExt::lock_exclusive(file).map_err(io_err(&layout.data.join(LOCK)))?;
        let locked = Self { layout, params, state: guard };
        locked.ensure_scaffold()?;
        locked.finish_dead_batch()?;
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

    fn lock_file(&self) -> &File {
        &self.state.as_ref().expect("set in acquire").file
    }

    /// Marks the start of a batch's journal appends and renames in the lock file, naming the
    /// sub_sets whose journals it appends to (see [`Locked::finish_dead_batch`]).
    pub(crate) fn begin_batch(&self, journals: impl Iterator<Item = u32>) -> Result<(), FeedbackError> {
        let text: String = journals.map(|n| format!("{BATCH_MARK} {n}\n")).collect();
        let path = self.layout.data.join(LOCK);
        self.lock_file()
            .set_len(0)
            .and_then(|()| self.lock_file().write_all_at(text.as_bytes(), 0))
            .map_err(io_err(&path))
    }

    /// The batch is complete: every journal line it appended has its sample.
    pub(crate) fn end_batch(&self) -> Result<(), FeedbackError> {
        self.lock_file().set_len(0).map_err(io_err(&self.layout.data.join(LOCK)))
    }

    /// A writer that died between [`Locked::begin_batch`] and [`Locked::end_batch`] left journal
    /// lines whose sample never arrived (or a torn last line): drop them from the journals it
    /// named, so the files agree again without `fsck --repair`.
    fn finish_dead_batch(&self) -> Result<(), FeedbackError> {
        let path = self.layout.data.join(LOCK);
        let file = self.lock_file();
        let len = file.metadata().map_err(io_err(&path))?.len();
        if len == 0 {
            return Ok(());
        }
        let mut bytes = vec![0; usize::try_from(len).unwrap_or(0).min(1 << 20)];
        file.read_exact_at(&mut bytes, 0).map_err(io_err(&path))?;
        let text = String::from_utf8_lossy(&bytes);
        for n in text.lines().filter_map(|l| l.strip_prefix(BATCH_MARK)?.trim().parse::<u32>().ok()) {
            let dir = self.layout.sub_set(n);
            let journal = dir.join(JOURNAL);
            let current = match fs::read_to_string(&journal) {
                Ok(current) => current,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(FeedbackError::Io { path: journal, source }),
            };
            let mut seen = std::collections::HashSet::new();
            let kept: String = current
                .lines()
                .filter(|line| {
                    serde_json::from_str::<FeedbackRecord>(line)
                        .is_ok_and(|r| dir.join(&r.path).is_file() && seen.insert(r.path))
                })
                .flat_map(|line| [line, "\n"])
                .collect();
            if kept != current {
                tracing::warn!(journal = %journal.display(), "a writer died mid-batch: dropping its journal lines without a sample");
                fsutil::replace_durable(&journal, kept.as_bytes(), &self.layout.tmp()).map_err(io_err(&journal))?;
            }
        }
        self.end_batch()
    }

    /// Removes temp files left by processes that died (see [`owner`]).
    pub(crate) fn remove_dead_temps(&self) -> Result<(), FeedbackError> {
        let tmp = self.layout.tmp();
        let removed = owner::remove_orphans(&tmp).map_err(io_err(&tmp))?;
        if removed > 0 {
            tracing::info!(removed, "removed temp files of writers that died");
        }
        Ok(())
    }

    /// Whether a sample with this key (see `layout::sample_key`) is stored in any sub_set.
    pub(crate) fn contains(&mut self, key: &str) -> Result<bool, FeedbackError> {
        let open = self.load_open()?;
        Ok(open.scan.keys.iter().any(|k| k == key) || self.cache().keys.contains_key(key))
    }

    /// The sub_set holding the sample with this key and that sub_set's counted samples.
    pub(crate) fn locate(&mut self, key: &str) -> Result<Option<(u32, u32)>, FeedbackError> {
        let open = self.load_open()?;
        if open.scan.keys.iter().any(|k| k == key) {
            return Ok(Some((open.index, open.scan.counted())));
        }
        let Some(&n) = self.cache().keys.get(key) else { return Ok(None) };
        let dir = self.layout.sub_set(n);
        Ok(Some((n, SubSetScan::read(&dir).map_err(io_err(&dir))?.counted())))
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
