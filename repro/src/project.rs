//! A DVC project: its stages and DAG, and the two operations on them, `status` and
//! `repro`, which hold the repo lock and leave dvc.lock, the cache and the run cache in
//! the state DVC would leave them in.

use std::path::{Path, PathBuf};

use crate::confine;
use crate::dvcyaml::{self, Stage};
use crate::error::{Error, Result};
use crate::fsutil::{abs, remove_path};
use crate::gitignore;
use crate::graph::Graph;
use crate::lockfile::{LockFile, StageLock};
use crate::repolock::RepoLock;
use crate::runcache::RunCache;
use crate::runner;
use crate::status::Status;
use crate::workspace::{Current, Workspace};

/// What `repro` should do.
#[derive(Clone, Debug, Default)]
pub struct ReproOptions {
    /// Stage names (or `dvc.yaml:name`); empty means the whole pipeline.
    pub targets: Vec<String>,
    /// Rerun stages even when nothing changed.
    pub force: bool,
    /// Only the targets, not their upstream stages.
    pub single_item: bool,
    /// The targets and everything downstream of them.
    pub downstream: bool,
    /// Print the commands that would run without running them.
    pub dry: bool,
    /// Folders put in front of `PATH` for stage commands (where the stage binaries live).
    pub path: Vec<std::path::PathBuf>,
}

/// What happened to each stage during `repro`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReproReport {
    /// Stages whose command ran.
    pub ran: Vec<String>,
    /// Stages whose outputs were restored from the cache instead.
    pub restored: Vec<String>,
    /// Stages that were up to date.
    pub skipped: Vec<String>,
}

/// A repo with a dvc.yaml.
#[derive(Debug)]
pub struct Project {
    root: PathBuf,
    stages: Vec<Stage>,
    graph: Graph,
}

impl Project {
    /// Reads and checks `root/dvc.yaml`.
    pub fn open(root: &Path) -> Result<Project> {
        let root = root.canonicalize().map_err(Error::io(root))?;
        let stages = dvcyaml::load(&root)?;
        for stage in &stages {
            confine::check(&root, stage)?;
        }
        let graph = Graph::build(&stages)?;
        Ok(Project { root, stages, graph })
    }

    /// The stages in dvc.yaml order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The stage DAG.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The status of every stage, as `dvc status` reports it.
    pub fn status(&self) -> Result<Status> {
        let _lock = RepoLock::acquire(&self.root)?;
        let lockfile = LockFile::load(&self.root)?;
        let mut ws = Workspace::new(&self.root);
        let mut status = Status::default();
        for i in self.graph.plan(&[], false, false) {
            let stage = &self.stages[i];
            let cur = ws.current(stage)?;
            status.stages.push(ws.status(stage, &cur, lockfile.get(&stage.name).as_ref()));
        }
        ws.hasher.save_state()?;
        Ok(status)
    }

    fn resolve_targets(&self, targets: &[String]) -> Result<Vec<usize>> {
        targets
            .iter()
            .map(|t| {
                let name = t.strip_prefix("dvc.yaml:").unwrap_or(t);
                self.stages.iter().position(|s| s.name == name).ok_or_else(|| Error::UnknownStage(t.clone()))
            })
            .collect()
    }

    /// Brings the pipeline up to date like `dvc repro`, writing dvc.lock after each stage.
    pub fn repro(&self, opts: &ReproOptions) -> Result<ReproReport> {
        let targets = self.resolve_targets(&opts.targets)?;
        let _lock = RepoLock::acquire(&self.root)?;
        let mut run = Run {
            root: &self.root,
            lockfile: LockFile::load(&self.root)?,
            ws: Workspace::new(&self.root),
            runcache: RunCache::new(&self.root),
            report: ReproReport::default(),
            opts,
        };
        let plan = self.graph.plan(&targets, opts.downstream, opts.single_item);
        let result = plan.iter().try_for_each(|&i| run.stage(&self.stages[i]));
        run.ws.hasher.save_state()?;
        result.map(|()| run.report)
    }
}

struct Run<'a> {
    root: &'a Path,
    lockfile: LockFile,
    ws: Workspace,
    runcache: RunCache,
    report: ReproReport,
    opts: &'a ReproOptions,
}

