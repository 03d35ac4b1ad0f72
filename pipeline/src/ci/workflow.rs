//! The parts of a GitHub Actions workflow file the local executor needs: jobs, their steps,
//! `env`, `if` and `workflow_dispatch` input defaults.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

use super::CiError;

#[derive(Debug, Clone, Deserialize)]
pub struct Workflow {
    pub name: Option<String>,
    #[serde(default, rename = "on")]
    pub on: serde_yaml::Value,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub jobs: BTreeMap<String, Job>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    pub id: Option<String>,
    pub name: Option<String>,
    pub uses: Option<String>,
    pub run: Option<String>,
    #[serde(rename = "if")]
    pub condition: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl Step {
    /// What the log calls the step.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.uses.clone())
            .or_else(|| self.run.as_ref().map(|r| r.lines().next().unwrap_or_default().to_string()))
            .unwrap_or_default()
    }
}

impl Workflow {
    /// Reads `.github/workflows/<name>.yml` (or `.yaml`) under `repo`.
    pub fn load(repo: &Path, name: &str) -> Result<(std::path::PathBuf, Self), CiError> {
        let dir = repo.join(".github/workflows");
        let path =
            ["yml", "yaml"].iter().map(|ext| dir.join(format!("{name}.{ext}"))).find(|p| p.is_file()).ok_or_else(
                || CiError::Workflow { path: dir.join(format!("{name}.yml")), what: "no such workflow".into() },
            )?;
        let text = std::fs::read_to_string(&path).map_err(|source| CiError::Io { path: path.clone(), source })?;
        let workflow =
            serde_yaml::from_str(&text).map_err(|e| CiError::Workflow { path: path.clone(), what: e.to_string() })?;
        Ok((path, workflow))
    }

    /// The defaults of the `workflow_dispatch` inputs.
    pub fn input_defaults(&self) -> BTreeMap<String, String> {
        let inputs = self.on.get("workflow_dispatch").and_then(|d| d.get("inputs")).and_then(|i| i.as_mapping());
        inputs
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                let default = match v.get("default") {
                    Some(serde_yaml::Value::Bool(b)) => b.to_string(),
                    Some(serde_yaml::Value::String(s)) => s.clone(),
                    Some(serde_yaml::Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                };
                Some((k.as_str()?.to_string(), default))
            })
            .collect()
    }
}
