//! The command line and environment of `model-server`; `--help` documents the whole API.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use gitops::device::DeviceChoice;

const ABOUT: &str =
    "Serve the image classifier of a pipeline repository over HTTP, and follow its git remote to hot-swap new models";

const LONG_ABOUT: &str = "\
Serve the image classifier of a pipeline repository (its task: params.yaml task:, MNIST digits
by default) over HTTP, and follow its git remote to hot-swap new models.

It serves the model that models/registry.json names in the repository (the current folder, or
--repo). Every --poll-interval it fetches the git remote (params.yaml git.remote/git.branch) and
fast-forwards; when the registry names a new version it verifies the sha256, task and architecture,
warms the model up and swaps it in atomically. A failed load keeps the old model serving and is
retried with backoff. Feedback is stored in new_data/ (params.yaml feedback:), committed and
pushed, and fires the retrain trigger (params.yaml trigger:) when a sub_set fills up.

API (errors are always {\"error\": \"...\"}: 400 malformed JSON, image or tensor, 401 bad token,
408 too slow, 413 too big, 414/431 request line or headers too long, 415 unsupported format, 422
bad label or blank image, 500 internal, 503 + Retry-After when the inference queue is full):
  POST /predict              multipart `file`, a raw image/* body, or JSON {\"image\": \"<base64 or data URL>\"}
                             -> {label, index, probabilities {class: p}, confidence, model_version,
                             request_id; digit too for digit tasks}
  POST /feedback             JSON {request_id?, image?, label (class name or index; optional for unsure),
                             kind: correct|wrong|unsure}
                             or multipart file/label/kind/request_id
                             -> {stored, duplicate, sha256, sub_set, current_count, threshold, retrain_triggered}
  GET  /api/task             the task: name, classes in output order, input shape, preprocessing
  GET  /api/status           feedback count, threshold, serving version, retrain state, last promote decision
  GET  /api/history?limit=N  recent predictions, newest first, with input thumbnails (or a row's features) and feedback
  GET  /models               versions on disk with metrics, confusion, pinned/serving/loaded, registry history
  POST /admin/reload         fetch and load what the registry names now
  POST /admin/rollback       JSON {version}: commit + push the registry pointer, then serve it
  GET  /v2/health/live, /v2/health/ready, /v2/models/{name}, /v2/models/{name}/ready
  POST /v2/models/{name}/infer   KServe v2 / Open Inference Protocol: input FP32 [N,C,H,W] of the task
                             (normalised like training, finite) or UINT8 (0-255, as preprocessing makes
                             them); outputs probabilities, index, label (BYTES) and, for digits, digit;
                             N up to --kserve-max-images, run in pieces of --max-batch
  GET  /healthz, /readyz     process up; a model is loaded and warmed
  GET  /metrics              Prometheus text format
  GET  /                     the web UI
Admin routes need `Authorization: Bearer <--admin-token>`, and /feedback and /api/history
`<--feedback-token>`, when those are set. Every prediction is logged to .pipeline/predictions/ (see `pipeline mine`).";

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "model-server", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Config {
    /// Port to listen on (0: any free port, printed at startup).
    #[arg(long, env = "MODEL_SERVER_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "MODEL_SERVER_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The pipeline repository (a git checkout with params.yaml and models/); default: the current folder.
    #[arg(long, env = "PIPELINE_REPO")]
    pub repo: Option<PathBuf>,
    /// Where the model runs: CUDA when a GPU is visible (auto), or the CPU.
    #[arg(long, value_enum, env = "MODEL_SERVER_DEVICE", default_value_t)]
    pub device: DeviceChoice,
    /// How often to fetch the git remote and look for a new registry pointer (e.g. 10s, 500ms).
    #[arg(long, env = "MODEL_SERVER_POLL_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// Do not fetch the remote; still follow models/registry.json in the working tree.
    #[arg(long, env = "MODEL_SERVER_NO_FETCH")]
    pub no_fetch: bool,
    /// Versions kept loaded in memory (the serving one always stays); on disk, the promote
    /// stage keeps `promote.keep` versions in git.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_versions: u32,
    /// Largest batch of images run through the model at once.
    #[arg(long, env = "MODEL_SERVER_MAX_BATCH", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_batch: u32,
    /// How long a batch waits for more requests after the first, in microseconds (0: take only
    /// what is already queued, so a lone request never waits).
    #[arg(long, env = "MODEL_SERVER_MAX_WAIT_US", default_value_t = 0)]
    pub max_wait_us: u64,
    /// Requests that may wait for inference; beyond it the answer is 503 with Retry-After.
    #[arg(long, env = "MODEL_SERVER_QUEUE", default_value_t = 1024)]
    pub queue_capacity: usize,
    /// Torch intra-op threads per inference worker for batches of 2 images or more; a batch of
    /// one runs on one thread (default: the number of CPUs / workers).
    #[arg(long, env = "MODEL_SERVER_TORCH_THREADS")]
    pub torch_threads: Option<u32>,
    /// Inference worker threads, each with its own replica of the model, taking batches off the
    /// queue (default: 2, or 1 on a single CPU).
    #[arg(long, env = "MODEL_SERVER_WORKERS", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: Option<u32>,
    /// Bearer token for /admin/*; unset: admin routes are open. An empty value is an error.
    #[arg(long, env = "MODEL_SERVER_ADMIN_TOKEN", hide_env_values = true,
          value_parser = |t: &str| token(t, "--admin-token / MODEL_SERVER_ADMIN_TOKEN"))]
    pub admin_token: Option<String>,
    /// Bearer token for POST /feedback and GET /api/history; unset: both are open. An empty
    /// value is an error.
    #[arg(long, env = "MODEL_SERVER_FEEDBACK_TOKEN", hide_env_values = true,
          value_parser = |t: &str| token(t, "--feedback-token / MODEL_SERVER_FEEDBACK_TOKEN"))]
    pub feedback_token: Option<String>,
    /// Longest time one request may take before it is answered 408.
    #[arg(long, env = "MODEL_SERVER_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Longest time a connection may take to send a request's line and headers, from their
    /// first byte; a slower one is closed.
    #[arg(long, env = "MODEL_SERVER_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Longest time a keep-alive connection may sit idle (no request in flight, no byte of the
    /// next one) before it is closed.
    #[arg(long, env = "MODEL_SERVER_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Most images one KServe infer request may carry (larger ones are answered 413); they
    /// run in pieces of --max-batch, taking turns with other requests.
    #[arg(long, env = "MODEL_SERVER_KSERVE_MAX_IMAGES", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
    pub kserve_max_images: u32,
    /// On SIGTERM or Ctrl-C, how long requests in flight may take to finish.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Recent predictions kept in memory for /feedback by request_id and /api/history.
    #[arg(long, default_value_t = 1000)]
    pub history_size: usize,
    /// The model's name in the KServe v2 API (default: the task's name).
    #[arg(long)]
    pub model_name: Option<String>,
    /// Rotate the prediction log past this many bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub predlog_max_bytes: u64,
    /// Rotated prediction log files to keep.
    #[arg(long, default_value_t = 8)]
    pub predlog_keep: usize,
    /// Predictions per drift window: each full window is compared with the serving model's
    /// reference (its held-out test set) and scored on /metrics (PSI and KS per signal).
    #[arg(long, env = "MODEL_SERVER_DRIFT_WINDOW", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(20..=1_000_000))]
    pub drift_window: u32,
    /// A window drifts when any signal's PSI exceeds this (0.25 is the usual "significant
    /// shift").
    #[arg(long, env = "MODEL_SERVER_DRIFT_PSI", default_value_t = 0.25)]
    pub drift_psi: f64,
    /// What a drifting window does: `alert` (only /metrics and the log) or `retrain` (also fires
    /// the retrain trigger of params.yaml, at most once per --drift-cooldown).
    #[arg(long, env = "MODEL_SERVER_DRIFT_ACTION", value_enum, default_value_t = DriftAction::Alert)]
    pub drift_action: DriftAction,
    /// Share of /predict requests (0 to 1, chosen by request id) the registry's shadow model
    /// also classifies, at idle priority and never answering.
    #[arg(long, env = "MODEL_SERVER_SHADOW_SHARE", default_value_t = 1.0, value_parser = share)]
    pub shadow_share: f64,
    /// Least time between two retrains that drift fires.
    #[arg(long, env = "MODEL_SERVER_DRIFT_COOLDOWN", default_value = "60m", value_parser = parse_duration)]
    pub drift_cooldown: Duration,
}

/// Inference workers when `--workers` is not given. On two CPUs, two batches side by side on one
/// torch thread each served 36% more requests at concurrency 8 and 14% more at 32 (medians of
/// four runs) than one batch on both threads: a small network's layers gain less from a second
/// intra-op thread than its wake-ups cost (BENCHMARKS.md, issue 19).
const DEFAULT_WORKERS: usize = 2;

impl Config {
    /// Inference workers, and torch threads per worker for a batch of two or more, on a machine
    /// with `cpus` CPUs: as given, else [`DEFAULT_WORKERS`] (no more than the CPUs) sharing them.
    pub fn inference_threads(&self, cpus: usize) -> (usize, usize) {
        let cpus = cpus.max(1);
        let workers = self.workers.map_or(DEFAULT_WORKERS.min(cpus), |w| w as usize);
        let torch_threads = self.torch_threads.map_or((cpus / workers).max(1), |t| t as usize);
        (workers, torch_threads)
    }
}

/// What a drifting window does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriftAction {
    Alert,
    Retrain,
}

/// A share between 0 and 1.
fn share(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{text}` is not a share between 0 and 1")),
    }
}

/// A bearer token: set but empty is refused, since it would look like protection and give none.
fn token(text: &str, name: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        Err(format!("{name} is set but empty: give a token, or unset it to leave the routes open"))
    } else {
        Ok(text.to_string())
    }
}

/// `250ms`, `10s`, `2m`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 500ms, 10s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (use ms, s or m)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Config {
        Config::try_parse_from(["model-server"].iter().chain(args)).unwrap()
    }

    #[test]
    fn two_workers_share_the_cpus_unless_told_otherwise() {
        assert_eq!(config(&[]).inference_threads(2), (2, 1));
        assert_eq!(config(&[]).inference_threads(16), (2, 8));
        assert_eq!(config(&[]).inference_threads(1), (1, 1), "one CPU, one worker");
        assert_eq!(config(&["--workers", "1"]).inference_threads(2), (1, 2));
        assert_eq!(config(&["--workers", "4", "--torch-threads", "3"]).inference_threads(2), (4, 3));
    }
}
