//! `pipeline predict IMAGE...`.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use gitops::image_input::{ImageLimits, decode_limited, read_limited};
use gitops::params::Params;
use gitops::task::ByClass;
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
    /// One JSON object per image per line: path, label, index, confidence, probabilities by class
    /// name (and digit, for digit tasks).
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
    // The server's limits (params.yaml `feedback:`), checked before a file is read or decoded;
    // the trigger's environment override does not matter here.
    let params = Params::load_with_env(&repo.root, |_| None)?;
    let task = params.task;
    let classifier = Classifier::new(file.load(args.device.resolve()?, &task, None)?);
    let limits = ImageLimits::from(&params.feedback);
    let mut failed = false;
    for path in &args.images {
        let prepared = read_limited(path, &limits)
            .with_context(|| format!("cannot read {}", path.display()))
            .and_then(|bytes| {
                decode_limited(&bytes, &limits).with_context(|| format!("{}: cannot read the image", path.display()))
            })
            .and_then(|img| preprocess::preprocess(&task, &img).with_context(|| path.display().to_string()));
        let input = match prepared {
            Ok(input) => input,
            Err(e) => {
                eprintln!("error: {e:#}");
                failed = true;
                continue;
            }
        };
        let p = classifier.predict(&input).remove(0);
        let label = &task.classes[p.index];
        if args.json {
            #[derive(serde::Serialize)]
            struct Line<'a> {
                path: &'a std::path::Path,
                label: &'a str,
                index: usize,
                #[serde(skip_serializing_if = "Option::is_none")]
                digit: Option<usize>,
                confidence: f32,
                probabilities: ByClass<'a, f32>,
                model_version: &'a str,
            }
            let line = Line {
                path,
                label,
                index: p.index,
                digit: task.is_digit().then_some(p.index),
                confidence: p.confidence,
                probabilities: ByClass(&task.classes, &p.probabilities),
                model_version: classifier.version(),
            };
            println!("{}", serde_json::to_string(&line)?);
        } else {
            let probs: Vec<String> =
                task.classes.iter().zip(&p.probabilities).map(|(c, v)| format!("{c}:{v:.3}")).collect();
            println!("{}: {label} ({:.1}%)  {}", path.display(), 100.0 * p.confidence, probs.join(" "));
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
