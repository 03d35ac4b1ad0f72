//! Feedback from the HTTP API: stored through `gitops::feedback::FeedbackStore`, committed and
//! pushed by the gitops coalescing committer, which also fires the retrain trigger for each
//! seal that landed on the origin through this server (`gitops::git::FeedbackSync`).
//!
//! A request is answered once the commit carrying its sample has landed (pushed, or committed
//! when nothing is pushed), within the coalescing window: its `sub_set` is then final, since a
//! replay after a rejected push can move a sample only before it lands. When that cannot
//! happen in time (remote unreachable, git failing), the answer says `settled: false`: the
//! sample is stored durably, and goes out with the committer's retries.
//!
//! At start the committer syncs at once: samples acknowledged before a crash are committed and
//! pushed, and seals that landed without their trigger firing fire then; local retrain runs a
//! crash left queued run.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use gitops::feedback::review::Decision;
use gitops::feedback::{AddOutcome, FeedbackStore, Sample};
use gitops::git::{Committer, Credentials, FeedbackSync, GitError, PushOutcome, SyncOutcome};
use gitops::params::Params;
use gitops::trigger::{Fired, RetrainRequest, Trigger};
use serde::Serialize;

use crate::error::AppError;
use crate::metrics::Metrics;

/// The longest a request waits for its sample's commit to land.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What storing one sample came to.
#[derive(Debug, Clone)]
pub struct Added {
    pub outcome: AddOutcome,
    /// The sub_set holding the sample, and its counted samples, as of the answer.
    pub sub_set: u32,
    pub current_count: u32,
    /// The sample is on the origin: `sub_set` will not change.
    pub settled: bool,
    /// Its sub_set's seal landed with it and the retrain trigger fired.
    pub retrain_triggered: bool,
}

/// How feedback commits and pushes are going (`/api/status`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncHealth {
    /// Syncs in a row that failed or found the remote unreachable (retried with backoff).
    pub failures_in_a_row: u32,
    pub last_error: Option<String>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
}

#[derive(Debug)]
pub struct FeedbackService {
    pub store: FeedbackStore,
    committer: Option<Committer>,
    trigger: Arc<Trigger>,
    health: Arc<Mutex<SyncHealth>>,
}

impl FeedbackService {
    /// Opens the store; starts the committer (which syncs at once) when the repository is a git
    /// checkout.
    pub fn open(root: &Path, params: &Params, metrics: Arc<Metrics>) -> Self {
        let store = FeedbackStore::open_with(root, params.feedback.clone(), params.task.clone());
        let trigger = Arc::new(Trigger::from_params(root, &params.trigger).unwrap_or_else(|e| {
            tracing::warn!("retrain trigger disabled: {e}");
            Trigger::None
        }));
        // Runs a killed server left queued (the local trigger's queue is durable) go on now.
        if let Trigger::Local(local) = trigger.as_ref()
            && let Err(e) = local.resume()
        {
            tracing::error!("resuming the queued local retrains: {e}");
        }
        let health = Arc::new(Mutex::new(SyncHealth::default()));
        let committer = git2::Repository::open(root).is_ok().then(|| {
            let sync = FeedbackSync::new(store.clone(), params.git.clone(), Credentials::from_env())
                .with_trigger(trigger.clone());
            let health = health.clone();
            Committer::spawn(sync, move |result| record(&metrics, &health, result))
        });
        Self { store, committer, trigger, health }
    }

    /// Fires the retrain trigger for `reason` (not a seal: the drift watch), naming the open
    /// sub_set. Blocking; whether a retrain started.
    pub fn fire_retrain(&self, reason: &str) -> bool {
        let (sub_set, count) = match self.store.status() {
            Ok((count, _)) => (count.sub_set_count, count.current_count),
            Err(e) => {
                tracing::error!("reading count.json for a retrain: {e}");
                (0, 0)
            }
        };
        let request =
            RetrainRequest { reason: Some(reason.to_string()), ..RetrainRequest::sealed(sub_set, count, None) };
        fired(sub_set, &self.trigger.fire(&request).map_err(|e| e.to_string()))
    }

