//! The feedback store: `new_data/sub_set_N/...` and `new_data/count.json`.
//!
//! [`FeedbackStore::add`] validates and re-encodes a sample, writes it to a fsynced temp file,
//! then, under an OS file lock on `new_data/.lock` (so threads and processes are serialized),
//! renames it into its sub_set, appends its `feedback.jsonl` line, seals the sub_set when it
//! reaches the threshold and rewrites `count.json`; every step is fsynced before `add`
//! returns. Threads of one process that add at once share one locked, fsynced batch.
//!
//! Sealing state lives in `sub_set_N/sealed.json`: the open sub_set is the lowest N without
//! one, so `count.json` is always derivable from the files ([`FeedbackStore::fsck`] checks and
//! repairs it). The same image with the same label and kind is stored and counted once.

mod batch;
mod count;
mod fsck;
mod group;
mod layout;
mod locked;
mod owner;
mod prepare;
mod read;
pub mod review;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

pub use count::{CountFile, Totals};
pub use fsck::{FsckIssue, FsckReport, IssueKind};
/// The store's folder, relative to the repo root.
pub use layout::NEW_DATA;
pub(crate) use layout::{
    DVC_IGNORE_LINE, JOURNAL, SAMPLES_POINTER, SEALED, TRAINED, parse_key, parse_sub_set_name, sub_set_name,
};
pub use layout::{SealMarker, TrainedMarker};
pub use locked::{Locked, SubSetStatus};
pub(crate) use prepare::md5_hex;
pub use read::{SealedSubSet, read_count, sealed_sub_sets, tracked_folders};

use crate::image_input::ImageInputError;
use crate::params::{FeedbackParams, Params, ParamsError};
use crate::task::Task;

/// Errors of the feedback store.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("invalid feedback: {reason}")]
    InvalidSample { reason: String },
    #[error(transparent)]
    Image(#[from] ImageInputError),
    #[error("cannot encode the image as PNG: {0}")]
    Encode(image::ImageError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid JSON: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{}: line {line}: {source}", path.display())]
    JournalLine { path: PathBuf, line: usize, source: serde_json::Error },
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error("sub_set {sub_set} is not sealed, so it cannot be marked trained")]
    NotSealed { sub_set: u32 },
    #[error("the store is inconsistent and --repair cannot fix it: {0}")]
    Unrepairable(String),
    /// The batch this sample was written in failed; the cause is shared by the whole batch.
    #[error("{0}")]
    Batch(Arc<FeedbackError>),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FeedbackError + '_ {
    move |source| FeedbackError::Io { path: path.to_path_buf(), source }
}

/// What the person said about the prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The prediction was right: `label` is the predicted class.
    Correct,
    /// The prediction was wrong: `label` is the true class.
    Wrong,
    /// The person is not sure: stored apart, never counted or trained on.
    Unsure,
}

impl Kind {
    /// Every kind, in the order of [`Kind::name`]'s names.
    pub const ALL: [Kind; 3] = [Kind::Correct, Kind::Wrong, Kind::Unsure];

    /// The name journals, the API, manifests and the prediction log use (`correct`, `wrong`,
    /// `unsure`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Correct => "correct",
            Kind::Wrong => "wrong",
            Kind::Unsure => "unsure",
        }
    }

    /// The kind of a [`Kind::name`].
    pub fn from_name(name: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One piece of feedback to store.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The uploaded image, in any supported format; for a tabular task, the row as a JSON object
    /// of features (checked against `task.table`).
    pub image: Vec<u8>,
    /// A class name of the task, or its index in decimal (stored as the name).
    pub label: String,
    pub kind: Kind,
    pub predicted: Option<String>,
    pub confidence: Option<f32>,
    pub model_version: Option<String>,
    /// Where it came from (`cli:<file>`, `http`, ...).
    pub source: String,
}

