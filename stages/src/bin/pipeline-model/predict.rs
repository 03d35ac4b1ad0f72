//! `pipeline predict IMAGE...`.

use anyhow::{Context, Result};
use std::process::ExitCode;

use gitops::image_input::{ImageLimits, decode_limited, read_limited};
use gitops::model_file::ModelFile;
use gitops::params::Params;
use gitops::task::ByClass;
use model::{Classifier, Weights, preprocess};
use pipeline::cli::PredictArgs;
use pipeline::registry::Registry;
use pipeline::repo::RepoPaths;

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
    let classifier = Classifier::new(file.load(model::device::resolve(args.device)?, &task, None)?);
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
