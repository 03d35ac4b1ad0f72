//! Tables of labelled feature rows, read with polars from a CSV or Parquet file: the base
//! dataset of a tabular task. [`Table::open`] checks every row against the task's schema
//! (`gitops::table`) and names the first bad one by its row number; rows split into train and
//! test by the hash of their canonical form, so a row never changes split. [`derive`] reads a
//! file whose schema is not known yet and proposes one (`init --dataset FILE.csv --label COL`).

use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::folder::is_test;
use super::{DataError, Dataset, Item, Split};
use gitops::table::{Feature, FeatureKind, Schema, label_text};
use gitops::task::{Task, TaskKind, valid_class_name};

/// Files with these extensions are tables (anything else is read as CSV only when named so).
pub const TABLE_EXTENSIONS: [&str; 2] = ["csv", "parquet"];

/// Whether `path` names a table file the readers take.
pub fn is_table(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| TABLE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// An encoded row as a manifest stores it (`pixels`): a little-endian `f32` per feature, which
/// `preprocess::normalize` reads back.
pub fn input_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// One checked row: its encoding, class index and content hash.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    pub values: Vec<f32>,
    pub label: usize,
    pub sha256: String,
}

/// A table checked against a tabular task.
#[derive(Debug)]
pub struct Table {
    path: PathBuf,
    classes: Vec<String>,
    rows: Vec<TableRow>,
    test_share: f64,
}

fn bad(path: &Path, what: impl Into<String>) -> DataError {
    DataError::Bad { path: path.to_path_buf(), what: what.into() }
}

fn read_frame(path: &Path) -> Result<DataFrame, DataError> {
    gitops::table::read_frame(path).map_err(|e| bad(path, e.to_string()))
}

fn cells(frame: &DataFrame, name: &str, path: &Path) -> Result<Vec<Value>, DataError> {
    gitops::table::cells(frame, name).map_err(|e| bad(path, e.to_string()))
}

impl Table {
    /// Reads `path` and checks every row against `task`'s schema and classes.
    pub fn open(path: &Path, test_share: f64, task: &Task) -> Result<Self, DataError> {
        let schema = task.schema().ok_or_else(|| bad(path, "is a table, but the task is not tabular"))?;
        if !(0.0..=1.0).contains(&test_share) {
            return Err(bad(path, format!("the test share {test_share} is not between 0 and 1")));
        }
        let frame = read_frame(path)?;
        let columns: Vec<Vec<Value>> =
            schema.features.iter().map(|f| cells(&frame, &f.name, path)).collect::<Result<_, _>>()?;
        let labels = cells(&frame, &schema.label, path)?;
        let mut rows = Vec::with_capacity(frame.height());
        for (i, label) in labels.iter().enumerate() {
            // Row numbers as a spreadsheet shows them: the header is row 1.
            let at = |what: String| bad(path, format!("row {}: {what}", i + 2));
            let map: Map<String, Value> =
                schema.features.iter().zip(&columns).map(|(f, column)| (f.name.clone(), column[i].clone())).collect();
            let checked = schema.check(&map).map_err(|e| at(e.to_string()))?;
            let Some(name) = label_text(label) else {
                return Err(at(format!("label column `{}` is empty", schema.label)));
            };
            let label = task.class_index(&name).map_err(|e| at(e.to_string()))?;
            let sha256 = hex::encode(Sha256::digest(schema.canonical_json(&checked)));
            rows.push(TableRow { values: schema.encode(&checked), label, sha256 });
        }
        if rows.is_empty() {
            return Err(bad(path, "holds no rows"));
        }
        Ok(Self { path: path.to_path_buf(), classes: task.classes.clone(), rows, test_share })
    }

    /// Every row, in file order.
    pub fn rows(&self) -> &[TableRow] {
        &self.rows
    }

    /// The rows of one split (test: the rows whose hash falls below the test share).
    pub fn split(&self, split: Split) -> impl Iterator<Item = (usize, &TableRow)> {
        let wanted = split == Split::Test;
        self.rows.iter().enumerate().filter(move |(_, r)| is_test(&r.sha256, self.test_share) == wanted)
    }
}

impl Dataset for Table {
    fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }

    fn items(&self, split: Split) -> Result<Vec<Item>, DataError> {
        Ok(self
            .split(split)
            .map(|(i, row)| Item {
                path: self.path.clone(),
                index: Some(i as u64),
                label: row.label,
                sha256: row.sha256.clone(),
            })
            .collect())
    }

    fn describe(&self) -> String {
        format!("the table {} ({} rows)", self.path.display(), self.rows.len())
    }
}

/// What [`derive`] proposes for a table whose schema is not known yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub schema: Schema,
    /// The label column's distinct values, sorted: the class names.
    pub classes: Vec<String>,
    pub rows: usize,
}

