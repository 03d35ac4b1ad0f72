//! The orchestration that runs models: the six stages of the retraining DAG in `dvc.yaml`,
//! `train-base` ([`base`]) and `init --dataset` ([`init`]). Each stage binary parses its
//! `Args` and calls the module's `run`; every input and output path is an argument with the
//! default `dvc.yaml` uses (`pipeline::paths`), so `--help` says what a stage reads and writes.
//! `pipeline-model` is the torch-linked half of the `pipeline` command: `pipeline` runs it for
//! the commands that touch a model, as git runs `git-<cmd>`.

pub mod augment;
pub mod base;
pub mod evaluate;
pub mod finetune;
pub mod ingest;
pub mod init;
pub mod manifest;
pub mod promote;
pub mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gitops::model_file::ModelError;
use gitops::params::ParamsError;
use model::data::DataError;
use pipeline::registry::RegistryError;

/// Why a stage failed; the message names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Git(#[from] gitops::git::GitError),
    #[error(transparent)]
    Feedback(#[from] gitops::feedback::FeedbackError),
    #[error(transparent)]
    Release(#[from] pipeline::release::ReleaseError),
    #[error(transparent)]
    Storage(#[from] pipeline::storage::StorageError),
    #[error("{0}")]
    Plot(String),
    #[error(transparent)]
    NoCuda(#[from] model::device::NoCuda),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StageError + '_ {
    move |source| StageError::Io { path: path.to_path_buf(), source }
}

/// Writes `value` as pretty JSON, atomically, creating the parent folder.
pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), StageError> {
    let mut text = serde_json::to_vec_pretty(value).expect("stage outputs serialize");
    text.push(b'\n');
    write_file(path, &text)
}

/// Writes bytes atomically (temp file, fsync, rename), creating the parent folder.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), StageError> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let tmp = path.with_extension("partial");
    let mut file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StageError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|e| StageError::Invalid { path: path.to_path_buf(), what: e.to_string() })
}

/// The inputs validated rows carry, each checked to hold the task's `C*H*W` values (a manifest
/// made for another task is refused, naming it).
pub(crate) fn inputs<'a>(
    manifest: &Path,
    rows: &[&'a manifest::Row],
    task: &gitops::task::Task,
) -> Result<Vec<&'a [u8]>, StageError> {
    let values = task.input_bytes();
    rows.iter()
        .map(|r| match r.pixels.as_deref() {
            Some(input) if input.len() == values => Ok(input),
            other => Err(StageError::Invalid {
                path: manifest.to_path_buf(),
                what: format!(
                    "{}: holds {} input values, the task reads {values} (rerun validate)",
                    r.path,
                    other.map_or(0, <[u8]>::len)
                ),
            }),
        })
        .collect()
}

/// A share in [0, 1) derived from a hex digest, for deterministic splits and seeds.
pub(crate) fn hash_share(sha256: &str) -> f64 {
    let prefix = u64::from_str_radix(sha256.get(..16).unwrap_or("0"), 16).unwrap_or(0);
    prefix as f64 / (u64::MAX as f64 + 1.0)
}

/// Runs a stage's `run`, printing `summary` on success and the error chain on failure.
pub fn main<T, E: std::error::Error>(
    name: &str,
    run: impl FnOnce() -> Result<T, E>,
    summary: impl FnOnce(&T) -> String,
) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    // After the subscriber, so a refused setting is reported.
    model::alloc::keep_freed_memory();
    match run() {
        Ok(out) => {
            println!("{name}: {}", summary(&out));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: error: {}", gitops::cli::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
