//! The Open Inference Protocol (KServe v2) over HTTP, with the binary tensor extension that
//! `tritonclient[http]` uses by default. A tabular task's model takes FP32 `[N,F]`: one row of
//! encoded features each (numbers as they are, categories as value indexes), in the order the
//! metadata's `features` parameter lists, each row checked against the schema (422 naming the
//! field). An image task's model takes `input` in the task's shape `[N,C,H,W]`
//! (or `[N,H,W]` for one channel, or `[N,C*H*W]`) as FP32 (normalised like training:
//! `(value/255 - mean[c]) / std[c]`) or UINT8 (raw 0-255 values as preprocessing makes them,
//! normalised here) and answers `probabilities` FP32 `[N,classes]`, `index` INT64 `[N]`, `label`
//! BYTES `[N]` (the class names) and, for digit tasks, `digit` INT64 `[N]`.
//!
//! A request carries at most `--kserve-max-images` images (413 above, the shape's product
//! checked before anything is read), the batcher runs them in pieces of `--max-batch`, and
//! FP32 values must be finite.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gitops::task::Task;
use model::preprocess;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::state::AppState;

const HEADER_LENGTH: &str = "inference-header-content-length";

/// Bodies larger than this are parsed on the blocking pool instead of the request's thread.
const INLINE_PARSE_BYTES: usize = 256 << 10;

