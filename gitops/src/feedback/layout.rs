//! Where things live under `new_data/`, and scanning a sub_set's files.
//!
//! ```text
//! new_data/
//!   count.json                      derived summary (see `count`)
//!   review.json                     reviewers' decisions on suspect labels (see `review`)
//!   held.json                       what the last retrain's validate held for review (`review`)
//!   .gitignore                      ignores .lock and .tmp/
//!   .lock  .tmp/                    OS file lock, temp files (never committed)
//!   sub_set_N/
//!     <class>/<sha256>.png          counted samples (kind correct or wrong), by class name
//!     unsure/<class>/<sha256>.png   unsure samples: kept, never counted or trained on
//!                                   (a tabular task's rows are `<sha256>.json`: the row's
//!                                   canonical JSON, `gitops::table`)
//!     feedback.jsonl                one line per stored sample
//!     sealed.json                   present once N is sealed: the sealing state lives here
//!     trained.json                  present once a model was trained on N
//!     samples.dvc                   under `storage: dvc`, once N is sealed: the DVC pointer
//!                                   to its sample folders, whose files git never holds
//!                                   there (see `git::dvc`)
//! ```
//!
//! A sub_set with a DVC pointer is described by its journal, not by the files checked out:
//! a clone may have none of them (`pipeline data fetch` brings them for a retrain).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::task::valid_class_name;

pub const NEW_DATA: &str = "new_data";
pub(crate) const COUNT_FILE: &str = "count.json";
pub(crate) const JOURNAL: &str = "feedback.jsonl";
pub(crate) const SEALED: &str = "sealed.json";
pub(crate) const TRAINED: &str = "trained.json";
/// In a sealed sub_set under `storage: dvc`: the DVC pointer to its sample folders, one out
/// per folder (`<class>`, `unsure`).
pub(crate) const SAMPLES_POINTER: &str = "samples.dvc";
pub(crate) const REVIEW_FILE: &str = "review.json";
pub(crate) const HELD_FILE: &str = "held.json";
pub(crate) const UNSURE: &str = "unsure";
pub(crate) const LOCK: &str = ".lock";
pub(crate) const TMP: &str = ".tmp";
/// In `.tmp/`: the next `count.json`, swapped in place of the current one (see
/// [`crate::fsutil::exchange_or_rename`]); it then holds the previous one.
pub(crate) const COUNT_SPARE: &str = "count.json.spare";
pub(crate) const GITIGNORE_TEXT: &str = "/.lock\n/.tmp/\n";
/// The line `storage: dvc` adds to `new_data/.gitignore`: the sample folders of every sub_set
/// (`<class>/`, `unsure/`), so git holds the journals, markers and pointers and never a sample.
/// `?*` rather than `*`: DVC's gitignore matcher (dulwich) lets a `*` match nothing, so it
/// would take `sub_set_N/` itself as ignored and never see the pointers in it.
pub(crate) const DVC_IGNORE_LINE: &str = "/sub_set_*/?*/";

/// Paths of one store.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub data: PathBuf,
}

impl Layout {
    pub fn new(repo_root: &Path) -> Self {
        Self { data: repo_root.join(NEW_DATA) }
    }
    pub fn count(&self) -> PathBuf {
        self.data.join(COUNT_FILE)
    }
    pub fn tmp(&self) -> PathBuf {
        self.data.join(TMP)
    }
    pub fn count_spare(&self) -> PathBuf {
        self.tmp().join(COUNT_SPARE)
    }
    pub fn sub_set(&self, n: u32) -> PathBuf {
        self.data.join(sub_set_name(n))
    }
    /// Indexes of the `sub_set_N` folders that exist, ascending.
    pub fn sub_sets(&self) -> io::Result<Vec<u32>> {
        let mut out = Vec::new();
        for entry in read_dir_or_empty(&self.data)? {
            if let Some(n) = entry.file_name().to_str().and_then(parse_sub_set_name) {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }
}

pub(crate) fn sub_set_name(n: u32) -> String {
    format!("sub_set_{n}")
}

pub(crate) fn parse_sub_set_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("sub_set_")?;
    let n: u32 = digits.parse().ok()?;
    (sub_set_name(n) == name).then_some(n)
}

/// What a sample file holds, by its extension: a PNG image or a row as JSON.
pub(crate) const SAMPLE_EXTENSIONS: [&str; 2] = ["png", "json"];

/// The path of a sample inside its sub_set: `<label>/<sha>.<ext>` or
/// `unsure/<label>/<sha>.<ext>` (`ext` one of [`SAMPLE_EXTENSIONS`]).
pub(crate) fn sample_key(label: &str, kind: Kind, sha256: &str, ext: &str) -> String {
    match kind {
        Kind::Unsure => format!("{UNSURE}/{label}/{sha256}.{ext}"),
        Kind::Correct | Kind::Wrong => format!("{label}/{sha256}.{ext}"),
    }
}

/// The sha256 and extension of a sample file name (`<sha256>.png` or `<sha256>.json`).
pub(crate) fn sample_file(name: &str) -> Option<(&str, &str)> {
    let (stem, ext) = name.rsplit_once('.')?;
    let hex = stem.len() == 64 && stem.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (hex && SAMPLE_EXTENSIONS.contains(&ext)).then_some((stem, ext))
}

/// `sealed.json`: written once, when the sub_set reaches the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealMarker {
    pub sub_set: u32,
    pub sealed_at: chrono::DateTime<chrono::Utc>,
    pub threshold: u32,
    pub counted: u32,
}

