//! **ingest**: gathers the base dataset's splits (MNIST's IDX files or an image folder, through
//! `data::open`) and every sealed `new_data/sub_set_N` into one manifest, holding back a share of
//! the feedback (chosen by sha256, so the split never moves) for evaluation. A held-back sample
//! judges the retrains of `holdout_span` sub_sets, its own and the next ones, and then joins
//! training, so the loop learns from all of its feedback in the end. Labels become the
//! task's class indexes. Unsure feedback is left out; open sub_sets wait until they are sealed.
//! Reviewers' decisions (`new_data/review.json`) ride along in the `review` column, and a
//! relabel's class replaces the given one.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::manifest::{self, Role, Row};
use crate::{StageError, hash_share};
use gitops::feedback::Kind;
use gitops::feedback::review::Decisions;
use gitops::params::{self, DataParams};
use gitops::task::Task;
use model::data::{self, Dataset, Split};
use pipeline::paths;

#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Gather the base dataset and sealed feedback into one manifest",
    long_about = "Reads the base dataset (MNIST's IDX files, or an image folder: class folders with optional train/ and test/, or metadata.csv) and every sealed new_data/sub_set_N/feedback.jsonl; writes the manifest (Parquet: path, sha256, label, source, sub_set, kind, time, weight, split). Labels are the class indexes of params task.classes. A share of the feedback (params ingest.holdout_share, chosen by sha256) is held back for evaluation while its sub_set is among the newest params ingest.holdout_span sealed ones (0: for good), and trained on after."
)]
pub struct Args {
    #[arg(long, default_value = "params.yaml")]
    pub params: PathBuf,
    /// The base dataset (params data.dir).
    #[arg(long, visible_alias = "mnist", default_value = "data/mnist")]
    pub data: PathBuf,
    #[arg(long, default_value = "new_data")]
    pub new_data: PathBuf,
    #[arg(long, default_value = paths::MANIFEST)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestParams {
    pub holdout_share: f64,
    /// A held-back sample of sub_set `k` judges the retrains of sub_sets `k` to
    /// `k + holdout_span - 1` and is trained on from then on; 0 holds it back for good.
    pub holdout_span: u32,
    pub feedback_weight: f64,
}

impl Default for IngestParams {
    fn default() -> Self {
        Self { holdout_share: 0.3, holdout_span: 10, feedback_weight: 1.0 }
    }
}

impl IngestParams {
    /// Whether a sample of sub_set `sub_set` is held back while sub_set `newest` is the newest
    /// sealed one.
    pub fn held_back(&self, sha256: &str, sub_set: u32, newest: u32) -> bool {
        hash_share(sha256) < self.holdout_share
            && (self.holdout_span == 0 || newest.saturating_sub(sub_set) < self.holdout_span)
    }
}

pub fn run(args: &Args) -> Result<Vec<Row>, StageError> {
    let p: IngestParams = params::section(&args.params, "ingest")?;
    let task = params::task(&args.params)?;
    let data: DataParams = params::section(&args.params, "data")?;
    let dataset = data::open_for(&args.data, data.test_share, &task)?;
    let mut rows = base_rows(dataset.as_ref(), Split::Train, Role::Train, &task)?;
    rows.extend(base_rows(dataset.as_ref(), Split::Test, Role::Test, &task)?);
    rows.extend(feedback_rows(&args.new_data, &p, &task)?);
    manifest::write(&args.out, &rows)?;
    Ok(rows)
}

fn base_rows(dataset: &dyn Dataset, split: Split, role: Role, task: &Task) -> Result<Vec<Row>, StageError> {
    Ok(dataset
        .items(split)?
        .into_iter()
        .map(|item| Row {
            path: item.path.display().to_string(),
            index: item.index.map(|i| i as i64),
            sha256: item.sha256,
            label: item.label,
            source: task.name.clone(),
            sub_set: None,
            kind: "base".into(),
            time: None,
            weight: 1.0,
            role,
            trained: false,
            pixels: None,
            review: None,
        })
        .collect())
}

/// Rows of every sealed sub_set, in sub_set order, each (image, label) once.
fn feedback_rows(new_data: &Path, p: &IngestParams, task: &Task) -> Result<Vec<Row>, StageError> {
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    let decisions = Decisions::read_in(new_data)?.decisions;
    let sealed = gitops::feedback::sealed_sub_sets(new_data)?;
    let newest = sealed.iter().map(|s| s.index).max().unwrap_or(0);
    for sub_set in sealed {
        for (line, record) in sub_set.records {
            if record.kind == Kind::Unsure {
                continue;
            }
            let decision = decisions.get(&record.sha256);
            // A relabel's class replaces the given one.
            let given = decision.and_then(|d| d.label.as_deref()).unwrap_or(&record.label);
            let label = task.class_index(given).map_err(|e| StageError::Invalid {
                path: sub_set.journal.clone(),
                what: format!("line {line}: {e}"),
            })?;
            if !seen.insert((record.sha256.clone(), label)) {
                continue;
            }
            let file = sub_set.dir.join(&record.path);
            if !file.is_file() {
                return Err(StageError::Invalid {
                    path: file,
                    what: "missing: this clone has the journal line but not the sample (under `storage: dvc` a sealed sub_set's samples are in the DVC remote: `pipeline data fetch` brings them)".into(),
                });
            }
            let held = p.held_back(&record.sha256, sub_set.index, newest);
            let role = if held { Role::Holdout } else { Role::FeedbackTrain };
            rows.push(Row {
                path: file.display().to_string(),
                index: None,
                sha256: record.sha256,
                label,
                source: record.source,
                sub_set: Some(sub_set.index),
                kind: record.kind.name().to_string(),
                time: Some(record.time.to_rfc3339()),
                weight: p.feedback_weight,
                role,
                trained: sub_set.trained,
                pixels: None,
                review: decision.map(|d| d.action.name().to_string()),
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::IngestParams;

    #[test]
    fn a_held_back_sample_joins_training_after_its_span_whatever_the_span() {
        let all = "0".repeat(64); // hash share 0: always drawn
        let p = |holdout_span| IngestParams { holdout_share: 0.5, holdout_span, feedback_weight: 1.0 };
        assert!(p(2).held_back(&all, 3, 4) && !p(2).held_back(&all, 3, 5));
        assert!(p(0).held_back(&all, 0, u32::MAX), "0: held back for good");
        assert!(p(u32::MAX).held_back(&all, u32::MAX - 1, u32::MAX), "a span near u32::MAX does not overflow");
        assert!(!p(2).held_back(&"f".repeat(64), 3, 3), "not drawn: trained on from the start");
    }
}
