//! **validate**: decodes every image of the manifest and checks it (size, colour mode, label
//! range, exact duplicates, one image with two labels, blank or near-blank, class balance).
//! Bad samples go to a quarantine list — never deleted — and the clean manifest carries each
//! good image as the task's input, as the model sees it. For a tabular task every row is checked
//! against the schema instead (a feedback row whose file changed or breaks the schema is bad),
//! and the same row with two labels is quarantined like the same image. Feedback whose label
//! the serving model, or a copy of it fine-tuned without the sample's fold (`model::folds`),
//! finds very unlikely is held for review (`check_labels`), unless a reviewer decided on it.
//! The run fails when the bad share of the feedback passes `validate.max_bad_share`, after
//! writing the report.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::augment::{self, AugmentParams};
use crate::manifest::{self, Role, Row};
use crate::{StageError, write_file, write_json};
use gitops::device::DeviceChoice;
use gitops::feedback::Kind;
pub use gitops::feedback::review::LABEL_NOISE;
use gitops::feedback::review::{Action, FoldParams, ReviewParams, Suspect};
use gitops::image_input::{ImageLimits, decode_limited};
use gitops::params;
use gitops::task::Task;
use model::data::{Loader, table};
use model::folds::{self, Example};
use model::review::{self, Pending};
use model::{Classifier, Weights, preprocess};
use pipeline::paths;
use pipeline::registry::Registry;

#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Check every image of the manifest; quarantine bad samples",
    long_about = "Reads the ingest manifest and the images it names; writes the clean manifest (Parquet, with each image as the input the model sees: params task), the quarantine list (JSON: bad samples, and feedback whose label the serving model in --models, or a copy of it fine-tuned without the sample's fold, finds very unlikely, held for review: params review) and a report (JSON and text). Fails when the bad share of the feedback passes params validate.max_bad_share."
)]
pub struct Args {
    #[arg(long, default_value = "params.yaml")]
    pub params: PathBuf,
    #[arg(long, default_value = paths::MANIFEST)]
    pub manifest: PathBuf,
    #[arg(long, default_value = paths::VALIDATE)]
    pub out: PathBuf,
    /// Where the serving model is (models/registry.json), for the label check.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Where the model runs (auto: CUDA when a GPU is visible, else the CPU).
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceChoice,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidateParams {
    pub max_bad_share: f64,
    pub min_side: u32,
    pub max_side: u32,
    pub min_ink: f64,
    pub max_class_share: f64,
}

impl Default for ValidateParams {
    fn default() -> Self {
        Self { max_bad_share: 0.2, min_side: 8, max_side: 4096, min_ink: 0.01, max_class_share: 0.5 }
    }
}

/// A quarantined sample and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quarantined {
    pub path: String,
    pub sha256: String,
    pub label: usize,
    pub sub_set: Option<u32>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub rows: usize,
    pub clean: usize,
    pub feedback: usize,
    pub feedback_bad: usize,
    /// Feedback held for review: suspect labels (params `review:`) and samples a reviewer
    /// rejected. Not counted as bad: nothing is wrong with the file.
    #[serde(default)]
    pub in_review: usize,
    #[serde(default)]
    pub rejected: usize,
    pub bad_share: f64,
    pub max_bad_share: f64,
    pub passed: bool,
    pub reasons: BTreeMap<String, usize>,
    /// Clean feedback samples per class name.
    pub feedback_per_class: BTreeMap<String, usize>,
    pub modes: BTreeMap<String, usize>,
    pub warnings: Vec<String>,
}

