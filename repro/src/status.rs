//! What changed in a stage since dvc.lock was written, shown like `dvc status` (text or
//! `--json`, the same shape DVC prints).

use serde_json::{Map, Value as Json, json};

/// How a dependency changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Deleted,
    Modified,
    New,
    /// A params file: per key, "new", "deleted" or "modified".
    Params(Vec<(String, &'static str)>),
}

/// The changes found in one stage.
#[derive(Clone, Debug)]
pub struct StageStatus {
    pub name: String,
    pub deps: Vec<(String, Change)>,
    pub outs: Vec<(String, &'static str)>,
    pub always_changed: bool,
    pub command_changed: bool,
}

impl StageStatus {
    /// True when `dvc repro` would rerun the stage.
    pub fn is_changed(&self) -> bool {
        !self.deps.is_empty() || !self.outs.is_empty() || self.always_changed || self.command_changed
    }

    fn to_json(&self) -> Json {
        let mut items = Vec::new();
        if !self.deps.is_empty() {
            let mut m = Map::new();
            for (path, c) in &self.deps {
                let v = match c {
                    Change::Deleted => json!("deleted"),
                    Change::Modified => json!("modified"),
                    Change::New => json!("new"),
                    Change::Params(keys) => Json::Object(keys.iter().map(|(k, s)| (k.clone(), json!(s))).collect()),
                };
                m.insert(path.clone(), v);
            }
            items.push(json!({ "changed deps": m }));
        }
        if !self.outs.is_empty() {
            let m: Map<String, Json> = self.outs.iter().map(|(p, s)| (p.clone(), json!(s))).collect();
            items.push(json!({ "changed outs": m }));
        }
        if self.always_changed {
            items.push(json!("always changed"));
        }
        if self.command_changed {
            items.push(json!("changed command"));
        }
        Json::Array(items)
    }
}

/// The status of every stage of a pipeline.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub stages: Vec<StageStatus>,
}

impl Status {
    /// The stages that changed.
    pub fn changed(&self) -> impl Iterator<Item = &StageStatus> {
        self.stages.iter().filter(|s| s.is_changed())
    }

    /// `dvc status --json`: `{stage: [changes...]}` for changed stages only.
    pub fn to_json(&self) -> String {
        let m: Map<String, Json> = self.changed().map(|s| (s.name.clone(), s.to_json())).collect();
        Json::Object(m).to_string()
    }

    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for s in self.changed() {
            out.push_str(&format!("{}:\n", s.name));
            if !s.deps.is_empty() {
                out.push_str("\tchanged deps:\n");
                for (path, c) in &s.deps {
                    match c {
                        Change::Deleted => out.push_str(&format!("\t\tdeleted:            {path}\n")),
                        Change::Modified => out.push_str(&format!("\t\tmodified:           {path}\n")),
                        Change::New => out.push_str(&format!("\t\tnew:                {path}\n")),
                        Change::Params(keys) => {
                            out.push_str(&format!("\t\tmodified:           {path}\n"));
                            for (k, st) in keys {
                                out.push_str(&format!("\t\t\t{st}: {k}\n"));
                            }
                        }
                    }
                }
            }
            if !s.outs.is_empty() {
                out.push_str("\tchanged outs:\n");
                for (path, st) in &s.outs {
                    out.push_str(&format!("\t\t{:<20}{path}\n", format!("{st}:")));
                }
            }
            if s.always_changed {
                out.push_str("\talways changed\n");
            }
            if s.command_changed {
                out.push_str("\tchanged command\n");
            }
        }
        if out.is_empty() {
            out.push_str("Data and pipelines are up to date.\n");
        }
        out
    }
}
