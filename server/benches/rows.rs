//! `cargo xtask bench rows`: `/predict` of one tabular row (the Iris example's `mlp`) at
//! concurrency 1, 8 and 32 with `wrk`, against a FastAPI + uvicorn + PyTorch server of the same
//! MLP on the same model files (`xtask/bench/tabular_peer.py`, when `PEER_PYTHON` names a Python
//! with fastapi, uvicorn, safetensors and torch; `PEER_PYTHONPATH` optionally adds torch), and
//! the model's in-process batch-1 forward, in the same run.
//!
//! `PIPELINE_BIN` (set by xtask) is the release `pipeline` that makes the Iris repo.
//! `BENCH_SECONDS` (default 10) per load run, `BENCH_RUNS` (default 5, ours and the peer's taking turns; medians are reported).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{cpus, env_or, load_levels, spawn_server, spawn_uvicorn, stop};
use gitops::model_file::ModelFile;
use model::{Classifier, Weights};
use pipeline::registry::Registry;

/// One Iris row, as the page sends it.
const ROW: &str = r#"{"features": {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}}"#;

fn main() {
    let seconds = env_or("BENCH_SECONDS", 10);
    let runs = env_or("BENCH_RUNS", 5) as usize;
    let pipeline = std::env::var_os("PIPELINE_BIN").expect("run it through `cargo xtask bench rows` (PIPELINE_BIN)");
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("iris");
    let made = Command::new(pipeline)
        .arg("init")
        .arg(&repo)
        .args(["--example", "iris"])
        .env("PIPELINE_TRIGGER", "none")
        .output()
        .unwrap();
    assert!(made.status.success(), "pipeline init --example iris: {}", String::from_utf8_lossy(&made.stderr));
    let lua = work.path().join("post.lua");
    std::fs::write(
        &lua,
        format!("wrk.method = \"POST\"\nwrk.body = [[{ROW}]]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"),
    )
    .unwrap();
    println!("## /predict of one row (Iris mlp): {} CPUs, {seconds}s per run, median of {runs}\n", cpus());
    let (models, version) = serving(&repo);
    let ceiling = in_process(&models, &version);
    println!("in-process forward (2 torch threads): batch 1 {ceiling:.0} rows/s ({:.3} ms)\n", 1000.0 / ceiling);

    let server = spawn_server(&repo);
    let peer = spawn_peer(&models.join(format!("{version}.safetensors")));
    let ours = format!("http://{}/predict", server.1);
    let mut servers = vec![("model-server", ours.as_str())];
    let theirs = peer.as_ref().map(|p| format!("http://{}/predict", p.1));
    match &theirs {
        Some(url) => servers.push(("fastapi peer (2 workers, 1 thread)", url)),
        None => println!("(peer skipped: set PEER_PYTHON to a Python with fastapi, uvicorn, safetensors, torch)\n"),
    }
    let levels = load_levels(&servers, &lua, seconds, runs, |_| {});
    if let Some(lone) = levels[0].iter().find(|l| l.concurrency == 1) {
        let runs: Vec<String> = lone.p50_runs.iter().map(|p| format!("{p:.2}")).collect();
        println!(
            "\nat concurrency 1: p50 {:.2} ms (runs {}), {:.1}x the in-process forward",
            lone.p50_ms,
            runs.join("/"),
            lone.p50_ms * ceiling / 1000.0
        );
    }
    stop(server.0);
    if let Some(peer) = peer {
        stop(peer.0);
    }
}

/// The repo's models folder and the version it serves.
fn serving(repo: &Path) -> (PathBuf, String) {
    let models = repo.join("models");
    let version = Registry::load(&models).unwrap().serving;
    (models, version)
}

/// Median rows/s of the model alone at batch 1, 2 torch threads.
fn in_process(models: &Path, version: &str) -> f64 {
    tch::set_num_threads(2);
    let file = ModelFile::new(models, version).unwrap();
    let task = file.read_sidecar().unwrap().task;
    let classifier = Classifier::new(file.load(tch::Device::Cpu, &task, None).unwrap());
    let row = [6.7f32, 3.0, 5.2, 2.3];
    let mut rates: Vec<f64> = (0..3)
        .map(|_| {
            let started = Instant::now();
            let mut rows = 0;
            while started.elapsed() < Duration::from_secs(3) {
                classifier.predict(&row);
                rows += 1;
            }
            rows as f64 / started.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[1]
}

/// The FastAPI peer with 2 uvicorn workers, one torch thread each, on the same model files.
fn spawn_peer(weights: &Path) -> Option<(Child, String)> {
    let python = PathBuf::from(std::env::var_os("PEER_PYTHON")?);
    let dir = testkit::workspace_root().join("xtask/bench");
    let port = 19_000 + (std::process::id() % 1000) as u16;
    spawn_uvicorn(
        &python,
        &dir,
        "tabular_peer:app",
        port,
        &[("PEER_MODEL", weights.as_os_str()), ("PEER_TORCH_THREADS", "1".as_ref())],
    )
}
