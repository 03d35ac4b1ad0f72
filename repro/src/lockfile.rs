//! dvc.lock: what each stage last ran with, in DVC 3's exact layout (`schema: '2.0'`,
//! `cmd, deps, params, outs`, entries `path, hash, md5, size, nfiles, isexec`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::yaml::{self, Value};

/// The lock file name.
pub const DVC_LOCK: &str = "dvc.lock";

/// One recorded dependency or output.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub path: String,
    pub md5: Option<String>,
    pub size: Option<u64>,
    pub nfiles: Option<u64>,
    pub isexec: bool,
}

/// A stage's lock entry.
#[derive(Clone, Debug, PartialEq)]
pub struct StageLock {
    pub cmd: Value,
    pub deps: Vec<Entry>,
    /// Per params file (path as written), the recorded key/value pairs.
    pub params: Vec<(String, Vec<(String, Value)>)>,
    pub outs: Vec<Entry>,
}

impl Entry {
    fn to_value(&self) -> Value {
        let mut m = vec![("path".to_owned(), Value::Str(self.path.clone()))];
        if let Some(md5) = &self.md5 {
            m.push(("hash".into(), Value::Str("md5".into())));
            m.push(("md5".into(), Value::Str(md5.clone())));
        }
        if let Some(size) = self.size {
            m.push(("size".into(), Value::Int(size as i64)));
        }
        if let Some(n) = self.nfiles {
            m.push(("nfiles".into(), Value::Int(n as i64)));
        }
        if self.isexec {
            m.push(("isexec".into(), Value::Bool(true)));
        }
        Value::Map(m)
    }

    fn from_value(v: &Value) -> Option<Entry> {
        let int = |k: &str| match v.get(k) {
            Some(Value::Int(i)) => Some(*i as u64),
            _ => None,
        };
        Some(Entry {
            path: v.get("path")?.as_str()?.to_owned(),
            md5: v.get("md5").and_then(Value::as_str).map(str::to_owned),
            size: int("size"),
            nfiles: int("nfiles"),
            isexec: matches!(v.get("isexec"), Some(Value::Bool(true))),
        })
    }
}

impl StageLock {
    /// The entry as DVC serializes it (deps and outs sorted by path, params.yaml first).
    pub fn to_value(&self) -> Value {
        let mut m = vec![("cmd".to_owned(), self.cmd.clone())];
        let sorted = |entries: &[Entry]| {
            let mut e = entries.to_vec();
            e.sort_by(|a, b| a.path.cmp(&b.path));
            Value::List(e.iter().map(Entry::to_value).collect())
        };
        if !self.deps.is_empty() {
            m.push(("deps".into(), sorted(&self.deps)));
        }
        let mut params: Vec<&(String, Vec<(String, Value)>)> = self.params.iter().collect();
        params.sort_by(|a, b| (a.0 != "params.yaml", &a.0).cmp(&(b.0 != "params.yaml", &b.0)));
        if !params.is_empty() {
            let files = params.into_iter().map(|(f, kv)| (f.clone(), Value::Map(kv.clone()))).collect();
            m.push(("params".into(), Value::Map(files)));
        }
        if !self.outs.is_empty() {
            m.push(("outs".into(), sorted(&self.outs)));
        }
        Value::Map(m)
    }

    /// Reads an entry back; `None` for an entry this runner cannot interpret.
    pub fn from_value(v: &Value) -> Option<StageLock> {
        let list = |k: &str| -> Option<Vec<Entry>> {
            match v.get(k) {
                None => Some(Vec::new()),
                Some(Value::List(items)) => items.iter().map(Entry::from_value).collect(),
                Some(_) => None,
            }
        };
        let params = match v.get("params") {
            None => Vec::new(),
            Some(Value::Map(files)) => files
                .iter()
                .map(|(f, kv)| match kv {
                    Value::Map(kv) => Some((f.clone(), kv.clone())),
                    Value::Null => Some((f.clone(), Vec::new())),
                    _ => None,
                })
                .collect::<Option<_>>()?,
            Some(_) => return None,
        };
        Some(StageLock { cmd: v.get("cmd")?.clone(), deps: list("deps")?, params, outs: list("outs")? })
    }
}

/// The whole lock file; stages keep the order they were first written in.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    stages: Vec<(String, Value)>,
}

impl LockFile {
    /// Loads `root/dvc.lock` (empty when missing).
    pub fn load(root: &Path) -> Result<LockFile> {
        let path = root.join(DVC_LOCK);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        let doc = yaml::load(&text, &path)?.to_value();
        let stages = match doc.get("stages") {
            Some(Value::Map(s)) => s.clone(),
            _ => Vec::new(),
        };
        Ok(LockFile { path, stages })
    }

    /// The lock entry of a stage, if any.
    pub fn get(&self, name: &str) -> Option<StageLock> {
        self.stages.iter().find(|(n, _)| n == name).and_then(|(_, v)| StageLock::from_value(v))
    }

    /// Records a stage and rewrites dvc.lock atomically.
    pub fn update(&mut self, name: &str, lock: &StageLock) -> Result<()> {
        let v = lock.to_value();
        match self.stages.iter_mut().find(|(n, _)| n == name) {
            Some((_, old)) => *old = v,
            None => self.stages.push((name.to_owned(), v)),
        }
        write_atomic(&self.path, self.render().as_bytes())
    }

    /// The file's text as DVC would write it.
    pub fn render(&self) -> String {
        yaml::dump(&Value::Map(vec![
            ("schema".into(), Value::Str("2.0".into())),
            ("stages".into(), Value::Map(self.stages.clone())),
        ]))
    }
}
