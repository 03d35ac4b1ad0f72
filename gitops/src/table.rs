//! The schema of a tabular task (`task.kind: tabular`): its feature columns, each a `number`
//! (optionally bounded) or a `category` with its values, and the label column. A row is checked
//! against it field by field ([`Schema::check`]: a missing or extra column, a wrong type, a value
//! out of range, an unknown category or a NaN is an error naming the field), and a checked row has
//! one canonical JSON form (features in schema order) that its content hash is taken of, and one
//! encoding the network reads: one `f32` per feature, a number as itself and a category as the
//! index of its value. Tables are read with polars (`read_frame`, `read_rows`: CSV or Parquet).
//! Standardisation is the model's business (`model::arch::mlp`), so serving
//! applies exactly what training computed.

use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `task.table` in `params.yaml` (and in every sidecar of a tabular model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// The column holding the class name in data files (CSV, Parquet).
    pub label: String,
    /// The feature columns, in the order the network reads them.
    pub features: Vec<Feature>,
}

/// One feature column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    #[serde(flatten)]
    pub kind: FeatureKind,
}

/// What a feature holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum FeatureKind {
    /// A finite number, within `min..=max` where they are given.
    Number {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// One of `values` (encoded as its index).
    Category { values: Vec<String> },
}

/// A table file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct TableError {
    pub what: String,
}

/// Reads a CSV (header row, types inferred from every row) or Parquet file with polars.
pub fn read_frame(path: &Path) -> Result<DataFrame, TableError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let frame = if ext == "parquet" {
        let file = std::fs::File::open(path).map_err(|e| TableError { what: e.to_string() })?;
        ParquetReader::new(file).finish()
    } else {
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(None)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|reader| reader.finish())
    };
    frame.map_err(|e| TableError { what: format!("cannot read the table: {e}") })
}

/// Whether column `name` holds numbers.
pub fn is_numeric(frame: &DataFrame, name: &str) -> bool {
    frame.column(name).is_ok_and(|c| c.dtype().is_primitive_numeric())
}

/// The cells of column `name` as JSON values (numbers, text, or null for an empty cell).
pub fn cells(frame: &DataFrame, name: &str) -> Result<Vec<Value>, TableError> {
    let column = frame.column(name).map_err(|_| TableError { what: format!("has no column `{name}`") })?;
    let series = column.as_materialized_series();
    let read = |e: PolarsError| TableError { what: format!("column `{name}`: {e}") };
    if series.dtype().is_primitive_numeric() {
        let floats = series.cast(&DataType::Float64).map_err(read)?;
        let floats = floats.f64().map_err(read)?;
        return Ok((0..floats.len())
            .map(|i| floats.get(i).and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number))
            .collect());
    }
    let text = series.cast(&DataType::String).map_err(read)?;
    let text = text.str().map_err(read)?;
    Ok((0..text.len()).map(|i| text.get(i).map_or(Value::Null, |s| Value::String(s.to_string()))).collect())
}

/// A label cell as a class name: text as it is, a whole number without `.0` (a label column of
/// 0/1, which the readers give as floats, names classes `0` and `1`); `None` for an empty cell.
pub fn label_text(cell: &Value) -> Option<String> {
    match cell {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
            _ => n.to_string(),
        }),
        _ => None,
    }
}

/// The rows of a table file as JSON objects of its columns, in file order.
pub fn read_rows(path: &Path) -> Result<Vec<Map<String, Value>>, TableError> {
    let frame = read_frame(path)?;
    let names: Vec<String> = frame.get_column_names().iter().map(|n| n.to_string()).collect();
    let columns: Vec<Vec<Value>> = names.iter().map(|n| cells(&frame, n)).collect::<Result<_, _>>()?;
    Ok((0..frame.height()).map(|i| names.iter().cloned().zip(columns.iter().map(|c| c[i].clone())).collect()).collect())
}

/// A row that breaks the schema, naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("feature `{field}`: {reason}")]
pub struct RowError {
    pub field: String,
    pub reason: String,
}

/// A row that passed [`Schema::check`]: one value per feature, in schema order.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedRow(Vec<Value>);

/// At most this many features (a guard for what a request may make the server allocate).
pub const MAX_FEATURES: usize = 4096;

