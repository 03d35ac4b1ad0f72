//! The review queue: the sealed feedback samples no reviewer decided on, scored by a model, and
//! those whose label it finds very unlikely (`gitops::feedback::review::suspect`), or that the
//! last retrain's validate held for review (also by its out-of-fold check, `crate::folds`), as
//! committed in `new_data/held.json`, so every clone lists the same.
//! `pipeline review` and the model server's review view list it; validate applies the same
//! rules to the samples it is about to train on.

use std::collections::HashSet;
use std::path::Path;

use gitops::feedback::review::{Decisions, Held, ReviewParams, Suspect, suspect};
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

/// The sha256 of every feedback sample the last retrain's validate held for review
/// (`new_data/held.json`); empty before the first retrain, or with a warning when the file
/// cannot be read.
pub fn held(repo_root: &Path) -> HashSet<String> {
    match Held::read(repo_root) {
        Ok(held) => held.sha256s(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read what validate held for review");
            HashSet::new()
        }
    }
}

/// The suspects among `pending`, scored by `predict` (normalised inputs one after another in,
/// one prediction per input out) against the model's per-class `thresholds` (its mean
/// probability for each class's own test samples: confident learning's thresholds, measured
/// where the labels are known to be right), and those in `held` (sha256s validate held: see
/// [`held`]), with the model's answer.
pub fn suspects(
    pending: &[Pending],
    task: &Task,
    predict: impl Fn(&[f32]) -> Vec<Prediction>,
    thresholds: &[Option<f64>],
    params: &ReviewParams,
    held: &HashSet<String>,
) -> Vec<Suspect> {
    let predictions = pending.chunks(BATCH).flat_map(|chunk| {
        predict(&chunk.iter().flat_map(|p| preprocess::normalize(task, &p.input)).collect::<Vec<_>>())
    });
    let mut out = Vec::new();
    for (sample, prediction) in pending.iter().zip(predictions) {
        let found = suspect(&prediction.probabilities, sample.label, thresholds, params);
        let (predicted, confidence, p_given) = match found {
            Some(s) => (s.predicted, s.confidence, s.p_given),
            None if held.contains(&sample.sha256) => {
                (prediction.index, prediction.confidence, prediction.probabilities[sample.label])
            }
            None => continue,
        };
        out.push(Suspect {
            sha256: sample.sha256.clone(),
            sub_set: sample.sub_set,
            path: sample.path.clone(),
            label: task.classes[sample.label].clone(),
            kind: sample.kind,
            predicted: task.classes[predicted].clone(),
            confidence,
            p_given,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitops::feedback::review::HeldSample;

    fn pending(sha: &str, label: usize) -> Pending {
        Pending {
            sha256: sha.into(),
            sub_set: 0,
            path: format!("new_data/sub_set_0/{label}/{sha}.png"),
            label,
            kind: Kind::Correct,
            input: vec![0; 784],
        }
    }

    #[test]
    fn the_queue_lists_what_validate_held_beside_what_the_model_finds_suspect() {
        let task = Task::default();
        let samples = [pending("sure", 3), pending("held", 3), pending("fine", 3)];
        // The model says 5 for the first two, sure of it for the first only; 3 for the third.
        let answers = [[0.001, 0.99], [0.3, 0.6], [0.9, 0.05]];
        let predict = |flat: &[f32]| {
            assert_eq!(flat.len(), 3 * 784);
            answers
                .iter()
                .map(|[three, five]| {
                    let mut p = vec![(1.0 - three - five) / 8.0; 10];
                    (p[3], p[5]) = (*three, *five);
                    Prediction::from_probabilities(&p)
                })
                .collect()
        };
        let params = ReviewParams::default();
        let by_rule = suspects(&samples, &task, predict, &[], &params, &HashSet::new());
        assert_eq!(by_rule.iter().map(|s| s.sha256.as_str()).collect::<Vec<_>>(), ["sure"]);
        let held = HashSet::from(["held".to_string(), "elsewhere".to_string()]);
        let queue = suspects(&samples, &task, predict, &[], &params, &held);
        assert_eq!(queue.iter().map(|s| s.sha256.as_str()).collect::<Vec<_>>(), ["sure", "held"]);
        let listed = &queue[1];
        assert_eq!((listed.label.as_str(), listed.predicted.as_str()), ("3", "5"));
        assert!((listed.p_given - 0.3).abs() < 1e-6 && (listed.confidence - 0.6).abs() < 1e-6, "{listed:?}");
    }

    #[test]
    fn what_the_last_retrain_held_is_read_from_new_data() {
        let dir = tempfile::tempdir().unwrap();
        assert!(held(dir.path()).is_empty(), "no retrain yet");
        let store = gitops::feedback::FeedbackStore::open_with(dir.path(), Default::default(), Task::default());
        let sample = HeldSample { sha256: "aa".into(), reason: "label noise: labelled 1 but ...".into() };
        store.record_held(vec![sample]).unwrap();
        assert_eq!(held(dir.path()), HashSet::from(["aa".to_string()]));
        std::fs::write(dir.path().join("new_data/held.json"), "{").unwrap();
        assert!(held(dir.path()).is_empty(), "an unreadable list holds nothing back (with a warning)");
    }
}
