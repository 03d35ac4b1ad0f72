//! Shared helpers on top of `testkit`: a publishing repo and the server's clone of its origin,
//! test digits, servers in-process (for `oneshot`) and on a real socket.

use std::io::Cursor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use gitops::model_file::{ModelFile, Sidecar};
use model::Weights;
use model::data::{Mnist, PIXELS, Split};
use model_server::{AppState, Config};
use pipeline::registry::{Action, Registry};
use pipeline::release;
use tch::Device;

/// The MNIST subset shared with the team (`MNIST_DIR`, else `../shared/data/mnist`).
pub fn mnist_dir() -> Option<PathBuf> {
    testkit::shared_mnist()
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    testkit::run(Command::new("git").args(args).current_dir(dir), &format!("git {}", args.join(" "))).trim().to_string()
}

/// A `testkit::PipelineRepo` (the workspace's params.yaml and committed models, and a bare
/// origin) playing the retrain pipeline that publishes models, and `server/`, a clone of the
/// origin that the server serves.
pub struct TestRepo {
    pub publisher: testkit::PipelineRepo,
    pub dir: tempfile::TempDir,
}

impl TestRepo {
    /// `settings` are `(section, key, value)` edits of params.yaml (`testkit`'s `set_param`),
    /// after the test defaults `trigger.kind: none` and `git.coalesce_ms: 20`.
    pub fn new(settings: &[(&str, &str, &str)]) -> Self {
        let publisher = testkit::PipelineRepo::new(None);
        for (section, key, value) in [("trigger", "kind", "none"), ("git", "coalesce_ms", "20")].iter().chain(settings)
        {
            publisher.set_param(section, key, value);
        }
        publisher.git(&["commit", "-q", "-am", "test settings"]);
        publisher.git(&["push", "-q", "origin", "main"]);
        let dir = tempfile::tempdir().unwrap();
        let repo = Self { publisher, dir };
        repo.clone_origin("server");
        repo
    }

    /// Another checkout of the origin (a replica), at `dir/<name>`.
    pub fn clone_origin(&self, name: &str) -> PathBuf {
        git(self.dir.path(), &["clone", "-q", self.origin().to_str().unwrap(), name]);
        let path = self.dir.path().join(name);
        git(&path, &["config", "user.email", "test@localhost"]);
        git(&path, &["config", "user.name", name]);
        path
    }

    pub fn server(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    pub fn origin(&self) -> PathBuf {
        self.publisher.origin.path().to_path_buf()
    }

    pub fn serving_in_registry(&self) -> String {
        Registry::load(&self.server().join("models")).unwrap().serving
    }

    /// Publishes a new version as the promote stage does (`pipeline::release`: install, point
    /// the registry, prune to `promote.keep`, commit, push): the serving model's weights
    /// perturbed by `noise` (of the newest that loads), or (with `corrupt`) weights that do not
    /// match their sha256.
    pub fn publish(&self, noise: f64, corrupt: bool) -> String {
        let root = self.publisher.path();
        let models = root.join("models");
        let registry = Registry::load(&models).unwrap();
        // The newest model that loads (a corrupt one published before is skipped).
        let base = ModelFile::list(&models)
            .unwrap()
            .iter()
            .rev()
            .find_map(|m| m.load(Device::Cpu, &gitops::task::Task::default(), None).ok())
            .unwrap();
        tch::no_grad(|| {
            for (_, mut var) in base.vs.variables() {
                let _ = var.f_add_(&(var.randn_like() * noise)).unwrap();
            }
        });
        let scratch = tempfile::tempdir().unwrap();
        let candidate = ModelFile::fresh(scratch.path(), chrono::Utc::now());
        let sidecar = Sidecar { parent: Some(base.sidecar.version.clone()), ..base.sidecar.clone() };
        let sidecar = candidate.save(&base.vs, sidecar).unwrap();
        let installed = release::install(&models, &candidate, sidecar).unwrap();
        let file = ModelFile::new(&models, &installed.version).unwrap();
        if corrupt {
            let mut bytes = std::fs::read(file.weights_path()).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0x55;
            std::fs::write(file.weights_path(), bytes).unwrap();
        }
        let registry = registry.with_event(Action::Promote, &file.version, "test publish");
        registry.save(&models).unwrap();
        release::prune(&models, &registry, 3).unwrap();
        release::commit_and_push(root, &[Path::new("models")], &format!("Promote {}", file.version)).unwrap();
        file.version
    }
}

pub fn config(repo: &Path, args: &[&str]) -> Config {
    let mut argv =
        vec!["model-server", "--repo", repo.to_str().unwrap(), "--device", "cpu", "--poll-interval", "100ms"];
    argv.extend_from_slice(args);
    Config::parse_from(argv)
}

/// Starts the state and waits until the first model is loaded.
pub fn start(repo: &Path, args: &[&str]) -> AppState {
    let state = AppState::start(&config(repo, args)).unwrap();
    wait_for(Duration::from_secs(30), "the first model to load", || state.ready());
    state
}

pub fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server on a real socket, on its own runtime; dropping it shuts the server down.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Signals shutdown and waits for the server to return.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        self.stop.take().map(|s| s.send(()));
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn serve(state: AppState, request_timeout: Duration) -> Running {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel();
    let served = state.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let shutdown = async move {
                let _ = stopped.await;
            };
            // The grace is the request timeout: a request in flight at shutdown (swap.rs sends
            // 4,000 digits through a debug build) must finish however loaded the machine is.
            model_server::server::serve(listener, served, request_timeout, request_timeout, shutdown).await
        })
    });
    let addr = rx.recv().unwrap();
    Running { addr, state, stop: Some(stop), thread: Some(thread) }
}

/// MNIST test digits as 28x28 PNGs with their labels (the first `n`); `None`, after
/// `testkit` printed why, when the data is truly absent.
pub fn test_digits(n: usize) -> Option<Vec<(Vec<u8>, u8)>> {
    let set = Mnist::load(&mnist_dir()?, Split::Test).unwrap();
    Some((0..n.min(set.len())).map(|i| (png_of(set.image(i)), set.labels[i])).collect())
}

/// `test_digits(n)`, or skip the test (return) when MNIST is absent.
macro_rules! need_digits {
    ($n:expr) => {
        match crate::support::test_digits($n) {
            Some(digits) => digits,
            None => return,
        }
    };
}

/// `test_pixels(n)`, or skip the test (return) when MNIST is absent.
macro_rules! need_pixels {
    ($n:expr) => {
        match crate::support::test_pixels($n) {
            Some(pixels) => pixels,
            None => return,
        }
    };
}

/// Raw 28x28 test pixels and labels (the first `n`).
pub fn test_pixels(n: usize) -> Option<(Vec<u8>, Vec<u8>)> {
    let set = Mnist::load(&mnist_dir()?, Split::Test).unwrap();
    let n = n.min(set.len());
    Some((set.pixels[..n * PIXELS].to_vec(), set.labels[..n].to_vec()))
}

pub fn png_of(pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    model::preprocess::mnist_image(pixels).write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// The value of one sample of a Prometheus text exposition, e.g. `model_server_model_reloads_total{result="success"}`.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}
