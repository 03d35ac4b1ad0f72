//! Out-of-fold predictions, for confident learning's label check: the samples are split into
//! folds by a seeded hash of their keys, and each fold is predicted by a copy of the model
//! fine-tuned on every other fold (with replayed base data), never on the fold itself. Where
//! the serving model reads a new population poorly, these copies have learnt it from the rest
//! of the feedback, so a wrong label they find very unlikely is caught before the first
//! retrain learns it.

use sha2::{Digest, Sha256};

use gitops::feedback::review::FoldParams;
use gitops::params::TrainParams;
use gitops::task::Task;

use crate::train::{self, Batch};
use crate::{Classifier, LoadedModel, Prediction, preprocess};

/// A labelled input: a feedback sample (keyed, for its fold) or a replayed base row.
#[derive(Debug, Clone, Copy)]
pub struct Example<'a> {
    pub key: &'a str,
    pub input: &'a [u8],
    pub label: usize,
}

/// Samples predicted per forward pass.
const BATCH: usize = 256;

/// One prediction per sample of `samples`, each by a copy of the model (`load` gives a fresh
/// one) fine-tuned on the other folds' samples, on `trusted` (feedback a reviewer vouched for:
/// trained on, never predicted), each as `p.copies` inputs made by `copy` (an augmented copy
/// number `k` of an example), and on up to `p.replay` of `replay`. `None` when the check is off
/// or there are fewer samples than `p.min_samples` or than folds.
pub fn out_of_fold<E: From<tch::TchError>>(
    load: impl Fn() -> Result<LoadedModel, E>,
    task: &Task,
    samples: &[Example<'_>],
    trusted: &[Example<'_>],
    replay: &[Example<'_>],
    copy: impl Fn(&Example<'_>, usize) -> Vec<u8>,
    p: &FoldParams,
) -> Result<Option<Vec<Prediction>>, E> {
    if p.folds < 2 || samples.len() < p.folds.max(p.min_samples) {
        return Ok(None);
    }
    let fold_of: Vec<usize> = samples.iter().map(|s| fold(s.key, p)).collect();
    let replayed = chosen(replay, p.replay, p.seed);
    // Each example's copies are made once and shared by every fold that learns from it.
    let copies = |e: &Example<'_>| (0..p.copies.max(1)).map(|k| copy(e, k)).collect::<Vec<_>>();
    let sample_copies: Vec<Vec<Vec<u8>>> = samples.iter().map(copies).collect();
    let trusted_copies: Vec<Vec<Vec<u8>>> = trusted.iter().map(copies).collect();
    let mut out: Vec<Option<Prediction>> = vec![None; samples.len()];
    for f in 0..p.folds {
        let held: Vec<usize> = (0..samples.len()).filter(|&i| fold_of[i] == f).collect();
        if held.is_empty() {
            continue;
        }
        let learn = (0..samples.len())
            .filter(|&i| fold_of[i] != f)
            .map(|i| (&samples[i], &sample_copies[i]))
            .chain(trusted.iter().zip(&trusted_copies));
        let (mut inputs, mut labels) = (Vec::new(), Vec::new());
        for (e, made) in learn {
            inputs.extend(made.iter().cloned());
            labels.extend(std::iter::repeat_n(e.label, made.len()));
        }
        for e in &replayed {
            inputs.push(e.input.to_vec());
            labels.push(e.label);
        }
        let model = load()?;
        let batch = Batch::new(task, &inputs, &labels, model.vs.device());
        let params = TrainParams {
            seed: p.seed.wrapping_add(f as u64),
            epochs: p.epochs,
            batch_size: 64,
            learning_rate: p.learning_rate,
            augment_copies: 0,
        };
        train::train(&model.vs, &model.net, &batch, &params)?;
        let classifier = Classifier::new(model);
        for chunk in held.chunks(BATCH) {
            let flat: Vec<f32> = chunk.iter().flat_map(|&i| preprocess::normalize(task, samples[i].input)).collect();
            for (&i, prediction) in chunk.iter().zip(classifier.predict(&flat)) {
                out[i] = Some(prediction);
            }
        }
    }
    Ok(Some(out.into_iter().map(|p| p.expect("every sample is in one fold")).collect()))
}

/// The fold of a sample: a seeded hash of its key, so a sample keeps its fold from run to run.
fn fold(key: &str, p: &FoldParams) -> usize {
    let digest = Sha256::new().chain_update(p.seed.to_le_bytes()).chain_update(key.as_bytes()).finalize();
    (u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) % p.folds as u64) as usize
}

/// Up to `n` of `rows`, picked by a seeded hash of their keys.
fn chosen<'a, 'b>(rows: &'b [Example<'a>], n: usize, seed: u64) -> Vec<&'b Example<'a>> {
    let mut keyed: Vec<([u8; 32], &Example<'_>)> = rows
        .iter()
        .map(|r| (Sha256::new().chain_update(seed.to_le_bytes()).chain_update(r.key.as_bytes()).finalize().into(), r))
        .collect();
    keyed.sort_by_key(|a| a.0);
    keyed.into_iter().take(n).map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::seeded_store;
    use gitops::architecture::Architecture;
    use gitops::model_file::Sidecar;
    use tch::Device;

    fn params(folds: usize) -> FoldParams {
        FoldParams {
            folds,
            min_samples: 10,
            epochs: 1,
            copies: 1,
            replay: 0,
            learning_rate: 1e-3,
            seed: 7,
            max_given_probability: 0.1,
        }
    }

    #[test]
    fn folds_are_stable_and_all_used() {
        let p = params(5);
        let keys: Vec<String> = (0..200).map(|i| format!("sample-{i}")).collect();
        let folds: Vec<usize> = keys.iter().map(|k| fold(k, &p)).collect();
        assert_eq!(folds, keys.iter().map(|k| fold(k, &p)).collect::<Vec<_>>());
        for f in 0..5 {
            let n = folds.iter().filter(|&&x| x == f).count();
            assert!((20..=60).contains(&n), "fold {f} holds {n} of 200");
        }
    }

    #[test]
    fn every_sample_gets_a_prediction_and_too_few_samples_get_none() {
        let task = Task::default();
        let load = || -> Result<LoadedModel, tch::TchError> {
            let vs = seeded_store(Device::Cpu, 0);
            let net = crate::arch::build(&Architecture::default(), &vs.root(), &task);
            let sidecar = Sidecar {
                version: "test".into(),
                weights: String::new(),
                sha256: String::new(),
                task: task.clone(),
                architecture: Architecture::default(),
                parent: None,
                data_fingerprint: String::new(),
                metrics: Default::default(),
                confusion: None,
                reference: None,
                created_at: chrono::Utc::now(),
            };
            Ok(LoadedModel { vs, net, sidecar })
        };
        let inputs: Vec<Vec<u8>> = (0..12).map(|i| vec![(i * 20) as u8; 784]).collect();
        let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
        let samples: Vec<Example<'_>> =
            (0..12).map(|i| Example { key: &keys[i], input: &inputs[i], label: i % 10 }).collect();
        let predictions =
            out_of_fold(load, &task, &samples, &[], &[], |e, _| e.input.to_vec(), &params(3)).unwrap().unwrap();
        assert_eq!(predictions.len(), 12);
        assert!(predictions.iter().all(|p| p.probabilities.len() == 10));
        let none = |samples: &[Example<'_>], p: &FoldParams| {
            out_of_fold(load, &task, samples, &[], &[], |e, _| e.input.to_vec(), p).unwrap().is_none()
        };
        assert!(none(&samples[..2], &params(3)), "fewer samples than folds");
        assert!(none(&samples[..9], &params(3)), "fewer samples than min_samples (10)");
        assert!(!none(&samples[..10], &params(3)), "min_samples is enough");
        assert!(none(&samples, &params(1)), "one fold is off");
    }
}
