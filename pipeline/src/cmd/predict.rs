//! `pipeline predict IMAGE...`.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use gitops::image_input::{ImageLimits, decode_limited, read_limited};
use gitops::params::Params;
use pipeline::device::DeviceChoice;
use pipeline::model::{Classifier, ModelFile};
use pipeline::preprocess;
use pipeline::registry::Registry;
use pipeline::repo::RepoPaths;

#[derive(Args)]
pub struct PredictArgs {
    /// Image files of any size and format (PNG, JPEG, ...), dark-on-light or light-on-dark.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// One JSON object per image per line: path, digit, confidence, probabilities.
    #[arg(long)]
    json: bool,
    /// Model version to use (default: the one models/registry.json serves).
    #[arg(long)]
    model: Option<String>,
    /// Where the model runs (auto: CUDA when a GPU is visible, else the CPU).
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

pub fn run(repo: &RepoPaths, args: PredictArgs) -> Result<ExitCode> {
    let version = match args.model {
        Some(v) => v,
        None => Registry::load(&repo.models())?.serving,
    };
    let file = ModelFile::new(&repo.models(), &version)?;
    let classifier = Classifier::new(file.load(args.device.resolve()?, None)?);
    // The server's limits (params.yaml `feedback:`), checked before a file is read or decoded;
    // the trigger's environment override does not matter here.
    let limits = ImageLimits::from(&Params::load_with_env(&repo.root, |_| None)?.feedback);
    let mut failed = false;
    for path in &args.images {
        let prepared = read_limited(path, &limits)
            .with_context(|| format!("cannot read {}", path.display()))
            .and_then(|bytes| {
                decode_limited(&bytes, &limits).with_context(|| format!("{}: cannot read the image", path.display()))
            })
            .and_then(|img| preprocess::preprocess(&img).with_context(|| path.display().to_string()));
        let input = match prepared {
            Ok(input) => input,
            Err(e) => {
                eprintln!("error: {e:#}");
                failed = true;
                continue;
            }
        };
        let p = classifier.predict(&[input]).remove(0);
        if args.json {
            let line = serde_json::json!({
                "path": path, "digit": p.digit, "confidence": p.confidence,
                "probabilities": p.probabilities, "model_version": classifier.version(),
            });
            println!("{line}");
        } else {
            let probs: Vec<String> = p.probabilities.iter().enumerate().map(|(d, v)| format!("{d}:{v:.3}")).collect();
            println!("{}: {} ({:.1}%)  {}", path.display(), p.digit, 100.0 * p.confidence, probs.join(" "));
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