pub async fn server_metadata() -> Json<Value> {
    Json(json!({ "name": "model-server", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data"] }))
}

pub async fn live() -> Json<Value> {
    Json(json!({ "live": true }))
}

pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let ready = state.ready();
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(json!({ "ready": ready })))
}

/// `{name}` or `{name}/versions/{version}`: the version, if given, must be the serving one.
fn check_model(state: &AppState, name: &str, version: Option<&str>) -> Result<String, AppError> {
    if name != state.settings.model_name {
        return Err(AppError::NotFound(format!(
            "no model named {name}; this server serves {}",
            state.settings.model_name
        )));
    }
    let serving =
        state.models.current_version().ok_or_else(|| AppError::Unavailable("no model is loaded yet".into()))?;
    match version {
        Some(v) if !v.is_empty() && v != serving => {
            Err(AppError::NotFound(format!("version {v} is not serving; {serving} is")))
        }
        _ => Ok(serving),
    }
}

pub async fn model_metadata(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, AppError> {
    metadata(&state, &name, None)
}

pub async fn version_metadata(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    metadata(&state, &name, Some(&version))
}

fn metadata(state: &AppState, name: &str, version: Option<&str>) -> Result<Json<Value>, AppError> {
    let serving = check_model(state, name, version)?;
    let task = &state.settings.task;
    let mut outputs = vec![
        json!({ "name": "probabilities", "datatype": "FP32", "shape": [-1, task.class_count()] }),
        json!({ "name": "index", "datatype": "INT64", "shape": [-1] }),
        json!({ "name": "label", "datatype": "BYTES", "shape": [-1] }),
    ];
    if task.is_digit() {
        outputs.push(json!({ "name": "digit", "datatype": "INT64", "shape": [-1] }));
    }
    Ok(Json(json!({
        "name": name,
        "versions": [serving],
        "platform": "pytorch_libtorch",
        "inputs": [{ "name": "input", "datatype": "FP32", "shape": task.batch_shape(-1) }],
        "outputs": outputs,
        "parameters": match task.schema() {
            Some(schema) => json!({ "task": task.name, "classes": task.classes, "features": schema.names().collect::<Vec<_>>() }),
            None => json!({ "task": task.name, "classes": task.classes }),
        },
    })))
}

pub async fn model_ready(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, AppError> {
    check_model(&state, &name, None).map(|_| Json(json!({ "name": name, "ready": true })))
}

pub async fn version_ready(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    check_model(&state, &name, Some(&version)).map(|_| Json(json!({ "name": name, "ready": true })))
}

#[derive(Debug, Deserialize)]
struct InferRequest {
    id: Option<String>,
    inputs: Vec<InputTensor>,
    #[serde(default)]
    outputs: Vec<RequestedOutput>,
    #[serde(default)]
    parameters: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct InputTensor {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    data: Option<Numbers>,
    #[serde(default)]
    parameters: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct RequestedOutput {
    name: String,
    #[serde(default)]
    parameters: serde_json::Map<String, Value>,
}

pub async fn infer(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    run_infer(&state, &name, None, &headers, body).await
}

pub async fn version_infer(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    run_infer(&state, &name, Some(&version), &headers, body).await
}

async fn run_infer(
    state: &AppState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    check_model(state, name, version)?;
    let json_len = match headers.get(HEADER_LENGTH) {
        Some(v) => {
            v.to_str().ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n <= body.len()).ok_or_else(
                || {
                    AppError::BadRequest(format!(
                        "{HEADER_LENGTH} must be a length within the body of {} bytes",
                        body.len()
                    ))
                },
            )?
        }
        None => body.len(),
    };
    let max_images = state.settings.kserve_max_images;
    let task = state.settings.task.clone();
    let (request, images) = if body.len() <= INLINE_PARSE_BYTES {
        parse(&body, json_len, max_images, &task)?
    } else {
        tokio::task::spawn_blocking(move || parse(&body, json_len, max_images, &task))
            .await
            .map_err(|e| AppError::internal("reading the tensor", e))??
    };
    let count = images.len();
    let answer = state.batcher.predict(images).await?;
    if let Some(i) = answer.predictions.iter().position(|p| p.probabilities.iter().any(|v| !v.is_finite())) {
        return Err(AppError::Unprocessable(format!(
            "the model's output for image {i} is not finite: FP32 inputs must be normalised pixels"
        )));
    }
    let task = &state.settings.task;
    let labels: Vec<&str> = answer.predictions.iter().map(|p| task.class_name(p.index).unwrap_or_default()).collect();
    for (p, label) in answer.predictions.iter().zip(&labels) {
        state.metrics.predictions.with_label_values(&[label]).inc();
        state.metrics.confidence.observe(f64::from(p.confidence));
    }
    let probabilities: Vec<f32> = answer.predictions.iter().flat_map(|p| p.probabilities.iter().copied()).collect();
    let indexes: Vec<i64> = answer.predictions.iter().map(|p| p.index as i64).collect();
    let all_binary = request.parameters.get("binary_data_output").and_then(Value::as_bool).unwrap_or(false);
    let wanted: Vec<(String, bool)> = if request.outputs.is_empty() {
        let mut names = vec!["probabilities", "index", "label"];
        if task.is_digit() {
            names.push("digit");
        }
        names.into_iter().map(|n| (n.to_string(), all_binary)).collect()
    } else {
        request
            .outputs
            .iter()
            .map(|o| (o.name.clone(), o.parameters.get("binary_data").and_then(Value::as_bool).unwrap_or(all_binary)))
            .collect()
    };
    let mut outputs = Vec::new();
    let mut blobs: Vec<u8> = Vec::new();
    for (out_name, binary) in wanted {
        let (datatype, shape, data, bytes): (&str, Vec<usize>, Value, Vec<u8>) = match out_name.as_str() {
            "probabilities" => (
                "FP32",
                vec![count, task.class_count()],
                json!(probabilities),
                probabilities.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            "index" => ("INT64", vec![count], json!(indexes), indexes.iter().flat_map(|v| v.to_le_bytes()).collect()),
            "digit" if task.is_digit() => {
                ("INT64", vec![count], json!(indexes), indexes.iter().flat_map(|v| v.to_le_bytes()).collect())
            }
            // Triton's BYTES: each element a little-endian u32 length, then its bytes.
            "label" => (
                "BYTES",
                vec![count],
                json!(labels),
                labels.iter().flat_map(|l| (l.len() as u32).to_le_bytes().into_iter().chain(l.bytes())).collect(),
            ),
            other => {
                let digit = if task.is_digit() { ", digit" } else { "" };
                return Err(AppError::BadRequest(format!(
                    "no output named {other}; outputs are probabilities, index, label{digit}"
                )));
            }
        };
        let mut output = json!({ "name": out_name, "datatype": datatype, "shape": shape });
        if binary {
            output["parameters"] = json!({ "binary_data_size": bytes.len() });
            blobs.extend(bytes);
        } else {
            output["data"] = data;
        }
        outputs.push(output);
    }
    let mut response = json!({ "model_name": name, "model_version": answer.version, "outputs": outputs });
    if let Some(id) = request.id {
        response["id"] = json!(id);
    }
    if blobs.is_empty() {
        return Ok(Json(response).into_response());
    }
    let mut body = serde_json::to_vec(&response).expect("a response serializes");
    let header_len = body.len();
    body.extend(blobs);
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(HEADER_LENGTH, HeaderValue::from(header_len));
    Ok(response)
}

/// The request (JSON header of `body`, `json_len` bytes) and its one input as normalised inputs.
fn parse(
    body: &[u8],
    json_len: usize,
    max_images: usize,
    task: &Task,
) -> Result<(InferRequest, Vec<Vec<f32>>), AppError> {
    let request: InferRequest =
        serde_json::from_slice(&body[..json_len]).map_err(|e| AppError::BadJson(e.to_string()))?;
    let [input] = request.inputs.as_slice() else {
        return Err(AppError::BadRequest(format!("expected one input tensor, got {}", request.inputs.len())));
    };
    let images = decode_input(input, &body[json_len..], max_images, task)?;
    Ok((request, images))
}

/// The input tensor as normalised inputs of the task.
fn decode_input(input: &InputTensor, binary: &[u8], max_images: usize, task: &Task) -> Result<Vec<Vec<f32>>, AppError> {
    let (c, h, w) = (i64::from(task.input.channels), i64::from(task.input.height), i64::from(task.input.width));
    let values_per_image = task.input_values();
    let shape_ok = match (input.shape.as_slice(), task.schema()) {
        (&[n, f], Some(schema)) => n >= 0 && f == schema.features.len() as i64,
        (_, Some(_)) => false,
        (&[n, ic, ih, iw], None) => n >= 0 && (ic, ih, iw) == (c, h, w),
        (&[n, ih, iw], None) => n >= 0 && c == 1 && (ih, iw) == (h, w),
        (&[n, flat], None) => n >= 0 && flat == c * h * w,
        _ => false,
    };
    if !shape_ok {
        return Err(AppError::BadRequest(format!(
            "input {} has shape {:?}; expected {:?} (N = -1)",
            input.name,
            input.shape,
            task.batch_shape(-1)
        )));
    }
    if task.schema().is_some() && input.datatype != "FP32" {
        return Err(AppError::Unsupported(format!(
            "input datatype {} is not supported for rows; send FP32 [N, F] in the order of the model metadata's `features`",
            input.datatype
        )));
    }
    // Every dimension is non-negative here; a product that overflows is over the cap too.
    let values = input
        .shape
        .iter()
        .try_fold(1usize, |product, &d| product.checked_mul(usize::try_from(d).ok()?))
        .filter(|&values| values <= max_images.saturating_mul(values_per_image))
        .ok_or_else(|| {
            AppError::TooLarge(format!(
                "input {} has shape {:?}: a request may carry at most {max_images} images",
                input.name, input.shape
            ))
        })?;
    let binary_size = input.parameters.get("binary_data_size").and_then(Value::as_u64).map(|s| s as usize);
    let pixels: Vec<f32> = match (input.datatype.as_str(), binary_size, &input.data) {
        ("FP32", Some(size), _) => {
            let bytes = binary
                .get(..size)
                .filter(|b| b.len() == values * 4)
                .ok_or_else(|| size_error(input, values * 4, size))?;
            bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        ("UINT8", Some(size), _) => {
            let bytes =
                binary.get(..size).filter(|b| b.len() == values).ok_or_else(|| size_error(input, values, size))?;
            preprocess::normalize(task, bytes)
        }
        ("FP32", None, Some(data)) => data.0.iter().map(|&v| v as f32).collect(),
        ("UINT8", None, Some(data)) => {
            let raw: Vec<u8> = data.0.iter().map(|v| v.clamp(0.0, 255.0) as u8).collect();
            preprocess::normalize(task, &raw)
        }
        ("FP32" | "UINT8", None, None) => {
            return Err(AppError::BadRequest(format!("input {} has neither data nor binary_data_size", input.name)));
        }
        (other, ..) => {
            return Err(AppError::Unsupported(format!("input datatype {other} is not supported; use FP32 or UINT8")));
        }
    };
    if pixels.len() != values {
        return Err(AppError::BadRequest(format!(
            "input {} has {} values; shape {:?} needs {values}",
            input.name,
            pixels.len(),
            input.shape
        )));
    }
    if let Some(i) = pixels.iter().position(|v| !v.is_finite()) {
        return Err(AppError::BadRequest(format!(
            "input {}: value {i} is not a finite FP32 number (NaN, infinite, or beyond 3.4e38)",
            input.name
        )));
    }
    let rows: Vec<Vec<f32>> = pixels.chunks_exact(values_per_image.max(1)).map(<[f32]>::to_vec).collect();
    if let Some(schema) = task.schema() {
        for (i, row) in rows.iter().enumerate() {
            schema
                .check_encoded(row)
                .map_err(|e| AppError::Unprocessable(format!("input {} row {i}: {e}", input.name)))?;
        }
    }
    Ok(rows)
}

fn size_error(input: &InputTensor, expected: usize, given: usize) -> AppError {
    AppError::BadRequest(format!(
        "input {}: binary_data_size {given} but the shape needs {expected} bytes (or the body is short)",
        input.name
    ))
}

/// A tensor's `data`: numbers in arrays nested to any depth, flattened while they are parsed,
/// so a large tensor costs 8 bytes a value instead of a JSON tree.
#[derive(Debug)]
struct Numbers(Vec<f64>);

impl<'de> Deserialize<'de> for Numbers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut numbers = Vec::new();
        Flatten(&mut numbers).deserialize(deserializer)?;
        Ok(Self(numbers))
    }
}

/// Appends the numbers of one JSON value (a number, or an array of them at any depth).
struct Flatten<'a>(&'a mut Vec<f64>);

impl<'de> DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("tensor data: numbers, in arrays")
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.0.push(v);
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Flatten(&mut *self.0))?.is_some() {}
        Ok(())
    }
}
