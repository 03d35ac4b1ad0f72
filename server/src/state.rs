//! `AppState`: everything the handlers share, built from the `Config` and the repository's
//! params.yaml. Starting it starts the inference workers, the puller and the log writer.

use std::path::PathBuf;
use std::sync::Arc;

use gitops::architecture::Architecture;
use gitops::image_input::ImageLimits;
use gitops::params::Params;
use pipeline::repo::RepoPaths;

use crate::batcher::{BatchConfig, Batcher};
use crate::config::Config;
use crate::drift::{Drift, DriftConfig};
use crate::feedback::FeedbackService;
use crate::history::History;
use crate::metrics::Metrics;
use crate::models::Models;
use crate::predlog::PredLog;
use crate::puller::{Puller, PullerConfig};
use crate::shadow::Shadow;

/// Memory the history may spend on inputs kept for feedback by request_id.
const HISTORY_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("reading {}: {source}", path.display())]
    Params { path: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
    #[error(transparent)]
    Device(#[from] model::device::NoCuda),
    #[error("opening the prediction log: {0}")]
    PredLog(#[from] pipeline::predlog::PredLogError),
}

/// Settings the handlers and the connection layer read.
#[derive(Debug)]
pub struct Settings {
    pub root: PathBuf,
    pub limits: ImageLimits,
    /// Largest request body: an image at the byte limit, base64-encoded, plus room for fields.
    pub body_limit: usize,
    pub admin_token: Option<String>,
    pub feedback_token: Option<String>,
    pub model_name: String,
    pub threshold: u32,
    pub kserve_max_images: usize,
    /// What the model classifies and reads (params.yaml `task:`).
    pub task: gitops::task::Task,
    /// The label review's rule (params.yaml `review:`).
    pub review: gitops::feedback::review::ReviewParams,
    /// How long a request's line and headers may take, and a connection may sit idle.
    pub header_read_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub models: Arc<Models>,
    pub batcher: Batcher,
    pub puller: Puller,
    pub metrics: Arc<Metrics>,
    pub history: Arc<History>,
    pub feedback: Arc<FeedbackService>,
    pub predlog: PredLog,
    pub drift: Arc<Drift>,
    pub shadow: Arc<Shadow>,
}

impl AppState {
    pub fn start(config: &Config) -> Result<Self, StartError> {
        let root = match &config.repo {
            Some(dir) => dir.clone(),
            None => {
                std::env::current_dir().map_err(|e| StartError::Params { path: ".".into(), source: Box::new(e) })?
            }
        };
        let repo = RepoPaths::new(root.clone());
        let params =
            Params::load(&root).map_err(|e| StartError::Params { path: repo.params(), source: Box::new(e) })?;
        let arch: Architecture = params.model.clone();
        let device = model::device::resolve(config.device)?;
        let metrics = Arc::new(Metrics::new());
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (workers, torch_threads) = config.inference_threads(cpus);
        let task = params.task.clone();
        let models =
            Arc::new(Models::new(&repo.models(), device, task.clone(), arch, config.keep_versions as usize, workers));
        let batch = BatchConfig {
            max_batch: config.max_batch as usize,
            max_wait: std::time::Duration::from_micros(config.max_wait_us),
            queue_capacity: config.queue_capacity,
            workers,
            torch_threads,
        };
        let batcher = Batcher::spawn(models.clone(), metrics.clone(), batch);
        let feedback = Arc::new(FeedbackService::open(&root, &params, metrics.clone()));
        let puller_config = PullerConfig {
            root: root.clone(),
            git: params.git.clone(),
            fetch: !config.no_fetch,
            interval: config.poll_interval,
        };
        let puller = Puller::spawn(puller_config, models.clone(), metrics.clone(), Some(feedback.store.clone()));
        let predlog = PredLog::spawn(
            &root.join(pipeline::predlog::DIR),
            config.predlog_max_bytes,
            config.predlog_keep,
            metrics.clone(),
        )?;
        let limits = ImageLimits::from(&params.feedback);
        let settings = Settings {
            body_limit: usize::try_from(limits.max_bytes.saturating_mul(4) / 3 + (64 << 10)).unwrap_or(usize::MAX),
            limits,
            root,
            // `Config` refuses empty tokens at start; one that got here anyway locks, not opens.
            admin_token: config.admin_token.clone(),
            feedback_token: config.feedback_token.clone(),
            model_name: config.model_name.clone().unwrap_or_else(|| task.name.clone()),
            threshold: params.feedback.threshold,
            kserve_max_images: config.kserve_max_images as usize,
            task,
            review: gitops::params::section(&repo.params(), "review")
                .map_err(|e| StartError::Params { path: repo.params(), source: Box::new(e) })?,
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
        };
        let history = Arc::new(History::new(config.history_size, HISTORY_BYTES));
        let drift_config = DriftConfig {
            window: config.drift_window as usize,
            psi: config.drift_psi,
            action: config.drift_action,
            cooldown: config.drift_cooldown,
        };
        let drift = Arc::new(Drift::new(drift_config, settings.task.clone(), metrics.clone(), feedback.clone()));
        let shadow = Arc::new(Shadow::spawn(config.shadow_share, metrics.clone()));
        Ok(Self {
            settings: Arc::new(settings),
            models,
            batcher,
            puller,
            metrics,
            history,
            feedback,
            predlog,
            drift,
            shadow,
        })
    }

    pub fn ready(&self) -> bool {
        self.models.current().is_some()
    }
}
