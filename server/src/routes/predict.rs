//! `POST /predict`: an image in (multipart `file`, raw `image/*`, or JSON `{"image"}`), or for a
//! tabular task a row (`{"features": {...}}`) or several (`{"rows": [{...}, ...]}`, answered as
//! `{"predictions": [...]}`); the class (`label`, its `index`, and `digit` for digit tasks),
//! every class's probability by name, the confidence, the model version and a request id out.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use chrono::Utc;
use model::Prediction;
use model::preprocess;
use pipeline::predlog::{Event, Record};
use serde::Serialize;
use sha2::{Digest, Sha256};

use axum::response::{IntoResponse, Response};
use gitops::task::ByClass;

use crate::error::AppError;
use crate::history::Entry;
use crate::input::{self, Body};
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct PredictResponse<'a> {
    /// The predicted class's name.
    pub label: String,
    pub index: usize,
    /// The index again, for digit tasks, so clients from before classes had names keep working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digit: Option<usize>,
    /// Each class's probability, by name, in the task's order.
    pub probabilities: ByClass<'a, f32>,
    pub confidence: f32,
    pub model_version: String,
    pub request_id: String,
}

pub async fn predict(State(state): State<AppState>, req: Request) -> Result<Response, AppError> {
    let body = input::read(req, state.settings.body_limit).await?;
    let task = &state.settings.task;
    if task.schema().is_some() {
        return predict_rows(&state, body).await;
    }
    let bytes = match body {
        Body::Image(bytes) => bytes.to_vec(),
        Body::Json(value) => image_from_json(&value)?,
        Body::Form { file: Some(file), .. } => file.to_vec(),
        Body::Form { file: None, .. } => return Err(AppError::BadRequest("the form has no `file` part".into())),
    };
    let (entry, probabilities) = classify(&state, bytes).await?;
    Ok(Json(answer(task, entry, &probabilities)).into_response())
}

fn answer<'a>(task: &'a gitops::task::Task, entry: Entry, probabilities: &'a [f32]) -> PredictResponse<'a> {
    PredictResponse {
        digit: task.is_digit().then_some(entry.index),
        label: entry.label,
        index: entry.index,
        probabilities: ByClass(&task.classes, probabilities),
        confidence: entry.confidence,
        model_version: entry.model_version,
        request_id: entry.request_id,
    }
}

/// Rows most one request may carry (`{"rows": [...]}`).
pub const MAX_ROWS: usize = 1024;

/// A tabular task's `/predict`: `{"features": {...}}` answered like an image, or
/// `{"rows": [...]}` answered as `{"predictions": [...]}` in one batch. Every row is checked
/// before any is classified; the first bad one is named by its position and field.
async fn predict_rows(state: &AppState, body: Body) -> Result<Response, AppError> {
    let task = &state.settings.task;
    let Body::Json(value) = body else {
        return Err(AppError::Unsupported(format!(
            "task {} classifies rows: send JSON {{\"features\": {{...}}}} or {{\"rows\": [...]}}",
            task.name
        )));
    };
    if let Some(features) = value.get("features") {
        let (entry, probabilities) = classify(state, features.to_string().into_bytes()).await?;
        return Ok(Json(answer(task, entry, &probabilities)).into_response());
    }
    let Some(rows) = value.get("rows").and_then(serde_json::Value::as_array) else {
        return Err(AppError::BadRequest("the JSON body has neither `features` (one row) nor `rows` (a list)".into()));
    };
    if rows.is_empty() || rows.len() > MAX_ROWS {
        return Err(AppError::BadRequest(format!("`rows` holds {} rows; 1..={MAX_ROWS} are taken", rows.len())));
    }
    let mut checked = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        checked.push(input::row_input(row.to_string().as_bytes(), task).map_err(|e| match e {
            AppError::Unprocessable(what) => AppError::Unprocessable(format!("rows[{i}]: {what}")),
            other => other,
        })?);
    }
    let answered = classify_inputs(state, checked).await?;
    let predictions: Vec<PredictResponse> =
        answered.iter().map(|(entry, probabilities)| answer(task, entry.clone(), probabilities)).collect();
    Ok(Json(serde_json::json!({ "predictions": predictions })).into_response())
}

