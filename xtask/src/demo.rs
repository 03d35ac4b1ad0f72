//! `cargo xtask demo`, the README's main command: set up, build, get MNIST, make sure a model
//! serves, and classify example digits exported from the test split.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::setup;

pub fn run() -> Result<()> {
    setup::run()?;
    let root = setup::repo_root();
    cargo(&root, &["build", "--release", "--bins"], &[])?;
    let pipeline = root.join("target/release/pipeline");
    let mut fetch = vec!["data", "fetch"];
    let shared = local_mnist(&root);
    if let Some(dir) = &shared {
        fetch.extend(["--from", dir.to_str().context("MNIST path is not UTF-8")?]);
    }
    step(&pipeline, &root, &fetch)?;
    if !root.join("models/registry.json").exists() {
        step(&pipeline, &root, &["train-base"])?;
    }
    let digits = root.join("target/demo/digits");
    step(&pipeline, &root, &["data", "export", "--count", "10", "--out", digits.to_str().context("path is not UTF-8")?])?;
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(&digits)?.filter_map(|e| Some(e.ok()?.path())).collect();
    pngs.sort();
    let mut args = vec!["predict".to_string()];
    args.extend(pngs.iter().map(|p| p.display().to_string()));
    step(&pipeline, &root, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `MNIST_DIR`, or the team's shared copy next to the checkout, when present.
pub fn local_mnist(root: &Path) -> Option<PathBuf> {
    std::env::var_os("MNIST_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(root.parent()?.join("shared/data/mnist")))
        .filter(|d| d.join("train-images-idx3-ubyte.gz").is_file())
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

fn step(bin: &Path, root: &Path, args: &[&str]) -> Result<()> {
    eprintln!("$ pipeline {}", args.join(" "));
    let status = Command::new(bin).args(args).current_dir(root).status().with_context(|| format!("running {}", bin.display()))?;
    if !status.success() {
        bail!("pipeline {} failed ({status})", args.join(" "));
    }
    Ok(())
}
