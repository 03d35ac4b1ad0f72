//! The bounded in-memory cache of recent inputs: feedback can name a prediction by its
//! `request_id` instead of uploading the image again, and `/api/history` shows them.

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use chrono::{DateTime, Utc};
use gitops::feedback::Kind;
use gitops::task::Task;
use serde::Serialize;

/// One recent prediction.
#[derive(Debug, Clone)]
pub struct Entry {
    pub request_id: String,
    pub at: DateTime<Utc>,
    /// The predicted class's index and name.
    pub index: usize,
    pub label: String,
    pub confidence: f32,
    pub model_version: String,
    /// sha256 of the bytes the client sent.
    pub input_sha256: String,
    /// The bytes the client sent (re-sent to the feedback store).
    pub input: Arc<Vec<u8>>,
    /// The input as the model saw it, for the thumbnail.
    pub model_input: Arc<Vec<u8>>,
    pub feedback: Option<FeedbackMark>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackMark {
    pub kind: Kind,
    pub label: String,
}

/// What `/api/history` shows of an entry.
#[derive(Debug, Serialize)]
pub struct HistoryItem {
    pub request_id: String,
    pub at: DateTime<Utc>,
    pub label: String,
    pub index: usize,
    /// The index again, for digit tasks (as before classes had names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digit: Option<usize>,
    pub confidence: f32,
    pub model_version: String,
    /// The input as the model saw it, a PNG data URL (image tasks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
    /// The row's features by name (tabular tasks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<serde_json::Value>,
    pub feedback: Option<FeedbackMark>,
}

/// Keeps the newest `capacity` entries, and at most `max_bytes` of their inputs.
#[derive(Debug)]
pub struct History {
    capacity: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    order: VecDeque<String>,
    entries: HashMap<String, Entry>,
    bytes: usize,
}

impl History {
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self { capacity, max_bytes, inner: Mutex::default() }
    }

    pub fn insert(&self, entry: Entry) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.bytes += entry.input.len();
        inner.order.push_back(entry.request_id.clone());
        inner.entries.insert(entry.request_id.clone(), entry);
        while inner.order.len() > self.capacity || (inner.bytes > self.max_bytes && inner.order.len() > 1) {
            let Some(old) = inner.order.pop_front() else { break };
            if let Some(gone) = inner.entries.remove(&old) {
                inner.bytes -= gone.input.len();
            }
        }
    }

    pub fn get(&self, request_id: &str) -> Option<Entry> {
        self.lock().entries.get(request_id).cloned()
    }

    pub fn mark(&self, request_id: &str, mark: FeedbackMark) {
        if let Some(entry) = self.lock().entries.get_mut(request_id) {
            entry.feedback = Some(mark);
        }
    }

    /// The newest `limit` entries, newest first.
    pub fn recent(&self, limit: usize, task: &Task) -> Vec<HistoryItem> {
        let picked: Vec<Entry> = {
            let inner = self.lock();
            inner.order.iter().rev().take(limit).filter_map(|id| inner.entries.get(id).cloned()).collect()
        };
        picked
            .into_iter()
            .map(|e| HistoryItem {
                thumbnail: task.schema().is_none().then(|| thumbnail(task, &e.model_input)),
                features: task.schema().and_then(|_| serde_json::from_slice(&e.input).ok()),
                request_id: e.request_id,
                at: e.at,
                digit: task.is_digit().then_some(e.index),
                index: e.index,
                label: e.label,
                confidence: e.confidence,
                model_version: e.model_version,
                feedback: e.feedback,
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The model's input as a PNG data URL.
pub fn thumbnail(task: &Task, input: &[u8]) -> String {
    let mut png = Vec::new();
    model::preprocess::input_image(task, input)
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("an input-sized PNG encodes");
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))
}