/// `trained.json`: written by the pipeline after a model was trained on the sub_set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedMarker {
    pub sub_set: u32,
    pub trained_at: chrono::DateTime<chrono::Utc>,
    pub model_version: String,
}

/// What one sub_set folder holds, from its files.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubSetScan {
    /// Counted samples per class name.
    pub by_label: BTreeMap<String, u32>,
    pub unsure: u32,
    /// Sample keys (see [`sample_key`]).
    pub keys: Vec<String>,
    /// Entries that do not belong in the layout.
    pub stray: Vec<PathBuf>,
    pub sealed: bool,
    pub trained: bool,
    /// Its sample folders are DVC-tracked (it has [`SAMPLES_POINTER`]): the journal lists them.
    pub tracked: bool,
}

impl SubSetScan {
    pub fn counted(&self) -> u32 {
        self.by_label.values().sum()
    }

    pub fn add(&mut self, key: String, label: &str, kind: Kind) {
        match kind {
            Kind::Unsure => self.unsure += 1,
            Kind::Correct | Kind::Wrong => *self.by_label.entry(label.to_string()).or_default() += 1,
        }
        self.keys.push(key);
    }

    /// Reads `dir` (a `sub_set_N` folder); a missing folder is an empty sub_set.
    pub fn read(dir: &Path) -> io::Result<Self> {
        let mut scan = Self::default();
        for entry in read_dir_or_empty(dir)? {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_dir = entry.file_type()?.is_dir();
            match name.as_ref() {
                JOURNAL => {}
                SEALED => scan.sealed = true,
                TRAINED => scan.trained = true,
                UNSURE if is_dir => {
                    for label_entry in read_dir_or_empty(&entry.path())? {
                        let is_dir = label_entry.file_type()?.is_dir();
                        scan.read_label_dir(&label_entry.path(), is_dir, Kind::Unsure)?;
                    }
                }
                _ if is_dir => scan.read_label_dir(&entry.path(), true, Kind::Correct)?,
                SAMPLES_POINTER => scan.tracked = true,
                _ => scan.stray.push(entry.path()),
            }
        }
        if scan.tracked {
            scan.read_journal(&dir.join(JOURNAL))?;
        }
        scan.keys.sort_unstable();
        Ok(scan)
    }

    /// Takes the samples from the journal instead of the files (a DVC-tracked sub_set).
    fn read_journal(&mut self, journal: &Path) -> io::Result<()> {
        self.by_label.clear();
        self.unsure = 0;
        self.keys.clear();
        let text = fs::read_to_string(journal)?;
        let records = super::journal_records(&text, journal)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        for (_, record) in records {
            self.add(record.path, &record.label, record.kind);
        }
        Ok(())
    }

    fn read_label_dir(&mut self, dir: &Path, is_dir: bool, kind: Kind) -> io::Result<()> {
        let label = dir.file_name().and_then(|n| n.to_str()).filter(|n| valid_class_name(n) && *n != UNSURE);
        let Some(label) = label.filter(|_| is_dir).map(str::to_string) else {
            self.stray.push(dir.to_path_buf());
            return Ok(());
        };
        for entry in read_dir_or_empty(dir)? {
            let name = entry.file_name();
            match name.to_str().and_then(sample_file) {
                Some((sha, ext)) => self.add(sample_key(&label, kind, sha, ext), &label, kind),
                None => self.stray.push(entry.path()),
            }
        }
        Ok(())
    }
}

/// The label and kind encoded in a sample key.
pub(crate) fn parse_key(key: &str) -> Option<(&str, Kind, &str)> {
    let (kind, rest) = match key.strip_prefix("unsure/") {
        Some(rest) => (Kind::Unsure, rest),
        None => (Kind::Correct, key),
    };
    let (label, file) = rest.split_once('/')?;
    let label = Some(label).filter(|l| valid_class_name(l) && *l != UNSURE)?;
    Some((label, kind, sample_file(file)?.0))
}

fn read_dir_or_empty(dir: &Path) -> io::Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(entries) => entries.collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}
