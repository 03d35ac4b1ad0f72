//! The command line: `pipeline feedback add|status|should-retrain` and `pipeline fsck`.
//!
//! The `pipeline` binary embeds [`FeedbackCommand`] and [`FsckArgs`] in its own clap parser
//! and calls their `run(repo_root)`; `gitops-feedback` is a thin stand-alone wrapper used by
//! the tests.

mod add;
mod chain;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use add::AddArgs;
pub use chain::error_chain;

use crate::feedback::{FeedbackError, FeedbackStore};
use crate::git::GitError;
use crate::params::ParamsError;
use crate::trigger::TriggerError;

/// Errors of the command line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: crate::image_input::ReadImageError },
    #[error("{path}: {source} (nothing was stored)")]
    Input { path: PathBuf, source: FeedbackError },
    /// A table's row (`at`: `FILE: row N`).
    #[error("{at}: {source} (nothing was stored)")]
    Row { at: String, source: FeedbackError },
    #[error("{path}: {what} (nothing was stored)")]
    Table { path: PathBuf, what: String },
    #[error(transparent)]
    Feedback(#[from] FeedbackError),
    #[error("the samples are stored, but git failed: {0}")]
    Git(#[from] GitError),
    /// `storage: dvc`: the open sub_set's samples could not be brought in before a check.
    #[error("cannot check the store before its samples are here: {0}")]
    Restore(GitError),
    #[error("the samples are stored, but the retrain trigger failed: {0}")]
    Trigger(#[from] TriggerError),
    #[error("the samples are stored and pushed, but the retrain trigger failed: {0}")]
    TriggerFailed(String),
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error("cannot write JSON output: {0}")]
    Json(#[from] serde_json::Error),
}

/// `pipeline feedback ...`
#[derive(Debug, Subcommand)]
pub enum FeedbackCommand {
    /// Store labelled images (or a table's rows) under new_data/sub_set_N/, commit and push
    /// them, and fire the retrain trigger when a sub_set fills up.
    Add(AddArgs),
    /// Show the open sub_set, sealed sub_sets waiting for retraining, totals and the last
    /// local retrain.
    Status(StatusArgs),
    /// Exit 0 if a sealed sub_set is waiting for retraining, 1 if none is (for workflows).
    ShouldRetrain,
}

/// `pipeline feedback status` options.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `pipeline fsck`: check new_data/ against count.json, journals and seal markers.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Fix what can be fixed (temp files, journals, seals, count.json).
    #[arg(long)]
    pub repair: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl FeedbackCommand {
    /// Runs `pipeline feedback <command>` in the repository at `repo_root`.
    pub fn run(self, repo_root: &Path) -> Result<ExitCode, CliError> {
        match self {
            Self::Add(args) => add::run(repo_root, args),
            Self::Status(args) => report::status(repo_root, &args),
            Self::ShouldRetrain => {
                let store = FeedbackStore::open(repo_root)?;
                Ok(match store.should_retrain()? {
                    Some(n) => {
                        println!("sub_set {n} is sealed and waiting for retraining");
                        ExitCode::SUCCESS
                    }
                    None => {
                        println!("no sealed sub_set is waiting for retraining");
                        ExitCode::from(1)
                    }
                })
            }
        }
    }
}

impl FsckArgs {
    /// Runs `pipeline fsck [--repair]`: exit 0 when the store is consistent (after repair).
    pub fn run(self, repo_root: &Path) -> Result<ExitCode, CliError> {
        report::fsck(repo_root, &self)
    }
}
