//! **ingest**: gathers the base MNIST splits and every sealed `new_data/sub_set_N` into one
//! manifest, holding back a share of the feedback (chosen by sha256, so the split never moves)
//! for evaluation. Unsure feedback is left out; open sub_sets wait until they are sealed.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::manifest::{self, Role, Row};
use super::{StageError, hash_share, io_err};
use crate::data::{Mnist, Split, TEST_FILES, TRAIN_FILES, idx};
use crate::params;
use gitops::feedback::{FeedbackRecord, Kind};

#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Gather base MNIST and sealed feedback into one manifest",
    long_about = "Reads data/mnist/ (IDX files) and every sealed new_data/sub_set_N/feedback.jsonl; writes the manifest (Parquet: path, sha256, label, source, sub_set, kind, time, weight, split). A share of the feedback (params ingest.holdout_share, chosen by sha256) is held back for evaluation."
)]
pub struct Args {
    #[arg(long, default_value = "params.yaml")]
    pub params: PathBuf,
    #[arg(long, default_value = "data/mnist")]
    pub mnist: PathBuf,
    #[arg(long, default_value = "new_data")]
    pub new_data: PathBuf,
    #[arg(long, default_value = "artifacts/ingest/manifest.parquet")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestParams {
    pub holdout_share: f64,
    pub feedback_weight: f64,
}

impl Default for IngestParams {
    fn default() -> Self {
        Self { holdout_share: 0.3, feedback_weight: 1.0 }
    }
}

pub fn run(args: &Args) -> Result<Vec<Row>, StageError> {
    let p: IngestParams = params::section(&args.params, "ingest")?;
    let mut rows = base_rows(&args.mnist, Split::Train, TRAIN_FILES.0, Role::Train)?;
    rows.extend(base_rows(&args.mnist, Split::Test, TEST_FILES.0, Role::Test)?);
    rows.extend(feedback_rows(&args.new_data, &p)?);
    manifest::write(&args.out, &rows)?;
    Ok(rows)
}

fn base_rows(dir: &Path, split: Split, images: &str, role: Role) -> Result<Vec<Row>, StageError> {
    let set = Mnist::load(dir, split)?;
    let path = idx::locate(dir, images)?.display().to_string();
    Ok((0..set.len())
        .map(|i| Row {
            path: path.clone(),
            index: Some(i as i64),
            sha256: hex::encode(Sha256::digest(set.image(i))),
            label: set.labels[i],
            source: "mnist".into(),
            sub_set: None,
            kind: "base".into(),
            time: None,
            weight: 1.0,
            role,
            trained: false,
            pixels: None,
        })
        .collect())
}

/// Rows of every sealed sub_set, in sub_set order, each (image, label) once.
fn feedback_rows(new_data: &Path, p: &IngestParams) -> Result<Vec<Row>, StageError> {
    let mut sub_sets: Vec<(u32, PathBuf)> = match std::fs::read_dir(new_data) {
        Ok(entries) => entries
            .filter_map(|e| {
                let e = e.ok()?;
                let n = e.file_name().to_str()?.strip_prefix("sub_set_")?.parse().ok()?;
                Some((n, e.path()))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(new_data)(e)),
    };
    sub_sets.sort();
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for (n, dir) in sub_sets.into_iter().filter(|(_, d)| d.join("sealed.json").is_file()) {
        let trained = dir.join("trained.json").is_file();
        let log = dir.join("feedback.jsonl");
        let text = std::fs::read_to_string(&log).map_err(io_err(&log))?;
        for (line_no, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let record: FeedbackRecord = serde_json::from_str(line)
                .map_err(|e| StageError::Invalid { path: log.clone(), what: format!("line {}: {e}", line_no + 1) })?;
            if record.kind == Kind::Unsure || !seen.insert((record.sha256.clone(), record.label)) {
                continue;
            }
            let role = if hash_share(&record.sha256) < p.holdout_share { Role::Holdout } else { Role::FeedbackTrain };
            rows.push(Row {
                path: dir.join(&record.path).display().to_string(),
                index: None,
                sha256: record.sha256,
                label: record.label,
                source: record.source,
                sub_set: Some(n),
                kind: format!("{:?}", record.kind).to_lowercase(),
                time: Some(record.time.to_rfc3339()),
                weight: p.feedback_weight,
                role,
                trained,
                pixels: None,
            });
        }
    }
    Ok(rows)
}