pub fn run(args: &Args) -> Result<Report, StageError> {
    let p: ValidateParams = params::section(&args.params, "validate")?;
    let task = params::task(&args.params)?;
    let rows = manifest::read(&args.manifest)?;
    let loader = Loader::new(ImageLimits { max_bytes: 64 << 20, max_pixels: p.max_side as u64 * p.max_side as u64 });
    if task.schema().is_some() {
        let tables: BTreeSet<&std::path::Path> =
            rows.iter().filter(|r| r.sub_set.is_none()).map(|r| std::path::Path::new(&r.path)).collect();
        loader.open_tables(&task, tables);
    }
    let results: Vec<Checked> = rows
        .par_iter()
        .map(|row| match row.sub_set {
            None => (base_input(&loader, &task, row), None),
            Some(_) => feedback_input(row, &p, &task),
        })
        .collect();
    let mut modes = BTreeMap::new();
    let mut checked: Vec<Result<Row, (Row, String)>> = Vec::with_capacity(rows.len());
    for (row, (result, mode)) in rows.into_iter().zip(results) {
        if let Some(mode) = mode {
            *modes.entry(mode).or_insert(0) += 1;
        }
        let result = result.and_then(|input| match row.label < task.class_count() {
            true => Ok(input),
            false => Err(format!("label: class {} is not one of the task's {}", row.label, task.class_count())),
        });
        checked.push(match result {
            Ok(input) => Ok(Row { pixels: Some(input), ..row }),
            Err(why) => Err((row, why)),
        });
    }
    flag_duplicates_and_conflicts(&mut checked);
    let review: ReviewParams = params::section(&args.params, "review")?;
    let mut warnings = Vec::new();
    let augmenting: AugmentParams = params::section(&args.params, "augment")?;
    if let Some(why) = check_labels(&mut checked, &task, &review, &augmenting, &args.models, args.device)? {
        warnings.push(why);
    }

    let (mut clean, mut quarantine) = (Vec::new(), Vec::new());
    let mut reasons = BTreeMap::new();
    for result in checked {
        match result {
            Ok(row) => clean.push(row),
            Err((row, reason)) => {
                *reasons.entry(reason.split(':').next().unwrap_or_default().to_string()).or_insert(0) += 1;
                quarantine.push(Quarantined {
                    path: row.path,
                    sha256: row.sha256,
                    label: row.label,
                    sub_set: row.sub_set,
                    reason,
                });
            }
        }
    }
    let is_feedback = |r: &Role| matches!(r, Role::FeedbackTrain | Role::Holdout);
    let feedback_clean: Vec<&Row> = clean.iter().filter(|r| is_feedback(&r.role)).collect();
    let held = |q: &&Quarantined| q.reason.starts_with(LABEL_NOISE) || q.reason.starts_with(REJECTED);
    let in_review = quarantine.iter().filter(|q| q.sub_set.is_some() && q.reason.starts_with(LABEL_NOISE)).count();
    let rejected = quarantine.iter().filter(|q| q.sub_set.is_some() && q.reason.starts_with(REJECTED)).count();
    let feedback_bad = quarantine.iter().filter(|q| q.sub_set.is_some() && !held(q)).count();
    let feedback = feedback_clean.len() + feedback_bad;
    let bad_share = if feedback == 0 { 0.0 } else { feedback_bad as f64 / feedback as f64 };
    let mut per_class = vec![0usize; task.class_count()];
    feedback_clean.iter().for_each(|r| per_class[r.label] += 1);
    if let Some((class, n)) = per_class.iter().enumerate().max_by_key(|(_, n)| **n)
        && feedback_clean.len() >= 10
        && *n as f64 / feedback_clean.len() as f64 > p.max_class_share
    {
        let name = &task.classes[class];
        warnings.push(format!("class balance: class {name} is {n} of {} feedback samples", feedback_clean.len()));
    }
    let per_class: BTreeMap<String, usize> = task.classes.iter().cloned().zip(per_class).collect();
    let report = Report {
        rows: clean.len() + quarantine.len(),
        clean: clean.len(),
        feedback,
        feedback_bad,
        in_review,
        rejected,
        bad_share,
        max_bad_share: p.max_bad_share,
        passed: bad_share <= p.max_bad_share,
        reasons,
        feedback_per_class: per_class,
        modes,
        warnings,
    };
    manifest::write(&args.out.join("clean.parquet"), &clean)?;
    write_json(&args.out.join("quarantine.json"), &quarantine)?;
    write_json(&args.out.join("report.json"), &report)?;
    write_file(&args.out.join("report.txt"), summary(&report).as_bytes())?;
    if !report.passed {
        return Err(StageError::Invalid {
            path: args.out.join("report.json"),
            what: format!(
                "{feedback_bad} of {feedback} feedback samples are bad ({:.1}% > validate.max_bad_share {:.1}%); see quarantine.json",
                100.0 * bad_share,
                100.0 * p.max_bad_share
            ),
        });
    }
    Ok(report)
}

/// The reason of a sample a reviewer rejected (one held for review: [`LABEL_NOISE`]).
pub const REJECTED: &str = "rejected in review";

