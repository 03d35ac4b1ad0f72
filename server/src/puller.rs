//! The puller: one thread that owns every git operation of the server on the model side. Each
//! poll interval it fetches the remote and fast-forwards, reads `models/registry.json`, and when
//! the pointer names another version it loads, verifies and warms that version up and swaps it
//! in. A failed load keeps the old model serving, is counted, and is retried with a doubling
//! backoff. Admin reloads and rollbacks are commands to the same thread, so they never race
//! with a fetch. It also loads the registry's `shadow` version, which `shadow.rs` runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use gitops::feedback::FeedbackStore;
use gitops::git::{self, Credentials};
use gitops::model_file::ModelFile;
use gitops::params::GitParams;
use pipeline::registry::Registry;
use pipeline::release::{self, ReleaseError};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::models::Models;

const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct PullerConfig {
    pub root: PathBuf,
    pub git: GitParams,
    pub fetch: bool,
    pub interval: Duration,
}

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadOutcome {
    pub serving: Option<String>,
    pub changed: bool,
}

/// What a rollback did.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackOutcome {
    pub serving: String,
    pub previous: String,
    /// HEAD after the rollback commit (pushed when the remote exists).
    pub commit: Option<String>,
}

enum Command {
    Reload(oneshot::Sender<Result<ReloadOutcome, AppError>>),
    Rollback(String, oneshot::Sender<Result<RollbackOutcome, AppError>>),
}

/// The handle on the puller thread; the thread stops when every handle is dropped.
#[derive(Debug, Clone)]
pub struct Puller {
    tx: Sender<Command>,
}

