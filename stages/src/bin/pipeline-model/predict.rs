//! `pipeline predict IMAGE...` or `pipeline predict --csv FILE` (a tabular task's rows).

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

use gitops::image_input::{ImageLimits, decode_limited, read_limited};
use gitops::params::Params;
use gitops::task::{ByClass, Task};
use model::{Classifier, Weights, preprocess};
use pipeline::cli::PredictArgs;
use pipeline::registry::Registry;
use pipeline::repo::RepoPaths;

pub fn run(repo: &RepoPaths, args: PredictArgs) -> Result<ExitCode> {
    let version = match args.model {
        Some(v) => v,
        None => Registry::load(&repo.models())?.serving,
    };
    let file = pipeline::storage::open(&repo.models(), &version)?;
    // The server's limits (params.yaml `feedback:`), checked before a file is read or decoded;
    // the trigger's environment override does not matter here.
    let params = Params::load_with_env(&repo.root, |_| None)?;
    let task = params.task;
    let classifier = Classifier::new(file.load(model::device::resolve(args.device)?, &task, None)?);
    let inputs = match &args.csv {
        Some(path) => rows(&task, path)?,
        None => images(&task, &args.images, &ImageLimits::from(&params.feedback)),
    };
    let mut failed = false;
    for (path, row, input) in inputs {
        let input = match input {
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
                #[serde(skip_serializing_if = "Option::is_none")]
                row: Option<usize>,
                label: &'a str,
                index: usize,
                #[serde(skip_serializing_if = "Option::is_none")]
                digit: Option<usize>,
                confidence: f32,
                probabilities: ByClass<'a, f32>,
                model_version: &'a str,
            }
            let line = Line {
                path: &path,
                row,
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
            let at = row.map_or(String::new(), |r| format!(" row {r}"));
            println!("{}{at}: {label} ({:.1}%)  {}", path.display(), 100.0 * p.confidence, probs.join(" "));
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// One file's (or row's) network input, or why there is none.
type Input = (PathBuf, Option<usize>, Result<Vec<f32>>);

/// Each image read and preprocessed under the server's limits.
fn images(task: &Task, paths: &[PathBuf], limits: &ImageLimits) -> Vec<Input> {
    paths
        .iter()
        .map(|path| {
            let input = read_limited(path, limits)
                .with_context(|| format!("cannot read {}", path.display()))
                .and_then(|bytes| {
                    decode_limited(&bytes, limits).with_context(|| format!("{}: cannot read the image", path.display()))
                })
                .and_then(|img| preprocess::preprocess(task, &img).with_context(|| path.display().to_string()));
            (path.clone(), None, input)
        })
        .collect()
}

/// Each row of a table checked against the task's schema and encoded; rows are numbered as a
/// spreadsheet shows them (the header is row 1).
fn rows(task: &Task, path: &std::path::Path) -> Result<Vec<Input>> {
    let schema =
        task.schema().with_context(|| format!("task {} reads images; --csv is for tabular tasks", task.name))?;
    let rows = gitops::table::read_rows(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(i, mut row)| {
            row.remove(&schema.label);
            let input = schema
                .check(&row)
                .map(|row| schema.encode(&row))
                .with_context(|| format!("{} row {}", path.display(), i + 2));
            (path.to_path_buf(), Some(i + 2), input)
        })
        .collect())
}
