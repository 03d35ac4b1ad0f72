//! `POST /predict`: an image in (multipart `file`, raw `image/*`, or JSON `{"image"}`), the class
//! (`label`, its `index`, and `digit` for digit tasks), every class's probability by name, the
//! confidence, the model version and a request id out.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use chrono::Utc;
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
    let bytes = match input::read(req, state.settings.body_limit).await? {
        Body::Image(bytes) => bytes.to_vec(),
        Body::Json(value) => image_from_json(&value)?,
        Body::Form { file: Some(file), .. } => file.to_vec(),
        Body::Form { file: None, .. } => return Err(AppError::BadRequest("the form has no `file` part".into())),
    };
    let (entry, probabilities) = classify(&state, bytes).await?;
    let task = &state.settings.task;
    Ok(Json(PredictResponse {
        digit: task.is_digit().then_some(entry.index),
        label: entry.label,
        index: entry.index,
        probabilities: ByClass(&task.classes, &probabilities),
        confidence: entry.confidence,
        model_version: entry.model_version,
        request_id: entry.request_id,
    })
    .into_response())
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
    let task = &state.settings.task;
    let (bytes, input) = input::to_input(bytes, state.settings.limits, task).await?;
    let answer = state.batcher.predict(vec![preprocess::normalize(task, &input)]).await?;
    let prediction =
        answer.predictions.into_iter().next().ok_or_else(|| AppError::internal("inference", "an empty answer"))?;
    let label = task.class_name(prediction.index).unwrap_or_default().to_string();
    let metrics = &state.metrics;
    metrics.predictions.with_label_values(&[&label]).inc();
    metrics.confidence.observe(f64::from(prediction.confidence));
    let entry = Entry {
        request_id: uuid::Uuid::new_v4().simple().to_string(),
        at: Utc::now(),
        index: prediction.index,
        label,
        confidence: prediction.confidence,
        model_version: answer.version,
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
    });
    state.history.insert(entry.clone());
    Ok((entry, prediction.probabilities))
}