    /// Records a reviewer's decision (`FeedbackStore::decide`) and waits (briefly) for the commit
    /// that carries it to land; whether it did. Blocking.
    pub fn decide(&self, sha256: &str, decision: Decision) -> Result<bool, AppError> {
        self.store.decide(sha256, decision)?;
        let Some(committer) = &self.committer else { return Ok(true) };
        Ok(match committer.settle(SETTLE_TIMEOUT) {
            Some(Ok(sync)) => sync.landed.is_some(),
            Some(Err(e)) => {
                tracing::warn!("review decision stored, its commit not landed yet: {e}");
                false
            }
            None => false,
        })
    }

    /// How the commits and pushes are going.
    pub fn health(&self) -> SyncHealth {
        self.health.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Stores `sample` durably and waits (briefly) for the commit that carries it to land.
    pub async fn add(self: &Arc<Self>, sample: Sample) -> Result<Added, AppError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.add_blocking(sample))
            .await
            .map_err(|e| AppError::internal("storing the feedback", e))?
    }

    fn add_blocking(&self, sample: Sample) -> Result<Added, AppError> {
        let outcome = self.store.add(sample)?;
        let Some(committer) = &self.committer else {
            // Outside git the store is the origin: the answer is final and a seal lands now.
            let retrain_triggered = outcome.sealed.is_some_and(|sub_set| {
                let request = RetrainRequest::sealed(sub_set, outcome.current_count, None);
                fired(sub_set, &self.trigger.fire(&request).map_err(|e| e.to_string()))
            });
            let (sub_set, current_count) = (outcome.sub_set, outcome.current_count);
            return Ok(Added { outcome, sub_set, current_count, settled: true, retrain_triggered });
        };
        let synced = committer.settle(SETTLE_TIMEOUT);
        let (sub_set, current_count) = self.store.locate(&outcome)?.unwrap_or((outcome.sub_set, outcome.current_count));
        let (settled, retrain_triggered) = match &synced {
            Some(Ok(s)) => {
                (s.landed.is_some(), s.fired.iter().any(|f| f.sub_set == sub_set && fired(sub_set, &f.result)))
            }
            Some(Err(e)) => {
                tracing::warn!("feedback stored, its commit not landed yet: {e}");
                (false, false)
            }
            None => (false, false),
        };
        Ok(Added { outcome, sub_set, current_count, settled, retrain_triggered })
    }
}

/// Whether a trigger's answer started a retrain.
fn fired(sub_set: u32, result: &Result<Fired, String>) -> bool {
    match result {
        Ok(Fired::Disabled) => false,
        Ok(_) => true,
        Err(e) => {
            tracing::error!(sub_set, "the retrain trigger failed: {e}");
            false
        }
    }
}

/// Logs and counts one sync of the committer.
fn record(metrics: &Metrics, health: &Mutex<SyncHealth>, result: Result<&SyncOutcome, &GitError>) {
    let mut health = health.lock().unwrap_or_else(PoisonError::into_inner);
    let now = Some(Utc::now());
    let label = match result {
        Ok(outcome) => match &outcome.push {
            Some(PushOutcome::Offline { reason }) => {
                tracing::warn!(commit = ?outcome.commit, "remote unreachable, the feedback commit waits: {reason}");
                health.failures_in_a_row += 1;
                health.last_error = Some(format!("remote unreachable: {reason}"));
                health.last_failure = now;
                "offline"
            }
            push => {
                if outcome.commit.is_some() || push.as_ref().is_some_and(|p| p != &PushOutcome::UpToDate) {
                    tracing::info!(commit = ?outcome.commit, ?push, "feedback synced");
                }
                health.failures_in_a_row = 0;
                health.last_success = now;
                "success"
            }
        },
        Err(e) => {
            tracing::error!("feedback commit/push failed (the samples are stored; retrying with backoff): {e}");
            health.failures_in_a_row += 1;
            health.last_error = Some(e.to_string());
            health.last_failure = now;
            "failure"
        }
    };
    metrics.feedback_syncs.with_label_values(&[label]).inc();
    metrics.feedback_sync_failing.set(i64::from(health.failures_in_a_row));
}
