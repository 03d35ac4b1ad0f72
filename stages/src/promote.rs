//! **promote**: decides on evidence. The candidate is promoted only if it is better on the
//! held-back feedback at evaluate's confidence — the bound of its paired Brier difference to
//! the serving model is below zero, so it counts even when both models are right on every
//! sample — and McNemar's test does not find it less accurate there (nor its accuracy below
//! `promote.min_feedback_gain`); and if it is non-inferior within margins elsewhere: its base
//! test Brier score rises by at most `promote.max_base_brier_increase` (bound) and its accuracy
//! drops by at most `promote.max_base_drop` against the serving model and by at most
//! `promote.max_line_base_drop` against the model its line of promotions started from (so
//! small steps cannot add up to a slide), no class's recall drops by more than
//! `promote.max_class_recall_drop`, and it loses at most `promote.max_earlier_feedback_drop`
//! on the feedback held back from earlier retrains (new labels that contradict trusted ones
//! show up there). The decision and every reason, with its numbers, are written either way. On promotion the candidate becomes a new timestamped model
//! in `models/`, the registry serves it, old versions are pruned to `promote.keep`, and a git
//! commit carrying the metrics is made (and pushed when a remote is configured). The sealed
//! sub_sets it looked at are marked trained either way, so `feedback should-retrain` settles.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::evaluate::{Comparison, Paired};
use crate::finetune::candidate_in;
use crate::manifest::{self, Role};
use crate::validate::Quarantined;
use crate::{StageError, read_json, write_json};
use gitops::feedback::FeedbackStore;
use gitops::feedback::review::{HeldSample, LABEL_NOISE};
use gitops::model_file::ModelFile;
use gitops::params;
use pipeline::paths;
use pipeline::registry::{Action, Registry};
use pipeline::release::{self, Decision};
use pipeline::storage;

#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Promote the candidate when it is better, and say why either way",
    long_about = "Reads evaluation.json from evaluate, the candidate from finetune and the clean manifest; writes decision.json. On promotion: a new models/model_<ts>.safetensors with its sidecar, models/registry.json serving it, older versions pruned to params promote.keep, and a git commit (pushed when the remote exists). Thresholds: params promote.*."
)]
pub struct Args {
    #[arg(long, default_value = "params.yaml")]
    pub params: PathBuf,
    #[arg(long, default_value = paths::EVALUATION)]
    pub evaluation: PathBuf,
    #[arg(long, default_value = paths::CANDIDATE)]
    pub candidate: PathBuf,
    #[arg(long, default_value = paths::CLEAN)]
    pub manifest: PathBuf,
    /// The repository whose models/ and new_data/ are updated and committed.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    #[arg(long, default_value = paths::DECISION)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromoteParams {
    pub min_feedback_gain: f64,
    pub max_earlier_feedback_drop: f64,
    pub max_base_brier_increase: f64,
    pub max_base_drop: f64,
    /// The most base test accuracy a candidate may have lost against the line's origin, the
    /// model before the line's first promotion ([`ORIGIN_METRIC`]).
    pub max_line_base_drop: f64,
    pub max_class_recall_drop: f64,
    pub keep: usize,
    pub commit: bool,
    /// A candidate that passes runs in shadow beside the serving model (registry `shadow`)
    /// instead of serving at once; `pipeline models promote-shadow` serves it on live evidence.
    pub shadow: bool,
}

impl Default for PromoteParams {
    fn default() -> Self {
        Self {
            min_feedback_gain: 0.0,
            max_earlier_feedback_drop: 0.02,
            max_base_brier_increase: 0.02,
            max_base_drop: 0.01,
            max_line_base_drop: 0.01,
            max_class_recall_drop: 0.05,
            keep: 3,
            commit: true,
            shadow: false,
        }
    }
}

/// The base test accuracy of the model a line of promotions started from (a base model), which
/// every model promoted in the line carries in its sidecar's metrics as [`ORIGIN_METRIC`].
pub const ORIGIN_METRIC: &str = "origin_base_test_accuracy";

/// The serving model's line origin's base test accuracy: what its sidecar carries, or, for a
/// model no promotion made (a base model), the serving model's own as evaluate measured it.
pub fn origin_of_serving(models: &Path, c: &Comparison) -> Result<f64, StageError> {
    let sidecar = ModelFile::new(models, &c.serving_version)?.read_sidecar()?;
    Ok(sidecar.metrics.get(ORIGIN_METRIC).copied().unwrap_or(c.serving.base_test.accuracy))
}

