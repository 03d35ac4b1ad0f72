//! The `local` trigger: a background worker that runs the retrain command (default
//! `pipeline ci run retrain`) one at a time, queueing later triggers.
//!
//! The queue is durable: `.pipeline/retrain-queue.json` (git-ignored) holds every run not
//! finished yet, and a run leaves it only once it ended, so a run whose process was killed
//! before or during it is run by the next worker (the server's at its start, the next CLI add).
//! `.pipeline/retrain.lock` keeps runs from two processes from overlapping, and a worker picks,
//! runs and removes a run under it. The status lives in `.pipeline/retrain.json`, so a server
//! and the CLI can both show it, and `.pipeline/retrain.log` holds the last run's output.

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
/// In `.pipeline/`: the runs not finished yet, oldest first, and the OS locks on it and on runs.
const QUEUE_FILE: &str = "retrain-queue.json";
const QUEUE_LOCK: &str = "retrain-queue.lock";
const RUN_LOCK: &str = "retrain.lock";
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
    worker: Mutex<Worker>,
    idle: Condvar,
}

#[derive(Debug, Default)]
struct Worker {
    /// The worker thread of this process is alive.
    running: bool,
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
            worker: Mutex::new(Worker { status, ..Worker::default() }),
            idle: Condvar::new(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Queues a run (durably: it survives this process); returns how many runs come before it.
    /// A sub_set already queued is not queued twice. Starts the worker when idle.
    pub fn enqueue(&self, request: RetrainRequest) -> Result<usize, TriggerError> {
        let (ahead, queued) = self.inner.with_queue(|q| {
            let ahead = q.iter().position(|r| r.sub_set == request.sub_set).unwrap_or_else(|| {
                q.push(request.clone());
                q.len() - 1
            });
            (ahead, q.iter().map(|r| r.sub_set).collect::<Vec<_>>())
        })?;
        let mut worker = self.lock();
        if !worker.running {
            worker.status.state = RetrainState::Queued;
            worker.status.queued = queued;
            self.inner.write_status(&worker.status)?;
        }
        self.start(&mut worker);
        Ok(ahead)
    }

    /// Starts the worker when the queue holds runs that a process which ended (killed, say)
    /// never finished; returns whether the worker is running.
    pub fn resume(&self) -> Result<bool, TriggerError> {
        let pending = self.inner.with_queue(|q| !q.is_empty())?;
        let mut worker = self.lock();
        if pending {
            self.start(&mut worker);
        }
        Ok(worker.running)
    }

    fn start(&self, worker: &mut Worker) {
        if !worker.running {
            worker.running = true;
            let me = self.clone();
            std::thread::spawn(move || me.run_queue());
        }
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
        self.inner.worker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the queue's first run until the queue is empty. A run is picked, run and taken off
    /// the queue under the cross-process run lock, so no two workers run the same one, and the
    /// run of a worker killed midway stays queued for the next.
    fn run_queue(&self) {
        loop {
            let picked = self.inner.run_lock().and_then(|lock| {
                let mut worker = self.lock();
                let next = self.inner.with_queue(|q| q.first().cloned())?;
                if next.is_none() {
                    worker.running = false;
                    self.inner.idle.notify_all();
                }
                Ok(next.map(|request| (lock, request)))
            });
            let (lock, request) = match picked {
                Ok(Some(picked)) => picked,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!("the local retrain worker stops: {e}");
                    let mut worker = self.lock();
                    worker.running = false;
                    self.inner.idle.notify_all();
                    return;
                }
            };
            {
                let mut worker = self.lock();
                let status = &mut worker.status;
                status.state = RetrainState::Running;
                status.request = Some(request.clone());
                status.started_at = Some(Utc::now());
                status.finished_at = None;
                status.exit_code = None;
                status.log_tail.clear();
                let _ = self.inner.write_status(&worker.status);
            }
            let (exit_code, log_tail) = self.inner.run(&request);
            let queued = self.inner.with_queue(|q| {
                if let Some(i) = q.iter().position(|r| r == &request) {
                    q.remove(i);
                }
                q.iter().map(|r| r.sub_set).collect()
            });
            let mut worker = self.lock();
            let status = &mut worker.status;
            status.state = if exit_code == Some(0) { RetrainState::Succeeded } else { RetrainState::Failed };
            status.finished_at = Some(Utc::now());
            status.exit_code = exit_code;
            status.log_tail = log_tail;
            status.queued = queued.unwrap_or_default();
            let _ = self.inner.write_status(&worker.status);
            drop(lock);
        }
    }
}

impl Inner {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TriggerError + '_ {
        move |source| TriggerError::Io { path: path.to_path_buf(), source }
    }

    fn write_status(&self, status: &RetrainStatus) -> Result<(), TriggerError> {
        fsutil::create_dir_durable(&self.dir).map_err(Self::io(&self.dir))?;
        let status = RetrainStatus { updated_at: Some(Utc::now()), ..status.clone() };
        let text = serde_json::to_vec_pretty(&status).expect("status serializes");
        let path = self.root.join(STATUS_FILE);
        fsutil::replace_durable(&path, &text, &self.dir).map_err(Self::io(&path))
    }

    /// Takes the OS lock that lets one run at a time happen, across processes.
    fn run_lock(&self) -> Result<File, TriggerError> {
        fsutil::create_dir_durable(&self.dir).map_err(Self::io(&self.dir))?;
        let path = self.dir.join(RUN_LOCK);
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(Self::io(&path))?;
        FileExt::lock_exclusive(&lock).map_err(Self::io(&path))?;
        Ok(lock)
    }

    /// Runs `f` on the durable queue under its OS lock, and writes the queue back when `f`
    /// changed it.
    fn with_queue<T>(&self, f: impl FnOnce(&mut Vec<RetrainRequest>) -> T) -> Result<T, TriggerError> {
        fsutil::create_dir_durable(&self.dir).map_err(Self::io(&self.dir))?;
        let lock_path = self.dir.join(QUEUE_LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Self::io(&lock_path))?;
        FileExt::lock_exclusive(&lock).map_err(Self::io(&lock_path))?;
        let path = self.dir.join(QUEUE_FILE);
        let before: Vec<RetrainRequest> = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::error!(path = %path.display(), "unreadable retrain queue, starting afresh: {e}");
                Vec::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(TriggerError::Io { path, source }),
        };
        let mut queue = before.clone();
        let out = f(&mut queue);
        if queue != before {
            let text = serde_json::to_vec_pretty(&queue).expect("the queue serializes");
            fsutil::replace_durable(&path, &text, &self.dir).map_err(Self::io(&path))?;
        }
        Ok(out)
    }

    /// Runs the command once (the caller holds the run lock); returns the exit code (`None`
    /// if it could not start or was killed) and the log tail.
    fn run(&self, request: &RetrainRequest) -> (Option<i32>, String) {
        let log_path = self.dir.join("retrain.log");
        let result = (|| -> std::io::Result<Option<i32>> {
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
