//! The one reader of `params.yaml`: [`Params`] holds the sections every part shares (`task`,
//! `data`, `model`, `train`, `feedback`, `git`, `trigger`), and [`section`] reads a stage's own
//! section (`ingest:`, `promote:`, ...) into the type its stage defines, through the same
//! parser and errors.
//!
//! Every key has the default documented in `params.yaml`; a missing file means all defaults.
//! The `PIPELINE_TRIGGER` environment variable (`github`, `local`, `webhook`, `none`) overrides
//! `trigger.kind`, and `PIPELINE_WEBHOOK_URL` overrides `trigger.webhook.url`.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The environment variable that overrides `trigger.kind`.
pub const TRIGGER_ENV: &str = "PIPELINE_TRIGGER";
/// The environment variable that overrides `trigger.webhook.url` (a cluster's receiver).
pub const WEBHOOK_URL_ENV: &str = "PIPELINE_WEBHOOK_URL";

/// Errors while reading `params.yaml`.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot parse {path}: {source}")]
    Parse { path: PathBuf, source: serde_yaml::Error },
    #[error("{TRIGGER_ENV}={value:?} is not one of github, local, webhook, none")]
    BadTriggerEnv { value: String },
    #[error("{path}: section `{section}`: {source}")]
    Section { path: PathBuf, section: String, source: serde_yaml::Error },
    #[error("{path}: {source}")]
    Task { path: PathBuf, source: crate::task::TaskError },
    #[error("invalid setting {key} = {value}: {reason}")]
    Invalid { key: &'static str, value: String, reason: &'static str },
}

/// The sections of `params.yaml` this crate reads; other sections are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Params {
    pub feedback: FeedbackParams,
    pub git: GitParams,
    pub trigger: TriggerParams,
    pub task: crate::task::Task,
    pub data: DataParams,
    pub model: crate::architecture::Architecture,
    pub train: TrainParams,
}

/// Where model weights and sealed feedback keep their bytes (params `storage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// Blobs in git.
    #[default]
    Git,
    /// DVC-tracked: pointers and feedback journals in git, the bytes in the DVC cache and remote.
    Dvc,
}

impl Storage {
    /// The repo's setting (`storage:` in its params.yaml; `git` when absent).
    pub fn of(repo: &Path) -> Result<Storage, ParamsError> {
        section(&repo.join("params.yaml"), "storage")
    }
}

/// The `task:` section of the params file at `path`, checked: what the models of this repo
/// classify and read.
pub fn task(path: &Path) -> Result<crate::task::Task, ParamsError> {
    let task: crate::task::Task = section(path, "task")?;
    task.validate().map_err(|source| ParamsError::Task { path: path.to_path_buf(), source })?;
    Ok(task)
}

/// Reads one top-level section of the params file at `path`, or its defaults when the file or
/// the section is missing. Unknown keys inside a stage's section are errors (its type denies
/// them), so typos do not pass silently.
pub fn section<T: DeserializeOwned + Default>(path: &Path, name: &str) -> Result<T, ParamsError> {
    let Some(doc) = read_doc(path)? else { return Ok(T::default()) };
    match doc.get(name) {
        None | Some(serde_yaml::Value::Null) => Ok(T::default()),
        Some(value) => serde_yaml::from_value(value.clone()).map_err(|source| ParamsError::Section {
            path: path.to_path_buf(),
            section: name.to_string(),
            source,
        }),
    }
}

/// The parsed file, `None` when it does not exist.
fn read_doc(path: &Path) -> Result<Option<serde_yaml::Value>, ParamsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ParamsError::Read { path: path.to_path_buf(), source }),
    };
    let doc = serde_yaml::from_str(&text).map_err(|source| ParamsError::Parse { path: path.to_path_buf(), source })?;
    Ok(Some(doc))
}

/// `data:` — where the base dataset lives, relative to the repo root: MNIST's IDX files or an
/// image folder (`model::data::open` tells them apart).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DataParams {
    #[serde(alias = "mnist_dir")]
    pub dir: PathBuf,
    /// The share of an image folder without a test split held out for testing (by file hash).
    pub test_share: f64,
}

impl Default for DataParams {
    fn default() -> Self {
        Self { dir: PathBuf::from("data/mnist"), test_share: 0.2 }
    }
}

/// `train:` — the seeded optimisation settings of `pipeline train-base`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrainParams {
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Seeded augmented copies (params `augment:`, the transforms the task allows) of every
    /// training image, added to the base training set: small image sets need them.
    pub augment_copies: usize,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self { seed: 0, epochs: 8, batch_size: 64, learning_rate: 1e-3, augment_copies: 0 }
    }
}

/// `feedback:`: sub_set size and upload limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeedbackParams {
    /// Counted samples per sub_set; reaching it seals the sub_set.
    pub threshold: u32,
    /// Uploads larger than this many bytes are refused.
    pub max_image_bytes: u64,
    /// Largest accepted `width * height`, checked from the header before decoding.
    pub max_pixels: u64,
    /// Stored PNGs are downscaled to fit this side.
    pub max_stored_side: u32,
}

impl Default for FeedbackParams {
    fn default() -> Self {
        Self { threshold: 10, max_image_bytes: 10 << 20, max_pixels: 1 << 24, max_stored_side: 512 }
    }
}

