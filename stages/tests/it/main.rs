//! Integration tests of the stage binaries and the repo's retraining DAG.

mod augment;
mod cli;
mod dvc;
mod evaluate;
mod fixture;
mod gate;
mod help;
mod ingest;
mod label_review;
mod lock;
mod migrate;
mod paths;
mod retrain;
mod tabular;
mod validate;

use std::path::PathBuf;

/// The folder holding this package's stage binaries, for `PATH`.
pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ingest")).parent().unwrap().to_path_buf()
}

/// Runs the DAG of the repo at `root` with our runner, stage binaries from this build.
pub fn repro(root: &std::path::Path) -> repro::ReproReport {
    let project = repro::Project::open(root).unwrap();
    let opts = repro::ReproOptions { path: vec![bin_dir()], ..Default::default() };
    project.repro(&opts).unwrap_or_else(|e| panic!("pipeline repro failed: {e}"))
}