/// Applies the evidence rules, `origin` being the base test accuracy of the serving model's
/// line origin ([`origin_of_serving`]); returns whether to promote and the reasons, met or not.
pub fn judge(c: &Comparison, origin: f64, p: &PromoteParams) -> (bool, Vec<String>) {
    let mut ok = true;
    let mut reasons = Vec::new();
    let mut check = |met: bool, reason: String| {
        ok &= met;
        reasons.push(reason);
    };
    match (&c.candidate.feedback, &c.serving.feedback, &c.evidence.feedback) {
        (Some(cand), Some(serv), Some(e)) => {
            let [_, upper] = e.brier_diff_bounds;
            // The bound, or where a few samples carry the mean and keep it wide, the sign test
            // (with the mean on the same side).
            let by_sign = e.brier_diff < 0.0 && e.brier_sign_p < 1.0 - e.confidence;
            let better = upper < 0.0 || by_sign;
            check(
                better,
                format!(
                    "held-back feedback Brier {:.4} vs {:.4} serving: difference {:+.4}, {}% bound {upper:+.4}; better on {} samples, worse on {} (sign test p = {:.3}): {} ({} samples; log-loss {:.4} vs {:.4})",
                    e.candidate_brier,
                    e.serving_brier,
                    e.brier_diff,
                    percent(e.confidence),
                    e.brier_better,
                    e.brier_worse,
                    e.brier_sign_p,
                    match (upper < 0.0, by_sign) {
                        (true, _) => "the bound is below 0, the candidate is better",
                        (false, true) => "the sign test shows the candidate is better",
                        _ => "no evidence the candidate is better",
                    },
                    e.samples,
                    e.candidate_log_loss,
                    e.serving_log_loss
                ),
            );
            let worse = e.serving_only_right > e.candidate_only_right && e.mcnemar_p < 1.0 - e.confidence;
            check(!worse, format!("held-back feedback: {}", mcnemar(e, worse)));
            let gain = cand.accuracy - serv.accuracy;
            check(
                gain >= p.min_feedback_gain,
                format!(
                    "held-back feedback accuracy {:.2}% vs {:.2}% serving: gain {:+.2} points {} the required {:+.2}",
                    100.0 * cand.accuracy,
                    100.0 * serv.accuracy,
                    100.0 * gain,
                    if gain >= p.min_feedback_gain { "meets" } else { "is below" },
                    100.0 * p.min_feedback_gain
                ),
            );
        }
        _ => check(false, "no held-back feedback yet: nothing shows the candidate is better".into()),
    }
    if let (Some(cand), Some(serv)) = (&c.candidate.earlier_feedback, &c.serving.earlier_feedback) {
        let drop = serv.accuracy - cand.accuracy;
        check(
            drop <= p.max_earlier_feedback_drop,
            format!(
                "feedback held back from earlier retrains {:.2}% vs {:.2}% serving: drop {:.2} points {} the allowed {:.2} ({} samples)",
                100.0 * cand.accuracy,
                100.0 * serv.accuracy,
                100.0 * drop.max(0.0),
                if drop <= p.max_earlier_feedback_drop { "within" } else { "exceeds" },
                100.0 * p.max_earlier_feedback_drop,
                cand.samples
            ),
        );
    }
    let base = &c.evidence.base_test;
    let [_, upper] = base.brier_diff_bounds;
    check(
        upper <= p.max_base_brier_increase,
        format!(
            "base test Brier {:.4} vs {:.4} serving: difference {:+.4}, {}% bound {upper:+.4} {} the allowed {:+.4} (log-loss {:.4} vs {:.4})",
            base.candidate_brier,
            base.serving_brier,
            base.brier_diff,
            percent(base.confidence),
            if upper <= p.max_base_brier_increase { "within" } else { "exceeds" },
            p.max_base_brier_increase,
            base.candidate_log_loss,
            base.serving_log_loss
        ),
    );
    let drop = c.serving.base_test.accuracy - c.candidate.base_test.accuracy;
    check(
        drop <= p.max_base_drop,
        format!(
            "base test accuracy {:.2}% vs {:.2}% serving: drop {:.2} points {} the allowed {:.2}; {}",
            100.0 * c.candidate.base_test.accuracy,
            100.0 * c.serving.base_test.accuracy,
            100.0 * drop.max(0.0),
            if drop <= p.max_base_drop { "within" } else { "exceeds" },
            100.0 * p.max_base_drop,
            mcnemar(base, false)
        ),
    );
    let line_drop = origin - c.candidate.base_test.accuracy;
    // Accuracies are counts over one test set: a drop equal to the margin is within it.
    let line_within = line_drop <= p.max_line_base_drop + 1e-9;
    check(
        line_within,
        format!(
            "base test accuracy {:.2}% vs {:.2}% of the line's origin (the model before its first promotion): drop {:.2} points {} the allowed {:.2}",
            100.0 * c.candidate.base_test.accuracy,
            100.0 * origin,
            100.0 * line_drop.max(0.0),
            if line_within { "within" } else { "exceeds" },
            100.0 * p.max_line_base_drop
        ),
    );
    let recalls = c.serving.base_test.recall.iter().zip(&c.candidate.base_test.recall);
    for (class, (serving, candidate)) in recalls.enumerate() {
        let drop = serving - candidate;
        if drop > p.max_class_recall_drop {
            let name = c.classes.get(class).cloned().unwrap_or_else(|| class.to_string());
            check(
                false,
                format!(
                    "recall of class {name} drops {:.2} points ({:.2}% -> {:.2}%), more than the allowed {:.2}",
                    100.0 * drop,
                    100.0 * serving,
                    100.0 * candidate,
                    100.0 * p.max_class_recall_drop
                ),
            );
        }
    }
    (ok, reasons)
}

