//! `GET /healthz` (the process answers), `GET /readyz` (a model is loaded and warmed) and
//! `GET /metrics` (Prometheus text format).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::state::AppState;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match state.models.current_version() {
        Some(version) => (StatusCode::OK, Json(json!({ "ready": true, "serving": version }))),
        None => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "ready": false, "error": "no model is loaded yet" }))),
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.queue_depth.set(state.batcher.queued() as i64);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