impl Puller {
    /// Starts the thread, which loads the serving model at once.
    pub fn spawn(
        config: PullerConfig,
        models: Arc<Models>,
        metrics: Arc<Metrics>,
        store: Option<FeedbackStore>,
    ) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let worker = Worker {
            config,
            models,
            metrics,
            store,
            creds: Credentials::from_env(),
            failures: HashMap::new(),
            failed_shadow: None,
        };
        std::thread::Builder::new().name("puller".into()).spawn(move || worker.run(&rx)).expect("spawning the puller");
        Self { tx }
    }

    /// Fetches and loads what the registry names now, ignoring any backoff.
    pub async fn reload(&self) -> Result<ReloadOutcome, AppError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Reload(reply), rx).await
    }

    /// Moves the registry pointer to `version` in a commit (`pipeline::release::rollback`,
    /// pushed when there is a remote), then serves it. The version must load and warm up first.
    pub async fn rollback(&self, version: String) -> Result<RollbackOutcome, AppError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Rollback(version, reply), rx).await
    }

    async fn send<T>(&self, command: Command, rx: oneshot::Receiver<Result<T, AppError>>) -> Result<T, AppError> {
        let stopped = || AppError::Unavailable("the puller has stopped".into());
        self.tx.send(command).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

#[derive(Debug, thiserror::Error)]
enum PullError {
    #[error(transparent)]
    Registry(#[from] pipeline::registry::RegistryError),
    #[error(transparent)]
    Load(#[from] crate::models::LoadError),
    #[error("{version} failed {attempts} time(s); next try in {wait:?}")]
    Backoff { version: String, attempts: u32, wait: Duration },
}

struct Worker {
    config: PullerConfig,
    models: Arc<Models>,
    metrics: Arc<Metrics>,
    store: Option<FeedbackStore>,
    creds: Credentials,
    /// Versions that failed to load: attempts so far and when to try again.
    failures: HashMap<String, (u32, Instant)>,
    /// The shadow version that failed to load.
    failed_shadow: Option<String>,
}

impl Worker {
    fn run(mut self, rx: &Receiver<Command>) {
        let mut next_poll = Instant::now();
        loop {
            let command = match rx.recv_deadline(next_poll) {
                Ok(command) => Some(command),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            match command {
                None => {
                    match self.poll(false) {
                        Ok(_) | Err(PullError::Backoff { .. }) => {}
                        Err(e) => tracing::warn!("the serving model was not updated: {e}"),
                    }
                    next_poll = Instant::now() + self.config.interval;
                }
                Some(Command::Reload(reply)) => {
                    let result = self
                        .poll(true)
                        .map_err(|e| AppError::Conflict(format!("reload failed, the old model keeps serving: {e}")));
                    let _ = reply.send(result);
                }
                Some(Command::Rollback(version, reply)) => {
                    let _ = reply.send(self.rollback(&version));
                }
            }
        }
    }

    fn models_dir(&self) -> &Path {
        self.models.dir()
    }

    /// Fetches (when configured and a remote exists) and fast-forwards under the store lock.
    fn fetch(&self) {
        if !self.config.fetch || !self.has_remote() {
            return;
        }
        // Hold the feedback store's lock so no feedback commit races the fast-forward (only
        // once new_data/ exists: taking the lock creates it, untracked).
        let _lock = self.store.as_ref().filter(|s| s.data_dir().is_dir()).map(FeedbackStore::lock).transpose();
        match git::fetch_fast_forward(&self.config.root, &self.config.git, &self.creds) {
            Ok(ff) => {
                self.metrics.git_fetches.with_label_values(&["success"]).inc();
                if ff.changed() {
                    tracing::info!(head = %ff.new_head, "fast-forwarded to the remote");
                }
            }
            Err(e) => {
                self.metrics.git_fetches.with_label_values(&["failure"]).inc();
                tracing::warn!("fetching {}/{}: {e}", self.config.git.remote, self.config.git.branch);
            }
        }
    }

    fn has_remote(&self) -> bool {
        git2::Repository::open(&self.config.root).is_ok_and(|r| r.find_remote(&self.config.git.remote).is_ok())
    }

    /// One poll: returns whether the serving model changed.
    fn poll(&mut self, force: bool) -> Result<ReloadOutcome, PullError> {
        self.fetch();
        let registry = Registry::load(self.models_dir()).inspect_err(|_| self.metrics.registry_errors.inc())?;
        self.follow_shadow(registry.shadow.as_deref());
        let target = registry.serving;
        if self.models.current_version().as_deref() == Some(target.as_str()) {
            return Ok(ReloadOutcome { serving: Some(target), changed: false });
        }
        if let Some(&(attempts, at)) = self.failures.get(&target)
            && !force
            && Instant::now() < at
        {
            return Err(PullError::Backoff { version: target, attempts, wait: at - Instant::now() });
        }
        self.load_and_swap(&target)?;
        Ok(ReloadOutcome { serving: Some(target), changed: true })
    }

    /// Loads the registry's shadow version when it changed (or ends the shadow); a version that
    /// fails to load is not retried until the registry names another.
    fn follow_shadow(&mut self, wanted: Option<&str>) {
        let loaded = self.models.shadow().map(|s| s.version().to_string());
        if loaded.as_deref() == wanted || (wanted.is_some() && self.failed_shadow.as_deref() == wanted) {
            return;
        }
        match self.models.set_shadow(wanted) {
            Ok(()) => {
                self.failed_shadow = None;
                self.metrics.shadow(wanted);
                tracing::info!(shadow = wanted.unwrap_or("none"), "shadow model changed");
            }
            Err(e) => {
                self.failed_shadow = wanted.map(str::to_string);
                let _ = self.models.set_shadow(None);
                self.metrics.shadow(None);
                self.metrics.shadow_load_failures.inc();
                tracing::error!(shadow = wanted.unwrap_or("none"), "the shadow model does not run: {e}");
            }
        }
    }

    fn load_and_swap(&mut self, version: &str) -> Result<(), PullError> {
        match self.models.get(version) {
            Ok(model) => {
                let previous = self.models.current_version();
                self.metrics.reloads.with_label_values(&["success"]).inc();
                self.metrics.load_seconds.observe(model.load_seconds);
                self.metrics.serving(version);
                self.models.swap(model);
                self.failures.remove(version);
                tracing::info!(version, previous = previous.as_deref().unwrap_or("none"), "now serving");
                Ok(())
            }
            Err(e) => {
                self.metrics.reloads.with_label_values(&["failure"]).inc();
                let attempts = self.failures.get(version).map_or(0, |f| f.0) + 1;
                let wait = self.config.interval.max(Duration::from_millis(100)) * 2u32.saturating_pow(attempts.min(16));
                self.failures.insert(version.to_string(), (attempts, Instant::now() + wait.min(MAX_BACKOFF)));
                tracing::error!(version, attempts, "refusing to serve: {e}");
                Err(e.into())
            }
        }
    }

    fn rollback(&mut self, version: &str) -> Result<RollbackOutcome, AppError> {
        let file = ModelFile::new(self.models_dir(), version).map_err(|e| AppError::Unprocessable(e.to_string()))?;
        self.fetch();
        if !file.sidecar_path().is_file() {
            return Err(AppError::NotFound(format!("no model {version} in models/")));
        }
        let model =
            self.models.get(version).map_err(|e| AppError::Conflict(format!("cannot roll back to {version}: {e}")))?;
        let previous =
            Registry::load(self.models_dir()).map_err(|e| AppError::internal("reading the registry", e))?.serving;
        if previous != version {
            let reason = format!("rolled back from {previous} through the model-server admin API");
            // The feedback committer must not commit while the pointer moves.
            let _lock = self.store.as_ref().filter(|s| s.data_dir().is_dir()).map(FeedbackStore::lock).transpose();
            release::rollback(&self.config.root, version, &reason).map_err(|e| match e {
                ReleaseError::Git(e) => AppError::Conflict(format!("the rollback commit or its push failed: {e}")),
                other => AppError::internal("rolling back", other),
            })?;
        }
        self.metrics.reloads.with_label_values(&["success"]).inc();
        self.metrics.serving(version);
        self.models.swap(model);
        self.failures.remove(version);
        tracing::info!(version, %previous, "rolled back");
        let commit =
            git2::Repository::open(&self.config.root).ok().and_then(|r| r.head().ok()?.target()).map(|o| o.to_string());
        Ok(RollbackOutcome { serving: version.to_string(), previous, commit })
    }
}