fn percent(confidence: f64) -> String {
    format!("{:.0}", 100.0 * confidence)
}

/// McNemar's counts and p-value, as a reason reads them.
fn mcnemar(e: &Paired, worse: bool) -> String {
    format!(
        "McNemar: {} right only by the candidate, {} only by serving, p = {:.3}{}",
        e.candidate_only_right,
        e.serving_only_right,
        e.mcnemar_p,
        if worse { ": the candidate is less accurate" } else { "" }
    )
}

pub fn run(args: &Args) -> Result<Decision, StageError> {
    let p: PromoteParams = params::section(&args.params, "promote")?;
    let comparison: Comparison = read_json(&args.evaluation)?;
    let models = args.repo.join("models");
    let registry = Registry::load(&models)?;
    if registry.serving != comparison.serving_version {
        return Err(StageError::Invalid {
            path: args.evaluation.clone(),
            what: format!(
                "evaluated against {} but {} is serving now; rerun evaluate",
                comparison.serving_version, registry.serving
            ),
        });
    }
    let origin = origin_of_serving(&models, &comparison)?;
    let (passed, mut reasons) = judge(&comparison, origin, &p);
    let promote = passed && !p.shadow;
    if passed && p.shadow {
        reasons.push(
            "runs in shadow first (promote.shadow): `pipeline models promote-shadow --server URL` serves it once live traffic bears it out"
                .into(),
        );
    }
    let mut metrics = BTreeMap::from([
        ("base_test_accuracy".to_string(), comparison.candidate.base_test.accuracy),
        ("serving_base_test_accuracy".to_string(), comparison.serving.base_test.accuracy),
        (ORIGIN_METRIC.to_string(), origin),
    ]);
    let base = &comparison.evidence.base_test;
    metrics.insert("base_test_log_loss".into(), base.candidate_log_loss);
    metrics.insert("serving_base_test_log_loss".into(), base.serving_log_loss);
    if let (Some(c), Some(s)) = (&comparison.candidate.feedback, &comparison.serving.feedback) {
        metrics.insert("feedback_accuracy".into(), c.accuracy);
        metrics.insert("serving_feedback_accuracy".into(), s.accuracy);
        metrics.insert("feedback_holdout_samples".into(), c.samples as f64);
    }
    if let Some(e) = &comparison.evidence.feedback {
        metrics.insert("feedback_log_loss".into(), e.candidate_log_loss);
        metrics.insert("serving_feedback_log_loss".into(), e.serving_log_loss);
        metrics.insert("feedback_brier".into(), e.candidate_brier);
        metrics.insert("serving_feedback_brier".into(), e.serving_brier);
        metrics.insert("feedback_brier_diff_bound".into(), e.brier_diff_bounds[1]);
        metrics.insert("feedback_mcnemar_p".into(), e.mcnemar_p);
    }
    let quarantine = quarantine(&args.manifest)?;
    let sub_sets = sealed_sub_sets(&args.manifest, &quarantine)?;
    let mut decision = Decision {
        promoted: promote,
        candidate: Some(comparison.candidate_version.clone()),
        serving_before: registry.serving.clone(),
        reasons,
        metrics: metrics.clone(),
        sub_sets: sub_sets.clone(),
        pruned: Vec::new(),
        shadow: None,
        at: chrono::Utc::now(),
    };
    let mut changed: Vec<&Path> = Vec::new();
    let mut published = Vec::new();
    if passed {
        let candidate = candidate_in(&args.candidate)?;
        let mut sidecar = candidate.read_sidecar()?;
        sidecar.metrics.extend(metrics.clone());
        sidecar.confusion = Some(comparison.candidate.base_test.confusion);
        sidecar.reference = comparison.candidate_reference;
        let installed = release::install(&models, &candidate, sidecar)?;
        published.extend(storage::track(&args.repo, &installed.version)?);
        let action = if p.shadow { Action::Shadow } else { Action::Promote };
        let registry = registry.with_event(action, &installed.version, &decision.reasons.join("; "));
        decision.shadow = p.shadow.then(|| installed.version.clone());
        registry.save(&models)?;
        decision.pruned = release::prune(&models, &registry, p.keep)?;
        decision.candidate = Some(installed.version);
        changed.push(Path::new("models"));
    }
    let trained_as = decision.candidate.clone().filter(|_| promote).unwrap_or_else(|| decision.serving_before.clone());
    let store = FeedbackStore::open(&args.repo)?;
    let (_, statuses) = store.status()?;
    let fresh: Vec<u32> = statuses
        .iter()
        .filter(|s| s.sealed && !s.trained && sub_sets.contains(&s.sub_set))
        .map(|s| s.sub_set)
        .collect();
    for n in &fresh {
        store.mark_trained(*n, &trained_as)?;
    }
    // What validate held for review, for every clone's review queue (`new_data/held.json`).
    let held = quarantine
        .iter()
        .filter(|q| q.reason.starts_with(LABEL_NOISE))
        .map(|q| HeldSample { sha256: q.sha256.clone(), reason: q.reason.clone() })
        .collect();
    if store.record_held(held)? || !fresh.is_empty() {
        changed.push(Path::new("new_data"));
    }
    if passed {
        // `storage: dvc`: the weights reach the remote before any clone can see their pointer.
        storage::publish(&args.repo, &published)?;
    }
    write_json(&args.out, &decision)?;
    if p.commit && !changed.is_empty() {
        release::commit_and_push(&args.repo, &changed, &commit_message(&decision))?;
    }
    Ok(decision)
}

