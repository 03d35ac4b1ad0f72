//! `pipeline train-base`: trains the task's network from scratch on the base dataset (MNIST's
//! IDX files, an image folder, or a table for a tabular task), evaluates it on the test split and saves it as a timestamped
//! model registered for serving.

use chrono::Utc;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tch::Device;

use crate::augment::{AugmentParams, augment};
use gitops::architecture::Architecture;
use gitops::image_input::ImageLimits;
use gitops::model_file::{ModelError, ModelFile, Sidecar};
use gitops::params::{self, ParamsError, TrainParams};
use gitops::task::Task;
use model::data::{self, DataError, Dataset, Item, Loader, Split};
use model::preprocess;
use model::train::{self, Batch, EpochLog};
use model::{Classifier, Evaluation, LoadedModel, Weights, eval};
use pipeline::registry::{Registry, RegistryError};
use pipeline::repo::RepoPaths;

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Storage(#[from] pipeline::storage::StorageError),
    #[error("training failed: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{dataset}: the {split} split has no usable image ({bad} unreadable or blank; first: {first})")]
    Empty { dataset: String, split: &'static str, bad: usize, first: String },
}

#[derive(Debug)]
pub struct BaseRun {
    pub sidecar: Sidecar,
    pub evaluation: Evaluation,
    pub log: Vec<EpochLog>,
    /// Images left out because they could not be read or held nothing: (path, why).
    pub skipped: Vec<(PathBuf, String)>,
}

/// One split, as the network reads it.
#[derive(Debug)]
pub struct Prepared {
    pub inputs: Vec<Vec<u8>>,
    pub labels: Vec<usize>,
    pub sha256s: Vec<String>,
    pub skipped: Vec<(PathBuf, String)>,
}

/// Trains, evaluates on the test split, saves into `models/` and (when `serve`) points the
/// registry at the new model.
pub fn train_base(repo: &RepoPaths, data_dir: &Path, device: Device, serve: bool) -> Result<BaseRun, BaseError> {
    let task = params::task(&repo.params())?;
    let arch: Architecture = params::section(&repo.params(), "model")?;
    let train_params: TrainParams = params::section(&repo.params(), "train")?;
    let data_params: params::DataParams = params::section(&repo.params(), "data")?;
    let dataset = data::open_for(data_dir, data_params.test_share, &task)?;
    let train_set = prepare(&task, dataset.as_ref(), Split::Train)?;
    let test_set = prepare(&task, dataset.as_ref(), Split::Test)?;
    let augment: AugmentParams = params::section(&repo.params(), "augment")?;
    let (copies, copy_labels) = augmented_copies(&task, &train_set, &augment, train_params.augment_copies);
    let inputs: Vec<&[u8]> = train_set.inputs.iter().chain(&copies).map(Vec::as_slice).collect();
    let labels: Vec<usize> = train_set.labels.iter().chain(&copy_labels).copied().collect();
    let train_batch = Batch::new(&task, &inputs, &labels, device);
    let test_batch = Batch::new(&task, &test_set.inputs, &test_set.labels, device);

    let vs = train::seeded_store(device, train_params.seed);
    let net = model::arch::build(&arch, &vs.root(), &task);
    model::arch::fit_standardization(&vs, &task, &train_batch.xs);
    let log = train::train(&vs, &net, &train_batch, &train_params)?;
    let sidecar = Sidecar {
        version: String::new(),
        weights: String::new(),
        sha256: String::new(),
        task,
        architecture: arch,
        parent: None,
        data_fingerprint: fingerprint(&train_set),
        metrics: BTreeMap::new(),
        confusion: None,
        reference: None,
        created_at: Utc::now(),
    };
    let classifier = Classifier::new(LoadedModel { vs, net, sidecar });
    let outcomes = eval::outcomes(&classifier, &test_batch.xs, &test_set.labels);
    let evaluation = Evaluation::from_pairs(
        classifier.task().class_count(),
        test_set.labels.iter().zip(&outcomes).map(|(&t, o)| (t, o.predicted)),
    );
    let test_inputs: Vec<&[u8]> = test_set.inputs.iter().map(Vec::as_slice).collect();
    let reference = crate::evaluate::reference(classifier.task(), &outcomes, &test_set.labels, &test_inputs);
    let LoadedModel { vs, mut sidecar, .. } = classifier.into_model();
    sidecar.reference = reference;
    sidecar.metrics = BTreeMap::from([
        ("base_test_accuracy".to_string(), evaluation.accuracy),
        ("train_loss".to_string(), log.last().map_or(f64::NAN, |l| l.loss)),
        ("train_images".to_string(), train_set.labels.len() as f64),
        ("augmented_train_images".to_string(), copy_labels.len() as f64),
        ("test_images".to_string(), test_set.labels.len() as f64),
    ]);
    sidecar.confusion = Some(evaluation.confusion.clone());
    let file = ModelFile::fresh(&repo.models(), sidecar.created_at);
    let sidecar = file.save(&vs, sidecar)?;
    pipeline::storage::track(&repo.root, &sidecar.version)?;
    if serve {
        Registry::new_base(&sidecar.version, "trained from scratch by `pipeline train-base`").save(&repo.models())?;
    }
    let skipped = train_set.skipped.into_iter().chain(test_set.skipped).collect();
    Ok(BaseRun { sidecar, evaluation, log, skipped })
}

/// Computes `version`'s drift reference on the base dataset's test split and writes it into its
/// sidecar (durably; the weights and their hash are untouched).
pub fn write_reference(repo: &RepoPaths, data_dir: &Path, version: &str, device: Device) -> Result<Sidecar, BaseError> {
    let task = params::task(&repo.params())?;
    let data_params: params::DataParams = params::section(&repo.params(), "data")?;
    let file = pipeline::storage::open(&repo.models(), version)?;
    let classifier = Classifier::new(file.load(device, &task, None)?);
    let dataset = data::open_for(data_dir, data_params.test_share, &task)?;
    let test_set = prepare(&task, dataset.as_ref(), Split::Test)?;
    let test_batch = Batch::new(&task, &test_set.inputs, &test_set.labels, device);
    let outcomes = eval::outcomes(&classifier, &test_batch.xs, &test_set.labels);
    let test_inputs: Vec<&[u8]> = test_set.inputs.iter().map(Vec::as_slice).collect();
    let mut sidecar = file.read_sidecar()?;
    sidecar.reference = crate::evaluate::reference(&task, &outcomes, &test_set.labels, &test_inputs);
    file.write_sidecar(&sidecar)?;
    Ok(sidecar)
}

/// Reads and preprocesses every image of one split, in parallel. Images that cannot be read or
/// preprocessed are left out and listed; a split with none left is an error.
pub fn prepare(task: &Task, dataset: &dyn Dataset, split: Split) -> Result<Prepared, BaseError> {
    let items = dataset.items(split)?;
    let loader = Loader::new(ImageLimits { max_bytes: 64 << 20, max_pixels: 1 << 26 });
    if task.schema().is_some() {
        loader.open_tables(task, items.iter().map(|item| item.path.as_path()).collect::<BTreeSet<_>>());
    }
    let results: Vec<(&Item, Result<Vec<u8>, String>)> = items
        .par_iter()
        .map(|item| {
            let input = match (task.schema(), item.index) {
                (Some(_), Some(row)) => loader.load_row(&item.path, row, task).map(|v| data::table::input_bytes(&v)),
                _ => loader
                    .load(&item.path, item.index)
                    .and_then(|image| preprocess::to_input(task, &image).map_err(|e| format!("blank: {e}"))),
            };
            (item, input)
        })
        .collect();
    let mut prepared = Prepared { inputs: Vec::new(), labels: Vec::new(), sha256s: Vec::new(), skipped: Vec::new() };
    for (item, result) in results {
        match result {
            Ok(input) => {
                prepared.inputs.push(input);
                prepared.labels.push(item.label);
                prepared.sha256s.push(item.sha256.clone());
            }
            Err(why) => prepared.skipped.push((item.path.clone(), why)),
        }
    }
    if prepared.inputs.is_empty() {
        return Err(BaseError::Empty {
            dataset: dataset.describe(),
            split: if split == Split::Train { "train" } else { "test" },
            bad: prepared.skipped.len(),
            first: prepared.skipped.first().map_or("none".into(), |(p, why)| format!("{}: {why}", p.display())),
        });
    }
    Ok(prepared)
}

/// `copies` seeded augmented copies of every training input, with their labels.
fn augmented_copies(task: &Task, set: &Prepared, p: &AugmentParams, copies: usize) -> (Vec<Vec<u8>>, Vec<usize>) {
    (0..set.inputs.len())
        .into_par_iter()
        .flat_map_iter(|i| {
            (0..copies).map(move |copy| (augment(task, &set.inputs[i], p, &set.sha256s[i], copy), set.labels[i]))
        })
        .unzip()
}

/// The sha256 of the images' digests and labels: which data a model was trained on.
pub fn fingerprint(data: &Prepared) -> String {
    let mut hasher = Sha256::new();
    for (sha, label) in data.sha256s.iter().zip(&data.labels) {
        hasher.update(sha.as_bytes());
        hasher.update(label.to_le_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The base dataset folder of a repo (params `data.dir`).
pub fn data_dir(repo: &RepoPaths) -> Result<PathBuf, ParamsError> {
    let data: params::DataParams = params::section(&repo.params(), "data")?;
    Ok(repo.resolve(&data.dir))
}
