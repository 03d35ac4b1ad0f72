//! `cargo xtask bench [SUITE]`: the benchmarks behind BENCHMARKS.md. `model` runs the CNN
//! benchmark of this workspace and the same network in PyTorch (the cached wheel, same thread
//! count) in one run and prints both with their ratio; `dag` (the runner against DVC),
//! `preprocess` (`to_mnist` on a digit, a canvas and a photo), `feedback` (durable adds from 8
//! writers), `serve` (model-server against the FastAPI peer), `rows` (a tabular row's `/predict`
//! against a FastAPI server of the same MLP; both peers run from a venv made once in the cache
//! unless `PEER_PYTHON` names one), `remote` (push and pull of
//! 10,000 files against `dvc push` / `dvc pull`, same moto S3 endpoint), `storage` (a repo of
//! 10,000 feedback images under `storage: git` and `storage: dvc`: size, clone), `drift` (the loop on
//! scikit-learn's digits against one offline fine-tune) and `recipe` (fine-tuning recipes
//! compared offline on those digits) run those crates' `cargo bench`
//! harnesses, which print their own figures.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::process::Command;

use crate::{demo, setup};

/// Which benchmark to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// The CNN against PyTorch (issue 2).
    Model,
    /// `repro` against DVC 3 (issue 4).
    Dag,
    /// The shared preprocessing on a digit, a canvas and a photo (issue 2).
    Preprocess,
    /// Durable feedback adds per second (issue 3).
    Feedback,
    /// model-server against the FastAPI peer (issue 6).
    Serve,
    /// model-server's `/predict` of one tabular row against a FastAPI server of the same MLP
    /// (issue 16).
    Rows,
    /// `repro push` / `pull` against `dvc push` / `pull` to one S3 endpoint (issue 18).
    Remote,
    /// A repo of 10,000 feedback images under `storage: git` and `storage: dvc`: the origin's
    /// size, a replica's clone and first sync (issue 18).
    Storage,
    /// Learning from drifted feedback: scikit-learn's digits through the live loop against one
    /// offline fine-tune, clean and with 10% / 30% wrong labels (issue 17). Accuracy, not speed:
    /// it runs the debug binaries.
    Drift,
    /// The fine-tuning recipes compared offline on the same digits: the first sub_set of ten
    /// and all 300, each on the held-out digits and MNIST (issue 17). Debug binaries.
    Recipe,
    /// All of the above, in that order.
    All,
}

pub fn run(suite: Suite) -> Result<()> {
    let harnesses = [
        (Suite::Dag, "repro", "vs_dvc"),
        (Suite::Preprocess, "model", "preprocess"),
        (Suite::Feedback, "gitops", "feedback"),
        (Suite::Serve, "model-server", "serve"),
        (Suite::Rows, "model-server", "rows"),
        (Suite::Remote, "repro", "remote"),
        (Suite::Storage, "gitops", "storage"),
        (Suite::Drift, "e2e", "drift"),
        (Suite::Recipe, "e2e", "drift"),
    ];
    if matches!(suite, Suite::Model | Suite::All) {
        model()?;
    }
    let root = setup::repo_root();
    for (which, package, bench) in harnesses {
        if suite == which || suite == Suite::All {
            let mut env = Vec::new();
            if matches!(which, Suite::Dag | Suite::Rows) {
                // `pipeline status` / `pipeline repro` as users run them, timed in the same run;
                // for rows, the `pipeline init --example iris` (with `pipeline-model`) that makes the repo.
                demo::cargo(&root, &["build", "--release", "-p", "pipeline", "--bin", "pipeline"], &[])?;
                if which == Suite::Rows {
                    demo::cargo(&root, &["build", "--release", "-p", "stages", "--bin", "pipeline-model"], &[])?;
                }
                env.push(("PIPELINE_BIN", root.join("target/release/pipeline").into_os_string()));
            }
            if matches!(which, Suite::Serve | Suite::Rows) && std::env::var_os("PEER_PYTHON").is_none() {
                env.extend(peer_python()?);
            }
            if matches!(which, Suite::Drift | Suite::Recipe) {
                setup::run()?;
                demo::cargo(&root, &["build", "--bins"], &[])?;
            }
            if which == Suite::Recipe {
                env.push(("DRIFT_SCENARIOS", "recipes".into()));
            }
            demo::cargo(&root, &["bench", "-p", package, "--bench", bench], &env)?;
        }
    }
    Ok(())
}

/// The Python packages of the FastAPI peers (`../shared/peers/fastapi_mnist`,
/// `xtask/bench/tabular_peer.py`), torch aside: it comes from the cached wheel.
const PEER_PACKAGES: [&str; 6] = [
    "fastapi==0.165.0",
    "uvicorn==0.55.0",
    "python-multipart==0.0.34",
    "pillow==13.0.0",
    "numpy==2.4.6",
    "safetensors==0.8.0",
];

/// `PEER_PYTHON` and `PEER_PYTHONPATH` for the `/predict` benches when the caller set none: a
/// venv of [`PEER_PACKAGES`] made once in the cache, and the cached torch wheel's site folder.
fn peer_python() -> Result<[(&'static str, std::ffi::OsString); 2]> {
    let site = setup::run()?.parent().context("libtorch has a parent")?.to_path_buf();
    let uvicorn = testkit::venv_tool("peer-venv", &PEER_PACKAGES, "uvicorn");
    Ok([("PEER_PYTHON", uvicorn.with_file_name("python").into_os_string()), ("PEER_PYTHONPATH", site.into_os_string())])
}

/// Each network (the CNN on MNIST's shape, the residual network on 3x32x32) against the same
/// network in PyTorch, same threads, in the same run.
fn model() -> Result<()> {
    let libtorch = setup::run()?;
    let root = setup::repo_root();
    let site = libtorch.parent().context("libtorch has a parent")?;
    let python = setup::which("python3").context("python3 is needed to measure PyTorch")?;
    for arch in ["cnn", "resnet"] {
        let ours = figures(
            Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .args(["bench", "--quiet", "-p", "model", "--bench", "model"])
                .env("BENCH_ARCH", arch)
                .current_dir(&root),
        )?;
        let theirs = figures(
            Command::new(&python)
                .arg(root.join("xtask/bench/torch_model.py"))
                .env("PYTHONPATH", site)
                .env("BENCH_ARCH", arch),
        )?;
        println!("\n{arch}:\n");
        println!("| figure | pipeline (tch) | PyTorch | ratio (higher is better for us) |");
        println!("| --- | ---: | ---: | ---: |");
        for (name, ours_v) in &ours {
            let Some(theirs_v) = theirs.get(name) else { continue };
            let ratio = if name.ends_with("_ms") { theirs_v / ours_v } else { ours_v / theirs_v };
            println!("| {name} | {ours_v:.3} | {theirs_v:.3} | {ratio:.2}x |");
        }
    }
    Ok(())
}

/// Runs a benchmark that prints `{"figure": .., "value": ..}` lines.
fn figures(cmd: &mut Command) -> Result<BTreeMap<String, f64>> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut figures = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with('{')) {
        let value: serde_json::Value = serde_json::from_str(line).with_context(|| format!("bad figure line {line}"))?;
        figures.insert(
            value["figure"].as_str().unwrap_or_default().to_string(),
            value["value"].as_f64().unwrap_or(f64::NAN),
        );
    }
    Ok(figures)
}
