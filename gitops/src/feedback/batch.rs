//! Writing one batch of prepared samples under the lock, in crash-safe order, with two
//! rounds of concurrent fsyncs whatever the batch size:
//!
//! 1. append the batch's `feedback.jsonl` lines and write the new `count.json` and any
//!    `sealed.json` to temp files; fsync them and the samples' temp PNGs, all at once (a
//!    visible sample always has its metadata);
//! 2. rename the PNGs into `sub_set_N/...` (each sample becomes visible atomically), then the
//!    seal markers, then swap the new `count.json` in (an exchange, so no inode is freed);
//! 3. release the lock, and fsync every touched folder ([`Applied::sync`]) before the outcomes
//!    are handed out. The next batch runs its step 1 meanwhile.
//!
//! Journaling filesystems (ext4, xfs) persist metadata operations in order, so a crash keeps a
//! prefix of step 2: a seal marker never outlives the samples it seals. What a killed writer
//! can leave is harmless, and the next writer cleans it without anyone's help: from the
//! journal appends to the `count.json` swap the lock file names the journals being appended
//! to, so the next holder of the lock drops their lines without a PNG (adds that never
//! returned); temp files of a dead process are removed by the next batch (`owner`); a stale
//! `count.json` is rewritten and a full open sub_set sealed by the next batch. `fsck --repair`
//! remains for what a person broke.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::count::CountFile;
use super::layout::{JOURNAL, NEW_DATA, SEALED, SealMarker, SubSetScan, sub_set_name};
use super::locked::{Locked, OpenSubSet};
use super::prepare::{Prepared, prepare_stored};
use super::{AddOutcome, FeedbackError, FeedbackRecord, io_err};
use crate::fsutil;

#[derive(Debug, Default)]
struct Writes {
    journal: BTreeMap<u32, String>,
    renames: Vec<(PathBuf, PathBuf)>,
    /// Temp files to fsync before the renames.
    synced: Vec<PathBuf>,
    dirs: BTreeSet<PathBuf>,
    seals: Vec<SealMarker>,
}

