//! `cargo xtask bench`: runs the model benchmark of this workspace and the same network in
//! PyTorch (the cached wheel, same thread count) in one run, and prints both with their ratio.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::process::Command;

use crate::setup;

pub fn run() -> Result<()> {
    let libtorch = setup::run()?;
    let root = setup::repo_root();
    let ours = figures(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["bench", "--quiet", "-p", "pipeline", "--bench", "model"])
            .current_dir(&root),
    )?;
    let site = libtorch.parent().context("libtorch has a parent")?;
    let python = setup::which("python3").context("python3 is needed to measure PyTorch")?;
    let theirs = figures(
        Command::new(python).arg(root.join("xtask/bench/torch_model.py")).env("PYTHONPATH", site),
    )?;
    println!("| figure | pipeline (tch) | PyTorch | ratio (higher is better for us) |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, ours_v) in &ours {
        let Some(theirs_v) = theirs.get(name) else { continue };
        let ratio = if name.ends_with("_ms") { theirs_v / ours_v } else { ours_v / theirs_v };
        println!("| {name} | {ours_v:.3} | {theirs_v:.3} | {ratio:.2}x |");
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
        figures.insert(value["figure"].as_str().unwrap_or_default().to_string(), value["value"].as_f64().unwrap_or(f64::NAN));
    }
    Ok(figures)
}
