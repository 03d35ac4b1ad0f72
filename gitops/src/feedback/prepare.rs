//! Turning a [`Sample`] into a temp PNG (or, for a tabular task, the row's canonical JSON),
//! before any lock is taken (the batch that stores it fsyncs it together with the rest of the
//! batch).

use std::io::Cursor;
use std::path::PathBuf;

use image::{DynamicImage, ImageFormat, imageops::FilterType};
use sha2::{Digest, Sha256};

use super::layout::{Layout, SAMPLE_EXTENSIONS, sample_key};
use super::{FeedbackError, FeedbackRecord, Kind, Sample};
use crate::fsutil;
use crate::image_input::{ImageLimits, decode_limited};
use crate::params::FeedbackParams;
use crate::table::Schema;
use crate::task::{Task, valid_class_name};

const MAX_TEXT: usize = 256;

/// A validated sample whose PNG is written under `new_data/.tmp/` (not yet fsynced).
#[derive(Debug)]
pub(crate) struct Prepared {
    pub tmp: PathBuf,
    pub key: String,
    pub record: FeedbackRecord,
}

/// Checks everything about `sample` that can be checked without touching the disk; returns its
/// label and prediction as the task's class names.
pub(crate) fn validate(sample: &Sample, task: &Task) -> Result<(String, Option<String>), FeedbackError> {
    let bad = |reason: String| Err(FeedbackError::InvalidSample { reason });
    let class = |label: &str| task.class_index(label).map(|i| task.classes[i].clone());
    let label = match class(&sample.label) {
        Ok(label) => label,
        Err(e) => return bad(format!("label: {e}")),
    };
    let predicted = match sample.predicted.as_deref().map(class).transpose() {
        Ok(predicted) => predicted,
        Err(e) => return bad(format!("predicted: {e}")),
    };
    if let Some(p) = &predicted {
        match sample.kind {
            Kind::Correct if *p != label => {
                return bad(format!("kind correct but predicted {p} differs from label {label}"));
            }
            Kind::Wrong if *p == label => {
                return bad(format!("kind wrong but predicted {p} equals label {label}"));
            }
            _ => {}
        }
    }
    if let Some(c) = sample.confidence
        && !(0.0..=1.0).contains(&c)
    {
        return bad(format!("confidence {c} is not in 0..=1"));
    }
    for (what, text) in [("model version", sample.model_version.as_deref()), ("source", Some(&*sample.source))] {
        if text.is_some_and(|t| t.len() > MAX_TEXT) {
            return bad(format!("{what} is longer than {MAX_TEXT} bytes"));
        }
    }
    Ok((label, predicted))
}

/// Validates, decodes under the limits, downscales, re-encodes as PNG and writes the temp file.
pub(crate) fn prepare(
    sample: Sample,
    layout: &Layout,
    params: &FeedbackParams,
    task: &Task,
) -> Result<Prepared, FeedbackError> {
    let (label, predicted) = validate(&sample, task)?;
    let (content, ext) = match task.schema() {
        Some(schema) => (row_json(&sample.image, schema)?, "json"),
        None => {
            (encode_png(decode_limited(&sample.image, &ImageLimits::from(params))?, params.max_stored_side)?, "png")
        }
    };
    let sha256 = hex::encode(Sha256::digest(&content));
    let key = sample_key(&label, sample.kind, &sha256, ext);
    let tmp_dir = layout.tmp();
    fsutil::create_dir_durable(&tmp_dir).map_err(|source| FeedbackError::Io { path: tmp_dir.clone(), source })?;
    super::owner::claim(&tmp_dir).map_err(|source| FeedbackError::Io { path: tmp_dir.clone(), source })?;
    let tmp = tmp_dir.join(fsutil::unique_name(&format!(".{ext}")));
    fsutil::write_new(&tmp, &content).map_err(|source| FeedbackError::Io { path: tmp.clone(), source })?;
    let record = FeedbackRecord {
        time: chrono::Utc::now(),
        label,
        kind: sample.kind,
        predicted,
        confidence: sample.confidence,
        model_version: sample.model_version,
        sha256,
        md5: Some(md5_hex(&content)),
        source: sample.source,
        path: key.clone(),
        recovered: false,
    };
    Ok(Prepared { tmp, key, record })
}

/// A PNG that was already stored elsewhere (a git replay), with its original record.
pub(crate) fn prepare_stored(
    png: &[u8],
    mut record: FeedbackRecord,
    layout: &Layout,
) -> Result<Prepared, FeedbackError> {
    validate_record(&record)?;
    let sha256 = hex::encode(Sha256::digest(png));
    if sha256 != record.sha256 {
        return Err(FeedbackError::InvalidSample {
            reason: format!("content hashes to {sha256}, not {}", record.sha256),
        });
    }
    let ext = record.path.rsplit_once('.').map_or("png", |(_, ext)| ext).to_string();
    if !SAMPLE_EXTENSIONS.contains(&ext.as_str()) {
        return Err(FeedbackError::InvalidSample { reason: format!("{} is not a sample file", record.path) });
    }
    let key = sample_key(&record.label, record.kind, &sha256, &ext);
    record.path = key.clone();
    record.md5 = Some(md5_hex(png));
    let tmp = layout.tmp().join(fsutil::unique_name(&format!(".{ext}")));
    fsutil::write_new(&tmp, png).map_err(|source| FeedbackError::Io { path: tmp.clone(), source })?;
    Ok(Prepared { tmp, key, record })
}

/// The md5 a DVC cache names these bytes by.
pub(crate) fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(md5::Md5::digest(bytes))
}

fn validate_record(record: &FeedbackRecord) -> Result<(), FeedbackError> {
    if !valid_class_name(&record.label) {
        return Err(FeedbackError::InvalidSample {
            reason: format!("label `{}` cannot be a class name", record.label),
        });
    }
    Ok(())
}

/// A row given as a JSON object of features, checked against the schema, as its canonical JSON.
pub(crate) fn row_json(bytes: &[u8], schema: &Schema) -> Result<Vec<u8>, FeedbackError> {
    let bad = |reason: String| FeedbackError::InvalidSample { reason };
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("features: not a JSON object: {e}")))?;
    let row = schema.check(&map).map_err(|e| bad(e.to_string()))?;
    Ok(schema.canonical_json(&row))
}

/// Re-encodes as PNG, downscaled (aspect kept) to fit `max_side`.
pub(crate) fn encode_png(image: DynamicImage, max_side: u32) -> Result<Vec<u8>, FeedbackError> {
    let image = if image.width() > max_side || image.height() > max_side {
        image.resize(max_side, max_side, FilterType::Triangle)
    } else {
        image
    };
    // PNG holds 8/16-bit gray and color; float images become 8-bit RGBA.
    let image = match image {
        DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_) => DynamicImage::ImageRgba8(image.to_rgba8()),
        other => other,
    };
    let mut png = Vec::new();
    image.write_to(&mut Cursor::new(&mut png), ImageFormat::Png).map_err(FeedbackError::Encode)?;
    Ok(png)
}
