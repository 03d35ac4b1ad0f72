//! `pipeline feedback add`: every input (image files, or a table's rows with `--csv`) is read
//! and checked before anything is written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::CliError;
use crate::feedback::{AddOutcome, FeedbackStore, Kind, NEW_DATA, Sample, sub_set_name};
use crate::git::{Credentials, FeedbackSync, PushOutcome};
use crate::image_input::{ImageLimits, read_limited};
use crate::params::Params;
use crate::trigger::{Fired, RetrainRequest, Trigger};

/// Images stored per locked, fsynced batch.
const BATCH: usize = 32;

/// `pipeline feedback add` options.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The class shown in the images: a class name of params.yaml `task.classes` (for MNIST the
    /// digits 0-9), or its index. With `--csv`, the class of rows whose label cell is missing.
    #[arg(long, required_unless_present = "csv")]
    pub label: Option<String>,
    /// What the person said about the prediction; `unsure` samples are kept but not counted.
    #[arg(long, value_enum, default_value_t = Kind::Correct)]
    pub kind: Kind,
    /// The class the model predicted (a name or an index).
    #[arg(long)]
    pub predicted: Option<String>,
    /// The model's confidence in its prediction (0-1).
    #[arg(long, requires = "predicted")]
    pub confidence: Option<f32>,
    /// The model version that made the prediction.
    #[arg(long = "model", value_name = "VERSION")]
    pub model_version: Option<String>,
    /// Store only: no git commit or push.
    #[arg(long)]
    pub no_git: bool,
    /// Rows of a tabular task: a CSV or Parquet file with the schema's feature columns and,
    /// optionally, its label column (`task.table.label`), each row stored as one sample.
    #[arg(long, value_name = "FILE", conflicts_with = "images")]
    pub csv: Option<PathBuf>,
    /// Image files (PNG, JPEG, GIF, BMP, WebP, TIFF).
    #[arg(required_unless_present = "csv", value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

