//! What happens when a sub_set is sealed: `github` (workflow or repository dispatch),
//! `local` (a background worker that runs the retrain command), `webhook` (GitHub's
//! repository_dispatch body POSTed to any receiver, e.g. one that starts a Kubernetes Job), or
//! `none`.
//!
//! The kind comes from `trigger.kind` in `params.yaml`, overridden by `PIPELINE_TRIGGER`.

mod github;
mod local;
mod webhook;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use github::GithubTrigger;
pub use local::{LocalTrigger, RetrainState, RetrainStatus, STATUS_FILE};
pub use webhook::{WebhookError, WebhookTrigger};

use crate::params::{TriggerKind, TriggerParams};

/// What the `local` trigger passes to `pipeline` by default: the retrain workflow's own `run:`
/// steps, so a retrain on one machine and one on GitHub cannot drift.
pub const LOCAL_RETRAIN_ARGS: [&str; 3] = ["ci", "run", "retrain"];

/// Errors of the triggers.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("trigger.kind is github but trigger.github.{0} is empty in params.yaml")]
    Unconfigured(&'static str),
    #[error("no GitHub token: set {}", crate::token::var_list())]
    NoToken,
    #[error("GitHub rejected the token (401 Unauthorized): check {}", crate::token::var_list())]
    Unauthorized,
    #[error(
        "GitHub refused the dispatch (403 Forbidden): the token lacks the `actions: write` (or `contents: write`) permission on {repo}: {message}"
    )]
    Forbidden { repo: String, message: String },
    #[error("GitHub answered 404 for {path}: no such repository or workflow, or the token cannot see it")]
    NotFound { path: String },
    #[error("GitHub answered {status} for {path}: {message}")]
    Status { status: u16, path: String, message: String },
    #[error("GitHub dispatch failed after {attempts} attempts, last: {last}")]
    GaveUp { attempts: u32, last: String },
    #[error("invalid GitHub API base URI {uri:?}: {reason}")]
    BaseUri { uri: String, reason: String },
    #[error("octocrab: {0}")]
    Octocrab(#[from] octocrab::Error),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot find the `pipeline` binary next to {exe}: set trigger.local_command in params.yaml")]
    NoCommand { exe: PathBuf },
    #[error(transparent)]
    Webhook(#[from] WebhookError),
}

/// What a retrain run is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RetrainRequest {
    /// The sealed sub_set.
    pub sub_set: u32,
    /// Counted samples in it.
    pub count: u32,
    /// The commit holding it, when known.
    pub commit: Option<String>,
    /// Why, when it is not a sealed sub_set (the model server's drift watch names the signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl RetrainRequest {
    /// The request for a sealed sub_set.
    pub fn sealed(sub_set: u32, count: u32, commit: Option<String>) -> Self {
        Self { sub_set, count, commit, reason: None }
    }
}

/// What [`Trigger::fire`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// GitHub (or, for `webhook`, the receiver) accepted the dispatch.
    Dispatched,
    /// The local worker queued it; `ahead` runs come first.
    Queued { ahead: usize },
    /// `trigger.kind: none`.
    Disabled,
}

/// The configured trigger.
#[derive(Debug)]
pub enum Trigger {
    Github(GithubTrigger),
    Local(LocalTrigger),
    Webhook(WebhookTrigger),
    None,
}

impl Trigger {
    /// Builds the trigger `params` ask for (the GitHub and webhook tokens come from the
    /// environment).
    pub fn from_params(repo_root: &Path, params: &TriggerParams) -> Result<Self, TriggerError> {
        Ok(match params.kind {
            TriggerKind::Github => Self::Github(GithubTrigger::new(params.github.clone(), crate::token::from_env())?),
            TriggerKind::Local => Self::Local(LocalTrigger::new(repo_root, params.local_command.clone())?),
            TriggerKind::Webhook => {
                let token = std::env::var(&params.webhook.token_env).ok();
                Self::Webhook(WebhookTrigger::new(params.webhook.clone(), token)?)
            }
            TriggerKind::None => Self::None,
        })
    }

    /// Fires for a sealed sub_set. Blocking; safe to call from any thread.
    pub fn fire(&self, request: &RetrainRequest) -> Result<Fired, TriggerError> {
        match self {
            Self::Github(github) => github.dispatch_blocking(request).map(|()| Fired::Dispatched),
            Self::Local(local) => local.enqueue(request.clone()).map(|ahead| Fired::Queued { ahead }),
            Self::Webhook(webhook) => Ok(webhook.dispatch_blocking(request).map(|()| Fired::Dispatched)?),
            Self::None => Ok(Fired::Disabled),
        }
    }
}
