//! Prometheus metrics (text format at `GET /metrics`): HTTP requests and latency by route and
//! status, predictions by class, confidence, feedback by kind, the serving model's version,
//! reloads and load time, batching and the queue, drift (`drift.rs`), the label review and the
//! shadow model (`shadow.rs`).

use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub predictions: IntCounterVec,
    pub confidence: Histogram,
    pub feedback: IntCounterVec,
    pub model_info: IntGaugeVec,
    pub reloads: IntCounterVec,
    pub load_seconds: Histogram,
    pub batch_size: Histogram,
    pub lone_runs: IntCounter,
    pub queue_depth: IntGauge,
    pub queue_rejections: IntCounter,
    pub git_fetches: IntCounterVec,
    pub predlog_dropped: IntCounter,
    pub registry_errors: IntCounter,
    pub feedback_syncs: IntCounterVec,
    pub feedback_sync_failing: IntGauge,
    pub drift_psi: GaugeVec,
    pub drift_ks: GaugeVec,
    pub drift_windows: IntCounterVec,
    pub drift_detected: IntGauge,
    pub drift_reference: IntGauge,
    pub drift_window_fill: IntGauge,
    pub drift_retrains: IntCounterVec,
    pub review_queue: IntGauge,
    pub review_decisions: IntCounterVec,
    pub shadow_info: IntGaugeVec,
    pub shadow_load_failures: IntCounter,
    pub shadow_predictions: IntCounter,
    pub shadow_agreements: IntCounter,
    pub shadow_errors: IntCounter,
    pub shadow_dropped: IntCounter,
    pub shadow_feedback: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("model_server".into()), None).expect("a valid prefix");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid histogram");
            registry.register(Box::new(h.clone())).expect("unique metric");
            h
        };
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route, method and status.")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method", "status"],
        )
        .expect("valid histogram");
        registry.register(Box::new(http_duration.clone())).expect("unique metric");
        let model_info =
            IntGaugeVec::new(Opts::new("model_info", "The model version serving now (value 1)."), &["version"])
                .expect("valid gauge");
        registry.register(Box::new(model_info.clone())).expect("unique metric");
        let queue_depth =
            IntGauge::new("inference_queue_depth", "Requests waiting for inference.").expect("valid gauge");
        registry.register(Box::new(queue_depth.clone())).expect("unique metric");
        let feedback_sync_failing = IntGauge::new(
            "feedback_sync_failures_in_a_row",
            "Feedback commit/push attempts in a row that failed or found the remote unreachable (0: syncing).",
        )
        .expect("valid gauge");
        registry.register(Box::new(feedback_sync_failing.clone())).expect("unique metric");
        let shadow_info =
            IntGaugeVec::new(Opts::new("shadow_info", "The model version running in shadow (value 1)."), &["version"])
                .expect("valid gauge");
        registry.register(Box::new(shadow_info.clone())).expect("unique metric");
        let gauges = |name: &str, help: &str| {
            let g = GaugeVec::new(Opts::new(name, help), &["signal"]).expect("valid gauge");
            registry.register(Box::new(g.clone())).expect("unique metric");
            g
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid gauge");
            registry.register(Box::new(g.clone())).expect("unique metric");
            g
        };
        let single = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid counter");
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        Self {
            http_requests: counter(
                "http_requests_total",
                "HTTP requests by route, method and status.",
                &["route", "method", "status"],
            ),
            http_duration,
            predictions: counter("predictions_total", "Predictions by predicted class.", &["class"]),
            confidence: histogram(
                "prediction_confidence",
                "Confidence (top probability) of predictions.",
                (1..=10).map(|i| f64::from(i) / 10.0).collect(),
            ),
            feedback: counter("feedback_total", "Feedback received, by kind.", &["kind"]),
            model_info,
            reloads: counter(
                "model_reloads_total",
                "Model loads for serving, by result (success or failure).",
                &["result"],
            ),
            load_seconds: histogram(
                "model_load_duration_seconds",
                "Time to verify, load and warm up a model.",
                vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
            ),
            batch_size: histogram(
                "inference_batch_size",
                "Images per inference batch.",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            ),
            lone_runs: single(
                "inference_lone_runs_total",
                "Lone requests (one image, nothing else in flight) run on the request's own thread, skipping the queue.",
            ),
            queue_depth,
            queue_rejections: single(
                "inference_queue_rejections_total",
                "Requests refused with 503 because the inference queue was full.",
            ),
            git_fetches: counter(
                "git_fetches_total",
                "Fetches of the git remote by the puller, by result.",
                &["result"],
            ),
            predlog_dropped: single(
                "prediction_log_dropped_total",
                "Prediction log records dropped because the writer fell behind.",
            ),
            registry_errors: single(
                "registry_errors_total",
                "Polls that could not read models/registry.json (missing or not valid); the model serving stays.",
            ),
            feedback_syncs: counter(
                "feedback_syncs_total",
                "Feedback commit/push attempts, by result (success, offline, failure); failed ones are retried with backoff.",
                &["result"],
            ),
            feedback_sync_failing,
            drift_psi: gauges(
                "drift_psi",
                "Population stability index of the last full drift window against the serving model's reference, by signal.",
            ),
            drift_ks: gauges(
                "drift_ks",
                "Kolmogorov-Smirnov statistic of the last full drift window against the serving model's reference, by signal.",
            ),
            drift_windows: counter(
                "drift_windows_total",
                "Full drift windows judged, by result (drift or steady).",
                &["result"],
            ),
            drift_detected: gauge(
                "drift_detected",
                "1 when the last full drift window drifted (a PSI past --drift-psi).",
            ),
            drift_reference: gauge(
                "drift_reference",
                "1 when the serving model has a drift reference in its sidecar (0: drift is not judged).",
            ),
            drift_window_fill: gauge("drift_window_fill", "Predictions in the drift window being filled."),
            drift_retrains: counter(
                "drift_retrains_total",
                "Retrains drift fired (--drift-action retrain), by result (fired or failed).",
                &["result"],
            ),
            review_queue: gauge(
                "review_queue",
                "Feedback samples held for label review when the queue was last listed (GET /api/review).",
            ),
            review_decisions: counter(
                "review_decisions_total",
                "Reviewers' decisions on held feedback labels, by action (accept, relabel, reject).",
                &["action"],
            ),
            shadow_info,
            shadow_load_failures: single(
                "shadow_load_failures_total",
                "Shadow versions the registry named that failed to load (answers are unaffected).",
            ),
            shadow_predictions: single(
                "shadow_predictions_total",
                "Predictions the shadow model made beside the serving one (never answered).",
            ),
            shadow_agreements: single(
                "shadow_agreements_total",
                "Shadow predictions of the same class as the serving model's answer.",
            ),
            shadow_errors: single(
                "shadow_errors_total",
                "Shadow predictions that failed (a panic or non-finite output); the answer was unaffected.",
            ),
            shadow_dropped: single(
                "shadow_dropped_total",
                "Requests not shadowed because the shadow model's queue was full (it is slower than the traffic).",
            ),
            shadow_feedback: counter(
                "shadow_feedback_total",
                "Feedback on shadowed requests, by which model was right (both, serving, shadow, neither).",
                &["right"],
            ),
            registry,
        }
    }

    /// Marks `version` as the one in shadow (none: no shadow).
    pub fn shadow(&self, version: Option<&str>) {
        self.shadow_info.reset();
        if let Some(version) = version {
            self.shadow_info.with_label_values(&[version]).set(1);
        }
    }

    /// Marks `version` as the one serving.
    pub fn serving(&self, version: &str) {
        self.model_info.reset();
        self.model_info.with_label_values(&[version]).set(1);
    }

    pub fn render(&self) -> String {
        TextEncoder::new().encode_to_string(&self.registry.gather()).expect("metrics encode as text")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
