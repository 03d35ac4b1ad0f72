//! `pipeline review`: the label review queue, and reviewers' decisions (committed and pushed).

use anyhow::{Context, Result, bail};
use chrono::Utc;
use std::process::ExitCode;

use gitops::feedback::review::{Action, Decision, ReviewParams};
use gitops::feedback::{FeedbackStore, sealed_sub_sets};
use gitops::git::{Credentials, FeedbackSync, PushOutcome};
use gitops::image_input::ImageLimits;
use gitops::params::{self, Params};
use model::{Classifier, Weights};
use pipeline::cli::{ReviewAction, ReviewArgs};
use pipeline::registry::Registry;
use pipeline::repo::RepoPaths;

pub fn run(repo: &RepoPaths, args: ReviewArgs) -> Result<ExitCode> {
    let (action, samples, label) = match args.action.unwrap_or(ReviewAction::List) {
        ReviewAction::List => return list(repo, args.json, args.device),
        ReviewAction::Accept { samples } => (Action::Accept, samples, None),
        ReviewAction::Relabel { samples, label } => (Action::Relabel, samples, Some(label)),
        ReviewAction::Reject { samples } => (Action::Reject, samples, None),
    };
    let store = FeedbackStore::open(&repo.root)?;
    let known: Vec<String> = sealed_sub_sets(store.data_dir())?
        .into_iter()
        .flat_map(|s| s.records.into_iter().map(|(_, r)| r.sha256))
        .collect();
    // Every name resolves before anything is written.
    let shas = samples.iter().map(|name| resolve(name, &known)).collect::<Result<Vec<_>>>()?;
    for sha in &shas {
        let decision = Decision { action, label: label.clone(), at: Utc::now(), by: "cli".into() };
        store.decide(sha, decision).with_context(|| format!("deciding on {sha}"))?;
        println!("{sha}: {}", describe(action, label.as_deref()));
    }
    if repo.root.join(".git").exists() {
        let params = Params::load(&repo.root)?;
        let sync = FeedbackSync::new(store, params.git.clone(), Credentials::from_env());
        let outcome = sync.sync(&format!("review: {} decision(s) from the CLI", shas.len()))?;
        if let Some(oid) = outcome.commit {
            println!("committed {oid}");
        }
        match outcome.push {
            Some(PushOutcome::Pushed { head, .. }) => println!("pushed {head} to {}", params.git.remote),
            Some(PushOutcome::Offline { reason }) => {
                println!("remote unreachable ({reason}): the commit will be pushed later")
            }
            Some(PushOutcome::UpToDate) | None => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(action: Action, label: Option<&str>) -> String {
    match (action, label) {
        (Action::Relabel, Some(label)) => format!("relabelled {label}"),
        (Action::Accept, _) => "accepted".into(),
        _ => "rejected".into(),
    }
}

/// The full sha256 a name (the sha256 or a unique prefix of 8+ characters) stands for.
fn resolve(name: &str, known: &[String]) -> Result<String> {
    if name.len() < 8 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("`{name}` is not a sample's sha256 or a prefix of 8+ hex digits of one");
    }
    let mut matches: Vec<&String> = known.iter().filter(|sha| sha.starts_with(&name.to_ascii_lowercase())).collect();
    matches.dedup();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no sealed feedback sample's sha256 starts with {name}"),
        _ => bail!("{name} is the start of {} samples' sha256; give more of it", matches.len()),
    }
}

/// Prints the queue.
fn list(repo: &RepoPaths, json: bool, device: gitops::device::DeviceChoice) -> Result<ExitCode> {
    let review: ReviewParams = params::section(&repo.params(), "review")?;
    let params = Params::load(&repo.root)?;
    let task = params.task;
    let version = Registry::load(&repo.models())?.serving;
    let file = pipeline::storage::open(&repo.models(), &version)?;
    let classifier = Classifier::new(file.load(model::device::resolve(device)?, &task, None)?);
    let thresholds =
        classifier.model().sidecar.reference.as_ref().map(|r| r.class_thresholds.clone()).unwrap_or_default();
    let pending = model::review::pending(&repo.root, &task, &ImageLimits::from(&params.feedback))?;
    let held = model::review::held(&repo.root);
    let queue = model::review::suspects(&pending, &task, |b| classifier.predict(b), &thresholds, &review, &held);
    if json {
        for suspect in &queue {
            println!("{}", serde_json::to_string(suspect)?);
        }
    } else {
        println!(
            "{} of {} undecided feedback samples held for review by {version}{}",
            queue.len(),
            pending.len(),
            if review.label_noise { "" } else { " (review.label_noise is off: validate trains on them)" }
        );
        for s in &queue {
            println!(
                "{}  sub_set {}  labelled {} ({:?}), the model says {} at {:.3} and gives the label {:.4}  {}",
                &s.sha256[..12],
                s.sub_set,
                s.label,
                s.kind,
                s.predicted,
                s.confidence,
                s.p_given,
                s.path
            );
        }
        if !queue.is_empty() {
            println!(
                "decide with: pipeline review accept|reject SHA... or pipeline review relabel SHA... --label CLASS"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
