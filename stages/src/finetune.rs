//! **finetune**: starts from the model being served and trains it on the training feedback and
//! its augmented copies, mixed with a seeded replay sample of the base training data (so old
//! skills are not forgotten). Writes the candidate model with its sidecar and a per-epoch log
//! (CSV, a DVC plot). With no feedback yet, the candidate is the served model unchanged.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::manifest::{self, Role, Row};
use crate::{StageError, io_err, write_file};
use gitops::architecture::Architecture;
use gitops::device::DeviceChoice;
use gitops::model_file::ModelFile;
use gitops::params::{self, TrainParams};
use model::Weights;
use model::train::{self, Batch};
use pipeline::paths;
use pipeline::registry::Registry;

#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Fine-tune the served model on feedback mixed with replayed base data",
    long_about = "Reads the clean manifest, the augmented copies and the model models/registry.json serves; writes the candidate model (safetensors + JSON sidecar) into --out and the per-epoch training log (CSV). Settings: params finetune.*."
)]
pub struct Args {
    #[arg(long, default_value = "params.yaml")]
    pub params: PathBuf,
    #[arg(long, default_value = paths::CLEAN)]
    pub manifest: PathBuf,
    #[arg(long, default_value = paths::AUGMENTED)]
    pub augmented: PathBuf,
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    #[arg(long, default_value = paths::CANDIDATE)]
    pub out: PathBuf,
    #[arg(long, default_value = paths::TRAIN_LOG)]
    pub log: PathBuf,
    /// Where the model runs (auto: CUDA when a GPU is visible, else the CPU).
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceChoice,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneParams {
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub replay_ratio: f64,
    pub min_replay: usize,
    pub feedback_weight: f64,
    pub tune: Tune,
}

/// Which layers a fine-tune trains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tune {
    /// Every layer.
    #[default]
    All,
    /// Only the layers after the features (`model::arch::classifier_layers`).
    Classifier,
}

impl Default for FinetuneParams {
    fn default() -> Self {
        Self {
            seed: 0,
            epochs: 3,
            batch_size: 64,
            learning_rate: 5e-4,
            replay_ratio: 1.5,
            min_replay: 1000,
            feedback_weight: 1.0,
            tune: Tune::All,
        }
    }
}

pub fn run(args: &Args) -> Result<ModelFile, StageError> {
    let p: FinetuneParams = params::section(&args.params, "finetune")?;
    let arch: Architecture = params::section(&args.params, "model")?;
    let task = params::task(&args.params)?;
    let device = model::device::resolve(args.device)?;
    let rows = manifest::read(&args.manifest)?;
    let augmented = manifest::read(&args.augmented)?;
    let serving = pipeline::storage::open(&args.models, &Registry::load(&args.models)?.serving)?;
    let model = serving.load(device, &task, Some(&arch))?;

    let feedback: Vec<&Row> = rows.iter().filter(|r| r.role == Role::FeedbackTrain).collect();
    let repeats = p.feedback_weight.round().max(1.0) as usize;
    let mut chosen: Vec<&Row> = feedback.iter().flat_map(|r| std::iter::repeat_n(*r, repeats)).collect();
    chosen.extend(augmented.iter());
    let base: Vec<&Row> = rows.iter().filter(|r| r.role == Role::Train).collect();
    let replay = replay_count(chosen.len(), base.len(), &p);
    chosen.extend(replay_sample(&base, replay, p.seed));

    let mut log = String::from("epoch,loss,train_accuracy,seconds,images_per_second\n");
    if !feedback.is_empty() {
        let inputs = crate::inputs(&args.manifest, &chosen, &task)?;
        let labels: Vec<usize> = chosen.iter().map(|r| r.label).collect();
        let batch = Batch::new(&task, &inputs, &labels, device);
        if p.tune == Tune::Classifier {
            let layers = model::arch::classifier_layers(&arch);
            if train::train_only(&model.vs, layers) == 0 {
                return Err(StageError::Invalid {
                    path: args.params.clone(),
                    what: format!("finetune.tune: classifier, but the network has no layer named {layers:?}"),
                });
            }
        }
        let train_params = TrainParams {
            seed: p.seed,
            epochs: p.epochs,
            batch_size: p.batch_size,
            learning_rate: p.learning_rate,
            augment_copies: 0,
        };
        for e in train::train(&model.vs, &model.net, &batch, &train_params)? {
            log.push_str(&format!(
                "{},{:.6},{:.6},{:.3},{:.1}\n",
                e.epoch, e.loss, e.train_accuracy, e.seconds, e.images_per_second
            ));
        }
    }
    write_file(&args.log, log.as_bytes())?;

    if args.out.exists() {
        std::fs::remove_dir_all(&args.out).map_err(io_err(&args.out))?;
    }
    let file = ModelFile::fresh(&args.out, chrono::Utc::now());
    let mut sidecar = model.sidecar.clone();
    sidecar.parent = Some(serving.version.clone());
    sidecar.data_fingerprint = fingerprint(&chosen);
    sidecar.metrics = BTreeMap::from([
        ("feedback_samples".to_string(), feedback.len() as f64),
        ("augmented_samples".to_string(), augmented.len() as f64),
        ("replay_samples".to_string(), replay as f64),
    ]);
    sidecar.confusion = None;
    sidecar.created_at = chrono::Utc::now();
    file.save(&model.vs, sidecar)?;
    Ok(file)
}

/// How many base rows train next to `feedback` feedback-derived images: `replay_ratio` of them,
/// at least `min_replay`, at most all there are.
fn replay_count(feedback: usize, base: usize, p: &FinetuneParams) -> usize {
    ((feedback as f64 * p.replay_ratio).round() as usize).max(p.min_replay).min(base)
}

/// `n` base rows picked by a seeded shuffle.
fn replay_sample<'a>(base: &[&'a Row], n: usize, seed: u64) -> Vec<&'a Row> {
    let mut keyed: Vec<(String, &Row)> = base
        .iter()
        .map(|r| {
            (
                hex::encode(
                    Sha256::new()
                        .chain_update(seed.to_le_bytes())
                        .chain_update(&r.sha256)
                        .chain_update(r.index.unwrap_or(0).to_le_bytes())
                        .finalize(),
                ),
                *r,
            )
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().take(n).map(|(_, r)| r).collect()
}

/// The sha256 of the training rows' digests, in order: which data the candidate saw.
fn fingerprint(rows: &[&Row]) -> String {
    let mut hasher = Sha256::new();
    rows.iter().for_each(|r| hasher.update(r.sha256.as_bytes()));
    hex::encode(hasher.finalize())
}

/// The one model a candidate folder holds.
pub fn candidate_in(dir: &Path) -> Result<ModelFile, StageError> {
    ModelFile::list(dir)?.pop().ok_or_else(|| StageError::Invalid {
        path: dir.to_path_buf(),
        what: "holds no candidate model (run finetune)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_feedback_batch_still_trains_among_min_replay_base_images() {
        let p = FinetuneParams::default();
        assert_eq!(replay_count(55, 6000, &p), 1000);
        assert_eq!(replay_count(2200, 6000, &p), 3300);
        assert_eq!(replay_count(55, 400, &p), 400);
    }
}
