//! The `local` trigger: a background worker that runs the retrain command (default
//! `pipeline repro`) one at a time, queueing later triggers.
//!
//! Its status lives in the git-ignored `.pipeline/retrain.json`, so a server and the CLI can
//! both show it; `.pipeline/retrain.lock` keeps runs from two processes from overlapping, and
//! `.pipeline/retrain.log` holds the last run's output.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};

use super::{RetrainRequest, TriggerError};
use crate::fsutil;

/// The status file, relative to the repository root.
pub const STATUS_FILE: &str = ".pipeline/retrain.json";
const LOG_TAIL_BYTES: u64 = 4096;

/// Where the worker is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetrainState {
    #[default]
    Idle,
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// The contents of `.pipeline/retrain.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetrainStatus {
    pub state: RetrainState,
    /// The run this describes (running, or the last finished).
    pub request: Option<RetrainRequest>,
    /// Sub_sets waiting behind it.
    pub queued: Vec<u32>,
    pub command: Vec<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    /// The end of the run's output.
    pub log_tail: String,
    pub updated_at: Option<DateTime<Utc>>,
}

impl RetrainStatus {
    /// Reads the status file of the repository; none yet means idle.
    pub fn read(repo_root: &Path) -> Result<Self, TriggerError> {
        let path = repo_root.join(STATUS_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| TriggerError::Io {
                path,
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(TriggerError::Io { path, source }),
        }
    }
}

/// The background worker; cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalTrigger {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    dir: PathBuf,
    command: Vec<String>,
    queue: Mutex<Worker>,
    idle: Condvar,
}

#[derive(Debug, Default)]
struct Worker {
    pending: VecDeque<RetrainRequest>,
    /// The worker thread is alive.
    running: bool,
    /// A command is executing.
    active: bool,
    status: RetrainStatus,
}

impl LocalTrigger {
    /// `command` is argv; `None` means `pipeline repro` with the `pipeline` binary next to the
    /// current executable.
    pub fn new(repo_root: &Path, command: Option<Vec<String>>) -> Result<Self, TriggerError> {
        let command = match command.filter(|c| !c.is_empty()) {
            Some(c) => c,
            None => default_command()?,
        };
        let status = RetrainStatus { command: command.clone(), ..RetrainStatus::read(repo_root)? };
        let inner = Inner {
            root: repo_root.to_path_buf(),
            dir: repo_root.join(".pipeline"),
            command,
            queue: Mutex::new(Worker { status, ..Worker::default() }),
            idle: Condvar::new(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Queues a run; returns how many runs come before it. Starts the worker when idle.
    pub fn enqueue(&self, request: RetrainRequest) -> Result<usize, TriggerError> {
        let mut worker = self.lock();
        let ahead = worker.pending.len() + usize::from(worker.active);
        worker.pending.push_back(request);
        worker.status.queued = worker.pending.iter().map(|r| r.sub_set).collect();
        if !worker.running {
            worker.status.state = RetrainState::Queued;
        }
        self.inner.write_status(&worker.status)?;
        if !worker.running {
            worker.running = true;
            let me = self.clone();
            std::thread::spawn(move || me.run_queue());
        }
        Ok(ahead)
    }

    /// Blocks until nothing is queued or running; returns the last status.
    pub fn wait_idle(&self) -> RetrainStatus {
        let mut worker = self.lock();
        while worker.running {
            worker = self.inner.idle.wait(worker).unwrap_or_else(PoisonError::into_inner);
        }
        worker.status.clone()
    }

    /// The in-memory status of this worker.
    pub fn status(&self) -> RetrainStatus {
        self.lock().status.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Worker> {
        self.inner.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run_queue(&self) {
        loop {
            let request = {
                let mut guard = self.lock();
                let worker = &mut *guard;
                worker.active = false;
                let Some(request) = worker.pending.pop_front() else {
                    worker.running = false;
                    self.inner.idle.notify_all();
                    return;
                };
                worker.active = true;
                let status = &mut worker.status;
                status.state = RetrainState::Running;
                status.request = Some(request.clone());
                status.queued = worker.pending.iter().map(|r| r.sub_set).collect();
                status.started_at = Some(Utc::now());
                status.finished_at = None;
                status.exit_code = None;
                status.log_tail.clear();
                let _ = self.inner.write_status(&worker.status);
                request
            };
            let (exit_code, log_tail) = self.inner.run(&request);
            let mut worker = self.lock();
            let status = &mut worker.status;
            status.state = if exit_code == Some(0) { RetrainState::Succeeded } else { RetrainState::Failed };
            status.finished_at = Some(Utc::now());
            status.exit_code = exit_code;
            status.log_tail = log_tail;
            let _ = self.inner.write_status(&worker.status);
        }
    }
}

impl Inner {
    fn write_status(&self, status: &RetrainStatus) -> Result<(), TriggerError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TriggerError::Io { path, source }
        };
        fsutil::create_dir_durable(&self.dir).map_err(io(&self.dir))?;
        let status = RetrainStatus { updated_at: Some(Utc::now()), ..status.clone() };
        let text = serde_json::to_vec_pretty(&status).expect("status serializes");
        let path = self.root.join(STATUS_FILE);
        fsutil::replace_durable(&path, &text, &self.dir).map_err(io(&path))
    }

    /// Runs the command once, holding the cross-process run lock; returns the exit code
    /// (`None` if it could not start or was killed) and the log tail.
    fn run(&self, request: &RetrainRequest) -> (Option<i32>, String) {
        let log_path = self.dir.join("retrain.log");
        let result = (|| -> std::io::Result<Option<i32>> {
            let lock =
                OpenOptions::new().create(true).truncate(false).write(true).open(self.dir.join("retrain.lock"))?;
            FileExt::lock_exclusive(&lock)?;
            let log = File::create(&log_path)?;
            let status = Command::new(&self.command[0])
                .args(&self.command[1..])
                .current_dir(&self.root)
                .env("PIPELINE_SUB_SET", request.sub_set.to_string())
                .env("PIPELINE_COUNT", request.count.to_string())
                .env("PIPELINE_COMMIT", request.commit.clone().unwrap_or_default())
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .status()?;
            Ok(status.code())
        })();
        match result {
            Ok(code) => (code, tail(&log_path)),
            Err(e) => (None, format!("cannot run {:?}: {e}", self.command)),
        }
    }
}

fn tail(path: &Path) -> String {
    let Ok(mut file) = File::open(path) else { return String::new() };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn default_command() -> Result<Vec<String>, TriggerError> {
    let exe =
        std::env::current_exe().map_err(|source| TriggerError::Io { path: "current executable".into(), source })?;
    let pipeline = exe.with_file_name(format!("pipeline{}", std::env::consts::EXE_SUFFIX));
    if !pipeline.is_file() {
        return Err(TriggerError::NoCommand { exe });
    }
    let mut argv = vec![pipeline.to_string_lossy().into_owned()];
    argv.extend(super::LOCAL_RETRAIN_ARGS.map(String::from));
    Ok(argv)
}
