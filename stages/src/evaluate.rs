//! **evaluate**: runs the candidate and the served model on the base test set and on the
//! held-back feedback. Writes `metrics.json` (DVC metrics), `evaluation.json` (versions and
//! every figure promote needs), confusion matrices as CSV (DVC plots, `actual,predicted` rows)
//! and PNG heat maps drawn with plotters, and per-class recall. The two models' per-sample
//! outcomes on each set are compared in pairs (`paired`): the evidence promote decides on. The
//! candidate's signals on the base test set are its drift reference, which promote keeps in its
//! sidecar.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::finetune::candidate_in;
use crate::manifest::{self, Role, Row};
use crate::{StageError, write_file, write_json};
use gitops::architecture::Architecture;
use gitops::device::DeviceChoice;
use gitops::drift::{self, Reference};
use gitops::model_file::ModelFile;
use gitops::params;
use gitops::task::Task;
use model::eval::Outcome;
use model::train::Batch;
use model::{Classifier, Evaluation, Weights};
use pipeline::paths;
use pipeline::registry::Registry;

mod heatmap;
pub mod paired;

pub use paired::{EvaluateParams, Paired};

#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Score the candidate and the served model on base test data and held-back feedback",
    long_about = "Reads the clean manifest, the candidate from finetune and the model models/registry.json serves; writes metrics.json (DVC metrics), evaluation.json, confusion_<model>_<set>.csv (DVC plots), confusion_<model>_base_test.png and recall.csv into --out."
)]
pub struct Args {
    #[arg(long, default_value = "params.yaml")]
    pub params: PathBuf,
    #[arg(long, default_value = paths::CLEAN)]
    pub manifest: PathBuf,
    #[arg(long, default_value = paths::CANDIDATE)]
    pub candidate: PathBuf,
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    #[arg(long, default_value = paths::METRICS)]
    pub metrics: PathBuf,
    #[arg(long, default_value = paths::PLOTS)]
    pub out: PathBuf,
    /// Where the model runs (auto: CUDA when a GPU is visible, else the CPU).
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceChoice,
}

/// Both models' figures, as promote reads them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub candidate_version: String,
    pub serving_version: String,
    /// The task's class names: the order of every per-class figure.
    pub classes: Vec<String>,
    /// The candidate's drift reference: its signals on the base test set.
    pub candidate_reference: Option<Reference>,
    pub candidate: Scores,
    pub serving: Scores,
    /// Candidate against serving model, sample by sample, on each set.
    pub evidence: Evidence,
}

/// Paired comparisons on the sets `Scores` holds (`None` where the set is empty).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    pub base_test: Paired,
    pub feedback: Option<Paired>,
    pub earlier_feedback: Option<Paired>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scores {
    pub base_test: Evaluation,
    /// `None` when no feedback is held back yet.
    pub feedback: Option<Evaluation>,
    /// The held-back feedback of sub_sets an earlier retrain used: what the served model was
    /// already judged on. A candidate that loses here learned something that contradicts it.
    pub earlier_feedback: Option<Evaluation>,
}

/// One set of the manifest: its batch, labels and inputs.
type Set<'a> = (Batch, Vec<usize>, Vec<&'a [u8]>);

