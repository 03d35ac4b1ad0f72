//! The pieces of the loop: the workspace's binaries, a server clone with its `model-server`,
//! a client predicting all along, and feedback given the way the web page gives it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Local,
    Github,
}

/// The folder holding the workspace's binaries for this test's profile. `cargo test
/// --workspace` (what `cargo xtask test` runs) builds them all before any test starts; a build
/// from inside a test would wait forever on cargo's lock, so a missing one is a clear failure.
pub fn bins() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let needed = ["pipeline", "model-server", "ingest", "validate", "augment", "finetune", "evaluate", "promote"];
    let missing: Vec<&str> = needed.into_iter().filter(|b| !dir.join(b).is_file()).collect();
    assert!(
        missing.is_empty(),
        "{missing:?} not built in {}: run `cargo build --bins` first (cargo xtask test does)",
        dir.display()
    );
    dir
}

pub fn path_with_bins() -> std::ffi::OsString {
    std::env::join_paths(
        std::iter::once(bins()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap()
}

pub struct Loop {
    pub repo: testkit::PipelineRepo,
    pub base: String,
    server: Child,
    _github: Option<super::fake_github::FakeGithub>,
    mnist: PathBuf,
    /// A plain digit the client keeps predicting.
    sample: Vec<u8>,
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `model-server` on `repo` with the `trigger` kind (stderr to `log`) and waits until it
/// is ready; returns the child and its base URL.
pub fn spawn_server(repo: &Path, trigger: &str, log: &Path) -> (Child, String) {
    let (server, base) = start_server(repo, trigger, log, &[]);
    let start = Instant::now();
    while ureq::get(&format!("{base}/readyz")).call().is_err() {
        assert!(start.elapsed() < Duration::from_secs(120), "model-server did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    (server, base)
}

/// Starts `model-server` on `repo` with the `trigger` kind and `env`, stderr to `log`, without
/// waiting for it; returns the child and its base URL.
pub fn start_server(repo: &Path, trigger: &str, log: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let port = free_port();
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = Command::new(bins().join("model-server"));
    cmd.args(["--repo", repo.to_str().unwrap(), "--port", &port.to_string()])
        .env("PIPELINE_TRIGGER", trigger)
        .env("GITHUB_TOKEN", "test-token")
        .env("PATH", path_with_bins())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log);
    let server = testkit::child::die_with_parent(&mut cmd).spawn().unwrap();
    (server, format!("http://127.0.0.1:{port}"))
}

/// Waits until the server at `base` serves another model than `before` (the retrain the tenth
/// feedback started), at most `limit`; panics with its status and the tail of `log` otherwise.
pub fn wait_for_new_serving(base: &str, before: &str, limit: Duration, log: &Path) -> String {
    let started = Instant::now();
    loop {
        let version = get_json(&format!("{base}/models"))["serving"].as_str().unwrap().to_string();
        if version != before {
            return version;
        }
        if started.elapsed() > limit {
            let status = get_json(&format!("{base}/api/status"));
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("no new model; status {status:#}\nlog tail:\n{}", &log[log.len().saturating_sub(4000)..]);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Makes a bare `origin` in `work` and pushes `repo`'s `main` to it.
pub fn push_to_new_origin(work: &Path, repo: &Path) {
    let origin = work.join("origin.git");
    testkit::run(Command::new("git").args(["init", "-q", "--bare", "-b", "main"]).arg(&origin), "git init --bare");
    let git = |args: &[&str]| testkit::run(Command::new("git").args(args).current_dir(repo), "git");
    git(&["remote", "add", "origin", origin.to_str().unwrap()]);
    git(&["push", "-q", "-u", "origin", "main"]);
}

pub fn post_json(url: &str, body: &serde_json::Value) -> serde_json::Value {
    let mut r = ureq::post(url).content_type("application/json").send(&serde_json::to_vec(body).unwrap()).unwrap();
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

pub fn get_json(url: &str) -> serde_json::Value {
    serde_json::from_str(&ureq::get(url).call().unwrap().body_mut().read_to_string().unwrap()).unwrap()
}

impl Loop {
    pub fn start(mnist: &Path, trigger: Trigger) -> Self {
        let repo = testkit::PipelineRepo::new(Some(mnist));
        let github =
            (trigger == Trigger::Github).then(|| super::fake_github::FakeGithub::start(repo.origin.path(), mnist));
        if let Some(fake) = &github {
            let params = repo.path().join("params.yaml");
            let text = std::fs::read_to_string(&params).unwrap();
            let text = text
                .replace("    owner: \"\"", "    owner: acme")
                .replace("    repo: \"\"", &format!("    repo: digits\n    base_uri: {}", fake.url));
            std::fs::write(&params, text).unwrap();
            repo.git(&["commit", "-q", "-am", "Point the github trigger at the fake API"]);
            repo.git(&["push", "-q", "origin", "main"]);
        }
        let kind = match trigger {
            Trigger::Local => "local",
            Trigger::Github => "github",
        };
        let (server, base) = spawn_server(repo.path(), kind, &repo.path().join(".git/model-server.log"));
        let (_dir, sample) = export(repo.path(), mnist, 0, 1, 0.0);
        let sample = std::fs::read(&sample[0]).unwrap();
        Self { repo, base, server, _github: github, mnist: mnist.to_path_buf(), sample }
    }

    /// The process id of the `model-server` this loop started.
    pub fn server_pid(&self) -> u32 {
        self.server.id()
    }

    pub fn serving(&self) -> String {
        get_json(&format!("{}/models", self.base))["serving"].as_str().unwrap().to_string()
    }

    /// Ten digits turned 50 degrees, predicted then corrected over HTTP like the web page does.
    /// Returns when the tenth feedback was answered.
    pub fn give_ten_feedback(&self) -> Instant {
        give_ten_feedback(&self.base, self.repo.path(), &self.mnist)
    }

    /// Waits until `/predict` answers with a version other than `before`.
    pub fn wait_for_new_model(&self, before: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let version = self.predict_version();
            if version != before {
                return version;
            }
            if start.elapsed() > limit {
                let status = get_json(&format!("{}/api/status", self.base));
                let log = std::fs::read_to_string(self.repo.path().join(".git/model-server.log")).unwrap_or_default();
                panic!(
                    "no new model after {limit:?}; status {status:#}\nserver log tail:\n{}",
                    &log[log.len().saturating_sub(4000)..]
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn predict_version(&self) -> String {
        let mut r = ureq::post(&format!("{}/predict", self.base)).content_type("image/png").send(&self.sample).unwrap();
        let p: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        p["model_version"].as_str().unwrap().to_string()
    }

    /// A client predicting in a loop until stopped; counts answers and failures.
    pub fn background_load(&self) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (s, o, f, url) = (stop.clone(), ok.clone(), failed.clone(), format!("{}/predict", self.base));
        let png = self.sample.clone();
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match ureq::post(&url).content_type("image/png").send(&png) {
                    Ok(r) if r.status() == 200 => o.fetch_add(1, Ordering::Relaxed),
                    _ => f.fetch_add(1, Ordering::Relaxed),
                };
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Load { stop, ok, failed, handle: Some(handle) }
    }

    pub fn origin_log(&self) -> String {
        testkit::run(
            Command::new("git").args(["log", "--format=%s", "main"]).current_dir(self.repo.origin.path()),
            "git log origin",
        )
    }
}

/// Ten MNIST digits turned 50 degrees (which the base model gets wrong), predicted then
/// corrected over HTTP like the web page does, against the server at `base` on `repo`.
/// Returns when the tenth feedback, which seals the sub_set, was answered.
pub fn give_ten_feedback(base: &str, repo: &Path, mnist: &Path) -> Instant {
    let (_dir, pngs) = export(repo, mnist, 300, 10, 50.0);
    let mut answer = serde_json::Value::Null;
    for png in &pngs {
        let label: u64 = png.file_stem().unwrap().to_str().unwrap().split('_').nth(1).unwrap().parse().unwrap();
        let mut r = ureq::post(&format!("{base}/predict"))
            .content_type("image/png")
            .send(&std::fs::read(png).unwrap())
            .unwrap();
        let p: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        let kind = if p["digit"].as_u64() == Some(label) { "correct" } else { "wrong" };
        let body = serde_json::json!({"request_id": p["request_id"], "label": label, "kind": kind});
        let mut r = ureq::post(&format!("{base}/feedback"))
            .content_type("application/json")
            .send(&serde_json::to_vec(&body).unwrap())
            .unwrap();
        answer = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    }
    assert_eq!(answer["retrain_triggered"], true, "the tenth sample seals the sub_set: {answer}");
    Instant::now()
}

/// `count` digits of the test split from `skip` on, turned `rotate` degrees, as PNG files.
fn export(repo: &Path, mnist: &Path, skip: usize, count: usize, rotate: f64) -> (tempfile::TempDir, Vec<PathBuf>) {
    let out = tempfile::tempdir().unwrap();
    testkit::run(
        Command::new(bins().join("pipeline"))
            .args([
                "--repo",
                repo.to_str().unwrap(),
                "data",
                "export",
                "--count",
                &count.to_string(),
                "--skip",
                &skip.to_string(),
            ])
            .args(["--rotate", &rotate.to_string(), "--data"])
            .arg(mnist)
            .arg("--out")
            .arg(out.path()),
        "pipeline data export",
    );
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().path()).collect();
    pngs.sort();
    assert_eq!(pngs.len(), count);
    (out, pngs)
}

pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        (self.ok.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}