/// What validate held back (its quarantine, next to the clean manifest: held for review, or
/// bad); nothing when it wrote none.
fn quarantine(manifest_path: &Path) -> Result<Vec<Quarantined>, StageError> {
    let path = manifest_path.with_file_name("quarantine.json");
    if path.is_file() { read_json(&path) } else { Ok(Vec::new()) }
}

/// Sealed sub_sets whose feedback the candidate was trained or judged on, or validate held
/// back: every sub_set this retrain looked at.
fn sealed_sub_sets(manifest_path: &Path, quarantine: &[Quarantined]) -> Result<Vec<u32>, StageError> {
    let mut sub_sets: Vec<u32> = manifest::read(manifest_path)?
        .iter()
        .filter(|r| matches!(r.role, Role::FeedbackTrain | Role::Holdout))
        .filter_map(|r| r.sub_set)
        .collect();
    sub_sets.extend(quarantine.iter().filter_map(|q| q.sub_set));
    sub_sets.sort_unstable();
    sub_sets.dedup();
    Ok(sub_sets)
}

fn commit_message(d: &Decision) -> String {
    let title = match (&d.candidate, d.promoted, &d.shadow) {
        (Some(v), true, _) => format!("Promote {v} (was {})", d.serving_before),
        (_, _, Some(v)) => format!("Shadow {v} beside {}", d.serving_before),
        _ => format!("Retrain rejected; {} keeps serving", d.serving_before),
    };
    let metrics: Vec<String> = d.metrics.iter().map(|(k, v)| format!("{k}: {v:.4}")).collect();
    format!("{title} [skip ci]\n\n{}\n\nsub_sets: {:?}\n{}\n", d.reasons.join("\n"), d.sub_sets, metrics.join("\n"))
}
