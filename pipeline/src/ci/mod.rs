//! `pipeline ci`: a small local executor for the repo's GitHub Actions workflows (`ci run`),
//! and the two steps the retrain workflow calls after the DAG: `ci publish` and `ci summary`.
//! The `local` trigger runs `pipeline ci run retrain`, so a retrain on one machine runs the
//! very `run:` steps GitHub runs, and the two cannot drift.

pub mod expr;
pub mod publish;
pub mod run;
pub mod summary;
pub mod workflow;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CiError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {what}", path.display())]
    Workflow { path: PathBuf, what: String },
    #[error(
        "unsupported expression `${{{{ {0} }}}}`: the local executor knows inputs.*, github.event.inputs.*, github.event_name, github.workspace, env.*, secrets.*, steps.<id>.outputs.*, always()"
    )]
    Expression(String),
    #[error("step `{step}` failed ({status})")]
    StepFailed { step: String, status: String },
    #[error(transparent)]
    Release(#[from] crate::release::ReleaseError),
    #[error(transparent)]
    Git(#[from] gitops::git::GitError),
}
