//! Helpers for the browser tests: Debian's Chromium and chromedriver (installed with apt-get when
//! missing), a temporary pipeline repository with a bare `origin`, a real `model-server` on
//! loopback, and a WebDriver session (fantoccini) with waits, strokes and screenshots.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PenActions, PointerAction};
use fantoccini::{Client, ClientBuilder, Locator};
use gitops::model_file::ModelFile;
use model::data::{Mnist, Split};
use pipeline::registry::{Action, Registry};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const ADMIN_TOKEN: &str = "admin-secret-for-ui-tests";

/// The workspace root (the folder above `server/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("server/ has a parent").to_path_buf()
}

/// Where the tests leave their screenshots for a person to look at.
pub fn screenshot_dir() -> PathBuf {
    let dir = workspace_root().join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).expect("create target/ui-screenshots");
    dir
}

/// One browser test at a time: each runs Chromium and a model-server, and the machine is small.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

// ---------------------------------------------------------------- Chromium

/// Installs Debian's `chromium` and `chromium-driver` when either binary is missing.
pub fn ensure_chromium() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
            return Ok(());
        }
        eprintln!("browser tests: {CHROMIUM} or {CHROMEDRIVER} is missing; installing chromium and chromium-driver with apt-get");
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .map_err(|e| format!("could not run apt-get {}: {e}", args.join(" ")))
                .and_then(|s| if s.success() { Ok(()) } else { Err(format!("apt-get {} failed with {s}", args.join(" "))) })
        };
        apt(&["update", "-qq"])?;
        apt(&["install", "-y", "-qq", "chromium", "chromium-driver"])?;
        if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
            Ok(())
        } else {
            Err(format!("apt-get finished but {CHROMIUM} or {CHROMEDRIVER} is still missing"))
        }
    });
    if let Err(e) = result {
        panic!(
            "the browser tests need Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}) and could not install them: {e}\n\
             install them by hand with `apt-get install chromium chromium-driver` (as root)"
        );
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind a free loopback port").port()
}

/// A plain HTTP/1.0 GET on loopback: the status code and body, or None when nothing listens.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut bytes = Vec::new();
    // A server that keeps the connection open anyway still gave us what it sent.
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string());
    Some((status, body))
}

/// A child process that is killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Headless Chromium driven through chromedriver on a free port, with a fresh profile.
pub struct Browser {
    pub client: Client,
    pub base_url: String,
    session: String,
    driver_port: u16,
    _driver: Killed,
    _profile: TempDir,
}

impl Drop for Browser {
    /// Ends the WebDriver session (which quits Chromium) even when a test panicked before
    /// `close`; killing chromedriver alone would leave Chromium running.
    fn drop(&mut self) {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.driver_port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                self.session
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }
}

