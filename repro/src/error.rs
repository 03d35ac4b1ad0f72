//! The crate's one error type: every failure names the file, stage, path or value involved.

use std::path::PathBuf;

/// Everything that can go wrong while reading, planning, hashing or running a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}:{line}: {msg}")]
    Syntax { path: PathBuf, line: usize, msg: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: {what} '{path}' of stage '{stage}' {problem}")]
    OutsideRepo { file: PathBuf, line: usize, what: &'static str, path: String, stage: String, problem: String },
    #[error("no dvc.yaml in {0}")]
    NoPipeline(PathBuf),
    #[error("stage '{0}' not found in dvc.yaml")]
    UnknownStage(String),
    #[error("pipeline has a cycle involving stages: {0}")]
    Cycle(String),
    #[error("output '{path}' is specified in stages '{first}' and '{second}'")]
    DuplicateOutput { path: String, first: String, second: String },
    #[error("output '{outer}' of stage '{outer_stage}' contains output '{inner}' of stage '{inner_stage}'")]
    OverlappingOutputs { outer: String, outer_stage: String, inner: String, inner_stage: String },
    #[error("parameters {keys} are missing from '{file}' (stage '{stage}')")]
    MissingParams { stage: String, file: String, keys: String },
    #[error("dependency '{path}' of stage '{stage}' does not exist")]
    MissingDependency { stage: String, path: String },
    #[error("output '{path}' of stage '{stage}' does not exist after running its command")]
    MissingOutput { stage: String, path: String },
    #[error("stage '{stage}' failed: command `{cmd}` exited with {code}")]
    CommandFailed { stage: String, cmd: String, code: String },
    #[error("interrupted while running stage '{0}'")]
    Interrupted(String),
    #[error("repository is locked by pid {pid} ({path})")]
    Locked { pid: String, path: PathBuf },
    #[error("cache object {0} is missing or corrupt")]
    CacheMissing(String),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
