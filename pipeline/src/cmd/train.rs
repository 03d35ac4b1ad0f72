//! `pipeline train-base`.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use pipeline::device::DeviceChoice;
use pipeline::repo::RepoPaths;

#[derive(Args)]
pub struct TrainBaseArgs {
    /// MNIST folder (default: params.yaml `data.mnist_dir`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where the model runs (auto: CUDA when a GPU is visible, else the CPU).
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
    /// Save the model without pointing models/registry.json at it.
    #[arg(long)]
    no_serve: bool,
    /// Fail (keeping the saved model) when test accuracy is below this share.
    #[arg(long)]
    min_accuracy: Option<f64>,
}

pub fn run(repo: &RepoPaths, args: TrainBaseArgs) -> Result<ExitCode> {
    let data = match args.data {
        Some(dir) => dir,
        None => pipeline::base::data_dir(repo)?,
    };
    let device = args.device.resolve()?;
    let run = pipeline::base::train_base(repo, &data, device, !args.no_serve)
        .with_context(|| format!("training on {}", data.display()))?;
    for epoch in &run.log {
        println!(
            "epoch {}: loss {:.4}, train accuracy {:.2}%, {:.0} images/s",
            epoch.epoch,
            epoch.loss,
            100.0 * epoch.train_accuracy,
            epoch.images_per_second
        );
    }
    println!(
        "{}: test accuracy {:.2}% on {} images, saved in {}",
        run.sidecar.version,
        100.0 * run.evaluation.accuracy,
        run.evaluation.samples,
        repo.models().display()
    );
    if let Some(min) = args.min_accuracy.filter(|m| run.evaluation.accuracy < *m) {
        bail!("test accuracy {:.2}% is below --min-accuracy {:.2}%", 100.0 * run.evaluation.accuracy, 100.0 * min);
    }
    Ok(ExitCode::SUCCESS)
}
