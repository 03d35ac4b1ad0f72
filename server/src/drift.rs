//! The drift watch: every prediction's signals (`gitops::drift::signals`: its confidence and
//! its input's statistics) go into a window; each full window (`--drift-window` predictions of
//! one model version) is compared with that model's reference from its sidecar, and the PSI and
//! KS of every signal go to `/metrics`. A window whose largest PSI passes `--drift-psi`
//! drifts: it is logged and counted, `model_server_drift_detected` is 1 until a window is steady
//! again, and with `--drift-action retrain` the retrain trigger fires (at most once per
//! `--drift-cooldown`, off the request path). A model without a reference (trained before drift
//! was watched) is not judged: `model_server_drift_reference` says 0.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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

/// The window being filled and what the last one fired.
#[derive(Debug, Default)]
struct Window {
    version: String,
    samples: Vec<Vec<f64>>,
    last_retrain: Option<Instant>,
}

#[derive(Debug)]
pub struct Drift {
    config: DriftConfig,
    task: Task,
    metrics: Arc<Metrics>,
    feedback: Arc<FeedbackService>,
    window: Mutex<Window>,
}

impl Drift {
    pub fn new(config: DriftConfig, task: Task, metrics: Arc<Metrics>, feedback: Arc<FeedbackService>) -> Self {
        Self { config, task, metrics, feedback, window: Mutex::default() }
    }

    /// Counts one prediction `served` made on `input` (the task's network input, as stored).
    pub fn observe(&self, served: &Served, confidence: f32, input: &[u8]) {
        let Some(reference) = served.reference() else {
            self.metrics.drift_reference.set(0);
            return;
        };
        self.metrics.drift_reference.set(1);
        let signals = drift::signals(&self.task, confidence, input);
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if window.version != served.version() {
            // A new model: its own reference, a fresh window.
            window.version = served.version().to_string();
            window.samples.clear();
        }
        window.samples.push(signals);
        if window.samples.len() < self.config.window {
            self.metrics.drift_window_fill.set(window.samples.len() as i64);
            return;
        }
        let scores = reference.compare(&window.samples);
        window.samples.clear();
        self.metrics.drift_window_fill.set(0);
        let fire = self.judge(&scores) && self.config.action == DriftAction::Retrain && {
            let due = window.last_retrain.is_none_or(|at| at.elapsed() >= self.config.cooldown);
            if due {
                window.last_retrain = Some(Instant::now());
            }
            due
        };
        drop(window);
        if fire {
            let reason = format!("drift: {}", describe(&scores, self.config.psi));
            let (feedback, metrics) = (self.feedback.clone(), self.metrics.clone());
            std::thread::spawn(move || {
                let result = if feedback.fire_retrain(&reason) { "fired" } else { "failed" };
                metrics.drift_retrains.with_label_values(&[result]).inc();
            });
        }
    }

    /// Publishes a full window's scores; whether it drifted.
    fn judge(&self, scores: &[SignalDrift]) -> bool {
        let metrics = &self.metrics;
        for s in scores {
            metrics.drift_psi.with_label_values(&[&s.name]).set(s.psi);
            metrics.drift_ks.with_label_values(&[&s.name]).set(s.ks);
        }
        let drifted = scores.iter().any(|s| s.psi > self.config.psi);
        metrics.drift_windows.with_label_values(&[if drifted { "drift" } else { "steady" }]).inc();
        metrics.drift_detected.set(i64::from(drifted));
        if drifted {
            tracing::warn!("prediction drift: {}", describe(scores, self.config.psi));
        }
        drifted
    }
}

/// The signals past the threshold, largest first: `input_mean PSI 0.61 KS 0.35, ...`.
fn describe(scores: &[SignalDrift], threshold: f64) -> String {
    let mut over: Vec<&SignalDrift> = scores.iter().filter(|s| s.psi > threshold).collect();
    over.sort_by(|a, b| b.psi.total_cmp(&a.psi));
    over.iter().map(|s| format!("{} PSI {:.2} KS {:.2}", s.name, s.psi, s.ks)).collect::<Vec<_>>().join(", ")
}