/// Confident learning on the feedback (`feedback::review::suspect`, params `review:`): the
/// serving model scores every clean feedback sample no reviewer decided on, and so do the
/// out-of-fold copies (`review.out_of_fold`); a label either finds suspect goes to quarantine
/// (the review queue) instead of training and evaluation, with both opinions in its reason. A sample a reviewer
/// rejected goes there too; one accepted or relabelled is trusted. Without a serving model the
/// check is skipped, and the returned warning says so.
fn check_labels(
    checked: &mut [Result<Row, (Row, String)>],
    task: &Task,
    params: &ReviewParams,
    augmenting: &AugmentParams,
    models: &Path,
    device: DeviceChoice,
) -> Result<Option<String>, StageError> {
    for slot in checked.iter_mut() {
        if let Ok(row) = slot
            && row.review.as_deref().and_then(Action::from_name) == Some(Action::Reject)
        {
            *slot = Err((row.clone(), REJECTED.to_string()));
        }
    }
    let open: Vec<usize> = (0..checked.len())
        .filter(|&i| matches!(&checked[i], Ok(row) if row.sub_set.is_some() && row.review.is_none()))
        .collect();
    if !params.label_noise || open.is_empty() {
        return Ok(None);
    }
    let Ok(registry) = Registry::load(models) else {
        return Ok(Some(format!("label check skipped: no serving model in {}", models.display())));
    };
    let device = model::device::resolve(device)?;
    let file = pipeline::storage::open(models, &registry.serving)?;
    let classifier = Classifier::new(file.load(device, task, None)?);
    let thresholds =
        classifier.model().sidecar.reference.as_ref().map(|r| r.class_thresholds.clone()).unwrap_or_default();
    let pending: Vec<Pending> = open
        .iter()
        .map(|&i| {
            let row = checked[i].as_ref().expect("filtered");
            Pending {
                sha256: row.sha256.clone(),
                sub_set: row.sub_set.unwrap_or_default(),
                path: row.path.clone(),
                label: row.label,
                // Ingest writes feedback rows of kind correct or wrong only.
                kind: Kind::from_name(&row.kind).unwrap_or(Kind::Wrong),
                input: row.pixels.clone().expect("validated rows carry their input"),
            }
        })
        .collect();
    let none_held = Default::default();
    let found = review::suspects(&pending, task, |flat| classifier.predict(flat), &thresholds, params, &none_held);
    let mut why: HashMap<usize, String> = HashMap::new();
    let by_key: HashMap<(&str, &str), &Suspect> =
        found.iter().map(|s| ((s.sha256.as_str(), s.path.as_str()), s)).collect();
    for (&i, sample) in open.iter().zip(&pending) {
        if let Some(s) = by_key.get(&(sample.sha256.as_str(), sample.path.as_str())) {
            why.insert(
                i,
                format!(
                    "{} gives it {:.4} and says {} at {:.4}",
                    registry.serving, s.p_given, s.predicted, s.confidence
                ),
            );
        }
    }
    let load = || Ok(file.load(device, task, None)?);
    let folds = out_of_fold(checked, &open, task, &params.out_of_fold, augmenting, load)?;
    if let Some(predictions) = folds {
        let k = params.out_of_fold.folds;
        for (&i, prediction) in open.iter().zip(predictions) {
            let label = checked[i].as_ref().expect("filtered").label;
            let p_given = prediction.probabilities[label];
            if prediction.index != label && f64::from(p_given) < params.out_of_fold.max_given_probability {
                let said = format!(
                    "a copy fine-tuned without it ({k} folds) gives it {p_given:.4} and says {} at {:.4}",
                    task.classes[prediction.index], prediction.confidence
                );
                why.entry(i).and_modify(|w| *w = format!("{w}; {said}")).or_insert(said);
            }
        }
    }
    for (i, why) in why {
        let Ok(row) = &checked[i] else { continue };
        let reason = format!("{LABEL_NOISE}: labelled {} but {why}", task.classes[row.label]);
        checked[i] = Err((row.clone(), reason));
    }
    Ok(None)
}

/// Out-of-fold predictions for the `open` feedback rows (`model::folds`): the serving model
/// (`load` gives a fresh copy) fine-tuned on the other folds, the feedback a reviewer vouched
/// for and replayed base rows. `None` when the check is off or there are too few samples.
fn out_of_fold(
    checked: &[Result<Row, (Row, String)>],
    open: &[usize],
    task: &Task,
    p: &FoldParams,
    augmenting: &AugmentParams,
    load: impl Fn() -> Result<model::LoadedModel, StageError>,
) -> Result<Option<Vec<model::Prediction>>, StageError> {
    fn example(row: &Row) -> Example<'_> {
        Example {
            key: &row.sha256,
            input: row.pixels.as_deref().expect("validated rows carry their input"),
            label: row.label,
        }
    }
    let rows = || checked.iter().filter_map(|c| c.as_ref().ok());
    let samples: Vec<Example<'_>> = open.iter().map(|&i| example(checked[i].as_ref().expect("filtered"))).collect();
    let trusted: Vec<Example<'_>> = rows()
        .filter(|r| r.sub_set.is_some() && r.review.as_deref().and_then(Action::from_name).is_some_and(Action::trusts))
        .map(example)
        .collect();
    let replay: Vec<Example<'_>> = rows().filter(|r| r.role == Role::Train).map(example).collect();
    let copy = |e: &Example<'_>, k: usize| augment::augment(task, e.input, augmenting, e.key, k);
    folds::out_of_fold(load, task, &samples, &trusted, &replay, copy, p)
}

