//! `pipeline reference`: a model's drift reference, written into its sidecar.

use anyhow::{Context, Result};
use std::process::ExitCode;

use pipeline::cli::ReferenceArgs;
use pipeline::registry::Registry;
use pipeline::repo::RepoPaths;

pub fn run(repo: &RepoPaths, args: ReferenceArgs) -> Result<ExitCode> {
    let version = match args.model {
        Some(v) => v,
        None => Registry::load(&repo.models())?.serving,
    };
    let data = match args.data {
        Some(dir) => dir,
        None => stages::base::data_dir(repo)?,
    };
    let device = model::device::resolve(args.device)?;
    let sidecar = stages::base::write_reference(repo, &data, &version, device)
        .with_context(|| format!("the drift reference of {version} on {}", data.display()))?;
    let reference = sidecar.reference.context("the test split gave no samples")?;
    println!("{version}: drift reference of {} test samples written to its sidecar", reference.samples);
    for signal in &reference.signals {
        let p = |k: usize| signal.percentiles.get(k).copied().unwrap_or(f64::NAN);
        println!("  {}: median {:.4}, 5th-95th percentile {:.4}-{:.4}", signal.name, p(50), p(5), p(95));
    }
    Ok(ExitCode::SUCCESS)
}
