//! `GET /api/status` (feedback count, serving version, retrain state, last promote decision,
//! how feedback commits and pushes are going) and `GET /api/history` (recent predictions from
//! the in-memory cache, behind the feedback token).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use gitops::feedback::CountFile;
use gitops::trigger::RetrainStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::AppError;
use crate::history::HistoryItem;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct Status {
    pub current_count: u32,
    pub threshold: u32,
    pub sub_set: u32,
    pub serving: Option<String>,
    pub retrain: Retrain,
    pub decision: Option<Value>,
    /// How feedback commits and pushes are going: failures are retried with backoff.
    pub git: crate::feedback::SyncHealth,
}

#[derive(Debug, Serialize)]
pub struct Retrain {
    pub state: gitops::trigger::RetrainState,
    pub sub_set: Option<u32>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub log_tail: String,
}

pub async fn status(State(state): State<AppState>) -> Result<Json<Status>, AppError> {
    let root = state.settings.root.clone();
    let threshold = state.settings.threshold;
    let (count, retrain, decision) = tokio::task::spawn_blocking(move || {
        let count: Option<CountFile> = gitops::feedback::read_count(&root);
        let retrain = RetrainStatus::read(&root).unwrap_or_else(|e| {
            tracing::warn!("reading the retrain status: {e}");
            RetrainStatus::default()
        });
        let decision: Option<Value> =
            std::fs::read(root.join(pipeline::paths::DECISION)).ok().and_then(|b| serde_json::from_slice(&b).ok());
        (count, retrain, decision)
    })
    .await
    .map_err(|e| AppError::internal("reading the status", e))?;
    Ok(Json(Status {
        current_count: count.as_ref().map_or(0, |c| c.current_count),
        threshold,
        sub_set: count.as_ref().map_or(0, |c| c.sub_set_count),
        serving: state.models.current_version(),
        retrain: Retrain {
            state: retrain.state,
            sub_set: retrain.request.map(|r| r.sub_set),
            started_at: retrain.started_at,
            finished_at: retrain.finished_at,
            log_tail: retrain.log_tail,
        },
        decision,
        git: state.feedback.health(),
    }))
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    pub limit: Option<usize>,
}

/// `GET /api/task`: what the model classifies (class names in order) and reads.
pub async fn task(State(state): State<AppState>) -> Json<gitops::task::Task> {
    Json(state.settings.task.clone())
}

/// Behind the feedback token when one is set: the history shows users' inputs.
pub async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<HistoryItem>>, AppError> {
    super::auth::check(&headers, state.settings.feedback_token.as_deref())?;
    Ok(Json(state.history.recent(query.limit.unwrap_or(20), &state.settings.task)))
}
