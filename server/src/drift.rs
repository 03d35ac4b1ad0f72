//! The drift watch: every prediction's signals (`gitops::drift::signals`: its confidence and
//! its input's statistics) go into a window; each full window (`--drift-window` predictions of
//! one model version) goes to the `drift` thread, which compares it with that model's reference
//! from its sidecar and puts the PSI and KS of every signal on `/metrics`, so no request waits
//! for a comparison. A window whose largest PSI passes `--drift-psi` drifts: it is logged and
//! counted, `model_server_drift_detected` is 1 until a window is steady again, and with
//! `--drift-action retrain` the retrain trigger fires (at most once per `--drift-cooldown`). A
//! model without a reference (trained before drift was watched) is not judged:
//! `model_server_drift_reference` says 0.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use gitops::drift::{self, SignalDrift};
use gitops::task::Task;

use crate::config::DriftAction;
use crate::feedback::FeedbackService;
use crate::metrics::Metrics;
use crate::models::Served;

/// How windows are judged.
#[derive(Debug, Clone, Copy)]
pub struct DriftConfig {
    pub window: usize,
    pub psi: f64,
    pub action: DriftAction,
    pub cooldown: Duration,
}

/// The window being filled.
#[derive(Debug, Default)]
struct Window {
    version: String,
    samples: Vec<Vec<f64>>,
}

/// A full window, on its way to the judge with the model whose reference it is compared with.
struct Full {
    served: Arc<Served>,
    samples: Vec<Vec<f64>>,
}

#[derive(Debug)]
pub struct Drift {
    window_len: usize,
    task: Task,
    metrics: Arc<Metrics>,
    window: Mutex<Window>,
    judge: Sender<Full>,
}

impl Drift {
    /// The watch, and its `drift` thread (which ends when the watch is dropped).
    pub fn new(config: DriftConfig, task: Task, metrics: Arc<Metrics>, feedback: Arc<FeedbackService>) -> Self {
        let (judge, windows) = crossbeam_channel::bounded::<Full>(2);
        let mut judge_state = Judge { config, metrics: metrics.clone(), feedback, last_retrain: None };
        std::thread::Builder::new()
            .name("drift".into())
            .spawn(move || windows.iter().for_each(|full| judge_state.judge(&full)))
            .expect("spawning the drift thread");
        Self { window_len: config.window, task, metrics, window: Mutex::default(), judge }
    }

    /// Counts one prediction `served` made on `input` (the task's network input, as stored).
    pub fn observe(&self, served: &Arc<Served>, confidence: f32, input: &[u8]) {
        if served.reference().is_none() {
            self.metrics.drift_reference.set(0);
            return;
        }
        self.metrics.drift_reference.set(1);
        let signals = drift::signals(&self.task, confidence, input);
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if window.version != served.version() {
            // A new model: its own reference, a fresh window.
            window.version = served.version().to_string();
            window.samples.clear();
        }
        window.samples.push(signals);
        if window.samples.len() < self.window_len {
            self.metrics.drift_window_fill.set(window.samples.len() as i64);
            return;
        }
        let samples = std::mem::take(&mut window.samples);
        self.metrics.drift_window_fill.set(0);
        drop(window);
        if let Err(TrySendError::Full(_)) = self.judge.try_send(Full { served: served.clone(), samples }) {
            tracing::warn!("drift: the judge is two windows behind; a window was not judged");
        }
    }
}

/// The `drift` thread's state: what a window is judged by, and when a retrain last fired.
struct Judge {
    config: DriftConfig,
    metrics: Arc<Metrics>,
    feedback: Arc<FeedbackService>,
    last_retrain: Option<Instant>,
}

impl Judge {
    fn judge(&mut self, full: &Full) {
        let Some(reference) = full.served.reference() else { return };
        let scores = reference.compare(&full.samples);
        let fire = self.publish(&scores) && self.config.action == DriftAction::Retrain && {
            let due = self.last_retrain.is_none_or(|at| at.elapsed() >= self.config.cooldown);
            if due {
                self.last_retrain = Some(Instant::now());
            }
            due
        };
        if fire {
            // Off this thread too: a slow trigger must not hold back the next window.
            let reason = format!("drift: {}", describe(&scores, self.config.psi));
            let (feedback, metrics) = (self.feedback.clone(), self.metrics.clone());
            std::thread::spawn(move || {
                let result = if feedback.fire_retrain(&reason) { "fired" } else { "failed" };
                metrics.drift_retrains.with_label_values(&[result]).inc();
            });
        }
    }

    /// Publishes a full window's scores; whether it drifted.
    fn publish(&self, scores: &[SignalDrift]) -> bool {
        let metrics = &self.metrics;
        for s in scores {
            metrics.drift_psi.with_label_values(&[&s.name]).set(s.psi);
            metrics.drift_ks.with_label_values(&[&s.name]).set(s.ks);
        }
        let drifted = scores.iter().any(|s| s.psi > self.config.psi);
        metrics.drift_detected.set(i64::from(drifted));
        if drifted {
            tracing::warn!("prediction drift: {}", describe(scores, self.config.psi));
        }
        // Counted last: a reader who sees the count sees the window's scores.
        metrics.drift_windows.with_label_values(&[if drifted { "drift" } else { "steady" }]).inc();
        drifted
    }
}

/// The signals past the threshold, largest first: `input_mean PSI 0.61 KS 0.35, ...`.
fn describe(scores: &[SignalDrift], threshold: f64) -> String {
    let mut over: Vec<&SignalDrift> = scores.iter().filter(|s| s.psi > threshold).collect();
    over.sort_by(|a, b| b.psi.total_cmp(&a.psi));
    over.iter().map(|s| format!("{} PSI {:.2} KS {:.2}", s.name, s.psi, s.ks)).collect::<Vec<_>>().join(", ")
}
