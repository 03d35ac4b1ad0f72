//! Dynamic batching: requests queue in a bounded channel; each inference worker takes what is
//! queued (up to `max_batch`, waiting at most `max_wait` for more) and runs it through the
//! model serving when the batch starts. A full queue answers 503 at once.

use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use pipeline::data::PIXELS;
use pipeline::model::Prediction;
use tokio::sync::oneshot;

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::models::Models;

/// How batches are formed and run.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    pub max_batch: usize,
    pub max_wait: Duration,
    pub queue_capacity: usize,
    pub workers: usize,
    pub torch_threads: usize,
}

/// The predictions for one request, and the model version that made them.
#[derive(Debug)]
pub struct Answer {
    pub predictions: Vec<Prediction>,
    pub version: String,
}

struct Job {
    inputs: Vec<[f32; PIXELS]>,
    reply: oneshot::Sender<Option<Answer>>,
}

/// The queue in front of the inference workers; dropping every clone stops them.
#[derive(Debug, Clone)]
pub struct Batcher {
    tx: Sender<Job>,
    metrics: Arc<Metrics>,
}

static INTEROP: Once = Once::new();

impl Batcher {
    pub fn spawn(models: Arc<Models>, metrics: Arc<Metrics>, config: BatchConfig) -> Self {
        INTEROP.call_once(|| tch::set_num_interop_threads(1));
        let (tx, rx) = crossbeam_channel::bounded(config.queue_capacity.max(1));
        for i in 0..config.workers.max(1) {
            let (rx, models, metrics) = (rx.clone(), models.clone(), metrics.clone());
            std::thread::Builder::new()
                .name(format!("inference-{i}"))
                .spawn(move || work(i, &rx, &models, &metrics, config))
                .expect("spawning an inference thread");
        }
        Self { tx, metrics }
    }

    /// Requests waiting for a worker.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Classifies `inputs` (normalised digits) in the next batch.
    pub async fn predict(&self, inputs: Vec<[f32; PIXELS]>) -> Result<Answer, AppError> {
        let (reply, answer) = oneshot::channel();
        match self.tx.try_send(Job { inputs, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.metrics.queue_rejections.inc();
                return Err(AppError::Busy);
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(AppError::Unavailable("the inference workers have stopped".into()));
            }
        }
        match answer.await {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err(AppError::Unavailable("no model is loaded yet".into())),
            Err(_) => Err(AppError::internal("inference", "the worker dropped the request")),
        }
    }
}

fn work(worker: usize, rx: &Receiver<Job>, models: &Models, metrics: &Metrics, config: BatchConfig) {
    // OpenMP thread counts are per calling thread, so each worker sets its own.
    tch::set_num_threads(config.torch_threads.max(1) as i32);
    while let Ok(first) = rx.recv() {
        let mut size = first.inputs.len();
        let mut jobs = vec![first];
        let deadline = Instant::now() + config.max_wait;
        while size < config.max_batch {
            let next = if config.max_wait.is_zero() { rx.try_recv().ok() } else { rx.recv_deadline(deadline).ok() };
            let Some(job) = next else { break };
            size += job.inputs.len();
            jobs.push(job);
        }
        let Some(model) = models.current() else {
            jobs.into_iter().for_each(|job| drop(job.reply.send(None)));
            continue;
        };
        metrics.batch_size.observe(size as f64);
        let predictions = if jobs.len() == 1 {
            model.predict(worker, &jobs[0].inputs)
        } else {
            let inputs: Vec<[f32; PIXELS]> = jobs.iter().flat_map(|j| j.inputs.iter().copied()).collect();
            model.predict(worker, &inputs)
        };
        let mut predictions = predictions.into_iter();
        for job in jobs {
            let mine = predictions.by_ref().take(job.inputs.len()).collect();
            let _ = job.reply.send(Some(Answer { predictions: mine, version: model.version().to_string() }));
        }
    }
}
