//! The current state of a stage's inputs and outputs in the workspace, memoized for one
//! run, and how it compares with the stage's dvc.lock entry (DVC's `status` rules).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::dvcyaml::{Out, OutKind, Stage};
use crate::error::{Error, Result};
use crate::fsutil::{abs, is_within, normalize};
use crate::hash::{Hashed, Hasher};
use crate::lockfile::{Entry, StageLock};
use crate::params;
use crate::status::{Change, StageStatus};
use crate::yaml::Value;

/// A dependency or output as found on disk.
#[derive(Clone, Debug)]
pub struct Item {
    /// The path as written in dvc.yaml (relative to wdir); dvc.lock uses it.
    pub def_path: String,
    /// The path relative to the repo root.
    pub rel: String,
    pub hashed: Option<Hashed>,
}

/// A params file's values for one stage.
#[derive(Clone, Debug)]
pub struct ParamsState {
    pub def_path: String,
    pub rel: String,
    pub exists: bool,
    pub values: Vec<(String, Value)>,
    pub missing: Vec<String>,
    /// Whether the stage tracks the whole file.
    pub whole: bool,
}

/// Everything a stage reads and writes, hashed now.
#[derive(Clone, Debug)]
pub struct Current {
    pub deps: Vec<Item>,
    pub params: Vec<ParamsState>,
    pub outs: Vec<(Out, Item)>,
}

/// Hasher, cache and per-run memo of hashes and params files.
pub struct Workspace {
    pub root: PathBuf,
    pub hasher: Hasher,
    pub cache: Cache,
    hashes: HashMap<String, Option<Hashed>>,
    param_files: HashMap<String, Option<Value>>,
}

impl Workspace {
    /// The workspace of the repo at `root`.
    pub fn new(root: &Path) -> Workspace {
        Workspace {
            root: root.to_path_buf(),
            hasher: Hasher::new(root),
            cache: Cache::new(root),
            hashes: HashMap::new(),
            param_files: HashMap::new(),
        }
    }

    /// Forgets memoized hashes of everything overlapping `rel` (after it was rewritten).
    pub fn invalidate(&mut self, rel: &str) {
        self.hashes.retain(|k, _| !is_within(k, rel) && !is_within(rel, k));
        self.param_files.retain(|k, _| !is_within(k, rel));
    }

    fn hash(&mut self, rel: &str) -> Result<Option<Hashed>> {
        if let Some(h) = self.hashes.get(rel) {
            return Ok(h.clone());
        }
        let h = self.hasher.hash(&abs(&self.root, rel))?;
        self.hashes.insert(rel.to_owned(), h.clone());
        Ok(h)
    }

    /// `hashed` again with a directory's contents, when the fingerprints left them out and
    /// the cache does not hold the directory in full (saving it needs the listing).
    pub fn with_contents(&mut self, rel: &str, hashed: &Hashed) -> Result<Option<Hashed>> {
        match hashed {
            Hashed::Dir { md5, contents: None, .. } if !self.cache.has_all(md5) => {
                self.hasher.hash_listed(&abs(&self.root, rel))
            }
            _ => Ok(Some(hashed.clone())),
        }
    }

    fn param_file(&mut self, rel: &str) -> Result<Option<Value>> {
        if let Some(v) = self.param_files.get(rel) {
            return Ok(v.clone());
        }
        let path = abs(&self.root, rel);
        let v = if path.is_file() { Some(params::load(&path)?) } else { None };
        self.param_files.insert(rel.to_owned(), v.clone());
        Ok(v)
    }

    /// Hashes the stage's deps, params and outs as they are now.
    pub fn current(&mut self, stage: &Stage) -> Result<Current> {
        let mut deps = Vec::new();
        for d in &stage.deps {
            let rel = normalize(&stage.wdir, &d.path);
            deps.push(Item { def_path: d.path.clone(), hashed: self.hash(&rel)?, rel });
        }
        let mut ps = Vec::new();
        for p in &stage.params {
            let rel = normalize(&stage.wdir, &p.file);
            let file = self.param_file(&rel)?;
            let (values, missing) = match &file {
                Some(v) => params::select(v, p.keys.as_deref()),
                None => (Vec::new(), Vec::new()),
            };
            ps.push(ParamsState {
                def_path: p.file.clone(),
                rel,
                exists: file.is_some(),
                values,
                missing,
                whole: p.keys.is_none(),
            });
        }
        let mut outs = Vec::new();
        for o in &stage.outs {
            let rel = normalize(&stage.wdir, &o.path);
            outs.push((o.clone(), Item { def_path: o.path.clone(), hashed: self.hash(&rel)?, rel }));
        }
        Ok(Current { deps, params: ps, outs })
    }

