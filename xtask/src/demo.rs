//! `cargo xtask demo`, the README's main command, on embedded defaults: set up, build, get
//! MNIST, then run the whole GitOps loop on this machine — a fresh repo scaffolded by
//! `pipeline init` with a bare `origin`, a `model-server` following it with the `local`
//! trigger, ten pieces of feedback on turned digits the base model gets wrong, the retrain
//! DAG, and the server hot-swapping to the promoted model.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::setup;

pub fn run() -> Result<()> {
    setup::run()?;
    let root = setup::repo_root();
    cargo(&root, &["build", "--bins"], &[])?;
    let bin = root.join("target/debug");
    let pipeline = bin.join("pipeline");
    fetch_mnist(&root)?;

    let demo = root.join("target/demo");
    if demo.exists() {
        std::fs::remove_dir_all(&demo).with_context(|| format!("clearing {}", demo.display()))?;
    }
    let (origin, repo) = (demo.join("origin.git"), demo.join("repo"));
    git(&demo, &["init", "-q", "--bare", "-b", "main", path_str(&origin)?], true)?;
    step(&pipeline, &root, &["init".into(), repo.display().to_string()])?;
    std::fs::create_dir_all(repo.join("data"))?;
    std::os::unix::fs::symlink(root.join("data/mnist"), repo.join("data/mnist"))?;
    for args in [
        &["config", "user.name", "mnist-gitops demo"][..],
        &["config", "user.email", "demo@localhost"],
        &["add", "-A"],
        &["commit", "-q", "-m", "Scaffold with pipeline init"],
        &["remote", "add", "origin", path_str(&origin)?],
        &["push", "-q", "-u", "origin", "main"],
    ] {
        git(&repo, args, false)?;
    }

    let digits = demo.join("digits");
    step(
        &pipeline,
        &root,
        &[
            "data".into(),
            "export".into(),
            "--count".into(),
            "10".into(),
            "--skip".into(),
            "300".into(),
            "--rotate".into(),
            "50".into(),
            "--out".into(),
            digits.display().to_string(),
        ],
    )?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    eprintln!("$ model-server --repo {} --port {port}   (trigger: local)", repo.display());
    let server = Server(
        testkit::child::die_with_parent(&mut Command::new(bin.join("model-server")))
            .args(["--repo", path_str(&repo)?, "--port", &port.to_string()])
            .env("PIPELINE_TRIGGER", "local")
            .stdout(Stdio::null())
            .spawn()
            .context("starting model-server")?,
    );
    wait_until(Duration::from_secs(60), || Ok(ureq::get(&format!("{base}/readyz")).call().is_ok()))?;
    let before = serving(&base)?;
    eprintln!("serving {before}; open {base}/ in a browser to see the page");

    let mut pngs: Vec<PathBuf> = std::fs::read_dir(&digits)?.filter_map(|e| Some(e.ok()?.path())).collect();
    pngs.sort();
    let mut tenth = Instant::now();
    for png in &pngs {
        let label: u8 =
            png.file_stem().and_then(|s| s.to_str()?.split('_').nth(1)?.parse().ok()).context("digit file name")?;
        let p = json(ureq::post(&format!("{base}/predict")).content_type("image/png").send(&std::fs::read(png)?)?)?;
        let kind = if p["digit"].as_u64() == Some(label as u64) { "correct" } else { "wrong" };
        let body = serde_json::json!({"request_id": p["request_id"], "label": label, "kind": kind});
        let fb = json(
            ureq::post(&format!("{base}/feedback"))
                .content_type("application/json")
                .send(&serde_json::to_vec(&body)?)?,
        )?;
        tenth = Instant::now();
        println!(
            "{}: predicted {} ({kind}), {} / {} toward the next retrain",
            png.display(),
            p["digit"],
            fb["current_count"],
            fb["threshold"]
        );
    }
    eprintln!("ten samples given: the local trigger runs the retrain workflow's steps; waiting for the result");
    wait_until(Duration::from_secs(900), || {
        let status = json(ureq::get(&format!("{base}/api/status")).call()?)?;
        let state = status["retrain"]["state"].as_str().unwrap_or_default().to_string();
        // A rejection ends the wait; a promotion ends it once the server hot-swapped.
        let rejected = state == "succeeded" && status["decision"]["promoted"] == false;
        Ok(serving(&base)? != before || state == "failed" || rejected)
    })?;
    let status = json(ureq::get(&format!("{base}/api/status")).call()?)?;
    let after = serving(&base)?;
    drop(server);
    println!("retrain: {}", status["retrain"]["state"]);
    if let Some(reasons) = status["decision"]["reasons"].as_array() {
        reasons.iter().for_each(|r| println!("  {}", r.as_str().unwrap_or_default()));
    }
    if after == before {
        println!("the base model {before} keeps serving");
    } else {
        println!("now serving {after} (was {before}), {:.1} s after the tenth feedback", tenth.elapsed().as_secs_f64());
    }
    println!("the demo repo is {}; its history: git -C {} log --oneline", repo.display(), repo.display());
    Ok(())
}

