//! `pipeline init DIR [--dataset PATH ...]`.

use anyhow::{Context, Result, bail};
use clap::Args;
use gitops::task::Preprocess;
use std::path::PathBuf;
use std::process::ExitCode;

use pipeline::device::DeviceChoice;
use pipeline::scaffold::dataset::{self, DatasetInit};

#[derive(Args)]
pub struct InitArgs {
    /// The folder to scaffold (created when missing; made a git repository when it is not one).
    dir: PathBuf,
    /// Overwrite files that already exist.
    #[arg(long)]
    force: bool,
    /// Your own images: class folders (`<class>/<file>`, optionally under `train/` and `test/`)
    /// or a `metadata.csv` with `file_name,label`. The task is derived from it and the base model
    /// trained and committed. Without it, the MNIST repo with the embedded base model.
    #[arg(long, value_name = "PATH")]
    dataset: Option<PathBuf>,
    /// The task's name (default: the dataset folder's name).
    #[arg(long, requires = "dataset")]
    name: Option<String>,
    /// Input size as HEIGHTxWIDTH (default: the images' most common size, at most 64 a side).
    #[arg(long, value_name = "HxW", value_parser = parse_size, requires = "dataset")]
    size: Option<(u32, u32)>,
    /// 1 (grey) or 3 (RGB) (default: 3 when any image has colour).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3), requires = "dataset")]
    channels: Option<u32>,
    /// The network (default: resnet for colour, cnn for grey).
    #[arg(long, value_parser = ["cnn", "resnet"], requires = "dataset")]
    arch: Option<String>,
    /// How images reach the network's size: fit (pad), crop (centre), digit (ink on paper).
    #[arg(long, value_parser = parse_preprocess, requires = "dataset")]
    preprocess: Option<Preprocess>,
    /// Training epochs of the base model (params train.epochs).
    #[arg(long, requires = "dataset")]
    epochs: Option<usize>,
    /// Where the base model trains (auto: CUDA when a GPU is visible, else the CPU).
    #[arg(long, value_enum, default_value_t, requires = "dataset")]
    device: DeviceChoice,
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (h, w) = text.split_once(['x', 'X']).ok_or_else(|| format!("`{text}` is not HEIGHTxWIDTH, e.g. 32x32"))?;
    let side = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("`{s}` in `{text}` is not a number"));
    Ok((side(h)?, side(w)?))
}

fn parse_preprocess(text: &str) -> Result<Preprocess, String> {
    serde_yaml::from_str(text).map_err(|_| format!("`{text}` is not one of fit, crop, digit"))
}

pub fn run(args: InitArgs) -> Result<ExitCode> {
    let Some(path) = args.dataset.clone() else {
        let files = pipeline::scaffold::init(&args.dir, args.force)
            .with_context(|| format!("scaffolding {}", args.dir.display()))?;
        for f in &files {
            println!("wrote {}", args.dir.join(f).display());
        }
        println!("next: read {}/README.md for the remote, token and trigger to set", args.dir.display());
        return Ok(ExitCode::SUCCESS);
    };
    if args.channels == Some(2) {
        bail!("--channels must be 1 (grey) or 3 (RGB)");
    }
    let init = DatasetInit {
        dataset: path,
        name: args.name,
        size: args.size,
        channels: args.channels,
        arch: args.arch,
        preprocess: args.preprocess,
        epochs: args.epochs,
    };
    let device = args.device.resolve()?;
    let made = dataset::scaffold(&args.dir, &init, args.force)
        .with_context(|| format!("scaffolding {}", args.dir.display()))?;
    let task = &made.task;
    println!("dataset: {} -> {}", made.describe, made.data_link.display());
    println!(
        "task {}: {} classes ({}), input {}x{}x{}, preprocess {:?}, network {}",
        task.name,
        task.classes.len(),
        task.classes.join(", "),
        task.input.channels,
        task.input.height,
        task.input.width,
        task.preprocess,
        made.architecture.name()
    );
    let run = dataset::train_and_commit(&args.dir, device).context("training the base model")?;
    for (path, why) in run.skipped.iter().take(5) {
        eprintln!("skipped {}: {why}", path.display());
    }
    if run.skipped.len() > 5 {
        eprintln!("... and {} more images skipped", run.skipped.len() - 5);
    }
    println!(
        "base model {}: {:.2}% on the test split ({} images); registered and committed",
        run.sidecar.version,
        100.0 * run.evaluation.accuracy,
        run.evaluation.samples
    );
    println!("next: cd {} && model-server --port 8000 (README.md says what to set)", args.dir.display());
    Ok(ExitCode::SUCCESS)
}