impl Sample {
    /// A sample with no prediction attached (no predicted class, confidence or model).
    pub fn new(image: Vec<u8>, label: impl Into<String>, kind: Kind, source: impl Into<String>) -> Self {
        Self {
            image,
            label: label.into(),
            kind,
            predicted: None,
            confidence: None,
            model_version: None,
            source: source.into(),
        }
    }
}

/// One line of `sub_set_N/feedback.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    pub time: chrono::DateTime<chrono::Utc>,
    /// The class name (a number in journals written before classes had names: a digit).
    #[serde(deserialize_with = "crate::task::label_text")]
    pub label: String,
    pub kind: Kind,
    #[serde(default, deserialize_with = "crate::task::optional_label_text")]
    pub predicted: Option<String>,
    pub confidence: Option<f32>,
    pub model_version: Option<String>,
    pub sha256: String,
    /// md5 of the stored file: its name in a DVC cache and remote (`storage: dvc` keeps the
    /// bytes there, and a clone fetches them by it). Absent in lines written before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    pub source: String,
    /// The sample's path inside its sub_set folder.
    pub path: String,
    /// Written by `fsck --repair` for a PNG whose line was lost.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recovered: bool,
}

impl FeedbackRecord {
    /// The line of a stored sample whose own line was lost, rebuilt from its key
    /// (`<label>/<sha256>.<ext>` or `unsure/<label>/<sha256>.<ext>`); `None` for another path.
    pub(crate) fn recovered(key: &str, source: &str) -> Option<FeedbackRecord> {
        let (label, kind, sha) = parse_key(key)?;
        Some(FeedbackRecord {
            time: chrono::Utc::now(),
            label: label.to_string(),
            kind,
            predicted: None,
            confidence: None,
            model_version: None,
            sha256: sha.to_string(),
            md5: None,
            source: source.to_string(),
            path: key.to_string(),
            recovered: true,
        })
    }
}

/// The records of a journal's text with their line numbers; a line that does not parse is an
/// error naming `path` and the line.
pub(crate) fn journal_records(text: &str, path: &Path) -> Result<Vec<(usize, FeedbackRecord)>, FeedbackError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map(|record| (i + 1, record)).map_err(|source| FeedbackError::JournalLine {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            })
        })
        .collect()
}

/// The records of the lines of a journal's text that parse (git replay reads a commit's
/// journals this way: a torn line is the store's to repair, not the replay's to stop on).
pub(crate) fn parsed_lines(text: &str) -> impl Iterator<Item = FeedbackRecord> + '_ {
    text.lines().filter_map(|line| serde_json::from_str(line).ok())
}

/// The result of one [`FeedbackStore::add`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddOutcome {
    /// sha256 of the stored PNG (also its file name).
    pub sha256: String,
    /// The sub_set that holds the sample (for a duplicate: the one that already held it).
    pub sub_set: u32,
    /// Stored path, relative to the repository root.
    pub path: PathBuf,
    /// The same image with the same label and kind was already stored; nothing was written.
    pub duplicate: bool,
    /// Counted samples in `sub_set` after this add.
    pub current_count: u32,
    pub threshold: u32,
    /// The sub_set this add sealed, if any: the caller fires the trigger for it.
    pub sealed: Option<u32>,
}

/// A handle on `<repo>/new_data`; cheap to clone and share between threads.
#[derive(Debug, Clone)]
pub struct FeedbackStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    layout: layout::Layout,
    params: FeedbackParams,
    task: Task,
    state: Mutex<Option<locked::LockState>>,
    group: group::Group,
}

impl FeedbackStore {
    /// Opens the store of the repository at `repo_root`, with `params.yaml`'s `feedback` and
    /// `task` sections. Nothing is created until the first write.
    pub fn open(repo_root: &Path) -> Result<Self, FeedbackError> {
        let params = Params::load(repo_root)?;
        Ok(Self::open_with(repo_root, params.feedback, params.task))
    }