/// Proposes a schema for `path` with `label` as the label column: numeric columns become
/// `number` features bounded by the observed range widened by half its span on each side (not
/// below 0 for a column that never is), text columns `category` features of their distinct
/// values, sorted. Every other column is a feature.
pub fn derive(path: &Path, label: &str) -> Result<Derived, DataError> {
    let frame = read_frame(path)?;
    if frame.height() == 0 {
        return Err(bad(path, "holds no rows"));
    }
    let mut features = Vec::new();
    for name in frame.get_column_names() {
        let name = name.as_str();
        if name == label {
            continue;
        }
        let values = cells(&frame, name, path)?;
        let kind = if gitops::table::is_numeric(&frame, name) {
            let xs: Vec<f64> = values.iter().filter_map(Value::as_f64).collect();
            if xs.len() != values.len() {
                return Err(bad(path, format!("column `{name}` has empty cells; fill or drop them first")));
            }
            let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            let margin = (hi - lo).max(lo.abs().max(1.0) * 0.1) / 2.0;
            let min = if lo >= 0.0 { (lo - margin).max(0.0) } else { lo - margin };
            FeatureKind::Number { min: Some(round(min)), max: Some(round(hi + margin)) }
        } else {
            let mut known: Vec<String> = values.iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
            if known.len() != values.len() {
                return Err(bad(path, format!("column `{name}` has empty cells; fill or drop them first")));
            }
            known.sort();
            known.dedup();
            FeatureKind::Category { values: known }
        };
        features.push(Feature { name: name.to_string(), kind });
    }
    let mut classes: Vec<String> = cells(&frame, label, path)?
        .iter()
        .map(|v| label_text(v).ok_or_else(|| bad(path, format!("the label column `{label}` has empty cells"))))
        .collect::<Result<_, _>>()?;
    classes.sort();
    classes.dedup();
    if let Some(bad_name) = classes.iter().find(|c| !valid_class_name(c)) {
        return Err(bad(
            path,
            format!("label `{bad_name}` cannot be a class name (1-64 letters, digits, `-`, `_`, `.`)"),
        ));
    }
    let schema = Schema { label: label.to_string(), features };
    schema.validate().map_err(|e| bad(path, e))?;
    Ok(Derived { schema, classes, rows: frame.height() })
}

/// Four significant digits, so a derived bound reads well in params.yaml.
fn round(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// The task a derived schema describes (named `name`).
pub fn tabular_task(name: &str, derived: &Derived) -> Task {
    Task {
        name: name.to_string(),
        kind: TaskKind::Tabular,
        classes: derived.classes.clone(),
        table: Some(derived.schema.clone()),
        ..Task::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "size,colour,kind\n1.0,red,a\n2.5,blue,b\n3.0,red,a\n4.0,blue,b\n";

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("t.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_csv_gives_a_schema_and_its_rows_split_stably() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), CSV);
        let derived = derive(&path, "kind").unwrap();
        assert_eq!(derived.classes, ["a", "b"]);
        assert_eq!(derived.schema.features[0].kind, FeatureKind::Number { min: Some(0.0), max: Some(5.5) });
        assert_eq!(
            derived.schema.features[1].kind,
            FeatureKind::Category { values: vec!["blue".into(), "red".into()] }
        );
        let task = tabular_task("toy", &derived);
        task.validate().unwrap();
        let table = Table::open(&path, 0.5, &task).unwrap();
        assert_eq!(table.rows()[1].values, [2.5, 0.0]);
        assert_eq!(table.rows()[1].label, 1);
        let (train, test) = (table.items(Split::Train).unwrap(), table.items(Split::Test).unwrap());
        assert_eq!(train.len() + test.len(), 4);
        assert_eq!(Table::open(&path, 0.5, &task).unwrap().items(Split::Test).unwrap(), test, "the split never moves");
    }

    #[test]
    fn a_parquet_table_reads_as_its_csv_does() {
        use polars::prelude::{Column, ParquetWriter};
        let dir = tempfile::tempdir().unwrap();
        let csv = derive(&write(dir.path(), CSV), "kind").unwrap();
        let mut frame = DataFrame::new(
            4,
            vec![
                Column::new("size".into(), [1.0, 2.5, 3.0, 4.0]),
                Column::new("colour".into(), ["red", "blue", "red", "blue"]),
                Column::new("kind".into(), ["a", "b", "a", "b"]),
            ],
        )
        .unwrap();
        let path = dir.path().join("t.parquet");
        ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut frame).unwrap();
        assert!(is_table(&path));
        let parquet = derive(&path, "kind").unwrap();
        assert_eq!(parquet, csv);
        let task = tabular_task("toy", &parquet);
        assert_eq!(
            Table::open(&path, 0.5, &task).unwrap().rows(),
            Table::open(&write(dir.path(), CSV), 0.5, &task).unwrap().rows()
        );
    }

    #[test]
    fn a_bad_row_is_named_by_its_row_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let task = tabular_task("toy", &derive(&write(dir.path(), CSV), "kind").unwrap());
        let path = write(dir.path(), "size,colour,kind\n1.0,red,a\n2.0,green,b\n");
        let err = Table::open(&path, 0.5, &task).unwrap_err().to_string();
        assert!(err.ends_with("row 3: feature `colour`: `green` is not one of blue, red"), "{err}");
        let path = write(dir.path(), "size,colour,kind\n1.0,red,c\n");
        assert!(Table::open(&path, 0.5, &task).unwrap_err().to_string().contains("row 2: `c` is not a class"));
        let path = write(dir.path(), "size,kind\n1.0,a\n");
        assert!(Table::open(&path, 0.5, &task).unwrap_err().to_string().contains("no column `colour`"));
        assert!(derive(&write(dir.path(), CSV), "missing").unwrap_err().to_string().contains("no column `missing`"));
    }
}
