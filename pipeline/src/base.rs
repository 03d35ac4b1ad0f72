//! `pipeline train-base`: trains the CNN from scratch on MNIST, evaluates it on the test split
//! and saves it as a timestamped model registered for serving.

use chrono::Utc;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Device;

use crate::data::{IdxError, Mnist, Split};
use crate::model::train::{self, Batch, EpochLog};
use crate::model::{
    Architecture, Classifier, Evaluation, ModelError, ModelFile, Net, Sidecar, artifact::LoadedModel, eval,
};
use crate::params::{self, ParamsError, TrainParams};
use crate::preprocess;
use crate::registry::{Registry, RegistryError};
use crate::repo::RepoPaths;

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error(transparent)]
    Data(#[from] IdxError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("training failed: {0}")]
    Torch(#[from] tch::TchError),
}

#[derive(Debug)]
pub struct BaseRun {
    pub sidecar: Sidecar,
    pub evaluation: Evaluation,
    pub log: Vec<EpochLog>,
}

/// Trains, evaluates on the test split, saves into `models/` and (when `serve`) points the
/// registry at the new model.
pub fn train_base(repo: &RepoPaths, data_dir: &Path, device: Device, serve: bool) -> Result<BaseRun, BaseError> {
    let arch: Architecture = params::section(&repo.params(), "model")?;
    let train_params: TrainParams = params::section(&repo.params(), "train")?;
    let train_set = Mnist::load(data_dir, Split::Train)?;
    let test_set = Mnist::load(data_dir, Split::Test)?;
    let train_batch = Batch::new(&preprocess::mnist_digits(&train_set), &train_set.labels, device);
    let test_batch = Batch::new(&preprocess::mnist_digits(&test_set), &test_set.labels, device);

    let vs = train::seeded_store(device, train_params.seed);
    let net = Net::new(&vs.root(), arch);
    let log = train::train(&vs, &net, &train_batch, &train_params)?;
    let sidecar = Sidecar {
        version: String::new(),
        weights: String::new(),
        sha256: String::new(),
        architecture: arch,
        parent: None,
        data_fingerprint: fingerprint(&train_set),
        metrics: BTreeMap::new(),
        confusion: None,
        created_at: Utc::now(),
    };
    let classifier = Classifier::new(LoadedModel { vs, net, sidecar });
    let evaluation = eval::evaluate(&classifier, &test_batch.xs, &test_set.labels);
    let LoadedModel { vs, mut sidecar, .. } = classifier.into_model();
    sidecar.metrics = BTreeMap::from([
        ("base_test_accuracy".to_string(), evaluation.accuracy),
        ("train_loss".to_string(), log.last().map_or(f64::NAN, |l| l.loss)),
        ("train_images".to_string(), train_set.len() as f64),
        ("test_images".to_string(), test_set.len() as f64),
    ]);
    sidecar.confusion = Some(evaluation.confusion);
    let file = ModelFile::fresh(&repo.models(), sidecar.created_at);
    let sidecar = file.save(&vs, sidecar)?;
    if serve {
        Registry::new_base(&sidecar.version, "trained from scratch by `pipeline train-base`").save(&repo.models())?;
    }
    Ok(BaseRun { sidecar, evaluation, log })
}

/// The sha256 of a dataset's pixels and labels: which data a model was trained on.
pub fn fingerprint(data: &Mnist) -> String {
    let mut hasher = Sha256::new();
    hasher.update(&data.pixels);
    hasher.update(&data.labels);
    hex::encode(hasher.finalize())
}

/// The default MNIST folder of a repo (params `data.mnist_dir`).
pub fn data_dir(repo: &RepoPaths) -> Result<PathBuf, ParamsError> {
    let data: params::DataParams = params::section(&repo.params(), "data")?;
    Ok(repo.resolve(&data.mnist_dir))
}