pub fn run(args: &Args) -> Result<Comparison, StageError> {
    let arch: Architecture = params::section(&args.params, "model")?;
    let task = params::task(&args.params)?;
    let settings: EvaluateParams = params::section(&args.params, "evaluate")?;
    let device = model::device::resolve(args.device)?;
    let rows = manifest::read(&args.manifest)?;
    // A set's batch, labels and inputs (the test set's inputs make the drift reference).
    let batch = |keep: &dyn Fn(&Row) -> bool| -> Result<Set, StageError> {
        let chosen: Vec<&Row> = rows.iter().filter(|r| keep(r)).collect();
        let inputs = crate::inputs(&args.manifest, &chosen, &task)?;
        let labels: Vec<usize> = chosen.iter().map(|r| r.label).collect();
        Ok((Batch::new(&task, &inputs, &labels, device), labels, inputs))
    };
    let test = batch(&|r| r.role == Role::Test)?;
    let holdout = batch(&|r| r.role == Role::Holdout)?;
    let earlier = batch(&|r| r.role == Role::Holdout && r.trained)?;
    let candidate_file = candidate_in(&args.candidate)?;
    let serving_file = pipeline::storage::open(&args.models, &Registry::load(&args.models)?.serving)?;
    // Each model's outcomes on the three sets, in manifest order, so the two pair up.
    let outcomes = |file: &ModelFile| -> Result<[Vec<Outcome>; 3], StageError> {
        let classifier = Classifier::new(file.load(device, &task, Some(&arch))?);
        Ok([&test, &holdout, &earlier].map(|(batch, labels, _)| model::eval::outcomes(&classifier, &batch.xs, labels)))
    };
    let (candidate, serving) = (outcomes(&candidate_file)?, outcomes(&serving_file)?);
    let scores = |o: &[Vec<Outcome>; 3]| {
        let evaluation = |set: usize, labels: &[usize]| {
            Evaluation::from_pairs(task.class_count(), labels.iter().zip(&o[set]).map(|(&t, o)| (t, o.predicted)))
        };
        Scores {
            base_test: evaluation(0, &test.1),
            feedback: (!holdout.1.is_empty()).then(|| evaluation(1, &holdout.1)),
            earlier_feedback: (!earlier.1.is_empty()).then(|| evaluation(2, &earlier.1)),
        }
    };
    let pair = |set: usize| paired::compare(&candidate[set], &serving[set], &settings);
    let comparison = Comparison {
        candidate_version: candidate_file.version.clone(),
        serving_version: serving_file.version.clone(),
        classes: task.classes.clone(),
        candidate_reference: reference(&task, &candidate[0], &test.1, &test.2),
        candidate: scores(&candidate),
        serving: scores(&serving),
        evidence: Evidence {
            base_test: pair(0),
            feedback: (!holdout.1.is_empty()).then(|| pair(1)),
            earlier_feedback: (!earlier.1.is_empty()).then(|| pair(2)),
        },
    };
    write_json(&args.metrics, &metrics(&comparison, holdout.1.len()))?;
    let dir = args.metrics.parent().unwrap_or(Path::new("."));
    write_json(&dir.join("evaluation.json"), &comparison)?;
    for (name, scores) in [("candidate", &comparison.candidate), ("serving", &comparison.serving)] {
        write_file(
            &args.out.join(format!("confusion_{name}_base_test.csv")),
            confusion_csv(&scores.base_test, &task.classes).as_bytes(),
        )?;
        if let Some(feedback) = &scores.feedback {
            write_file(
                &args.out.join(format!("confusion_{name}_feedback.csv")),
                confusion_csv(feedback, &task.classes).as_bytes(),
            )?;
        }
        let title = format!("{name} on the base test set ({:.2}%)", 100.0 * scores.base_test.accuracy);
        let png = args.out.join(format!("confusion_{name}_base_test.png"));
        heatmap::draw(&png, &scores.base_test.confusion, &task.classes, &title)?;
    }
    let mut recall = String::from("class,candidate,serving\n");
    for (c, class) in task.classes.iter().enumerate() {
        recall.push_str(&format!(
            "{class},{:.6},{:.6}\n",
            comparison.candidate.base_test.recall[c], comparison.serving.base_test.recall[c]
        ));
    }
    write_file(&args.out.join("recall.csv"), recall.as_bytes())?;
    Ok(comparison)
}

/// A model's drift reference from its outcomes on test samples (labelled `labels`) and their
/// inputs, with each class's mean probability for its own samples.
pub fn reference(task: &Task, outcomes: &[Outcome], labels: &[usize], inputs: &[&[u8]]) -> Option<Reference> {
    let samples: Vec<Vec<f64>> =
        outcomes.iter().zip(inputs).map(|(o, input)| drift::signals(task, o.confidence, input)).collect();
    let mut reference = Reference::build(&drift::signal_names(task), &samples)?;
    let mut sums = vec![(0.0, 0usize); task.class_count()];
    for (o, &label) in outcomes.iter().zip(labels) {
        if let Some((sum, n)) = sums.get_mut(label) {
            *sum += f64::from(o.p_true);
            *n += 1;
        }
    }
    // A class without test samples gets none: the review's default threshold applies.
    reference.class_thresholds = sums.iter().map(|&(sum, n)| (n > 0).then(|| sum / n as f64)).collect();
    Some(reference)
}

/// Flat numbers for `dvc metrics show`.
fn metrics(c: &Comparison, holdout: usize) -> serde_json::Value {
    let side = |s: &Scores, loss: &dyn Fn(&Paired) -> f64| {
        serde_json::json!({
            "base_test_accuracy": s.base_test.accuracy,
            "feedback_accuracy": s.feedback.as_ref().map(|f| f.accuracy),
            "earlier_feedback_accuracy": s.earlier_feedback.as_ref().map(|f| f.accuracy),
            "min_class_recall": s.base_test.recall.iter().copied().fold(f64::INFINITY, f64::min),
            "base_test_log_loss": loss(&c.evidence.base_test),
            "feedback_log_loss": c.evidence.feedback.as_ref().map(loss),
        })
    };
    serde_json::json!({
        "candidate": side(&c.candidate, &|p| p.candidate_log_loss),
        "serving": side(&c.serving, &|p| p.serving_log_loss),
        "base_test_samples": c.candidate.base_test.samples,
        "feedback_holdout_samples": holdout,
    })
}

/// One `actual,predicted` row per image, by class name: the layout DVC's confusion plot
/// template reads.
fn confusion_csv(e: &Evaluation, classes: &[String]) -> String {
    let mut text = String::from("actual,predicted\n");
    for (actual, row) in classes.iter().zip(&e.confusion) {
        for (predicted, &n) in classes.iter().zip(row) {
            for _ in 0..n {
                text.push_str(&format!("{actual},{predicted}\n"));
            }
        }
    }
    text
}