pub(super) fn run(repo_root: &Path, args: AddArgs) -> Result<ExitCode, CliError> {
    let params = Params::load(repo_root)?;
    let store = FeedbackStore::open_with(repo_root, params.feedback.clone(), params.task.clone());
    let samples = read_all(&store, &args)?;
    let mut stored = Vec::with_capacity(samples.len());
    let mut samples = samples.into_iter().peekable();
    while samples.peek().is_some() {
        let (paths, chunk): (Vec<_>, Vec<_>) = samples.by_ref().take(BATCH).unzip();
        stored.extend(paths.into_iter().zip(store.add_many(chunk)?));
    }
    let sealed: Vec<u32> = stored.iter().filter_map(|(_, o)| o.sealed).collect();
    let trigger = Trigger::from_params(repo_root, &params.trigger).map(Arc::new);
    let in_git = git2::Repository::open(repo_root).is_ok();
    // Outside git the store is the origin: its answers are final and a seal lands as it is made.
    let mut settled = !in_git;
    let mut fired = Vec::new();
    if in_git && !args.no_git {
        let mut sync = FeedbackSync::new(store.clone(), params.git.clone(), Credentials::from_env());
        if let Ok(trigger) = &trigger {
            sync = sync.with_trigger(trigger.clone());
        }
        let outcome = sync.sync(&format!("feedback: {} sample(s) from the CLI", stored.len()))?;
        if let Some(oid) = outcome.commit {
            println!("committed {oid}");
        }
        match &outcome.push {
            Some(PushOutcome::Pushed { head, .. }) => println!("pushed {head} to {}", params.git.remote),
            Some(PushOutcome::Offline { reason }) => {
                println!("remote unreachable ({reason}): the commit will be pushed later")
            }
            Some(PushOutcome::UpToDate) | None => {}
        }
        settled = outcome.landed.is_some();
        fired = outcome.fired.into_iter().map(|f| (f.sub_set, f.result)).collect();
    }
    for (path, outcome) in &stored {
        let (sub_set, count) = store.locate(outcome)?.unwrap_or((outcome.sub_set, outcome.current_count));
        print_outcome(path, outcome, sub_set, count, settled);
    }
    if let (false, Ok(trigger)) = (in_git, &trigger) {
        for &sub_set in &sealed {
            let request = RetrainRequest::sealed(sub_set, params.feedback.threshold, None);
            fired.push((sub_set, trigger.fire(&request).map_err(|e| e.to_string())));
        }
    } else if in_git && args.no_git {
        for sub_set in &sealed {
            println!("sub_set {sub_set} sealed: the retrain trigger fires once that is committed and pushed");
        }
    }
    let mut queued = false;
    for (sub_set, result) in &fired {
        match result {
            Ok(Fired::Dispatched) => println!("sub_set {sub_set} sealed: retrain dispatched on GitHub"),
            Ok(Fired::Queued { .. }) => {
                queued = true;
                println!("sub_set {sub_set} sealed: retraining locally (log in .pipeline/retrain.log)")
            }
            Ok(Fired::Disabled) => println!("sub_set {sub_set} sealed (trigger: none)"),
            Err(e) => println!("sub_set {sub_set} sealed, but the retrain trigger failed: {e}"),
        }
    }
    // The local worker also runs what killed runs of this command left queued.
    if let Ok(trigger) = &trigger
        && let Trigger::Local(local) = trigger.as_ref()
        && (queued || local.resume()?)
    {
        let status = local.wait_idle();
        println!("local retrain {:?}, exit code {:?}", status.state, status.exit_code);
    }
    if let (Err(e), false) = (trigger, sealed.is_empty()) {
        return Err(CliError::Trigger(e));
    }
    match fired.into_iter().find_map(|(_, r)| r.err()) {
        Some(e) => Err(CliError::TriggerFailed(e)),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn read_all(store: &FeedbackStore, args: &AddArgs) -> Result<Vec<(PathBuf, Sample)>, CliError> {
    if let Some(path) = &args.csv {
        return read_rows(store, args, path);
    }
    let label = args.label.clone().expect("clap requires --label without --csv");
    let mut out = Vec::with_capacity(args.images.len());
    for path in &args.images {
        let image = read_limited(path, &ImageLimits::from(store.params()))
            .map_err(|source| CliError::Read { path: path.clone(), source })?;
        let sample = Sample {
            image,
            label: label.clone(),
            kind: args.kind,
            predicted: args.predicted.clone(),
            confidence: args.confidence,
            model_version: args.model_version.clone(),
            source: format!("cli:{}", path.display()),
        };
        store.check(&sample).map_err(|source| CliError::Input { path: path.clone(), source })?;
        out.push((path.clone(), sample));
    }
    Ok(out)
}

/// Every row of a table file as a sample (its label from the schema's label column, else
/// `--label`), each checked against the schema before anything is stored.
fn read_rows(store: &FeedbackStore, args: &AddArgs, path: &Path) -> Result<Vec<(PathBuf, Sample)>, CliError> {
    let table_err = |what: String| CliError::Table { path: path.to_path_buf(), what };
    let Some(schema) = store.task().schema() else {
        return Err(table_err(format!("task {} reads images; --csv is for tabular tasks", store.task().name)));
    };
    let rows = crate::table::read_rows(path).map_err(|e| table_err(e.to_string()))?;
    let mut out = Vec::with_capacity(rows.len());
    for (i, mut row) in rows.into_iter().enumerate() {
        // Row numbers as a spreadsheet shows them: the header is row 1.
        let at = |source| CliError::Row { at: format!("{}: row {}", path.display(), i + 2), source };
        let label = match row.remove(&schema.label).as_ref().and_then(crate::table::label_text) {
            Some(label) => label,
            None => match &args.label {
                Some(label) => label.clone(),
                None => {
                    let reason = format!("no `{}` (the label column) and no --label", schema.label);
                    return Err(at(crate::feedback::FeedbackError::InvalidSample { reason }));
                }
            },
        };
        let sample = Sample {
            image: serde_json::to_vec(&row)?,
            label,
            kind: args.kind,
            predicted: args.predicted.clone(),
            confidence: args.confidence,
            model_version: args.model_version.clone(),
            source: format!("cli:{}:{}", path.display(), i + 2),
        };
        store.check(&sample).map_err(at)?;
        out.push((PathBuf::from(format!("{} row {}", path.display(), i + 2)), sample));
    }
    if out.is_empty() {
        return Err(table_err("holds no rows".into()));
    }
    Ok(out)
}

fn print_outcome(path: &Path, o: &AddOutcome, sub_set: u32, count: u32, settled: bool) {
    let what = if o.duplicate { "already stored as" } else { "stored" };
    let key: PathBuf = o.path.iter().skip(2).collect();
    let stored = Path::new(NEW_DATA).join(sub_set_name(sub_set)).join(key);
    let pending = if settled { "" } else { "; not on the remote yet, so its sub_set may still change" };
    println!("{}: {what} {} (sub_set {sub_set}: {count}/{}{pending})", path.display(), stored.display(), o.threshold);
}
