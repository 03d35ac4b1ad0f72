//! The prediction log: one NDJSON line per prediction (request id, time, input sha256, class,
//! confidence, model version) and per piece of feedback on one, in size-rotated files under
//! `.pipeline/predictions/` (git-ignored), read back as a polars `DataFrame` for `pipeline mine`.
//!
//! ```text
//! .pipeline/predictions/
//!   predictions.ndjson                      the file being written
//!   predictions-20260101T120000.123Z.ndjson rotated files, oldest first by name
//! ```
//!
//! Each line is written whole with one `write` on an append-only file, so a crash can tear at
//! most the last line, which the reader skips. Python's `polars.read_ndjson` reads the files too.

use chrono::{DateTime, SecondsFormat, Utc};
use gitops::feedback::Kind;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The log folder, relative to the repository root.
pub const DIR: &str = ".pipeline/predictions";
const ACTIVE: &str = "predictions.ndjson";
const PREFIX: &str = "predictions-";
const SUFFIX: &str = ".ndjson";

#[derive(Debug, thiserror::Error)]
pub enum PredLogError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("building the prediction table: {0}")]
    Polars(#[from] PolarsError),
}

/// What a line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Prediction,
    Feedback,
}

/// One line of the log. Predictions fill `predicted` (the class name; `digit` in logs written
/// before classes had names), `confidence`, `model_version`; feedback fills
/// `feedback_kind` (`correct`, `wrong`, `unsure`) and `label`. `input_sha256` is the sha256 of
/// the bytes the client sent, so feedback given later on the same image finds its prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub event: Event,
    pub request_id: String,
    pub at: DateTime<Utc>,
    pub input_sha256: String,
    #[serde(
        default,
        alias = "digit",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "gitops::task::optional_label_text"
    )]
    pub predicted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "gitops::task::optional_label_text")]
    pub label: Option<String>,
    /// A tabular task's row, as its canonical JSON (so mining can list the rows themselves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<String>,
}

/// Appends records to the active file and rotates it past `max_bytes`, keeping `keep` rotated
/// files. Buffered: call [`Writer::flush`] when there is nothing more to write for now.
#[derive(Debug)]
pub struct Writer {
    dir: PathBuf,
    max_bytes: u64,
    keep: usize,
    file: BufWriter<File>,
    len: u64,
}

impl Writer {
    pub fn open(dir: &Path, max_bytes: u64, keep: usize) -> Result<Self, PredLogError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let (file, len) = open_active(dir)?;
        Ok(Self { dir: dir.to_path_buf(), max_bytes: max_bytes.max(1), keep, file, len })
    }

    pub fn append(&mut self, record: &Record) -> Result<(), PredLogError> {
        let mut line = serde_json::to_vec(record).expect("a record serializes");
        line.push(b'\n');
        if self.len > 0 && self.len + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        let active = self.dir.join(ACTIVE);
        self.file.write_all(&line).map_err(io(&active))?;
        self.len += line.len() as u64;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), PredLogError> {
        self.file.flush().map_err(io(&self.dir.join(ACTIVE)))
    }

    fn rotate(&mut self) -> Result<(), PredLogError> {
        self.flush()?;
        let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let rotated = self.dir.join(format!("{PREFIX}{stamp}{SUFFIX}"));
        std::fs::rename(self.dir.join(ACTIVE), &rotated).map_err(io(&rotated))?;
        (self.file, self.len) = open_active(&self.dir)?;
        let old = rotated_files(&self.dir)?;
        for path in old.iter().take(old.len().saturating_sub(self.keep)) {
            std::fs::remove_file(path).map_err(io(path))?;
        }
        Ok(())
    }
}

/// Opens the active file for appending; a line torn by a crash is ended first, so the next
/// record starts on a line of its own.
fn open_active(dir: &Path) -> Result<(BufWriter<File>, u64), PredLogError> {
    let path = dir.join(ACTIVE);
    let mut file = OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(io(&path))?;
    let mut len = file.metadata().map_err(io(&path))?.len();
    if len > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::End(-1)).and_then(|_| file.read_exact(&mut last)).map_err(io(&path))?;
        if last[0] != b'\n' {
            file.write_all(b"\n").map_err(io(&path))?;
            len += 1;
        }
    }
    Ok((BufWriter::with_capacity(64 << 10, file), len))
}

