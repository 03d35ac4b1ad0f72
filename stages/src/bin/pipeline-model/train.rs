//! `pipeline train-base`.

use anyhow::{Context, Result, bail};
use std::process::ExitCode;

use pipeline::cli::TrainBaseArgs;
use pipeline::repo::RepoPaths;

pub fn run(repo: &RepoPaths, args: TrainBaseArgs) -> Result<ExitCode> {
    let data = match args.data {
        Some(dir) => dir,
        None => stages::base::data_dir(repo)?,
    };
    let device = model::device::resolve(args.device)?;
    let run = stages::base::train_base(repo, &data, device, !args.no_serve)
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
