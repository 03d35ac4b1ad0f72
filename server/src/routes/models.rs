//! `GET /models`: the versions on disk with their sidecar metrics, which is serving, pinned and
//! loaded, the shadow model's figures, and the registry's promotion history.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use gitops::model_file::ModelFile;
use pipeline::registry::{Event, Registry};
use serde::Serialize;

use crate::error::AppError;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct ModelsResponse {
    pub serving: Option<String>,
    /// The version in shadow and what it did so far (this replica's count).
    pub shadow: Option<crate::shadow::ShadowStats>,
    pub versions: Vec<Version>,
    pub history: Vec<Event>,
}

#[derive(Debug, Serialize)]
pub struct Version {
    pub version: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub parent: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    /// `confusion[true][predicted]`, in the order of the model's task's classes.
    pub confusion: Option<Vec<Vec<u64>>>,
    pub pinned: bool,
    pub serving: bool,
    /// Running in shadow beside the serving model.
    pub shadow: bool,
    pub loaded: bool,
}

pub async fn models(State(state): State<AppState>) -> Result<Json<ModelsResponse>, AppError> {
    let dir = state.models.dir().to_path_buf();
    let serving = state.models.current_version();
    let loaded = state.models.loaded_versions();
    let shadow = state.shadow.stats(&state.models);
    let (registry, files) = tokio::task::spawn_blocking(move || (Registry::load(&dir).ok(), ModelFile::list(&dir)))
        .await
        .map_err(|e| AppError::internal("listing the models", e))?;
    let files = files.map_err(|e| AppError::internal("listing the models", e))?;
    let pinned = registry.as_ref().map(|r| r.pinned.clone()).unwrap_or_default();
    let mut versions: Vec<Version> = files
        .iter()
        .filter_map(|file| match file.read_sidecar() {
            Ok(sidecar) => Some(sidecar),
            Err(e) => {
                tracing::warn!("skipping {}: {e}", file.version);
                None
            }
        })
        .map(|s| Version {
            pinned: pinned.contains(&s.version),
            serving: serving.as_deref() == Some(s.version.as_str()),
            shadow: shadow.as_ref().is_some_and(|st| st.version == s.version),
            loaded: loaded.contains(&s.version),
            version: s.version,
            created_at: s.created_at,
            parent: s.parent,
            metrics: s.metrics,
            confusion: s.confusion,
        })
        .collect();
    versions.reverse();
    Ok(Json(ModelsResponse { serving, shadow, versions, history: registry.map(|r| r.history).unwrap_or_default() }))
}