/// Rotated files, oldest first.
fn rotated_files(dir: &Path) -> Result<Vec<PathBuf>, PredLogError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX)))
        .map(|e| e.path())
        .collect();
    files.sort();
    Ok(files)
}

/// Every record in `dir`, oldest file first; torn or foreign lines are skipped.
pub fn records(dir: &Path) -> Result<Vec<Record>, PredLogError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = rotated_files(dir)?;
    files.push(dir.join(ACTIVE));
    let mut out = Vec::new();
    for path in files.iter().filter(|p| p.is_file()) {
        let file = File::open(path).map_err(io(path))?;
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io(path))?;
            if let Ok(record) = serde_json::from_str::<Record>(&line) {
                out.push(record);
            }
        }
    }
    Ok(out)
}

/// The log as a table: columns `event`, `request_id`, `at` (RFC 3339 UTC with microseconds, so
/// it sorts as text), `input_sha256`, `predicted`, `confidence`, `model_version`, `feedback_kind`,
/// `label`, `features`; nulls where a record has no value.
pub fn read(dir: &Path) -> Result<DataFrame, PredLogError> {
    let records = records(dir)?;
    let text = |f: fn(&Record) -> Option<String>| records.iter().map(f).collect::<Vec<_>>();
    let event = text(|r| Some(serde_json::to_value(r.event).ok()?.as_str()?.to_string()));
    let columns = vec![
        Column::new("event".into(), event),
        Column::new("request_id".into(), text(|r| Some(r.request_id.clone()))),
        Column::new("at".into(), text(|r| Some(r.at.to_rfc3339_opts(SecondsFormat::Micros, true)))),
        Column::new("input_sha256".into(), text(|r| Some(r.input_sha256.clone()))),
        Column::new("predicted".into(), text(|r| r.predicted.clone())),
        Column::new("confidence".into(), records.iter().map(|r| r.confidence).collect::<Vec<_>>()),
        Column::new("model_version".into(), text(|r| r.model_version.clone())),
        Column::new("feedback_kind".into(), text(|r| r.feedback_kind.clone())),
        Column::new("label".into(), text(|r| r.label.clone())),
        Column::new("features".into(), text(|r| r.features.clone())),
    ];
    Ok(DataFrame::new(records.len(), columns)?)
}

/// Predictions worth a person's look: confidence below `below`, or the same input marked wrong
/// by feedback at or after the prediction. Newest first, with `reason` (`wrong` wins over
/// `low_confidence`), `marked_at`, `true_label` and, for a tabular task, the row's `features`
/// (what the Iris system kept in its retrain table).
pub fn mine(log: DataFrame, below: f32) -> Result<DataFrame, PredLogError> {
    let all = log.lazy();
    let predictions = all.clone().filter(col("event").eq(lit("prediction")));
    let wrong = all
        .filter(col("event").eq(lit("feedback")).and(col("feedback_kind").eq(lit(Kind::Wrong.name()))))
        .group_by([col("input_sha256")])
        .agg([col("at").max().alias("marked_at"), col("label").last().alias("true_label")]);
    let marked = col("marked_at").is_not_null().and(col("marked_at").gt_eq(col("at")));
    let out = predictions
        .left_join(wrong, col("input_sha256"), col("input_sha256"))
        .filter(col("confidence").lt(lit(below)).or(marked.clone()))
        .with_column(when(marked).then(lit("wrong")).otherwise(lit("low_confidence")).alias("reason"))
        .select([
            col("reason"),
            col("at"),
            col("request_id"),
            col("predicted"),
            col("confidence"),
            col("true_label"),
            col("marked_at"),
            col("model_version"),
            col("input_sha256"),
            col("features"),
        ])
        .sort(["at"], SortMultipleOptions::default().with_order_descending(true))
        .collect()?;
    Ok(out)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PredLogError + '_ {
    move |source| PredLogError::Io { path: path.to_path_buf(), source }
}