    /// DVC's status of the stage against its lock entry.
    pub fn status(&self, stage: &Stage, cur: &Current, lock: Option<&StageLock>) -> StageStatus {
        let mut st = StageStatus {
            name: stage.name.clone(),
            deps: Vec::new(),
            outs: Vec::new(),
            always_changed: stage.always_changed,
            command_changed: lock.is_some_and(|l| l.cmd != stage.cmd.to_value()),
        };
        let locked = |entries: Option<&Vec<Entry>>, path: &str| {
            entries.and_then(|e| e.iter().find(|e| e.path == path)).and_then(|e| e.md5.clone())
        };
        if !stage.frozen {
            for d in &cur.deps {
                let recorded = locked(lock.map(|l| &l.deps), &d.def_path);
                match &d.hashed {
                    None => st.deps.push((d.rel.clone(), Change::Deleted)),
                    Some(h) if recorded.as_deref() != Some(h.md5()) => st.deps.push((d.rel.clone(), Change::Modified)),
                    Some(_) => {}
                }
            }
            for p in &cur.params {
                let recorded = lock.and_then(|l| l.params.iter().find(|(f, _)| *f == p.def_path)).map(|(_, kv)| kv);
                if !p.exists {
                    st.deps.push((p.rel.clone(), Change::Deleted));
                    continue;
                }
                let Some(info) = recorded else {
                    st.deps.push((p.rel.clone(), Change::New));
                    continue;
                };
                let mut keys: Vec<String> = p.values.iter().map(|(k, _)| k.clone()).collect();
                keys.extend(p.missing.iter().cloned());
                if p.whole {
                    keys.extend(
                        info.iter().map(|(k, _)| k.clone()).filter(|k| !p.values.iter().any(|(k2, _)| k2 == k)),
                    );
                }
                let mut changes = Vec::new();
                for key in keys {
                    let actual = p.values.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
                    let old = info.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
                    match (actual, old) {
                        (None, _) => changes.push((key, "deleted")),
                        (Some(_), None) => changes.push((key, "new")),
                        (Some(a), Some(o)) if a != o => changes.push((key, "modified")),
                        _ => {}
                    }
                }
                if !changes.is_empty() {
                    st.deps.push((p.rel.clone(), Change::Params(changes)));
                }
            }
        }
        for (o, item) in &cur.outs {
            let recorded = locked(lock.map(|l| &l.outs), &o.path);
            let state = match (&recorded, &item.hashed) {
                (Some(md5), _) if o.cache && !self.cache.contains(md5) => Some("not in cache"),
                (_, None) => Some("deleted"),
                (r, Some(h)) if r.as_deref() != Some(h.md5()) => Some("modified"),
                _ => None,
            };
            if let Some(s) = state {
                st.outs.push((item.rel.clone(), s));
            }
        }
        st
    }

    /// The lock entry describing `cur` (outputs as hashed now).
    pub fn lock_entry(&self, stage: &Stage, cur: &Current) -> Result<StageLock> {
        let entry = |item: &Item| match &item.hashed {
            Some(Hashed::File { md5, size, isexec }) => Entry {
                path: item.def_path.clone(),
                md5: Some(md5.clone()),
                size: Some(*size),
                nfiles: None,
                isexec: *isexec,
            },
            Some(Hashed::Dir { md5, size, nfiles, .. }) => Entry {
                path: item.def_path.clone(),
                md5: Some(md5.clone()),
                size: Some(*size),
                nfiles: Some(*nfiles),
                isexec: false,
            },
            None => Entry { path: item.def_path.clone(), md5: None, size: None, nfiles: None, isexec: false },
        };
        let mut params = Vec::new();
        for p in &cur.params {
            if !p.exists {
                return Err(Error::MissingDependency { stage: stage.name.clone(), path: p.rel.clone() });
            }
            if !p.missing.is_empty() {
                return Err(Error::MissingParams {
                    stage: stage.name.clone(),
                    file: p.rel.clone(),
                    keys: p.missing.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", "),
                });
            }
            params.push((p.def_path.clone(), p.values.clone()));
        }
        Ok(StageLock {
            cmd: stage.cmd.to_value(),
            deps: cur.deps.iter().map(entry).collect(),
            params,
            outs: cur.outs.iter().map(|(_, i)| entry(i)).collect(),
        })
    }

    /// True when DVC would record (and look up) this stage in the run cache.
    pub fn can_run_cache(stage: &Stage, cur: &Current) -> bool {
        !stage.always_changed
            && (!stage.deps.is_empty() || !stage.params.is_empty())
            && !stage.outs.is_empty()
            && cur.deps.iter().all(|d| d.hashed.is_some())
            && stage.outs.iter().all(|o| !o.persist)
    }

    /// DVC skips saving the run cache when a plain (non-metric, non-plot) output is uncached.
    pub fn saves_run_cache(stage: &Stage) -> bool {
        !stage.outs.iter().any(|o| !o.cache && o.kind == OutKind::Out)
    }
}
