//! Reading parameter files (YAML or JSON) and picking the values a stage lists.

use std::path::Path;

use crate::error::{Error, Result};
use crate::yaml::{self, Value};

/// Loads a params file; JSON is read with the same YAML 1.2 loader (JSON is valid YAML).
pub fn load(path: &Path) -> Result<Value> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "yaml" | "yml" | "json") {
        return Err(Error::Syntax {
            path: path.to_path_buf(),
            line: 1,
            msg: "only YAML and JSON params files are supported".into(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    Ok(yaml::load(&text, path)?.to_value())
}

/// The values of `keys` in `file` as DVC records them: dotted keys sorted, or the whole
/// file (top-level keys sorted) when `keys` is `None`. Missing keys are returned separately.
pub fn select(file: &Value, keys: Option<&[String]>) -> (Vec<(String, Value)>, Vec<String>) {
    let Some(keys) = keys else {
        let Value::Map(entries) = file else { return (Vec::new(), Vec::new()) };
        let mut all = entries.clone();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        return (all, Vec::new());
    };
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for key in keys {
        if found.iter().any(|(k, _): &(String, Value)| k == key) {
            continue;
        }
        match file.get_path(key) {
            Some(v) => found.push((key.clone(), v.clone())),
            None => missing.push(key.clone()),
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    (found, missing)
}
