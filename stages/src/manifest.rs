//! The dataset manifest the stages pass along as Parquet (through polars): one row per image,
//! base data and feedback alike, with where it came from and which split it serves.

use polars::prelude::*;
use std::path::{Path, PathBuf};

/// Which use a row serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Base training data, replayed during fine-tuning.
    Train,
    /// The base test split: the "old skills" check.
    Test,
    /// Feedback used for fine-tuning.
    FeedbackTrain,
    /// Feedback held back (by hash) to judge candidates.
    Holdout,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Test => "test",
            Self::FeedbackTrain => "feedback_train",
            Self::Holdout => "holdout",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Train, Self::Test, Self::FeedbackTrain, Self::Holdout].into_iter().find(|r| r.as_str() == s)
    }
}

/// One image. `path` is relative to the repo; base rows from IDX files point into the file with
/// `index`. `label` is the class index in the task's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub path: String,
    pub index: Option<i64>,
    pub sha256: String,
    pub label: usize,
    pub source: String,
    pub sub_set: Option<u32>,
    pub kind: String,
    pub time: Option<String>,
    pub weight: f64,
    pub role: Role,
    /// Feedback from a sub_set an earlier retrain already used (its `trained.json` exists).
    pub trained: bool,
    /// The input as the model sees it, the task's `C*H*W` values (filled in by `validate`).
    pub pixels: Option<Vec<u8>>,
    /// A reviewer's decision on a feedback sample's label (`accept`, `relabel` (`label` is the
    /// new one) or `reject`; `new_data/review.json`), which validate's label check respects.
    pub review: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: {source}", path.display())]
    Polars { path: PathBuf, source: PolarsError },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: row {row}: {what}", path.display())]
    Bad { path: PathBuf, row: usize, what: String },
}

/// Writes rows as Parquet, atomically.
pub fn write(path: &Path, rows: &[Row]) -> Result<(), ManifestError> {
    let pl = |source| ManifestError::Polars { path: path.to_path_buf(), source };
    let columns = vec![
        Column::new("path".into(), rows.iter().map(|r| r.path.as_str()).collect::<Vec<_>>()),
        Column::new("index".into(), rows.iter().map(|r| r.index).collect::<Vec<_>>()),
        Column::new("sha256".into(), rows.iter().map(|r| r.sha256.as_str()).collect::<Vec<_>>()),
        Column::new("label".into(), rows.iter().map(|r| r.label as u32).collect::<Vec<_>>()),
        Column::new("source".into(), rows.iter().map(|r| r.source.as_str()).collect::<Vec<_>>()),
        Column::new("sub_set".into(), rows.iter().map(|r| r.sub_set).collect::<Vec<_>>()),
        Column::new("kind".into(), rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>()),
        Column::new("time".into(), rows.iter().map(|r| r.time.as_deref()).collect::<Vec<_>>()),
        Column::new("weight".into(), rows.iter().map(|r| r.weight).collect::<Vec<_>>()),
        Column::new("split".into(), rows.iter().map(|r| r.role.as_str()).collect::<Vec<_>>()),
        Column::new("trained".into(), rows.iter().map(|r| r.trained).collect::<Vec<_>>()),
        Column::new("pixels".into(), rows.iter().map(|r| r.pixels.as_deref()).collect::<Vec<_>>()),
        Column::new("review".into(), rows.iter().map(|r| r.review.as_deref()).collect::<Vec<_>>()),
    ];
    let mut df = DataFrame::new(rows.len(), columns).map_err(pl)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ManifestError::Io { path: dir.to_path_buf(), source })?;
    }
    let tmp = path.with_extension("partial");
    let file = std::fs::File::create(&tmp).map_err(|source| ManifestError::Io { path: tmp.clone(), source })?;
    ParquetWriter::new(file).finish(&mut df).map_err(pl)?;
    std::fs::rename(&tmp, path).map_err(|source| ManifestError::Io { path: path.to_path_buf(), source })
}

/// Reads a manifest written by [`write`], checking every field.
pub fn read(path: &Path) -> Result<Vec<Row>, ManifestError> {
    let pl = |source| ManifestError::Polars { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(|source| ManifestError::Io { path: path.to_path_buf(), source })?;
    let df = ParquetReader::new(file).finish().map_err(pl)?;
    let col = |name: &str| df.column(name).map_err(pl);
    let paths = col("path")?.str().map_err(pl)?;
    let index = col("index")?.i64().map_err(pl)?;
    let sha = col("sha256")?.str().map_err(pl)?;
    let label = col("label")?.u32().map_err(pl)?;
    let source = col("source")?.str().map_err(pl)?;
    let sub_set = col("sub_set")?.u32().map_err(pl)?;
    let kind = col("kind")?.str().map_err(pl)?;
    let time = col("time")?.str().map_err(pl)?;
    let weight = col("weight")?.f64().map_err(pl)?;
    let split = col("split")?.str().map_err(pl)?;
    let trained = col("trained")?.bool().map_err(pl)?;
    let pixels = col("pixels")?.binary().map_err(pl)?;
    // Manifests from before the label review have no `review` column.
    let review = match df.column("review") {
        Ok(column) => Some(column.str().map_err(pl)?),
        Err(_) => None,
    };
    let bad = |row: usize, what: &str| ManifestError::Bad { path: path.to_path_buf(), row, what: what.to_string() };
    (0..df.height())
        .map(|i| {
            let label = label.get(i).ok_or_else(|| bad(i, "label is missing"))?;
            let role = split.get(i).and_then(Role::parse).ok_or_else(|| bad(i, "unknown split"))?;
            let pixels = pixels.get(i).map(<[u8]>::to_vec);
            Ok(Row {
                path: paths.get(i).ok_or_else(|| bad(i, "no path"))?.to_string(),
                index: index.get(i),
                sha256: sha.get(i).ok_or_else(|| bad(i, "no sha256"))?.to_string(),
                label: label as usize,
                source: source.get(i).unwrap_or_default().to_string(),
                sub_set: sub_set.get(i),
                kind: kind.get(i).unwrap_or_default().to_string(),
                time: time.get(i).map(str::to_string),
                weight: weight.get(i).unwrap_or(1.0),
                role,
                trained: trained.get(i).unwrap_or(false),
                pixels,
                review: review.and_then(|r| r.get(i)).map(str::to_string),
            })
        })
        .collect()
}
