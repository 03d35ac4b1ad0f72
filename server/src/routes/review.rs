//! `GET /api/review`: the label review queue (sealed feedback no one decided on whose label the
//! serving model finds very unlikely, `model::review`), with thumbnails or rows; `POST
//! /api/review` (`{"sha256", "action": "accept"|"relabel"|"reject", "label"}`): a reviewer's
//! decision, stored in `new_data/review.json` and committed like feedback. Both behind the
//! feedback token when one is set: the queue shows users' inputs. Under `storage: dvc` the
//! queue first brings the sealed samples this clone lacks from the DVC remote.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::Utc;
use gitops::feedback::review::{Action, Decision, Suspect};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::history::thumbnail;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct Queue {
    /// The model that judged the labels.
    pub serving: String,
    /// Undecided sealed samples it looked at.
    pub pending: usize,
    /// Whether validate holds the suspects out of training (params `review.label_noise`).
    pub label_noise: bool,
    pub suspects: Vec<QueueItem>,
}

#[derive(Debug, Serialize)]
pub struct QueueItem {
    #[serde(flatten)]
    pub suspect: Suspect,
    /// An image sample as the model saw it (a PNG data URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
    /// A row's features.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<serde_json::Value>,
}

pub async fn queue(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Queue>, AppError> {
    super::auth::check(&headers, state.settings.feedback_token.as_deref())?;
    let served = state.models.current().ok_or_else(|| AppError::Unavailable("no model is serving yet".into()))?;
    let task_state = state.clone();
    let queue = tokio::task::spawn_blocking(move || {
        let settings = &task_state.settings;
        let task = &settings.task;
        // `storage: dvc`: a replica has the sealed samples only once it fetched them.
        if let Err(e) = pipeline::storage::fetch_feedback(&settings.root) {
            tracing::warn!("the review queue covers the sealed samples this clone has: fetching the others: {e}");
        }
        let pending = model::review::pending(&settings.root, task, &settings.limits)?;
        let thresholds = served.reference().map(|r| r.class_thresholds.clone()).unwrap_or_default();
        let held = model::review::held(&settings.root);
        let predict = |batch: &[f32]| served.predict(0, batch);
        let found = model::review::suspects(&pending, task, predict, &thresholds, &settings.review, &held);
        let inputs: std::collections::HashMap<&str, &[u8]> =
            pending.iter().map(|p| (p.sha256.as_str(), p.input.as_slice())).collect();
        let suspects = found
            .into_iter()
            .map(|suspect| {
                let (thumbnail, features) = match task.schema() {
                    None => (inputs.get(suspect.sha256.as_str()).map(|input| thumbnail(task, input)), None),
                    Some(_) => {
                        let row = std::fs::read(settings.root.join(&suspect.path)).ok();
                        (None, row.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
                    }
                };
                QueueItem { suspect, thumbnail, features }
            })
            .collect::<Vec<_>>();
        Ok::<_, gitops::feedback::FeedbackError>(Queue {
            serving: served.version().to_string(),
            pending: pending.len(),
            label_noise: settings.review.label_noise,
            suspects,
        })
    })
    .await
    .map_err(|e| AppError::internal("scoring the review queue", e))??;
    state.metrics.review_queue.set(queue.suspects.len() as i64);
    Ok(Json(queue))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    pub sha256: String,
    pub action: Action,
    pub label: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Decided {
    pub sha256: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The commit carrying it landed on the remote (else it is retried in the background).
    pub settled: bool,
}

pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Decided>, AppError> {
    super::auth::check(&headers, state.settings.feedback_token.as_deref())?;
    let body: DecisionBody = serde_json::from_slice(&body).map_err(|e| AppError::BadJson(e.to_string()))?;
    let decision = Decision { action: body.action, label: body.label.clone(), at: Utc::now(), by: "page".into() };
    let feedback = state.feedback.clone();
    let sha256 = body.sha256.clone();
    let settled = tokio::task::spawn_blocking(move || feedback.decide(&sha256, decision))
        .await
        .map_err(|e| AppError::internal("storing the decision", e))??;
    state.metrics.review_decisions.with_label_values(&[body.action.name()]).inc();
    Ok(Json(Decided { sha256: body.sha256, action: body.action, label: body.label, settled }))
}