impl Browser {
    pub async fn start(base_url: &str, width: u32, height: u32) -> Self {
        ensure_chromium();
        let port = free_port();
        let driver = testkit::child::die_with_parent(&mut Command::new(CHROMEDRIVER))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"));
        let driver = Killed(driver);
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(port, "/status").is_none_or(|(status, _)| status != 200) {
            assert!(Instant::now() < deadline, "chromedriver did not answer on port {port} within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("temp Chromium profile");
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--hide-scrollbars".into(),
            "--force-device-scale-factor=1".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("open a WebDriver session in headless Chromium");
        client.set_window_size(width, height).await.expect("set the window size");
        let session = client.session_id().await.ok().flatten().unwrap_or_default();
        Self { client, base_url: base_url.to_string(), session, driver_port: port, _driver: driver, _profile: profile }
    }

    /// Opens the page and waits until its first status poll has answered.
    pub async fn open(&self) {
        self.client.goto(&format!("{}/", self.base_url)).await.expect("open the page");
        self.wait(
            "the page's first status poll",
            "return document.querySelector('#server-chip').dataset.state === 'ok'",
            20,
        )
        .await;
    }

    /// Runs `script` (which may use `arguments`) and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns something truthy, and returns it; on timeout saves a
    /// screenshot and panics saying what was awaited.
    pub async fn wait(&self, what: &str, script: &str, seconds: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let value = self.js(script, vec![]).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let name = format!("FAILED-{}", what.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
                let path = self.screenshot(&name, true).await;
                let errors = self.js(ERRORS_JS, vec![]).await;
                panic!(
                    "timed out after {seconds} s waiting for {what}; visible errors on the page: {errors}; screenshot {}",
                    path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks like a person would: scrolled to the middle of the screen, clear of the sticky header.
    pub async fn click(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        self.js(
            "arguments[0].scrollIntoView({block: 'center'})",
            vec![serde_json::to_value(&element).expect("element as JSON")],
        )
        .await;
        element.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        element.clear().await.unwrap_or_else(|e| panic!("clear {css}: {e}"));
        element.send_keys(text).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// The element's text; found again when the page re-rendered it between the find and the
    /// read (a stale element), as the Models card does on every refresh.
    pub async fn text(&self, css: &str) -> String {
        for _ in 0..10 {
            let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
            match element.text().await {
                Ok(text) => return text,
                Err(e) if e.to_string().contains("stale element") => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("text of {css}: {e}"),
            }
        }
        panic!("text of {css}: the element went stale ten times in a row")
    }

    /// Draws one stroke through `points` (offsets in CSS pixels from the element's centre) with
    /// a mouse, or with a pen when `pen` is set.
    pub async fn stroke(&self, css: &str, points: &[(f64, f64)], pen: bool) {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        let step = Some(Duration::from_millis(30));
        let mut actions = vec![
            PointerAction::MoveToElement {
                element: element.clone(),
                duration: Some(Duration::ZERO),
                x: points[0].0,
                y: points[0].1,
            },
            PointerAction::Down { button: MOUSE_BUTTON_LEFT },
        ];
        actions.extend(points[1..].iter().map(|&(x, y)| PointerAction::MoveToElement {
            element: element.clone(),
            duration: step,
            x,
            y,
        }));
        actions.push(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
        let result = if pen {
            let seq = actions.into_iter().fold(PenActions::new("pen".into()), |seq, a| seq.then(a));
            self.client.perform_actions(seq).await
        } else {
            let seq = actions.into_iter().fold(MouseActions::new("mouse".into()), |seq, a| seq.then(a));
            self.client.perform_actions(seq).await
        };
        result.unwrap_or_else(|e| panic!("draw on {css}: {e}"));
    }

    /// Saves a PNG screenshot under target/ui-screenshots/; `full_page` grows the window to the
    /// page's height first (and restores it).
    pub async fn screenshot(&self, name: &str, full_page: bool) -> PathBuf {
        let (width, height) = self.viewport().await;
        if full_page {
            self.js("window.scrollTo(0, 0)", vec![]).await;
            let full =
                self.js("return document.documentElement.scrollHeight", vec![]).await.as_u64().unwrap_or(height as u64);
            self.client.set_window_size(width, full.max(height as u64) as u32).await.expect("grow the window");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let png = self.client.screenshot().await.expect("take a screenshot");
        if full_page {
            self.client.set_window_size(width, height).await.expect("restore the window");
        }
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Saves a screenshot of one element.
    pub async fn screenshot_of(&self, css: &str, name: &str) -> PathBuf {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        self.js(
            "arguments[0].scrollIntoView({block: 'start'})",
            vec![serde_json::to_value(&element).expect("element as JSON")],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let png = element.screenshot().await.expect("take an element screenshot");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        eprintln!("screenshot: {}", path.display());
        path
    }

    pub async fn viewport(&self) -> (u32, u32) {
        let v = self.js("return [window.innerWidth, window.innerHeight]", vec![]).await;
        (v[0].as_u64().unwrap_or(1280) as u32, v[1].as_u64().unwrap_or(900) as u32)
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// Every visible error message on the page, for failure reports.
const ERRORS_JS: &str = "return Array.from(document.querySelectorAll('.form-error, .banner, .toast'))\
    .filter(e => !e.hidden && e.offsetParent !== null).map(e => e.textContent.trim()).join(' | ')";

// ---------------------------------------------------------------- the repository

/// MNIST's test split; `None` only when it is missing and skipping is allowed
/// (`testkit::shared_mnist` fails the test under CI).
pub fn mnist_test() -> Option<Mnist> {
    let dir = testkit::shared_mnist()?;
    Some(Mnist::load(&dir, Split::Test).unwrap_or_else(|e| panic!("load MNIST from {}: {e}", dir.display())))
}

/// A 28x28 PNG of MNIST test digit `index`, and its label.
pub fn mnist_png(data: &Mnist, index: usize) -> (Vec<u8>, u8) {
    let image = model::preprocess::mnist_image(data.image(index));
    let mut png = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).expect("encode a PNG");
    (png, data.labels[index])
}

/// A pipeline repository in a temp folder: params.yaml and models/ from the workspace, committed
/// on `main` and pushed to a bare `origin` beside it.
pub struct Repo {
    pub root: PathBuf,
    pub base_version: String,
    _dir: TempDir,
}

impl Repo {
    pub fn new() -> Self {
        let models = base_models();
        let dir = tempfile::tempdir().expect("temp repo folder");
        let root = dir.path().join("work");
        let origin = dir.path().join("origin.git");
        std::fs::create_dir_all(root.join("models")).expect("create models/");
        std::fs::copy(workspace_root().join("params.yaml"), root.join("params.yaml")).expect("copy params.yaml");
        let registry = Registry::load(&models).expect("the base models' registry");
        let base_version = registry.serving.clone();
        let base = ModelFile::new(&models, &base_version).expect("the serving version's name");
        for path in [base.weights_path(), base.sidecar_path(), Registry::path(&models)] {
            std::fs::copy(&path, root.join("models").join(path.file_name().expect("a file name")))
                .expect("copy a model file");
        }
        git2::Repository::init_bare(&origin).expect("init the bare origin");
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        let repo = git2::Repository::init_opts(&root, &opts).expect("init the repo");
        repo.remote("origin", origin.to_str().expect("a UTF-8 path")).expect("add origin");
        let this = Self { root, base_version, _dir: dir };
        this.commit_and_push("pipeline repository for the browser tests");
        this
    }

    /// A tabular repository: `pipeline init --example iris` (Fisher's Iris, the `mlp` trained on
    /// it), pushed to a bare origin.
    pub fn iris() -> Self {
        let pipeline = Path::new(env!("CARGO_BIN_EXE_model-server")).with_file_name("pipeline");
        assert!(
            pipeline.is_file(),
            "{} is missing: cargo build -p pipeline (cargo test --workspace builds it)",
            pipeline.display()
        );
        let dir = tempfile::tempdir().expect("temp repo folder");
        let root = dir.path().join("work");
        let origin = dir.path().join("origin.git");
        let out = Command::new(&pipeline)
            .arg("init")
            .arg(&root)
            .args(["--example", "iris"])
            .env("PIPELINE_TRIGGER", "none")
            .output()
            .expect("run pipeline init");
        assert!(out.status.success(), "pipeline init --example iris: {}", String::from_utf8_lossy(&out.stderr));
        git2::Repository::init_bare(&origin).expect("init the bare origin");
        let repo = git2::Repository::open(&root).expect("the scaffolded repo");
        repo.remote("origin", origin.to_str().expect("a UTF-8 path")).expect("add origin");
        let head = repo.head().expect("a first commit").name().expect("a branch").to_string();
        repo.find_remote("origin").expect("origin").push(&[format!("{head}:refs/heads/main")], None).expect("push");
        let base_version = Registry::load(&root.join("models")).expect("the registry init wrote").serving;
        Self { root, base_version, _dir: dir }
    }

    /// Adds a second version: the base model's weights under a later timestamp, with a
    /// slightly better accuracy in its sidecar, promoted in the registry; commits and pushes.
    pub fn add_second_version(&self) -> String {
        let models = self.root.join("models");
        let base = ModelFile::new(&models, &self.base_version).expect("base version");
        let mut sidecar = base.read_sidecar().expect("base sidecar");
        let created: DateTime<Utc> = sidecar.created_at.max(base.timestamp()) + chrono::Duration::hours(2);
        let next = ModelFile::fresh(&models, created);
        std::fs::copy(base.weights_path(), next.weights_path()).expect("copy the weights");
        sidecar.version = next.version.clone();
        sidecar.weights = format!("{}.safetensors", next.version);
        sidecar.parent = Some(self.base_version.clone());
        sidecar.created_at = created;
        if let Some(acc) = sidecar.metrics.get_mut("base_test_accuracy") {
            *acc = (*acc + 0.0015).min(1.0);
        }
        let text = serde_json::to_vec_pretty(&sidecar).expect("sidecar as JSON");
        std::fs::write(next.sidecar_path(), text).expect("write the sidecar");
        Registry::load(&models)
            .expect("registry")
            .with_event(Action::Promote, &next.version, "browser test: a second version to roll back from")
            .save(&models)
            .expect("save the registry");
        self.commit_and_push(&format!("promote {}", next.version));
        next.version
    }

    pub fn serving(&self) -> String {
        Registry::load(&self.root.join("models")).expect("registry").serving
    }

    /// Every feedback PNG under new_data/, as paths relative to it.
    pub fn feedback_pngs(&self) -> Vec<PathBuf> {
        self.feedback_files("png")
    }

    /// Every feedback sample with extension `ext` under new_data/, as paths relative to it.
    pub fn feedback_files(&self, ext: &str) -> Vec<PathBuf> {
        fn walk(dir: &Path, base: &Path, ext: &str, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, base, ext, out);
                } else if path.extension().is_some_and(|e| e == ext) && path.file_stem().is_some_and(|s| s.len() == 64)
                {
                    out.push(path.strip_prefix(base).expect("under new_data").to_path_buf());
                }
            }
        }
        let base = self.root.join("new_data");
        let mut out = Vec::new();
        walk(&base, &base, ext, &mut out);
        out.sort();
        out
    }

    pub fn commit_and_push(&self, message: &str) {
        let repo = git2::Repository::open(&self.root).expect("open the repo");
        let mut index = repo.index().expect("index");
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).expect("git add");
        index.write().expect("write the index");
        let tree = repo.find_tree(index.write_tree().expect("write tree")).expect("tree");
        let sig = git2::Signature::now("browser test", "browser-test@localhost").expect("signature");
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents).expect("commit");
        repo.find_remote("origin")
            .expect("origin")
            .push(&["refs/heads/main:refs/heads/main"], None)
            .expect("push to origin");
    }
}

/// The workspace's committed models/ folder (the base model and its registry).
fn base_models() -> PathBuf {
    let models = workspace_root().join("models");
    assert!(
        Registry::path(&models).exists(),
        "{} is missing: the browser tests serve the committed base model (make one with `pipeline train-base`)",
        Registry::path(&models).display()
    );
    models
}

// ---------------------------------------------------------------- the server

/// `model-server` running on a free loopback port over a `Repo`, killed when dropped.
pub struct Server {
    pub url: String,
    child: Option<Killed>,
    log: PathBuf,
}

impl Server {
    /// Starts the built binary with the retrain trigger off and the admin token set, plus
    /// `extra_env`, and waits until /readyz answers 200.
    pub fn start(repo: &Repo, extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = repo.root.parent().expect("repo has a parent").join(format!("model-server-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("server log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_model-server"));
        testkit::child::die_with_parent(&mut command)
            .arg("--port")
            .arg(port.to_string())
            .arg("--repo")
            .arg(&repo.root)
            .current_dir(&repo.root)
            .env("PIPELINE_TRIGGER", "none")
            .env("MODEL_SERVER_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("MODEL_SERVER_POLL_INTERVAL", "1s")
            .env("MODEL_SERVER_DEVICE", "cpu")
            .env("RUST_LOG", "info")
            .stdout(log_file.try_clone().expect("clone the log handle"))
            .stderr(log_file);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = Killed(command.spawn().expect("start model-server"));
        let mut server = Self { url: format!("http://127.0.0.1:{port}"), child: Some(child), log };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if http_get(port, "/readyz").is_some_and(|(status, _)| status == 200) {
                return server;
            }
            if let Some(Killed(child)) = server.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("model-server exited with {status} before it was ready:\n{}", server.log_text());
            }
            assert!(Instant::now() < deadline, "model-server was not ready within 120 s:\n{}", server.log_text());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the server (to see the page cope with it being gone).
    pub fn stop(&mut self) {
        self.child.take();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