impl Locked<'_> {
    /// Stores `items` and returns one outcome per item, in order, durable once
    /// [`Applied::sync`] returned (the lock need not be held for that).
    pub(crate) fn apply(&mut self, items: Vec<Prepared>) -> Result<Applied, FeedbackError> {
        let result = self.apply_inner(items);
        if result.is_err() {
            // The cache may describe seals that were never written.
            *self.cache() = Default::default();
        }
        result
    }

    /// Stores PNGs that were already stored elsewhere (git replay) with their original
    /// records, exactly like new samples: dedup, the open sub_set, sealing, `count.json`.
    pub fn adopt(&mut self, samples: Vec<(Vec<u8>, FeedbackRecord)>) -> Result<Vec<AddOutcome>, FeedbackError> {
        let items = samples
            .into_iter()
            .map(|(png, record)| prepare_stored(&png, record, self.layout))
            .collect::<Result<Vec<_>, _>>()?;
        self.apply(items)?.sync()
    }

    fn apply_inner(&mut self, items: Vec<Prepared>) -> Result<Applied, FeedbackError> {
        let threshold = self.params.threshold;
        if let Err(e) = self.remove_dead_temps() {
            tracing::warn!("cannot remove the temp files of writers that died: {e}");
        }
        let mut open = self.load_open()?;
        let mut writes = Writes::default();
        // A full open sub_set here means an earlier batch died before sealing it.
        let mut healed = self.seal_if_full(&mut open, &mut writes)?;
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let existing = self.cache().keys.get(&item.key).copied();
            let existing = existing.or_else(|| open.scan.keys.contains(&item.key).then_some(open.index));
            let sha256 = item.record.sha256.clone();
            if let Some(sub_set) = existing {
                let _ = fs::remove_file(&item.tmp);
                outcomes.push(AddOutcome {
                    sha256,
                    sub_set,
                    path: sample_path(sub_set, &item.key),
                    duplicate: true,
                    current_count: open.scan.counted(),
                    threshold,
                    sealed: healed.take(),
                });
                continue;
            }
            let target = self.layout.sub_set(open.index).join(&item.key);
            let dir = target.parent().expect("keys have a folder").to_path_buf();
            writes.synced.push(item.tmp.clone());
            writes.renames.push((item.tmp, target));
            writes.dirs.insert(dir);
            let line = serde_json::to_string(&item.record).expect("records serialize");
            let journal = writes.journal.entry(open.index).or_default();
            journal.push_str(&line);
            journal.push('\n');
            open.scan.add(item.key.clone(), &item.record.label, item.record.kind);
            let sub_set = open.index;
            let current_count = open.scan.counted();
            let sealed = self.seal_if_full(&mut open, &mut writes)?.or(healed.take());
            outcomes.push(AddOutcome {
                sha256,
                sub_set,
                path: sample_path(sub_set, &item.key),
                duplicate: false,
                current_count,
                threshold,
                sealed,
            });
        }
        if !writes.renames.is_empty() || !writes.seals.is_empty() {
            let cache = self.cache();
            let mut added: Vec<&str> = writes.journal.values().flat_map(|text| text.lines()).collect();
            added.extend(writes.seals.iter().map(|_| "seal"));
            cache.epoch = next_epoch(&cache.epoch, &added);
        }
        let count = self.derive(&open);
        let folders = self.flush(writes, &count)?;
        Ok(Applied { outcomes, folders })
    }

    /// Seals the open sub_set while it holds `threshold` counted samples; returns the last one
    /// sealed. The marker itself is written in [`Locked::flush`], after the samples.
    fn seal_if_full(&mut self, open: &mut OpenSubSet, writes: &mut Writes) -> Result<Option<u32>, FeedbackError> {
        let mut sealed = None;
        while open.scan.counted() >= self.params.threshold {
            let n = open.index;
            writes.seals.push(SealMarker {
                sub_set: n,
                sealed_at: chrono::Utc::now(),
                threshold: self.params.threshold,
                counted: open.scan.counted(),
            });
            let next = self.layout.sub_set(n + 1);
            let next_scan = SubSetScan::read(&next).map_err(io_err(&next))?;
            let full = std::mem::replace(open, OpenSubSet { index: n + 1, scan: next_scan });
            self.cache().absorb_sealed(n, full.scan);
            sealed = Some(n);
        }
        Ok(sealed)
    }

    /// Steps 1 and 2; returns the folders step 3 fsyncs.
    fn flush(&self, writes: Writes, count: &CountFile) -> Result<Vec<PathBuf>, FeedbackError> {
        let tmp_dir = self.layout.tmp();
        for dir in &writes.dirs {
            fsutil::create_dir_durable(dir).map_err(io_err(dir))?;
        }
        let mut synced = writes.synced;
        let mut folders: BTreeSet<PathBuf> = writes.dirs.clone();
        self.begin_batch(writes.journal.keys().copied())?;
        for (n, text) in &writes.journal {
            let path = self.layout.sub_set(*n).join(JOURNAL);
            let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
            file.write_all(text.as_bytes()).map_err(io_err(&path))?;
            folders.insert(self.layout.sub_set(*n));
            synced.push(path);
        }
        // (temp file, final path) for seal markers; count.json goes last, through its spare.
        let mut replaces = Vec::new();
        for seal in &writes.seals {
            let dir = self.layout.sub_set(seal.sub_set);
            fsutil::create_dir_durable(&dir).map_err(io_err(&dir))?;
            replaces.push((serde_json::to_vec_pretty(seal).expect("markers serialize"), dir.join(SEALED)));
        }
        let mut count_text = serde_json::to_vec_pretty(count).expect("counts serialize");
        count_text.push(b'\n');
        let spare = self.layout.count_spare();
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&spare)
            .and_then(|mut f| f.write_all(&count_text))
            .map_err(io_err(&spare))?;
        synced.push(spare.clone());
        folders.insert(self.layout.data.clone());
        let mut renames = writes.renames;
        for (text, target) in replaces {
            let tmp = tmp_dir.join(fsutil::unique_name(".json"));
            std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
            synced.push(tmp.clone());
            folders.insert(target.parent().expect("has a folder").to_path_buf());
            renames.push((tmp, target));
        }
        let synced: Vec<&Path> = synced.iter().map(PathBuf::as_path).collect();
        fsutil::sync_all_parallel(&synced).map_err(|(path, source)| FeedbackError::Io { path, source })?;
        for (from, to) in &renames {
            fs::rename(from, to).map_err(io_err(to))?;
        }
        let count_path = self.layout.count();
        fsutil::exchange_or_rename(&spare, &count_path).map_err(io_err(&count_path))?;
        self.end_batch()?;
        Ok(folders.into_iter().collect())
    }
}

/// A written batch whose folders still need their fsync.
#[derive(Debug)]
pub(crate) struct Applied {
    outcomes: Vec<AddOutcome>,
    folders: Vec<PathBuf>,
}

impl Applied {
    /// Fsyncs the batch's folders; the outcomes are durable after this.
    pub fn sync(self) -> Result<Vec<AddOutcome>, FeedbackError> {
        let folders: Vec<&Path> = self.folders.iter().map(PathBuf::as_path).collect();
        fsutil::sync_all_parallel(&folders).map_err(|(path, source)| FeedbackError::Io { path, source })?;
        Ok(self.outcomes)
    }
}

/// The epoch after a batch that wrote `added` (its journal lines and seals) on top of `epoch`:
/// a hash chain, so that one epoch names one sequence of writes since the last rescan. Two
/// clones that wrote different samples after sharing an epoch differ in it, and a process whose
/// cache is at one epoch never takes the other's files (checked out by git) for the state it
/// cached.
fn next_epoch(epoch: &str, added: &[&str]) -> String {
    let mut hash = Sha256::new();
    hash.update(epoch.as_bytes());
    for line in added {
        hash.update(b"\n");
        hash.update(line.as_bytes());
    }
    hex::encode(&hash.finalize()[..12])
}

/// `new_data/sub_set_N/<key>`, relative to the repository root.
pub(crate) fn sample_path(sub_set: u32, key: &str) -> PathBuf {
    Path::new(NEW_DATA).join(sub_set_name(sub_set)).join(key)
}
