//! Reading request bodies: multipart forms, raw `image/*` bodies and JSON, with the body limit
//! applied, images given as base64 or data URLs, and the one check every image passes before it
//! is classified or stored as feedback ([`to_input`]; for a tabular task, the row's check against
//! the schema, [`row_input`]).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use base64::Engine;
use gitops::image_input::{self, ImageLimits};
use gitops::task::Task;
use model::preprocess;

use crate::error::AppError;

/// Inputs larger than this are decoded on the blocking pool instead of the request's thread.
const INLINE_DECODE_BYTES: usize = 256 << 10;

/// A request body, by its content type.
#[derive(Debug)]
pub enum Body {
    /// `image/*` or `application/octet-stream` (or no content type).
    Image(Bytes),
    Json(serde_json::Value),
    /// `multipart/form-data`: the `file` part and the text fields.
    Form {
        file: Option<Bytes>,
        fields: HashMap<String, String>,
    },
}

pub async fn read(req: Request, limit: usize) -> Result<Body, AppError> {
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or("").trim().to_string();
    if essence == "multipart/form-data" {
        return read_form(req).await;
    }
    let is_json = essence == "application/json" || essence.ends_with("+json");
    if !(is_json || essence.is_empty() || essence.starts_with("image/") || essence == "application/octet-stream") {
        return Err(AppError::Unsupported(format!(
            "content type `{essence}` is not supported: send multipart/form-data, image/*, or application/json"
        )));
    }
    let bytes = axum::body::to_bytes(req.into_body(), limit).await.map_err(|e| body_error(&e, limit))?;
    if is_json {
        serde_json::from_slice(&bytes).map(Body::Json).map_err(|e| AppError::BadJson(e.to_string()))
    } else {
        Ok(Body::Image(bytes))
    }
}

async fn read_form(req: Request) -> Result<Body, AppError> {
    let mut form = Multipart::from_request(req, &()).await.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let mut file = None;
    let mut fields = HashMap::new();
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" || (file.is_none() && field.file_name().is_some()) {
            file = Some(field.bytes().await.map_err(multipart_error)?);
        } else {
            fields.insert(name, field.text().await.map_err(multipart_error)?);
        }
    }
    Ok(Body::Form { file, fields })
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> AppError {
    match e.status().as_u16() {
        413 => AppError::TooLarge(e.body_text()),
        _ => AppError::BadRequest(e.body_text()),
    }
}

fn body_error(e: &axum::Error, limit: usize) -> AppError {
    let too_large =
        std::error::Error::source(e).is_some_and(|s| s.downcast_ref::<http_body_util::LengthLimitError>().is_some());
    if too_large {
        AppError::TooLarge(format!("the request body is larger than the limit of {limit} bytes"))
    } else {
        AppError::BadRequest(format!("cannot read the request body: {e}"))
    }
}

/// Decodes `bytes` under `limits` and makes the task's input of them: an image that is not one,
/// is too large, or (for a digit task) is blank is refused here, for `/predict` and `/feedback`
/// alike. Gives the bytes back with the input.
pub async fn to_input(bytes: Vec<u8>, limits: ImageLimits, task: &Task) -> Result<(Vec<u8>, Vec<u8>), AppError> {
    if task.schema().is_some() {
        return row_input(&bytes, task);
    }
    let inline = bytes.len() <= INLINE_DECODE_BYTES;
    let task = task.clone();
    let prepare = move || -> Result<(Vec<u8>, Vec<u8>), AppError> {
        let image = image_input::decode_limited(&bytes, &limits)?;
        let input = preprocess::to_input(&task, &image).map_err(|e| AppError::Unprocessable(e.to_string()))?;
        Ok((bytes, input))
    };
    if inline {
        prepare()
    } else {
        tokio::task::spawn_blocking(prepare).await.map_err(|e| AppError::internal("decoding the image", e))?
    }
}

/// A tabular task's row, given as the JSON bytes of an object of features: its canonical JSON
/// (what feedback stores and hashes) and the input the network reads. A row that breaks the
/// schema is refused with 422, naming the field.
pub fn row_input(bytes: &[u8], task: &Task) -> Result<(Vec<u8>, Vec<u8>), AppError> {
    let schema =
        task.schema().ok_or_else(|| AppError::Unsupported(format!("task {} reads images, not rows", task.name)))?;
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes)
        .map_err(|e| AppError::Unprocessable(format!("`features` must be a JSON object of feature values: {e}")))?;
    let row = schema.check(&map).map_err(|e| AppError::Unprocessable(e.to_string()))?;
    let input = model::data::table::input_bytes(&schema.encode(&row));
    Ok((schema.canonical_json(&row), input))
}

/// Decodes an image given as base64 text or a `data:...;base64,` URL.
pub fn decode_image_text(text: &str) -> Result<Vec<u8>, AppError> {
    let payload = match text.strip_prefix("data:") {
        Some(rest) => {
            let (meta, data) =
                rest.split_once(',').ok_or_else(|| AppError::BadRequest("a data URL without a comma".into()))?;
            if !meta.ends_with(";base64") {
                return Err(AppError::BadRequest("only base64 data URLs are supported".into()));
            }
            data
        }
        None => text,
    };
    let cleaned: String = payload.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engines = [&base64::engine::general_purpose::STANDARD, &base64::engine::general_purpose::URL_SAFE];
    engines
        .iter()
        .find_map(|e| e.decode(&cleaned).ok())
        .or_else(|| base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned.trim_end_matches('=')).ok())
        .ok_or_else(|| AppError::BadRequest("`image` is neither base64 nor a base64 data URL".into()))
}
