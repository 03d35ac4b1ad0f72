//! The review queue: the sealed feedback samples no reviewer decided on, scored by a model, and
//! those whose label it finds very unlikely (`gitops::feedback::review::suspect`). `pipeline
//! review` and the model server's review view list it; validate applies the same rule to the
//! samples it is about to train on.

use std::path::Path;

use gitops::feedback::review::{Decisions, ReviewParams, Suspect, suspect};
use gitops::feedback::{FeedbackError, Kind, sealed_sub_sets};
use gitops::image_input::{ImageLimits, decode_limited, read_limited};
use gitops::task::Task;

use crate::data::table;
use crate::{Prediction, preprocess};

/// Samples scored per forward pass.
const BATCH: usize = 256;

/// A sealed feedback sample awaiting review, as the network reads it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub sha256: String,
    pub sub_set: u32,
    /// The sample's file, relative to the repo root.
    pub path: String,
    pub label: usize,
    pub kind: Kind,
    /// The task's input (pixels, or a row's encoded values).
    pub input: Vec<u8>,
}

/// Every counted sample of the sealed sub_sets under `repo_root` that no reviewer decided on,
/// once each, with its input. A sample that cannot be read or no longer fits the task is left
/// out here (validate quarantines it with the reason).
pub fn pending(repo_root: &Path, task: &Task, limits: &ImageLimits) -> Result<Vec<Pending>, FeedbackError> {
    let new_data = repo_root.join("new_data");
    let decided = Decisions::read_in(&new_data)?.decisions;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for sub_set in sealed_sub_sets(&new_data)? {
        for (_, record) in sub_set.records {
            if record.kind == Kind::Unsure
                || decided.contains_key(&record.sha256)
                || !seen.insert(record.sha256.clone())
            {
                continue;
            }
            let Ok(label) = task.class_index(&record.label) else { continue };
            let file = sub_set.dir.join(&record.path);
            let Some(input) = input(&file, task, limits) else { continue };
            let path = file.strip_prefix(repo_root).unwrap_or(&file).display().to_string();
            out.push(Pending { sha256: record.sha256, sub_set: sub_set.index, path, label, kind: record.kind, input });
        }
    }
    Ok(out)
}

/// A stored sample as the network reads it.
fn input(file: &Path, task: &Task, limits: &ImageLimits) -> Option<Vec<u8>> {
    let bytes = read_limited(file, limits).ok()?;
    match task.schema() {
        Some(schema) => {
            let row = serde_json::from_slice(&bytes).ok()?;
            Some(table::input_bytes(&schema.encode(&schema.check(&row).ok()?)))
        }
        None => preprocess::to_input(task, &decode_limited(&bytes, limits).ok()?).ok(),
    }
}

/// The suspects among `pending`, scored by `predict` (normalised inputs one after another in,
/// one prediction per input out) against the model's per-class `thresholds` (its mean
/// probability for each class's own test samples: confident learning's thresholds, measured
/// where the labels are known to be right).
pub fn suspects(
    pending: &[Pending],
    task: &Task,
    predict: impl Fn(&[f32]) -> Vec<Prediction>,
    thresholds: &[Option<f64>],
    params: &ReviewParams,
) -> Vec<Suspect> {
    let predictions = pending.chunks(BATCH).flat_map(|chunk| {
        predict(&chunk.iter().flat_map(|p| preprocess::normalize(task, &p.input)).collect::<Vec<_>>())
    });
    let mut out = Vec::new();
    for (sample, prediction) in pending.iter().zip(predictions) {
        if let Some(s) = suspect(&prediction.probabilities, sample.label, thresholds, params) {
            out.push(Suspect {
                sha256: sample.sha256.clone(),
                sub_set: sample.sub_set,
                path: sample.path.clone(),
                label: task.classes[sample.label].clone(),
                kind: sample.kind,
                predicted: task.classes[s.predicted].clone(),
                confidence: s.confidence,
                p_given: s.p_given,
            });
        }
    }
    out
}