/// `{"image": "<base64 or data URL>"}`.
pub fn image_from_json(value: &serde_json::Value) -> Result<Vec<u8>, AppError> {
    match value.get("image") {
        Some(serde_json::Value::String(text)) => input::decode_image_text(text),
        Some(_) => Err(AppError::BadRequest("`image` must be a base64 string or a data URL".into())),
        None => Err(AppError::BadRequest("the JSON body has no `image` field".into())),
    }
}

/// Decodes (under the limits), preprocesses and classifies one image, then records it in the
/// history, the metrics and the prediction log. Returns the history entry and the probabilities.
pub async fn classify(state: &AppState, bytes: Vec<u8>) -> Result<(Entry, Vec<f32>), AppError> {
    let prepared = input::to_input(bytes, state.settings.limits, &state.settings.task).await?;
    classify_inputs(state, vec![prepared])
        .await?
        .pop()
        .ok_or_else(|| AppError::internal("inference", "an empty answer"))
}

/// Classifies checked inputs (each the given bytes and the network's input) in one batch and
/// records each, in order.
async fn classify_inputs(
    state: &AppState,
    prepared: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Vec<(Entry, Vec<f32>)>, AppError> {
    let task = &state.settings.task;
    let inputs: Vec<Vec<f32>> = prepared.iter().map(|(_, input)| preprocess::normalize(task, input)).collect();
    // A copy for the shadow model, only while one runs.
    let shadowed = state.models.shadow().is_some().then(|| inputs.clone());
    let answer = state.batcher.predict(inputs).await?;
    if answer.predictions.len() != prepared.len() {
        return Err(AppError::internal("inference", "an answer of another length"));
    }
    let version = answer.version;
    Ok(prepared
        .into_iter()
        .zip(answer.predictions)
        .enumerate()
        .map(|(i, ((bytes, input), prediction))| {
            let entry = record(state, bytes, input, &prediction, &version);
            if let Some(inputs) = &shadowed {
                state.shadow.offer(&state.models, &entry.request_id, &inputs[i], prediction.index);
            }
            (entry, prediction.probabilities)
        })
        .collect())
}

/// Counts a prediction in the metrics and keeps it in the history and the prediction log.
fn record(state: &AppState, bytes: Vec<u8>, input: Vec<u8>, prediction: &Prediction, version: &str) -> Entry {
    let task = &state.settings.task;
    let label = task.class_name(prediction.index).unwrap_or_default().to_string();
    let metrics = &state.metrics;
    metrics.predictions.with_label_values(&[&label]).inc();
    metrics.confidence.observe(f64::from(prediction.confidence));
    if let Some(served) = state.models.current().filter(|s| s.version() == version) {
        state.drift.observe(&served, prediction.confidence, &input);
    }
    let entry = Entry {
        request_id: uuid::Uuid::new_v4().simple().to_string(),
        at: Utc::now(),
        index: prediction.index,
        label,
        confidence: prediction.confidence,
        model_version: version.to_string(),
        input_sha256: hex::encode(Sha256::digest(&bytes)),
        input: Arc::new(bytes),
        model_input: Arc::new(input),
        feedback: None,
    };
    state.predlog.log(Record {
        event: Event::Prediction,
        request_id: entry.request_id.clone(),
        at: entry.at,
        input_sha256: entry.input_sha256.clone(),
        predicted: Some(entry.label.clone()),
        confidence: Some(entry.confidence),
        model_version: Some(entry.model_version.clone()),
        feedback_kind: None,
        label: None,
        features: task.schema().map(|_| String::from_utf8_lossy(&entry.input).trim_end().to_string()),
    });
    state.history.insert(entry.clone());
    entry
}
