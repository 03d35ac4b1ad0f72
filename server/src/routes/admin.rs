//! `POST /admin/reload` and `POST /admin/rollback {"version"}`, behind the admin token; both
//! run on the puller thread.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::HeaderMap;

use super::auth;
use crate::error::AppError;
use crate::input::{self, Body};
use crate::puller::{ReloadOutcome, RollbackOutcome};
use crate::state::AppState;

pub async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<ReloadOutcome>, AppError> {
    auth::check(&headers, state.settings.admin_token.as_deref())?;
    Ok(Json(state.puller.reload().await?))
}

pub async fn rollback(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
) -> Result<Json<RollbackOutcome>, AppError> {
    auth::check(&headers, state.settings.admin_token.as_deref())?;
    let Body::Json(value) = input::read(req, 64 << 10).await? else {
        return Err(AppError::Unsupported("send {\"version\": \"model_...\"} as application/json".into()));
    };
    let version = match value.get("version") {
        Some(serde_json::Value::String(v)) => v.clone(),
        _ => return Err(AppError::Unprocessable("`version` (a model_YYYYMMDDTHHMMSSZ string) is required".into())),
    };
    Ok(Json(state.puller.rollback(version).await?))
}
