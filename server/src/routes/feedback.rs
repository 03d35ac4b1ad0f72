//! `POST /feedback`: a label and kind for a recent prediction (by `request_id`) or an image (for
//! a tabular task, a row: `{"features": {...}}`), stored through the feedback store, committed
//! and pushed; answers where the count stands.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use chrono::Utc;
use gitops::feedback::{Kind, Sample};
use pipeline::predlog::{Event, Record};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::auth;
use super::predict::classify;
use crate::error::AppError;
use crate::history::{Entry, FeedbackMark};
use crate::input::{self, Body};
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct FeedbackResponse {
    pub stored: bool,
    pub duplicate: bool,
    pub sha256: String,
    pub sub_set: u32,
    pub current_count: u32,
    pub threshold: u32,
    pub retrain_triggered: bool,
    /// The sample's commit reached the origin, so `sub_set` is final; `false` when git could
    /// not get it there in time (it is stored, and goes out with the committer's retries).
    pub settled: bool,
}

/// The request, whichever way it came.
#[derive(Debug, Default)]
struct Given {
    request_id: Option<String>,
    image: Option<Vec<u8>>,
    label: Option<String>,
    kind: Option<String>,
}

pub async fn feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
) -> Result<Json<FeedbackResponse>, AppError> {
    auth::check(&headers, state.settings.feedback_token.as_deref())?;
    let given = match input::read(req, state.settings.body_limit).await? {
        Body::Json(value) => from_json(&value, &state.settings.task)?,
        Body::Form { file, fields } => from_form(file.map(|f| f.to_vec()), fields),
        Body::Image(_) => return Err(AppError::Unsupported("send feedback as JSON or multipart/form-data".into())),
    };
    let kind = parse_kind(given.kind.as_deref())?;
    let task = &state.settings.task;
    let label = given.label.as_deref().map(|l| parse_label(task, l)).transpose()?;
    let cached = match &given.request_id {
        Some(id) => match state.history.get(id) {
            Some(entry) => Some(entry),
            None if given.image.is_some() => None,
            None => {
                return Err(AppError::NotFound(format!(
                    "request_id {id} is not among the recent predictions; send the {} instead",
                    if task.schema().is_some() { "features" } else { "image" }
                )));
            }
        },
        None => None,
    };
    let image = match (given.image, &cached) {
        // The check `/predict` makes: what it would refuse (not an image, too large, blank) is
        // not stored either.
        (Some(image), _) => input::to_input(image, state.settings.limits, &state.settings.task).await?.0,
        (None, Some(entry)) => entry.input.to_vec(),
        (None, None) => {
            let what = if task.schema().is_some() { "`features`" } else { "an `image`" };
            return Err(AppError::BadRequest(format!("send a `request_id` from a recent prediction or {what}")));
        }
    };
    let (label, cached) = match (label, kind) {
        (Some(label), _) => (label, cached),
        (None, Kind::Unsure) => {
            let entry = match cached {
                Some(entry) => entry,
                None => classify(&state, image.clone()).await?.0,
            };
            (entry.label.clone(), Some(entry))
        }
        (None, _) => {
            return Err(AppError::Unprocessable(format!(
                "`label` (one of {}) is required unless kind is unsure",
                task.classes.join(", ")
            )));
        }
    };
    let input_sha256 = hex::encode(Sha256::digest(&image));
    let sample = Sample {
        image,
        label: label.clone(),
        kind,
        predicted: cached.as_ref().map(|e| e.label.clone()),
        confidence: cached.as_ref().map(|e| e.confidence),
        model_version: cached.as_ref().map(|e| e.model_version.clone()),
        source: "model-server".into(),
    };
    let added = state.feedback.add(sample).await?;
    let outcome = added.outcome;
    record(&state, cached.as_ref(), given.request_id, input_sha256, kind, label);
    Ok(Json(FeedbackResponse {
        stored: !outcome.duplicate,
        duplicate: outcome.duplicate,
        sha256: outcome.sha256,
        sub_set: added.sub_set,
        current_count: added.current_count,
        threshold: outcome.threshold,
        retrain_triggered: added.retrain_triggered,
        settled: added.settled,
    }))
}

fn record(
    state: &AppState,
    cached: Option<&Entry>,
    request_id: Option<String>,
    input_sha256: String,
    kind: Kind,
    label: String,
) {
    let kind_name = kind.name().to_string();
    state.metrics.feedback.with_label_values(&[&kind_name]).inc();
    if let Some(entry) = cached {
        state.history.mark(&entry.request_id, FeedbackMark { kind, label: label.clone() });
        if kind != Kind::Unsure
            && let Ok(index) = state.settings.task.class_index(&label)
        {
            state.shadow.feedback(&entry.request_id, index);
        }
    }
    state.predlog.log(Record {
        event: Event::Feedback,
        request_id: cached.map(|e| e.request_id.clone()).or(request_id).unwrap_or_default(),
        at: Utc::now(),
        input_sha256: cached.map_or(input_sha256, |e| e.input_sha256.clone()),
        predicted: None,
        confidence: None,
        model_version: None,
        feedback_kind: Some(kind_name),
        label: Some(label),
        features: None,
    });
}

fn from_json(value: &serde_json::Value, task: &gitops::task::Task) -> Result<Given, AppError> {
    let object = value.as_object().ok_or_else(|| AppError::BadJson("expected a JSON object".into()))?;
    let text = |key: &str| -> Result<Option<String>, AppError> {
        match object.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(serde_json::Value::Number(n)) if key == "label" => Ok(Some(n.to_string())),
            Some(other) if key == "label" => {
                Err(AppError::Unprocessable(format!("label {other} must be a class name or an index")))
            }
            Some(_) => Err(AppError::BadRequest(format!("`{key}` must be a string"))),
        }
    };
    let image = match (task.schema(), object.get("features")) {
        (Some(_), Some(features)) => Some(features.to_string().into_bytes()),
        (Some(_), None) if object.contains_key("image") => {
            return Err(AppError::Unprocessable(format!(
                "task {} classifies rows: send `features`, not `image`",
                task.name
            )));
        }
        (Some(_), None) => None,
        (None, _) => text("image")?.map(|t| input::decode_image_text(&t)).transpose()?,
    };
    Ok(Given { request_id: text("request_id")?, image, label: text("label")?, kind: text("kind")? })
}

fn from_form(file: Option<Vec<u8>>, mut fields: HashMap<String, String>) -> Given {
    Given {
        request_id: fields.remove("request_id").filter(|s| !s.is_empty()),
        image: file,
        label: fields.remove("label").filter(|s| !s.is_empty()),
        kind: fields.remove("kind"),
    }
}

fn parse_kind(kind: Option<&str>) -> Result<Kind, AppError> {
    let Some(kind) = kind.map(str::trim) else {
        return Err(AppError::Unprocessable("`kind` (correct, wrong or unsure) is required".into()));
    };
    Kind::from_name(kind).ok_or_else(|| {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        AppError::Unprocessable(format!("kind `{kind}` is not one of {}", names.join(", ")))
    })
}

/// A class name or index of the task, as the class name.
fn parse_label(task: &gitops::task::Task, text: &str) -> Result<String, AppError> {
    match task.class_index(text) {
        Ok(i) => Ok(task.classes[i].clone()),
        Err(e) => Err(AppError::Unprocessable(e.to_string())),
    }
}
