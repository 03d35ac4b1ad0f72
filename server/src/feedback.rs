//! Feedback from the HTTP API: stored through `gitops::feedback::FeedbackStore`, committed and
//! pushed by the gitops coalescing committer, and the retrain trigger fired for every sub_set
//! that seals (here, or while our samples were replayed on the remote's).

use std::path::Path;
use std::sync::Arc;

use gitops::feedback::{AddOutcome, FeedbackStore, Sample};
use gitops::git::{Committer, Credentials, FeedbackSync};
use gitops::params::Params;
use gitops::trigger::{Fired, RetrainRequest, Trigger};

use crate::error::AppError;

#[derive(Debug)]
pub struct FeedbackService {
    pub store: FeedbackStore,
    committer: Option<Committer>,
    trigger: Arc<Trigger>,
    root: std::path::PathBuf,
}

impl FeedbackService {
    /// Opens the store; starts the committer when the repository is a git checkout.
    pub fn open(root: &Path, params: &Params) -> Self {
        let store = FeedbackStore::open_with(root, params.feedback.clone());
        let trigger = Arc::new(Trigger::from_params(root, &params.trigger).unwrap_or_else(|e| {
            tracing::warn!("retrain trigger disabled: {e}");
            Trigger::None
        }));
        let committer = git2::Repository::open(root).is_ok().then(|| {
            let sync = FeedbackSync::new(store.clone(), params.git.clone(), Credentials::from_env());
            let (trigger, root, threshold) = (trigger.clone(), root.to_path_buf(), params.feedback.threshold);
            Committer::spawn(sync, move |result| match result {
                Ok(outcome) => {
                    if let Some(push) = &outcome.push {
                        tracing::info!(commit = ?outcome.commit, ?push, "feedback synced");
                    }
                    for sub_set in outcome.sealed {
                        fire(&trigger, &root, sub_set, threshold);
                    }
                }
                Err(e) => tracing::error!("feedback commit/push failed (the samples are stored): {e}"),
            })
        });
        Self { store, committer, trigger, root: root.to_path_buf() }
    }

    /// Stores `sample` durably, schedules its commit, and fires the trigger when it sealed a
    /// sub_set; returns the outcome and whether a retrain was triggered.
    pub async fn add(self: &Arc<Self>, sample: Sample) -> Result<(AddOutcome, bool), AppError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let outcome = me.store.add(sample)?;
            if let Some(committer) = &me.committer
                && !outcome.duplicate
            {
                committer.notify();
            }
            let triggered = match outcome.sealed {
                Some(sub_set) => {
                    if let Some(committer) = &me.committer {
                        // The trigger's run reads the sealed sub_set from git: commit it first.
                        if let Err(e) = committer.flush() {
                            tracing::error!("committing sealed sub_set {sub_set}: {e}");
                        }
                    }
                    fire(&me.trigger, &me.root, sub_set, outcome.current_count)
                }
                None => false,
            };
            Ok((outcome, triggered))
        })
        .await
        .map_err(|e| AppError::internal("storing the feedback", e))?
    }
}

fn fire(trigger: &Trigger, root: &Path, sub_set: u32, count: u32) -> bool {
    let commit = git2::Repository::open(root).ok().and_then(|r| r.head().ok()?.target()).map(|o| o.to_string());
    match trigger.fire(&RetrainRequest { sub_set, count, commit }) {
        Ok(Fired::Disabled) => {
            tracing::info!(sub_set, "sub_set sealed (trigger: none)");
            false
        }
        Ok(fired) => {
            tracing::info!(sub_set, ?fired, "sub_set sealed: retrain triggered");
            true
        }
        Err(e) => {
            tracing::error!(sub_set, "sub_set sealed but the retrain trigger failed: {e}");
            false
        }
    }
}