/// A row's input or why it is bad, and the colour mode of a feedback image.
type Checked = (Result<Vec<u8>, String>, Option<String>);

/// A base image as the task's input (an image that cannot be read or holds nothing is bad).
fn base_input(loader: &Loader, task: &Task, row: &Row) -> Result<Vec<u8>, String> {
    if let (Some(_), Some(index)) = (task.schema(), row.index) {
        return loader.load_row(std::path::Path::new(&row.path), index as u64, task).map(|v| table::input_bytes(&v));
    }
    let image = loader.load(std::path::Path::new(&row.path), row.index.map(|i| i as u64))?;
    preprocess::to_input(task, &image).map_err(|e| format!("blank: {e}"))
}

/// A feedback image as the task's input, and its colour mode; checked against its record's
/// sha256, the size limits and, for digits, the share of ink.
fn feedback_input(row: &Row, p: &ValidateParams, task: &Task) -> Checked {
    let bytes = match std::fs::read(&row.path) {
        Ok(bytes) => bytes,
        Err(e) => return (Err(format!("unreadable: {e}")), None),
    };
    if hex::encode(Sha256::digest(&bytes)) != row.sha256 {
        return (Err("changed: the file's sha256 no longer matches its feedback record".into()), None);
    }
    if let Some(schema) = task.schema() {
        let row = serde_json::from_slice(&bytes)
            .map_err(|e| format!("schema: not a JSON object of features: {e}"))
            .and_then(|map| schema.check(&map).map_err(|e| format!("schema: {e}")));
        return (row.map(|row| table::input_bytes(&schema.encode(&row))), Some("row".into()));
    }
    let limits = ImageLimits { max_bytes: 64 << 20, max_pixels: p.max_side as u64 * p.max_side as u64 };
    let image = match decode_limited(&bytes, &limits) {
        Ok(image) => image,
        Err(e) => return (Err(format!("undecodable: {e}")), None),
    };
    let mode = Some(format!("{:?}", image.color()));
    let (w, h) = (image.width(), image.height());
    if w.min(h) < p.min_side || w.max(h) > p.max_side {
        return (Err(format!("size: {w}x{h} is outside {}..{} pixels a side", p.min_side, p.max_side)), mode);
    }
    let input = match preprocess::to_input(task, &image) {
        Ok(input) => input,
        Err(e) => return (Err(format!("blank: {e}")), mode),
    };
    if task.is_digit() {
        let ink = input.iter().filter(|&&v| v > 64).count() as f64 / input.len() as f64;
        if ink < p.min_ink {
            return (Err(format!("blank: only {:.1}% of the digit is ink", 100.0 * ink)), mode);
        }
    }
    (Ok(input), mode)
}

/// The same image twice with one label keeps the first copy; one image with two labels
/// quarantines every copy, since neither label can be trusted.
fn flag_duplicates_and_conflicts(checked: &mut [Result<Row, (Row, String)>]) {
    let mut labels: HashMap<String, Vec<usize>> = HashMap::new();
    for row in checked.iter().flatten().filter(|r| r.sub_set.is_some()) {
        labels.entry(row.sha256.clone()).or_default().push(row.label);
    }
    let mut seen = HashMap::new();
    for slot in checked.iter_mut() {
        let Ok(row) = slot else { continue };
        if row.sub_set.is_none() {
            continue;
        }
        let all = &labels[&row.sha256];
        let reason = if all.iter().any(|l| *l != all[0]) {
            Some(format!("conflicting labels: the same image is labelled {all:?}"))
        } else if seen.insert(row.sha256.clone(), ()).is_some() {
            Some("duplicate: the same image with the same label is already in the dataset".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            let row = row.clone();
            *slot = Err((row, reason));
        }
    }
}

fn summary(r: &Report) -> String {
    let mut text = format!(
        "validate: {} rows, {} clean; feedback {} ({} bad, {:.1}%, limit {:.1}%; {} held for review, {} rejected): {}\n",
        r.rows,
        r.clean,
        r.feedback,
        r.feedback_bad,
        100.0 * r.bad_share,
        100.0 * r.max_bad_share,
        r.in_review,
        r.rejected,
        if r.passed { "PASSED" } else { "FAILED" }
    );
    for (reason, n) in &r.reasons {
        text.push_str(&format!("  quarantined ({reason}): {n}\n"));
    }
    text.push_str(&format!("  feedback per class: {:?}\n", r.feedback_per_class));
    for w in &r.warnings {
        text.push_str(&format!("  warning: {w}\n"));
    }
    text
}