/// `git:`: where feedback commits go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GitParams {
    pub remote: String,
    pub branch: String,
    /// Push after committing; `false` keeps commits local.
    pub push: bool,
    /// Feedback commits within this window become one commit.
    pub coalesce_ms: u64,
    /// Push attempts (each rejected one is followed by fetch + replay) before giving up.
    pub push_attempts: u32,
    /// First backoff between push attempts; doubles each time.
    pub backoff_ms: u64,
}

impl Default for GitParams {
    fn default() -> Self {
        Self {
            remote: "origin".into(),
            branch: "main".into(),
            push: true,
            coalesce_ms: 300,
            push_attempts: 6,
            backoff_ms: 100,
        }
    }
}

/// Which trigger fires when a sub_set is sealed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    Github,
    #[default]
    Local,
    Webhook,
    None,
}

impl std::str::FromStr for TriggerKind {
    type Err = ParamsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "github" => Ok(Self::Github),
            "local" => Ok(Self::Local),
            "webhook" => Ok(Self::Webhook),
            "none" => Ok(Self::None),
            other => Err(ParamsError::BadTriggerEnv { value: other.to_string() }),
        }
    }
}

/// `trigger:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TriggerParams {
    pub kind: TriggerKind,
    pub github: GithubParams,
    pub webhook: WebhookParams,
    /// Command (argv) the `local` trigger runs; default: `pipeline ci run retrain` (the retrain
    /// workflow's steps) with the `pipeline` binary next to the current executable.
    pub local_command: Option<Vec<String>>,
}

/// The GitHub event a `github` trigger sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GithubEvent {
    #[default]
    WorkflowDispatch,
    RepositoryDispatch,
}

/// `trigger.github:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GithubParams {
    pub owner: String,
    pub repo: String,
    pub workflow: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub event: GithubEvent,
    /// API root; `None` means `https://api.github.com`. Tests point it at a fake server.
    pub base_uri: Option<String>,
    /// Attempts on 5xx and rate limits before giving up.
    pub attempts: u32,
    /// First backoff between attempts when the server gives no `retry-after`; doubles.
    pub backoff_ms: u64,
}

impl Default for GithubParams {
    fn default() -> Self {
        Self {
            owner: String::new(),
            repo: String::new(),
            workflow: "retrain.yml".into(),
            git_ref: "main".into(),
            event: GithubEvent::WorkflowDispatch,
            base_uri: None,
            attempts: 5,
            backoff_ms: 500,
        }
    }
}

/// `trigger.webhook:`: where the `webhook` trigger POSTs GitHub's `repository_dispatch` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookParams {
    /// The receiver's URL (`http://` or `https://`); `PIPELINE_WEBHOOK_URL` overrides it.
    pub url: String,
    /// The environment variable holding the bearer token sent to the receiver.
    pub token_env: String,
    /// Attempts on 5xx, 408, 429 and transport errors before giving up.
    pub attempts: u32,
    /// First backoff between attempts when the receiver gives no `retry-after`; doubles.
    pub backoff_ms: u64,
}

impl Default for WebhookParams {
    fn default() -> Self {
        Self { url: String::new(), token_env: "PIPELINE_WEBHOOK_TOKEN".into(), attempts: 5, backoff_ms: 500 }
    }
}

impl Params {
    /// Reads `<repo_root>/params.yaml` and applies `PIPELINE_TRIGGER` and `PIPELINE_WEBHOOK_URL`
    /// from the environment.
    pub fn load(repo_root: &Path) -> Result<Self, ParamsError> {
        Self::load_with_env(repo_root, |key| std::env::var(key).ok())
    }

    /// [`Params::load`] with the environment given as a function (for tests).
    pub fn load_with_env(repo_root: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Self, ParamsError> {
        let path = repo_root.join("params.yaml");
        let mut params = match read_doc(&path)? {
            Some(doc) => Self::from_value(doc).map_err(|source| ParamsError::Parse { path: path.clone(), source })?,
            None => Self::default(),
        };
        if let Some(value) = env(TRIGGER_ENV).filter(|v| !v.trim().is_empty()) {
            params.trigger.kind = value.parse()?;
        }
        if let Some(url) = env(WEBHOOK_URL_ENV).filter(|v| !v.trim().is_empty()) {
            params.trigger.webhook.url = url;
        }
        params.validate(&path)?;
        Ok(params)
    }

    /// Parses the YAML text of a whole `params.yaml` (no environment override).
    pub fn from_yaml(text: &str) -> Result<Self, serde_yaml::Error> {
        // A file with only comments parses as null: all defaults.
        Self::from_value(serde_yaml::from_str(text)?)
    }

    fn from_value(value: serde_yaml::Value) -> Result<Self, serde_yaml::Error> {
        if value.is_null() { Ok(Self::default()) } else { serde_yaml::from_value(value) }
    }

    fn validate(&self, path: &Path) -> Result<(), ParamsError> {
        let invalid = |key, value: u64, reason| ParamsError::Invalid { key, value: value.to_string(), reason };
        if self.feedback.threshold == 0 {
            return Err(invalid("feedback.threshold", 0, "must be at least 1"));
        }
        if self.feedback.max_stored_side == 0 {
            return Err(invalid("feedback.max_stored_side", 0, "must be at least 1"));
        }
        if self.git.push_attempts == 0 {
            return Err(invalid("git.push_attempts", 0, "must be at least 1"));
        }
        self.task.validate().map_err(|source| ParamsError::Task { path: path.to_path_buf(), source })
    }
}
