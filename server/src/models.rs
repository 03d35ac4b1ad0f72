//! The models this server holds: the one serving (swapped atomically), and a small cache of
//! recently loaded versions. Loading verifies the sha256 and architecture (`ModelFile::load`)
//! and warms the model up before it can serve.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::Instant;

use arc_swap::ArcSwapOption;
use gitops::architecture::Architecture;
use gitops::drift::Reference;
use gitops::model_file::{ModelError, ModelFile};
use gitops::task::Task;
use model::{Classifier, Prediction, Weights};
use tch::Device;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{version}: fetching its weights: {source}")]
    Fetch { version: String, source: Box<pipeline::storage::StorageError> },
    #[error("{version}: warm-up produced {what}; the model is not served")]
    Warmup { version: String, what: String },
}

/// A verified, warmed model: one replica per inference worker (libtorch tensors may move
/// between threads but not be shared, so each worker runs its own copy).
#[derive(Debug)]
pub struct Served {
    version: String,
    replicas: Vec<Mutex<Classifier>>,
    /// Its sidecar's drift reference.
    reference: Option<Reference>,
    pub load_seconds: f64,
}

impl Served {
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Its signals on its held-out test set, which live traffic is compared with.
    pub fn reference(&self) -> Option<&Reference> {
        self.reference.as_ref()
    }

    /// Classifies a batch (normalised inputs one after another) on the replica of `worker`.
    pub fn predict(&self, worker: usize, batch: &[f32]) -> Vec<Prediction> {
        let replica = &self.replicas[worker % self.replicas.len()];
        replica.lock().unwrap_or_else(PoisonError::into_inner).predict(batch)
    }

    /// Classifies a batch on the first replica no worker holds; `None` if every one is busy.
    pub fn try_predict(&self, batch: &[f32]) -> Option<Vec<Prediction>> {
        self.replicas.iter().find_map(|replica| match replica.try_lock() {
            Ok(classifier) => Some(classifier.predict(batch)),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner().predict(batch)),
            Err(TryLockError::WouldBlock) => None,
        })
    }
}

/// The serving model and the loaded cache; shared by the handlers, the batcher and the puller.
#[derive(Debug)]
pub struct Models {
    dir: PathBuf,
    device: Device,
    task: Task,
    arch: Architecture,
    keep: usize,
    replicas: usize,
    current: ArcSwapOption<Served>,
    /// The version running in shadow (models/registry.json `shadow`), one replica.
    shadow: ArcSwapOption<Served>,
    /// Loaded versions, most recently used first, at most `keep`.
    loaded: Mutex<VecDeque<Arc<Served>>>,
}

impl Models {
    pub fn new(dir: &Path, device: Device, task: Task, arch: Architecture, keep: usize, replicas: usize) -> Self {
        let keep = keep.max(1);
        Self {
            dir: dir.to_path_buf(),
            device,
            task,
            arch,
            keep,
            replicas: replicas.max(1),
            current: ArcSwapOption::empty(),
            shadow: ArcSwapOption::empty(),
            loaded: Mutex::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model serving now; requests hold this `Arc` until they finish, so a swap never
    /// changes the model under a running batch.
    pub fn current(&self) -> Option<Arc<Served>> {
        self.current.load_full()
    }

    pub fn current_version(&self) -> Option<String> {
        self.current.load().as_ref().map(|s| s.version().to_string())
    }

    /// The model running in shadow, if any.
    pub fn shadow(&self) -> Option<Arc<Served>> {
        self.shadow.load_full()
    }

    /// Loads `version` (verified and warmed up, any network of this task: a shadow may try
    /// another architecture) as the shadow, one replica; `None` ends the shadow.
    pub fn set_shadow(&self, version: Option<&str>) -> Result<(), LoadError> {
        let Some(version) = version else {
            self.shadow.store(None);
            return Ok(());
        };
        let started = Instant::now();
        let file = self.file(version)?;
        let classifier = Classifier::new(file.load(self.device, &self.task, None)?);
        warm_up(&classifier)?;
        let reference = classifier.model().sidecar.reference.clone();
        let served = Served {
            version: version.to_string(),
            replicas: vec![Mutex::new(classifier)],
            reference,
            load_seconds: started.elapsed().as_secs_f64(),
        };
        self.shadow.store(Some(Arc::new(served)));
        Ok(())
    }

    /// `version` on disk, its weights fetched by hash first when the repo keeps them in DVC
    /// (`storage: dvc`) and this clone lacks them; verified when loaded.
    fn file(&self, version: &str) -> Result<ModelFile, LoadError> {
        pipeline::storage::open(&self.dir, version)
            .map_err(|source| LoadError::Fetch { version: version.to_string(), source: Box::new(source) })
    }

    /// Versions held in memory.
    pub fn loaded_versions(&self) -> Vec<String> {
        self.cache().iter().map(|s| s.version().to_string()).collect()
    }

    /// A verified, warmed `version`, from the cache or freshly loaded from disk.
    pub fn get(&self, version: &str) -> Result<Arc<Served>, LoadError> {
        if let Some(hit) = self.cache().iter().find(|s| s.version() == version) {
            return Ok(hit.clone());
        }
        let started = Instant::now();
        let file = self.file(version)?;
        let mut replicas = Vec::with_capacity(self.replicas);
        for _ in 0..self.replicas {
            let classifier = Classifier::new(file.load(self.device, &self.task, Some(&self.arch))?);
            warm_up(&classifier)?;
            replicas.push(Mutex::new(classifier));
        }
        let reference = replicas.first().and_then(|c| c.lock().ok()?.model().sidecar.reference.clone());
        let load_seconds = started.elapsed().as_secs_f64();
        Ok(Arc::new(Served { version: version.to_string(), replicas, reference, load_seconds }))
    }

    /// Makes `model` the one serving, keeping it and the most recent others in the cache.
    pub fn swap(&self, model: Arc<Served>) {
        let mut cache = self.cache();
        cache.retain(|s| s.version() != model.version());
        cache.push_front(model.clone());
        cache.truncate(self.keep);
        // The weights of an evicted model and the loader's buffers go back to the kernel
        // before the swap is visible; glibc would otherwise keep the freed heap pages, and
        // RSS crept up with each reload.
        model::alloc::release_freed_memory();
        self.current.store(Some(model));
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Served>>> {
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A few inferences (blank, a bar, a ramp); every probability must be finite and they must sum
/// to one.
fn warm_up(classifier: &Classifier) -> Result<(), LoadError> {
    let task = classifier.task();
    let values = task.input_values();
    // A tabular row is one line of values.
    let width = if task.schema().is_some() { values } else { task.input.width as usize };
    let blank = vec![0.0f32; values];
    let bar = (0..values).map(|i| if (width * 3 / 7..width * 4 / 7).contains(&(i % width)) { 2.8 } else { -0.42 });
    let ramp = (0..values).map(|i| i as f32 / values as f32 * 3.0 - 0.42);
    let batch: Vec<f32> = blank.into_iter().chain(bar).chain(ramp).collect();
    let fail = |what: String| LoadError::Warmup { version: classifier.version().to_string(), what };
    for _ in 0..3 {
        for p in classifier.predict(&batch) {
            if p.probabilities.iter().any(|v| !v.is_finite()) {
                return Err(fail(format!("non-finite probabilities {:?}", p.probabilities)));
            }
            let sum: f32 = p.probabilities.iter().sum();
            if (sum - 1.0).abs() > 1e-3 {
                return Err(fail(format!("probabilities summing to {sum}")));
            }
        }
    }
    Ok(())
}
