//! Shadow evaluation: the registry's `shadow` version (loaded by the puller) classifies a share
//! of live `/predict` requests (`--shadow-share`, chosen by request id) beside the serving
//! model, never answering. It runs on one thread of its own at idle CPU priority behind a small
//! queue: when it is slow the queue fills and further requests are not shadowed (counted), and
//! a panic or a non-finite output is counted as an error; the answer never waits for it. It
//! counts agreement with the serving model and, when feedback arrives for a shadowed request,
//! which model was right: on `/metrics` and `/models`, where `pipeline models promote-shadow`
//! reads them.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use sha2::{Digest, Sha256};

pub use pipeline::shadow::ShadowStats;

use crate::metrics::Metrics;
use crate::models::{Models, Served};

/// Requests waiting for the shadow model.
const QUEUE: usize = 32;
/// Shadowed requests remembered for their feedback.
const REMEMBER: usize = 10_000;

/// One shadowed request.
struct Job {
    request_id: String,
    input: Vec<f32>,
    serving_index: usize,
    model: Arc<Served>,
}

#[derive(Debug, Default)]
struct State {
    stats: ShadowStats,
    /// request id -> (shadow's class, serving's class), oldest first in `order`.
    answers: HashMap<String, (usize, usize)>,
    order: VecDeque<String>,
}

#[derive(Debug)]
pub struct Shadow {
    share: f64,
    tx: Sender<Job>,
    state: Arc<Mutex<State>>,
    metrics: Arc<Metrics>,
}

impl Shadow {
    /// Starts the shadow thread; `share` of requests (0 to 1) are shadowed while a shadow
    /// model is loaded.
    pub fn spawn(share: f64, metrics: Arc<Metrics>) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let state = Arc::new(Mutex::new(State::default()));
        let (worker_state, worker_metrics) = (state.clone(), metrics.clone());
        std::thread::Builder::new()
            .name("shadow".into())
            .spawn(move || run(&rx, &worker_state, &worker_metrics))
            .expect("spawning the shadow thread");
        Self { share: share.clamp(0.0, 1.0), tx, state, metrics }
    }

    /// Offers a request the serving model answered with `serving_index` on `input` (normalised)
    /// to the shadow model, if one runs and the request is in the share. Never blocks.
    pub fn offer(&self, models: &Models, request_id: &str, input: &[f32], serving_index: usize) {
        let Some(model) = models.shadow() else { return };
        if !in_share(request_id, self.share) {
            return;
        }
        let job = Job { request_id: request_id.to_string(), input: input.to_vec(), serving_index, model };
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => {
                self.metrics.shadow_dropped.inc();
                lock(&self.state, &job.model).stats.dropped += 1;
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Feedback says `label` is right for `request_id`: counts which model was, if it was
    /// shadowed.
    pub fn feedback(&self, request_id: &str, label: usize) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((shadow, serving)) = state.answers.remove(request_id) else { return };
        let wins = &mut state.stats.feedback;
        let right = match (shadow == label, serving == label) {
            (true, true) => {
                wins.both += 1;
                "both"
            }
            (false, true) => {
                wins.serving_only += 1;
                "serving"
            }
            (true, false) => {
                wins.shadow_only += 1;
                "shadow"
            }
            (false, false) => {
                wins.neither += 1;
                "neither"
            }
        };
        self.metrics.shadow_feedback.with_label_values(&[right]).inc();
    }

    /// The figures of the version in shadow now (none without a shadow).
    pub fn stats(&self, models: &Models) -> Option<ShadowStats> {
        let model = models.shadow()?;
        let mut stats = lock(&self.state, &model).stats.clone();
        stats.agreement = (stats.predictions > 0).then(|| stats.agreements as f64 / stats.predictions as f64);
        Some(stats)
    }
}

/// Whether `request_id` is among the `share` of requests shadowed (by its hash, so a share is
/// stable and needs no generator).
fn in_share(request_id: &str, share: f64) -> bool {
    let digest = Sha256::digest(request_id.as_bytes());
    let prefix = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (prefix as f64 / u64::MAX as f64) < share
}

/// The state, reset when `model` is another version than the one counted so far.
fn lock<'a>(state: &'a Mutex<State>, model: &Served) -> std::sync::MutexGuard<'a, State> {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    if state.stats.version != model.version() {
        *state = State {
            stats: ShadowStats { version: model.version().to_string(), ..ShadowStats::default() },
            ..State::default()
        };
    }
    state
}

fn run(rx: &Receiver<Job>, state: &Mutex<State>, metrics: &Metrics) {
    if !model::idle::run_when_idle() {
        tracing::warn!("the shadow thread runs at normal priority (SCHED_IDLE was refused)");
    }
    for job in rx {
        let answer = std::panic::catch_unwind(AssertUnwindSafe(|| job.model.predict(0, &job.input)));
        let index = match answer {
            Ok(predictions) => {
                predictions.first().filter(|p| p.probabilities.iter().all(|v| v.is_finite())).map(|p| p.index)
            }
            Err(_) => None,
        };
        let mut state = lock(state, &job.model);
        let Some(index) = index else {
            state.stats.errors += 1;
            metrics.shadow_errors.inc();
            continue;
        };
        state.stats.predictions += 1;
        metrics.shadow_predictions.inc();
        if index == job.serving_index {
            state.stats.agreements += 1;
            metrics.shadow_agreements.inc();
        }
        state.answers.insert(job.request_id.clone(), (index, job.serving_index));
        state.order.push_back(job.request_id);
        while state.order.len() > REMEMBER {
            if let Some(old) = state.order.pop_front() {
                state.answers.remove(&old);
            }
        }
    }
}