impl Schema {
    /// Checks the schema itself: a label column, 1..=[`MAX_FEATURES`] features with distinct
    /// names other than the label's, bounds with `min <= max`, categories with distinct values.
    pub fn validate(&self) -> Result<(), String> {
        if self.label.trim().is_empty() {
            return Err("table.label (the label column) is empty".into());
        }
        if self.features.is_empty() || self.features.len() > MAX_FEATURES {
            return Err(format!("table.features: {} given; 1..={MAX_FEATURES} are needed", self.features.len()));
        }
        for (i, f) in self.features.iter().enumerate() {
            if f.name.trim().is_empty() || f.name.len() > 256 {
                return Err(format!("table.features[{i}]: a name of 1-256 bytes is needed"));
            }
            if f.name == self.label {
                return Err(format!("feature `{}` is also the label column", f.name));
            }
            if self.features[..i].iter().any(|g| g.name == f.name) {
                return Err(format!("feature `{}` is listed twice", f.name));
            }
            match &f.kind {
                FeatureKind::Number { min, max } => {
                    if min.is_some_and(|m| !m.is_finite()) || max.is_some_and(|m| !m.is_finite()) {
                        return Err(format!("feature `{}`: min and max must be finite", f.name));
                    }
                    if let (Some(lo), Some(hi)) = (min, max)
                        && lo > hi
                    {
                        return Err(format!("feature `{}`: min {lo} is above max {hi}", f.name));
                    }
                }
                FeatureKind::Category { values } => {
                    if values.is_empty() {
                        return Err(format!("feature `{}`: a category needs at least one value", f.name));
                    }
                    if let Some(v) = values.iter().enumerate().find_map(|(j, v)| values[..j].contains(v).then_some(v)) {
                        return Err(format!("feature `{}`: value `{v}` is listed twice", f.name));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.name.as_str())
    }

    /// Checks a row given as a JSON object (`{"feature": value, ...}`): every feature present,
    /// no other key, numbers finite and in range, categories known. Number features also take
    /// numbers written as text (CSV cells).
    pub fn check(&self, row: &Map<String, Value>) -> Result<CheckedRow, RowError> {
        let err = |field: &str, reason: String| RowError { field: field.to_string(), reason };
        if let Some(extra) = row.keys().find(|k| !self.features.iter().any(|f| &f.name == *k)) {
            return Err(err(
                extra,
                format!("is not a feature of the schema ({})", self.names().collect::<Vec<_>>().join(", ")),
            ));
        }
        let mut values = Vec::with_capacity(self.features.len());
        for f in &self.features {
            let value = row.get(&f.name).ok_or_else(|| err(&f.name, "is missing".into()))?;
            values.push(match &f.kind {
                FeatureKind::Number { min, max } => {
                    let x = match value {
                        Value::Number(n) => n.as_f64(),
                        Value::String(s) => s.trim().parse::<f64>().ok(),
                        _ => None,
                    }
                    .ok_or_else(|| err(&f.name, format!("{value} is not a number")))?;
                    if !x.is_finite() {
                        return Err(err(&f.name, format!("{x} is not a finite number")));
                    }
                    if min.is_some_and(|m| x < m) || max.is_some_and(|m| x > m) {
                        let bound = |b: &Option<f64>| b.map_or("any".to_string(), |b| b.to_string());
                        return Err(err(&f.name, format!("{x} is outside {}..={}", bound(min), bound(max))));
                    }
                    serde_json::Number::from_f64(x).map(Value::Number).expect("finite")
                }
                FeatureKind::Category { values: known } => {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return Err(err(&f.name, format!("{value} is not a category value"))),
                    };
                    if !known.contains(&text) {
                        return Err(err(&f.name, format!("`{text}` is not one of {}", known.join(", "))));
                    }
                    Value::String(text)
                }
            });
        }
        Ok(CheckedRow(values))
    }

    /// A checked row as the network reads it: one `f32` per feature (a category as the index of
    /// its value).
    pub fn encode(&self, row: &CheckedRow) -> Vec<f32> {
        self.features
            .iter()
            .zip(&row.0)
            .map(|(f, v)| match (&f.kind, v) {
                (FeatureKind::Number { .. }, Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN) as f32,
                (FeatureKind::Category { values }, Value::String(s)) => {
                    values.iter().position(|known| known == s).unwrap_or(0) as f32
                }
                _ => unreachable!("a checked row matches its schema"),
            })
            .collect()
    }

    /// Checks an encoded row (as KServe clients send it: `[N, F]` values): one finite value per
    /// feature, numbers in range, category indexes whole and known.
    pub fn check_encoded(&self, values: &[f32]) -> Result<(), RowError> {
        if values.len() != self.features.len() {
            return Err(RowError {
                field: "*".into(),
                reason: format!("{} values given for {} features", values.len(), self.features.len()),
            });
        }
        let row: Map<String, Value> = self
            .features
            .iter()
            .zip(values)
            .map(|(f, &x)| {
                let value = match &f.kind {
                    FeatureKind::Number { .. } => {
                        serde_json::Number::from_f64(f64::from(x)).map_or(Value::Null, Value::Number)
                    }
                    FeatureKind::Category { values } if x.fract() == 0.0 && x >= 0.0 && (x as usize) < values.len() => {
                        Value::String(values[x as usize].clone())
                    }
                    FeatureKind::Category { values } => {
                        return Err(RowError {
                            field: f.name.clone(),
                            reason: format!("{x} is not the index of one of its {} values", values.len()),
                        });
                    }
                };
                Ok((f.name.clone(), value))
            })
            .collect::<Result<_, _>>()?;
        self.check(&row).map(|_| ())
    }

    /// The row's canonical JSON: an object with the features in schema order (what feedback
    /// stores and hashes, so the same row always has the same content hash).
    pub fn canonical_json(&self, row: &CheckedRow) -> Vec<u8> {
        let map: Map<String, Value> = self.names().map(str::to_string).zip(row.0.iter().cloned()).collect();
        let mut out = serde_json::to_vec(&OrderedRow(self, &map)).expect("a row serializes");
        out.push(b'\n');
        out
    }

    /// What differs from `other` (a model's schema), one phrase per field.
    pub fn differences(&self, other: &Schema) -> Vec<String> {
        let mut out = Vec::new();
        if self.label != other.label {
            out.push(format!("table.label: {} here, {} in the model", self.label, other.label));
        }
        let ours: Vec<&str> = self.names().collect();
        let theirs: Vec<&str> = other.names().collect();
        if ours != theirs {
            out.push(format!("table.features: {ours:?} here, {theirs:?} in the model"));
        } else {
            for (a, b) in self.features.iter().zip(&other.features) {
                if a.kind != b.kind {
                    out.push(format!("feature `{}`: {:?} here, {:?} in the model", a.name, a.kind, b.kind));
                }
            }
        }
        out
    }
}

/// Serializes a row map with its keys in schema order (a `Map` would sort them).
struct OrderedRow<'a>(&'a Schema, &'a Map<String, Value>);

impl Serialize for OrderedRow<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.features.len()))?;
        for name in self.0.names() {
            map.serialize_entry(name, &self.1[name])?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        serde_yaml::from_str(
            "label: species\nfeatures:\n  - {name: petal_length, type: number, min: 0, max: 10}\n  - {name: colour, type: category, values: [red, blue]}\n",
        )
        .unwrap()
    }

    #[test]
    fn a_whole_number_label_names_its_class_without_a_fraction() {
        assert_eq!(label_text(&json!(1.0)).as_deref(), Some("1"));
        assert_eq!(label_text(&json!(2.5)).as_deref(), Some("2.5"));
        assert_eq!(label_text(&json!("cat")).as_deref(), Some("cat"));
        assert_eq!(label_text(&Value::Null), None);
    }

    fn row(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_row_is_checked_encoded_and_written_canonically() {
        let s = schema();
        s.validate().unwrap();
        let checked = s.check(&row(json!({"colour": "blue", "petal_length": "1.5"}))).unwrap();
        assert_eq!(s.encode(&checked), [1.5, 1.0]);
        assert_eq!(
            String::from_utf8(s.canonical_json(&checked)).unwrap(),
            "{\"petal_length\":1.5,\"colour\":\"blue\"}\n"
        );
        s.check_encoded(&[1.5, 1.0]).unwrap();
    }

    #[test]
    fn each_broken_rule_names_the_field() {
        let s = schema();
        let cases = [
            (json!({"colour": "red"}), "feature `petal_length`: is missing"),
            (json!({"petal_length": 1, "colour": "red", "x": 1}), "feature `x`: is not a feature"),
            (json!({"petal_length": "tall", "colour": "red"}), "feature `petal_length`: \"tall\" is not a number"),
            (json!({"petal_length": 11, "colour": "red"}), "feature `petal_length`: 11 is outside 0..=10"),
            (json!({"petal_length": "NaN", "colour": "red"}), "feature `petal_length`: NaN is not a finite number"),
            (json!({"petal_length": 1, "colour": "green"}), "feature `colour`: `green` is not one of red, blue"),
            (json!({"petal_length": 1, "colour": null}), "feature `colour`: null is not a category value"),
        ];
        for (value, expected) in cases {
            let err = s.check(&row(value)).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{err} is not {expected}");
        }
        assert!(s.check_encoded(&[1.0, 2.0]).unwrap_err().to_string().contains("colour"));
        assert!(s.check_encoded(&[f32::NAN, 0.0]).unwrap_err().to_string().contains("petal_length"));
        assert!(s.check_encoded(&[1.0]).is_err());
    }

    #[test]
    fn a_broken_schema_and_a_changed_one_are_named() {
        let mut s = schema();
        s.features[1].name = "petal_length".into();
        assert!(s.validate().unwrap_err().contains("listed twice"));
        let (a, mut b) = (schema(), schema());
        b.features[0].kind = FeatureKind::Number { min: None, max: None };
        assert_eq!(a.differences(&b).len(), 1);
        assert!(a.differences(&b)[0].starts_with("feature `petal_length`"), "{:?}", a.differences(&b));
    }
}