impl Run<'_> {
    fn stage(&mut self, stage: &Stage) -> Result<()> {
        if runner::interrupted() {
            return Err(Error::Interrupted(stage.name.clone()));
        }
        let cur = self.ws.current(stage)?;
        let lock = self.lockfile.get(&stage.name);
        let status = self.ws.status(stage, &cur, lock.as_ref());
        if !self.opts.force && !status.is_changed() {
            println!("Stage '{}' didn't change, skipping", stage.name);
            self.report.skipped.push(stage.name.clone());
            return Ok(());
        }
        if self.opts.dry {
            println!("Running stage '{}':", stage.name);
            for line in stage.cmd.lines() {
                println!("> {line}");
            }
            self.report.ran.push(stage.name.clone());
            return Ok(());
        }
        // Again, now that the stages before this one ran: one may have made a symlink.
        confine::check(self.root, stage)?;
        if stage.frozen {
            println!("Verifying outputs in frozen stage: '{}'", stage.name);
        } else {
            for (o, item) in &cur.outs {
                if !o.persist {
                    remove_path(&abs(self.root, &item.rel))?;
                    self.ws.invalidate(&item.rel);
                }
            }
            if !self.opts.force && self.restore(stage, &cur, lock.as_ref(), &status)? {
                println!("Stage '{}' is cached - skipping run, checking out outputs", stage.name);
                self.report.restored.push(stage.name.clone());
            } else {
                self.execute(stage, &cur)?;
                self.report.ran.push(stage.name.clone());
            }
        }
        self.save(stage)
    }

    /// Restores outputs from the cache when the stage's inputs match the lock entry or a
    /// run-cache entry whose outputs are all cached.
    fn restore(
        &mut self,
        stage: &Stage,
        cur: &Current,
        lock: Option<&StageLock>,
        status: &crate::status::StageStatus,
    ) -> Result<bool> {
        if !Workspace::can_run_cache(stage, cur) {
            return Ok(false);
        }
        let inputs_match = !status.command_changed && status.deps.is_empty() && lock.is_some();
        let candidate = match lock {
            Some(l) if inputs_match && l.outs.iter().all(|o| o.md5.is_some()) => Some(l.clone()),
            _ => {
                let key_lock = self.ws.lock_entry(stage, cur)?;
                self.runcache.lookup(&key_lock)?
            }
        };
        let Some(candidate) = candidate else { return Ok(false) };
        let mut plan = Vec::new();
        for (_, item) in &cur.outs {
            let Some(entry) = candidate.outs.iter().find(|e| e.path == item.def_path) else { return Ok(false) };
            let Some(md5) = &entry.md5 else { return Ok(false) };
            if !self.ws.cache.has_all(md5) {
                return Ok(false);
            }
            plan.push((item.rel.clone(), md5.clone(), entry.isexec));
        }
        for (rel, md5, isexec) in plan {
            self.ws.cache.checkout(&md5, &abs(self.root, &rel), isexec)?;
            self.ws.invalidate(&rel);
        }
        Ok(true)
    }

    fn execute(&mut self, stage: &Stage, cur: &Current) -> Result<()> {
        if let Some(d) = cur.deps.iter().find(|d| d.hashed.is_none()) {
            return Err(Error::MissingDependency { stage: stage.name.clone(), path: d.rel.clone() });
        }
        self.ws.lock_entry(stage, cur)?;
        println!("Running stage '{}':", stage.name);
        let wdir = abs(self.root, &crate::fsutil::normalize(&stage.wdir, "."));
        for line in stage.cmd.lines() {
            println!("> {line}");
            runner::run(&stage.name, line, &wdir, self.root, &self.opts.path)?;
        }
        for (_, item) in &cur.outs {
            self.ws.invalidate(&item.rel);
        }
        Ok(())
    }

    /// Hashes the outputs, commits them to the cache and records the stage in dvc.lock and
    /// the run cache.
    fn save(&mut self, stage: &Stage) -> Result<()> {
        // The command may have put a symlink where an output is about to be read and ignored.
        confine::check(self.root, stage)?;
        let cur = self.ws.current(stage)?;
        if let Some((_, item)) = cur.outs.iter().find(|(_, i)| i.hashed.is_none()) {
            return Err(Error::MissingOutput { stage: stage.name.clone(), path: item.rel.clone() });
        }
        let entry = self.ws.lock_entry(stage, &cur)?;
        let run_cache = Workspace::can_run_cache(stage, &cur) && Workspace::saves_run_cache(stage);
        for (o, item) in &cur.outs {
            if !o.cache && !run_cache {
                continue;
            }
            let hashed = item.hashed.as_ref().expect("checked above");
            let hashed = self
                .ws
                .with_contents(&item.rel, hashed)?
                .ok_or_else(|| Error::MissingOutput { stage: stage.name.clone(), path: item.rel.clone() })?;
            self.ws.cache.save(&abs(self.root, &item.rel), &hashed)?;
            if o.cache {
                gitignore::ignore(self.root, &item.rel)?;
            }
        }
        if run_cache {
            self.runcache.save(&entry)?;
        }
        self.lockfile.update(&stage.name, &entry)?;
        println!("Updating lock file 'dvc.lock'");
        Ok(())
    }
}