    /// Opens the store with explicit settings; labels must be classes of `task`.
    pub fn open_with(repo_root: &Path, params: FeedbackParams, task: Task) -> Self {
        let inner = Inner {
            root: repo_root.to_path_buf(),
            layout: layout::Layout::new(repo_root),
            params,
            task,
            state: Mutex::new(None),
            group: group::Group::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    pub fn repo_root(&self) -> &Path {
        &self.inner.root
    }

    pub fn params(&self) -> &FeedbackParams {
        &self.inner.params
    }

    /// The task whose class names label the samples.
    pub fn task(&self) -> &Task {
        &self.inner.task
    }

    /// The `new_data` folder.
    pub fn data_dir(&self) -> &Path {
        &self.inner.layout.data
    }

    /// Stores one sample durably; see the module docs. Bad input is refused before anything
    /// is written.
    pub fn add(&self, sample: Sample) -> Result<AddOutcome, FeedbackError> {
        let prepared = prepare::prepare(sample, &self.inner.layout, &self.inner.params, &self.inner.task)?;
        self.inner.group.submit(prepared, |batch| self.lock()?.apply(batch))
    }

    /// Stores several samples in one locked batch (a CLI invocation, an upload of many
    /// files): every sample is checked and encoded first, so one bad sample stores none.
    pub fn add_many(&self, samples: Vec<Sample>) -> Result<Vec<AddOutcome>, FeedbackError> {
        let mut items = Vec::with_capacity(samples.len());
        for sample in samples {
            match prepare::prepare(sample, &self.inner.layout, &self.inner.params, &self.inner.task) {
                Ok(item) => items.push(item),
                Err(e) => {
                    for item in items {
                        let _ = std::fs::remove_file(item.tmp);
                    }
                    return Err(e);
                }
            }
        }
        let applied = self.lock()?.apply(items)?;
        applied.sync()
    }

    /// Checks a sample without storing it (label, kind, image limits).
    pub fn check(&self, sample: &Sample) -> Result<(), FeedbackError> {
        prepare::validate(sample, &self.inner.task)?;
        match self.inner.task.schema() {
            Some(schema) => prepare::row_json(&sample.image, schema).map(drop),
            None => crate::image_input::decode_limited(&sample.image, &(&self.inner.params).into())
                .map(drop)
                .map_err(Into::into),
        }
    }

    /// Takes the store's lock (in-process mutex, then the OS file lock) for a sequence of
    /// operations: git sync holds it while it rewrites `new_data/`.
    pub fn lock(&self) -> Result<Locked<'_>, FeedbackError> {
        Locked::acquire(&self.inner.layout, &self.inner.params, &self.inner.state)
    }

    /// Where things stand, derived from the files.
    pub fn status(&self) -> Result<(CountFile, Vec<SubSetStatus>), FeedbackError> {
        self.lock()?.scan_all()
    }

    /// The oldest sealed sub_set no model was trained on yet.
    pub fn should_retrain(&self) -> Result<Option<u32>, FeedbackError> {
        Ok(self.status()?.0.pending_retrain.first().copied())
    }

    /// Records that a model (`model_version`) was trained on sealed `sub_set`.
    pub fn mark_trained(&self, sub_set: u32, model_version: &str) -> Result<CountFile, FeedbackError> {
        self.lock()?.mark_trained(sub_set, model_version)
    }

    /// Where a stored sample is now (a git replay may have moved it to another sub_set): its
    /// sub_set and the counted samples there; `None` when it is no longer stored.
    pub fn locate(&self, outcome: &AddOutcome) -> Result<Option<(u32, u32)>, FeedbackError> {
        let key: PathBuf = outcome.path.iter().skip(2).collect();
        self.lock()?.locate(&key.to_string_lossy())
    }

    /// Checks that the files, journals, seal markers and `count.json` agree; with `repair`,
    /// fixes what can be fixed and rewrites `count.json`.
    pub fn fsck(&self, repair: bool) -> Result<FsckReport, FeedbackError> {
        self.lock()?.fsck(repair)
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn a_kinds_name_is_what_journals_hold_and_names_it_back() {
        for kind in Kind::ALL {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.name()));
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(Kind::from_name("Correct"), None);
    }
}
