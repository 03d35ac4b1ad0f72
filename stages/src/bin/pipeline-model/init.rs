//! `pipeline init DIR --dataset PATH ...` (or `--example iris`): scaffold from a team's images or
//! table, train, commit.

use anyhow::{Context, Result, bail};
use std::process::ExitCode;

use pipeline::cli::InitArgs;
use pipeline::storage::{self, Storage};
use stages::init::{self as dataset, DatasetInit};

pub fn run(args: InitArgs) -> Result<ExitCode> {
    // Plain `init` (the MNIST repo) is `pipeline`'s own: it needs no model.
    let (path, label) = match (&args.dataset, &args.example) {
        (Some(path), _) => (path.clone(), args.label.clone()),
        (None, Some(example)) => {
            let (path, label) = dataset::write_example(&args.dir, example)?;
            (path, Some(label))
        }
        (None, None) => bail!("init without --dataset or --example is `pipeline init`'s"),
    };
    if args.channels == Some(2) {
        bail!("--channels must be 1 (grey) or 3 (RGB)");
    }
    let init = DatasetInit {
        label,
        dataset: path,
        name: args.name,
        size: args.size,
        channels: args.channels,
        arch: args.arch,
        preprocess: args.preprocess,
        epochs: args.epochs,
    };
    let device = model::device::resolve(args.device)?;
    let made = dataset::scaffold(&args.dir, &init, args.force)
        .with_context(|| format!("scaffolding {}", args.dir.display()))?;
    let task = &made.task;
    println!("dataset: {} -> {}", made.describe, made.data_link.display());
    if args.storage == Storage::Dvc {
        // Before the base model trains: train-base tracks what it writes under `storage: dvc`.
        storage::choose_dvc(&args.dir).context("choosing DVC storage")?;
    }
    let reads = match task.schema() {
        Some(schema) => format!("features {}", schema.names().collect::<Vec<_>>().join(", ")),
        None => format!(
            "input {}x{}x{}, preprocess {:?}",
            task.input.channels, task.input.height, task.input.width, task.preprocess
        ),
    };
    println!(
        "task {}: {} classes ({}), {reads}, network {}",
        task.name,
        task.classes.len(),
        task.classes.join(", "),
        made.architecture.name()
    );
    let run = dataset::train_and_commit(&args.dir, device).context("training the base model")?;
    for (path, why) in run.skipped.iter().take(5) {
        eprintln!("skipped {}: {why}", path.display());
    }
    if run.skipped.len() > 5 {
        eprintln!("... and {} more skipped", run.skipped.len() - 5);
    }
    println!(
        "base model {}: {:.2}% on the test split ({} samples); registered and committed",
        run.sidecar.version,
        100.0 * run.evaluation.accuracy,
        run.evaluation.samples
    );
    if args.storage == Storage::Dvc {
        println!("{}", storage::REMOTE_HINT);
    }
    println!("next: cd {} && model-server --port 8000 (README.md says what to set)", args.dir.display());
    Ok(ExitCode::SUCCESS)
}
