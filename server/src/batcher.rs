//! Dynamic batching: requests queue in a bounded channel; each inference worker takes what is
//! queued (up to `max_batch`, waiting at most `max_wait` for more) and runs it through the
//! model serving when the batch starts. A full queue answers 503 at once.
//!
//! No batch holds more than `max_batch` images. A request with more (a KServe tensor) is run a
//! piece of `max_batch` at a time, all by the model serving when it started, and its worker
//! alternates those pieces with batches of whatever else is queued, so other requests wait for
//! one piece, not for all of it.
//!
//! A lone request, one image with no other request in flight and nothing queued, skips the
//! queue: its forward runs on the request's own thread, sparing the two thread hand-offs to an
//! inference worker and back (BENCHMARKS.md, issue 19). Only while the model's batches of one
//! stay short ([`LONE_FORWARD_LIMIT`]), so a large network never holds an HTTP thread.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    models: Arc<Models>,
    metrics: Arc<Metrics>,
    load: Arc<Load>,
}

/// What decides whether a request runs where it is.
#[derive(Debug, Default)]
struct Load {
    /// Requests between the start of [`Batcher::predict`] and their answer.
    in_flight: AtomicUsize,
    /// How long the last batch of one image took, in microseconds (0: none yet).
    lone_us: AtomicU64,
}

impl Load {
    fn lone_took(&self, took: Duration) {
        self.lone_us.store(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1), Ordering::Relaxed);
    }

    fn lone_is_short(&self) -> bool {
        self.lone_us.load(Ordering::Relaxed) <= LONE_FORWARD_LIMIT.as_micros() as u64
    }
}

/// One request counted in [`Load::in_flight`] until it is answered or dropped.
struct InFlight<'a>(&'a Load);

impl<'a> InFlight<'a> {
    /// Counts a request in; returns it and how many were in flight before it.
    fn enter(load: &'a Load) -> (Self, usize) {
        let before = load.in_flight.fetch_add(1, Ordering::SeqCst);
        (Self(load), before)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A lone request runs on its own thread only while a batch of one takes at most this long.
const LONE_FORWARD_LIMIT: Duration = Duration::from_millis(2);

thread_local! {
    /// The torch intra-op thread count this thread last set (0: none yet).
    static TORCH_THREADS: Cell<usize> = const { Cell::new(0) };
}

/// Runs this thread's next forwards on `threads` torch threads. OpenMP thread counts are per
/// calling thread, so each thread that runs a forward (an inference worker, or an HTTP thread
/// running a lone request) sets its own, and only when it changes.
fn use_torch_threads(threads: usize) {
    TORCH_THREADS.with(|current| {
        if current.replace(threads) != threads {
            tch::set_num_threads(threads as i32);
        }
    });
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
        let load = Arc::new(Load::default());
        for index in 0..config.workers.max(1) {
            let worker = Worker {
                index,
                models: models.clone(),
                metrics: metrics.clone(),
                load: load.clone(),
                config,
                held: None,
                long: VecDeque::new(),
            };
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("inference-{index}"))
                .spawn(move || worker.run(&rx))
                .expect("spawning an inference thread");
        }
        Self { tx, models, metrics, load }
    }

    /// Requests waiting for a worker.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Classifies `inputs` (normalised digits), all by one model version.
    pub async fn predict(&self, inputs: Vec<Vec<f32>>) -> Result<Answer, AppError> {
        let (_in_flight, before) = InFlight::enter(&self.load);
        if before == 0
            && let [input] = inputs.as_slice()
            && let Some(answer) = self.run_here(input)
        {
            return Ok(answer);
        }
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

    /// Runs a lone request's forward on this thread, on one torch thread, when nothing is
    /// queued, the model's batches of one are short and a replica is free; `None` sends it to
    /// the queue.
    fn run_here(&self, input: &[f32]) -> Option<Answer> {
        if !self.tx.is_empty() || !self.load.lone_is_short() {
            return None;
        }
        let model = self.models.current()?;
        use_torch_threads(1);
        let started = Instant::now();
        let predictions = model.try_predict(input)?;
        self.load.lone_took(started.elapsed());
        self.metrics.batch_size.observe(1.0);
        self.metrics.lone_runs.inc();
        Some(Answer { predictions, version: model.version().to_string() })
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
    load: Arc<Load>,
    config: BatchConfig,
    /// A job that would have made the last batch larger than `max_batch`: it starts the next.
    held: Option<Job>,
    /// Long jobs in progress, taking turns.
    long: VecDeque<Long>,
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

    /// Sets the torch threads for a batch of `size` images ([`PARALLEL_FROM`]).
    fn threads_for(&self, size: usize) {
        use_torch_threads(if size < PARALLEL_FROM { 1 } else { self.config.torch_threads.max(1) });
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
            let started = Instant::now();
            let predictions = model.predict(self.index, input);
            self.load.lone_took(started.elapsed());
            predictions
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_counts_requests_until_they_are_dropped() {
        let load = Load::default();
        let (first, before) = InFlight::enter(&load);
        assert_eq!(before, 0);
        let (second, before) = InFlight::enter(&load);
        assert_eq!(before, 1);
        drop(first);
        drop(second);
        assert_eq!(InFlight::enter(&load).1, 0);
    }

    #[test]
    fn a_lone_request_runs_where_it_is_only_while_batches_of_one_are_short() {
        let load = Load::default();
        assert!(load.lone_is_short(), "before any forward");
        load.lone_took(Duration::from_micros(400));
        assert!(load.lone_is_short());
        load.lone_took(LONE_FORWARD_LIMIT + Duration::from_micros(1));
        assert!(!load.lone_is_short(), "a slow network keeps HTTP threads free");
        load.lone_took(Duration::ZERO);
        assert!(load.lone_is_short(), "a faster model (a swap) runs where it is again");
    }
}
