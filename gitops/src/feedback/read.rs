//! Reading a store without taking its lock, as the retrain DAG (in a checkout nobody writes) and
//! the server's status route do: the sealed sub_sets with their journals, and `count.json`.
//! Readers go through these functions, never through the layout's file names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::layout::{COUNT_FILE, JOURNAL, Layout, SAMPLES_POINTER, SEALED, TRAINED};
use super::{CountFile, FeedbackError, FeedbackRecord, io_err, journal_records};

/// A sealed sub_set: its journal's records in order, each with its line number.
#[derive(Debug, Clone)]
pub struct SealedSubSet {
    pub index: u32,
    /// The `sub_set_N` folder; records' `path`s are relative to it.
    pub dir: PathBuf,
    /// A model was trained on it (`trained.json`).
    pub trained: bool,
    pub journal: PathBuf,
    pub records: Vec<(usize, FeedbackRecord)>,
}

/// Every sealed sub_set of the store in `new_data` (a `new_data` folder), oldest first. A
/// journal line that does not parse is an error naming its file and line.
pub fn sealed_sub_sets(new_data: &Path) -> Result<Vec<SealedSubSet>, FeedbackError> {
    let layout = Layout { data: new_data.to_path_buf() };
    let mut out = Vec::new();
    for index in layout.sub_sets().map_err(io_err(new_data))? {
        let dir = layout.sub_set(index);
        if !dir.join(SEALED).is_file() {
            continue;
        }
        let journal = dir.join(JOURNAL);
        let text = std::fs::read_to_string(&journal).map_err(io_err(&journal))?;
        let records = journal_records(&text, &journal)?;
        out.push(SealedSubSet { index, trained: dir.join(TRAINED).is_file(), dir, journal, records });
    }
    Ok(out)
}

/// The sample folders of the store in `new_data` that DVC tracks (`sub_set_N/<class>`, named
/// by `sub_set_N/samples.dvc`), relative to `new_data`: what a retrain fetches under
/// `storage: dvc`.
pub fn tracked_folders(new_data: &Path) -> Result<Vec<PathBuf>, FeedbackError> {
    let mut out = BTreeSet::new();
    for sub_set in sealed_sub_sets(new_data)?.into_iter().filter(|s| s.dir.join(SAMPLES_POINTER).is_file()) {
        let name = sub_set.dir.file_name().map(PathBuf::from).unwrap_or_default();
        for (_, record) in &sub_set.records {
            if let Some((folder, _)) = record.path.split_once('/') {
                out.insert(name.join(folder));
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// `count.json` of the store under `repo_root`, when there is one that parses.
pub fn read_count(repo_root: &Path) -> Option<CountFile> {
    let path = Layout::new(repo_root).data.join(COUNT_FILE);
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}
