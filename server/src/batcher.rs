//! Dynamic batching: requests queue in a bounded channel; each inference worker takes what is
//! queued (up to `max_batch`, waiting at most `max_wait` for more) and runs it through the
//! model serving when the batch starts. A full queue answers 503 at once.
//!
//! No batch holds more than `max_batch` images. A request with more (a KServe tensor) is run a
//! piece of `max_batch` at a time, all by the model serving when it started, and its worker
//! alternates those pieces with batches of whatever else is queued, so other requests wait for
//! one piece, not for all of it.

use std::collections::VecDeque;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use model::Prediction;
use tokio::sync::oneshot;

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::models::{Models, Served};

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
    inputs: Vec<Vec<f32>>,
    reply: oneshot::Sender<Option<Answer>>,
}

/// The queue in front of the inference workers; dropping every clone stops them.
#[derive(Debug, Clone)]
pub struct Batcher {
    tx: Sender<Job>,
    metrics: Arc<Metrics>,
}

static INTEROP: Once = Once::new();

/// Batches of fewer images than this (a lone request's) run on one torch thread, larger ones
/// on `torch_threads`: waking a second intra-op thread for one image costs more than it saves,
/// most of all when the client shares the cores (BENCHMARKS.md, issue 19).
const PARALLEL_FROM: usize = 2;

impl Batcher {
    pub fn spawn(models: Arc<Models>, metrics: Arc<Metrics>, config: BatchConfig) -> Self {
        INTEROP.call_once(|| tch::set_num_interop_threads(1));
        let (tx, rx) = crossbeam_channel::bounded(config.queue_capacity.max(1));
        let config = BatchConfig { max_batch: config.max_batch.max(1), ..config };
        for i in 0..config.workers.max(1) {
            let (rx, models, metrics) = (rx.clone(), models.clone(), metrics.clone());
            std::thread::Builder::new()
                .name(format!("inference-{i}"))
                .spawn(move || {
                    Worker { index: i, models, metrics, config, held: None, long: VecDeque::new(), threads: 0 }.run(&rx)
                })
                .expect("spawning an inference thread");
        }
        Self { tx, metrics }
    }

    /// Requests waiting for a worker.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Classifies `inputs` (normalised digits), all by one model version.
    pub async fn predict(&self, inputs: Vec<Vec<f32>>) -> Result<Answer, AppError> {
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

/// A job larger than `max_batch`, run a piece at a time by the model it started on.
struct Long {
    job: Job,
    model: Arc<Served>,
    predictions: Vec<Prediction>,
}

struct Worker {
    index: usize,
    models: Arc<Models>,
    metrics: Arc<Metrics>,
    config: BatchConfig,
    /// A job that would have made the last batch larger than `max_batch`: it starts the next.
    held: Option<Job>,
    /// Long jobs in progress, taking turns.
    long: VecDeque<Long>,
    /// The torch thread count this thread last set.
    threads: usize,
}

impl Worker {
    fn run(mut self, rx: &Receiver<Job>) {
        loop {
            // One batch of what is queued, then one piece of a long job, in turn.
            let first = match self.held.take() {
                Some(job) => Some(job),
                None if self.long.is_empty() => match rx.recv() {
                    Ok(job) => Some(job),
                    Err(_) => return,
                },
                None => rx.try_recv().ok(),
            };
            if let Some(first) = first {
                let jobs = self.gather(first, rx);
                self.run_batch(jobs);
            }
            if let Some(mut long) = self.long.pop_front() {
                if self.run_piece(&mut long) {
                    self.long.push_back(long);
                } else {
                    let answer = Answer { predictions: long.predictions, version: long.model.version().to_string() };
                    let _ = long.job.reply.send(Some(answer));
                }
            }
        }
    }

    /// `first` and what is queued behind it, up to `max_batch` images; long jobs met on the
    /// way are set aside to run in pieces.
    fn gather(&mut self, first: Job, rx: &Receiver<Job>) -> Vec<Job> {
        let max = self.config.max_batch;
        let mut jobs = Vec::new();
        let mut size = 0;
        let mut next = Some(first);
        let deadline = Instant::now() + self.config.max_wait;
        while let Some(job) = next.take() {
            if job.inputs.len() > max {
                self.start_long(job);
            } else if size + job.inputs.len() > max {
                self.held = Some(job);
                break;
            } else {
                size += job.inputs.len();
                jobs.push(job);
            }
            if size < max {
                let wait = !self.config.max_wait.is_zero() && !jobs.is_empty();
                next = if wait { rx.recv_deadline(deadline).ok() } else { rx.try_recv().ok() };
            }
        }
        jobs
    }

    fn start_long(&mut self, job: Job) {
        match self.models.current() {
            Some(model) => self.long.push_back(Long { predictions: Vec::with_capacity(job.inputs.len()), job, model }),
            None => drop(job.reply.send(None)),
        }
    }

    /// Sets the torch threads for a batch of `size` images ([`PARALLEL_FROM`]). OpenMP thread
    /// counts are per calling thread, so each worker sets its own.
    fn threads_for(&mut self, size: usize) {
        let threads = if size < PARALLEL_FROM { 1 } else { self.config.torch_threads.max(1) };
        if threads != self.threads {
            tch::set_num_threads(threads as i32);
            self.threads = threads;
        }
    }

    fn run_batch(&mut self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let Some(model) = self.models.current() else {
            jobs.into_iter().for_each(|job| drop(job.reply.send(None)));
            return;
        };
        let size: usize = jobs.iter().map(|j| j.inputs.len()).sum();
        self.metrics.batch_size.observe(size as f64);
        self.threads_for(size);
        let predictions = if let [job] = jobs.as_slice()
            && let [input] = job.inputs.as_slice()
        {
            model.predict(self.index, input)
        } else {
            let inputs: Vec<f32> = jobs.iter().flat_map(|j| j.inputs.iter().flatten().copied()).collect();
            model.predict(self.index, &inputs)
        };
        let mut predictions = predictions.into_iter();
        for job in jobs {
            let mine = predictions.by_ref().take(job.inputs.len()).collect();
            let _ = job.reply.send(Some(Answer { predictions: mine, version: model.version().to_string() }));
        }
    }

    /// Runs the next piece of `long`; whether pieces remain.
    fn run_piece(&mut self, long: &mut Long) -> bool {
        let done = long.predictions.len();
        let end = (done + self.config.max_batch).min(long.job.inputs.len());
        self.threads_for(end - done);
        self.metrics.batch_size.observe((end - done) as f64);
        let piece: Vec<f32> = long.job.inputs[done..end].iter().flatten().copied().collect();
        long.predictions.extend(long.model.predict(self.index, &piece));
        end < long.job.inputs.len()
    }
}
