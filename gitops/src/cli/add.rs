//! `pipeline feedback add`: every input is read and checked before anything is written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::feedback::{AddOutcome, FeedbackStore, Kind, Sample};
use crate::git::{Credentials, FeedbackSync, GitError, PushOutcome};
use crate::params::Params;
use crate::trigger::{Fired, RetrainRequest, Trigger};

/// Images stored per locked, fsynced batch.
const BATCH: usize = 32;

/// `pipeline feedback add` options.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The digit shown in the images (0-9).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub label: u8,
    /// What the person said about the prediction; `unsure` samples are kept but not counted.
    #[arg(long, value_enum, default_value_t = Kind::Correct)]
    pub kind: Kind,
    /// The digit the model predicted.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub predicted: Option<u8>,
    /// The model's confidence in its prediction (0-1).
    #[arg(long, requires = "predicted")]
    pub confidence: Option<f32>,
    /// The model version that made the prediction.
    #[arg(long = "model", value_name = "VERSION")]
    pub model_version: Option<String>,
    /// Store only: no git commit or push.
    #[arg(long)]
    pub no_git: bool,
    /// Image files (PNG, JPEG, GIF, BMP, WebP, TIFF).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

pub(super) fn run(repo_root: &Path, args: AddArgs) -> Result<ExitCode, CliError> {
    let params = Params::load(repo_root)?;
    let store = FeedbackStore::open_with(repo_root, params.feedback.clone());
    let samples = read_all(&store, &args)?;
    let mut sealed = Vec::new();
    let mut samples = samples.into_iter().peekable();
    while samples.peek().is_some() {
        let (paths, chunk): (Vec<_>, Vec<_>) = samples.by_ref().take(BATCH).unzip();
        for (path, outcome) in paths.iter().zip(store.add_many(chunk)?) {
            print_outcome(path, &outcome);
            sealed.extend(outcome.sealed.map(|n| (n, outcome.current_count)));
        }
    }
    let mut commit = None;
    if !args.no_git && git2::Repository::open(repo_root).is_ok() {
        let sync = FeedbackSync::new(store.clone(), params.git.clone(), Credentials::from_env());
        let outcome = sync.sync(&format!("feedback: {} sample(s) from the CLI", args.images.len()))?;
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
        sealed.extend(outcome.sealed.iter().map(|&n| (n, params.feedback.threshold)));
        commit = git2::Repository::open(repo_root)
            .map_err(GitError::from)?
            .head()
            .ok()
            .and_then(|h| h.target())
            .map(|o| o.to_string());
    }
    if !sealed.is_empty() {
        let trigger = Trigger::from_params(repo_root, &params.trigger)?;
        for (sub_set, count) in sealed {
            let request = RetrainRequest { sub_set, count, commit: commit.clone() };
            match trigger.fire(&request)? {
                Fired::Dispatched => println!("sub_set {sub_set} sealed: retrain dispatched on GitHub"),
                Fired::Queued { .. } => {
                    println!("sub_set {sub_set} sealed: retraining locally (log in .pipeline/retrain.log)")
                }
                Fired::Disabled => println!("sub_set {sub_set} sealed (trigger: none)"),
            }
        }
        if let Trigger::Local(local) = &trigger {
            let status = local.wait_idle();
            println!("local retrain {:?}, exit code {:?}", status.state, status.exit_code);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_all(store: &FeedbackStore, args: &AddArgs) -> Result<Vec<(PathBuf, Sample)>, CliError> {
    let mut out = Vec::with_capacity(args.images.len());
    for path in &args.images {
        let image = std::fs::read(path).map_err(|source| CliError::Read { path: path.clone(), source })?;
        let sample = Sample {
            image,
            label: args.label,
            kind: args.kind,
            predicted: args.predicted,
            confidence: args.confidence,
            model_version: args.model_version.clone(),
            source: format!("cli:{}", path.display()),
        };
        store.check(&sample).map_err(|source| CliError::Input { path: path.clone(), source })?;
        out.push((path.clone(), sample));
    }
    Ok(out)
}

fn print_outcome(path: &Path, o: &AddOutcome) {
    let what = if o.duplicate { "already stored as" } else { "stored" };
    println!(
        "{}: {what} {} (sub_set {}: {}/{})",
        path.display(),
        o.path.display(),
        o.sub_set,
        o.current_count,
        o.threshold
    );
}