/// Stops the server when the demo ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn serving(base: &str) -> Result<String> {
    let models = json(ureq::get(&format!("{base}/models")).call()?)?;
    Ok(models["serving"].as_str().unwrap_or_default().to_string())
}

fn json(mut response: ureq::http::Response<ureq::Body>) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&response.body_mut().read_to_string()?)?)
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done().unwrap_or(false) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!("gave up after {} s", limit.as_secs())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("paths must be UTF-8")
}

fn git(dir: &Path, args: &[&str], create: bool) -> Result<()> {
    if create {
        std::fs::create_dir_all(dir)?;
    }
    let status = Command::new("git").args(args).current_dir(dir).status().context("running git")?;
    if !status.success() {
        bail!("git {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// `MNIST_DIR`, or the team's shared copy next to the checkout — or next to the checkout this
/// one was cloned from, for a throwaway clone of a local repo — when present.
pub fn local_mnist(root: &Path) -> Option<PathBuf> {
    let origin = Command::new("git").args(["remote", "get-url", "origin"]).current_dir(root).output().ok();
    let origin =
        origin.filter(|o| o.status.success()).map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let candidates =
        [std::env::var_os("MNIST_DIR").map(PathBuf::from), root.parent().map(|p| p.join("shared/data/mnist"))];
    let from_origin = origin.filter(|o| o.is_dir()).and_then(|o| Some(o.parent()?.join("shared/data/mnist")));
    candidates.into_iter().chain([from_origin]).flatten().find(|d| d.join("train-images-idx3-ubyte.gz").is_file())
}

/// `pipeline data fetch` into the workspace's `data/mnist` (checksum-verified; copied from the
/// local copy when there is one, else downloaded); returns that folder.
pub fn fetch_mnist(root: &Path) -> Result<PathBuf> {
    cargo(root, &["build", "--quiet", "--package", "pipeline", "--bin", "pipeline"], &[])?;
    let mut fetch = vec!["data".to_string(), "fetch".into()];
    if let Some(dir) = local_mnist(root) {
        fetch.extend(["--from".into(), dir.display().to_string()]);
    }
    step(&root.join("target/debug/pipeline"), root, &fetch)?;
    Ok(root.join("data/mnist"))
}

/// Runs cargo in the workspace with extra environment variables.
pub fn cargo(root: &Path, args: &[&str], env: &[(&str, std::ffi::OsString)]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(root)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn step(bin: &Path, root: &Path, args: &[String]) -> Result<()> {
    eprintln!("$ pipeline {}", args.join(" "));
    let status = Command::new(bin)
        .args(args)
        .current_dir(root)
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    if !status.success() {
        bail!("pipeline {} failed ({status})", args.join(" "));
    }
    Ok(())
}
