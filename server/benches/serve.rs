//! `cargo bench -p model-server`: `/predict` throughput and p50/p99 latency at concurrency 1, 8
//! and 32 with `wrk` (apt-get install wrk), against this server and the FastAPI + uvicorn +
//! PyTorch peer in ../shared/peers/fastapi_mnist (when `PEER_PYTHON` names a Python with its
//! packages, and `PEER_PYTHONPATH` optionally adds torch); the model's in-process forward
//! throughput, the ceiling on this machine; and resident memory after 100 hot reloads.
//!
//! `BENCH_SECONDS` (default 10) per load run, `BENCH_RUNS` (default 3; medians are reported).

#[path = "../tests/it/support.rs"]
#[allow(dead_code, unused_macros)]
mod support;

mod common;

use common::{cpus, env_or, load_levels, spawn_server, spawn_uvicorn, stop};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gitops::model_file::ModelFile;
use model::{Classifier, Weights};
use pipeline::registry::Registry;

fn main() {
    let seconds = env_or("BENCH_SECONDS", 10);
    let runs = env_or("BENCH_RUNS", 3) as usize;
    let work = tempfile::tempdir().unwrap();
    let (png, _) = support::test_digits(1).expect("the benchmark needs MNIST (MNIST_DIR)").remove(0);
    let body = work.path().join("body.multipart");
    let boundary = "BenchBoundary";
    let mut multipart = format!("--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"0000_7.png\"\r\ncontent-type: image/png\r\n\r\n").into_bytes();
    multipart.extend(&png);
    multipart.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    std::fs::write(&body, multipart).unwrap();
    let lua = work.path().join("post.lua");
    std::fs::write(&lua, format!(
        "local f = io.open(\"{}\", \"rb\")\nwrk.method = \"POST\"\nwrk.body = f:read(\"*a\")\nf:close()\nwrk.headers[\"Content-Type\"] = \"multipart/form-data; boundary={boundary}\"\n",
        body.display()
    ))
    .unwrap();
    println!(
        "## model-server bench: {} CPUs, {seconds}s per run, median of {runs}, request body {} bytes (PNG {} bytes)\n",
        cpus(),
        std::fs::metadata(&body).unwrap().len(),
        png.len()
    );

    let ceiling = in_process(&testkit::workspace_root().join("models"));
    println!("in-process forward (2 torch threads): batch 1 {:.0} img/s, batch 32 {:.0} img/s\n", ceiling.0, ceiling.1);

    let repo = support::TestRepo::new(&[]);
    let mut server = spawn_server(&repo.server());
    let url = format!("http://{}/predict", server.1);
    println!("| server | concurrency | req/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|");
    let ours = load_levels("model-server", &url, &lua, seconds, runs);
    if let Some(peer) = spawn_peer(work.path()) {
        let peer_url = format!("http://{}/predict", peer.1);
        load_levels("fastapi peer (2 workers, 1 thread)", &peer_url, &lua, seconds, runs);
        stop(peer.0);
    } else {
        println!(
            "\n(peer skipped: set PEER_PYTHON to a Python with fastapi, uvicorn, python-multipart, pillow, numpy, safetensors, torch)"
        );
    }
    if let Some((_, rps, ..)) = ours.iter().find(|l| l.0 == 32) {
        println!("\nat concurrency 32: {:.0}% of the in-process batch-1 ceiling", 100.0 * rps / ceiling.0);
    }

    let rss = reload_memory(&repo, &server, 100);
    println!(
        "\nRSS after the first reload {:.1} MiB, after 100 reloads {:.1} MiB ({:+.1}%)",
        rss.0,
        rss.1,
        100.0 * (rss.1 / rss.0 - 1.0)
    );
    let _ = server.0.kill();
    let _ = server.0.wait();
}

/// Median images/s of the model alone at batch 1 and batch 32, 2 torch threads.
fn in_process(models: &Path) -> (f64, f64) {
    tch::set_num_threads(2);
    let registry = Registry::load(models).unwrap();
    let model = ModelFile::new(models, &registry.serving)
        .unwrap()
        .load(tch::Device::Cpu, &gitops::task::Task::default(), None)
        .unwrap();
    let classifier = Classifier::new(model);
    let (pixels, _) = support::test_pixels(32).expect("the benchmark needs MNIST (MNIST_DIR)");
    let digits = model::preprocess::normalize(&gitops::task::Task::default(), &pixels);
    let rate = |batch: usize| {
        let mut rates: Vec<f64> = (0..3)
            .map(|_| {
                let started = Instant::now();
                let mut images = 0;
                while started.elapsed() < Duration::from_secs(3) {
                    classifier.predict(&digits[..batch * 784]);
                    images += batch;
                }
                images as f64 / started.elapsed().as_secs_f64()
            })
            .collect();
        rates.sort_by(f64::total_cmp);
        rates[1]
    };
    (rate(1), rate(32))
}

/// The FastAPI peer with 2 uvicorn workers (its best configuration), on a model it trains.
fn spawn_peer(work: &Path) -> Option<(Child, String)> {
    let python = PathBuf::from(std::env::var_os("PEER_PYTHON")?);
    let peer = testkit::workspace_root().parent().unwrap().join("shared/peers/fastapi_mnist");
    let model = work.join("peer-model.safetensors");
    let pythonpath = std::env::var("PEER_PYTHONPATH").unwrap_or_default();
    let trained = Command::new(&python)
        .arg(peer.join("train.py"))
        .args(["--data", support::mnist_dir()?.to_str()?, "--out", model.to_str()?])
        .env("PYTHONPATH", &pythonpath)
        .stdout(Stdio::null())
        .status()
        .ok()?;
    if !trained.success() {
        println!("(peer skipped: its train.py failed)");
        return None;
    }
    let port = 18_000 + (std::process::id() % 1000) as u16;
    let data = work.join("peer-new_data");
    let env = [
        ("MNIST_MODEL", model.as_os_str()),
        ("MNIST_DATA_DIR", data.as_os_str()),
        ("MNIST_TORCH_THREADS", "1".as_ref()),
    ];
    spawn_uvicorn(&python, &peer, "server:app", port, &env)
}

/// Publishes `n` new versions through git and reads the server's VmRSS after the first swap
/// and after the last, in MiB.
fn reload_memory(repo: &support::TestRepo, server: &(Child, String), n: usize) -> (f64, f64) {
    let client = reqwest::blocking::Client::new();
    let serving = |client: &reqwest::blocking::Client| -> String {
        client.get(format!("http://{}/readyz", server.1)).send().unwrap().json::<serde_json::Value>().unwrap()["serving"].as_str().unwrap().to_string()
    };
    let mut first = 0.0;
    for i in 0..n {
        let version = repo.publish(1e-3, false);
        support::wait_for(Duration::from_secs(30), &version, || serving(&client) == version);
        if i == 0 {
            first = rss_mib(server.0.id());
        }
    }
    (first, rss_mib(server.0.id()))
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb / 1024.0
}
