//! The review of feedback labels. A sample whose given label the serving model finds very
//! unlikely is a *suspect* ([`suspect`], confident learning's rule): validate holds it out of
//! training and evaluation, and `pipeline review` and the page's review view list it until a
//! person decides. Decisions live in `new_data/review.json` (one per sample, by sha256: accept
//! the label, relabel, or reject the sample), written under the store's lock and committed with
//! `new_data/`, so the next retrain (a DAG dependency) sees them. What validate held (its label
//! checks need a model, so only the retrain runs them) lives in `new_data/held.json`, written by
//! promote and committed the same way, so every clone lists the same queue.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::layout::{HELD_FILE, Layout, REVIEW_FILE};
use super::{FeedbackError, FeedbackStore, io_err, sealed_sub_sets};

/// How validate's quarantine names a sample held for review: `label noise: ...`.
pub const LABEL_NOISE: &str = "label noise";

/// `review:` in params.yaml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewParams {
    /// Hold suspects for review (validate, `pipeline review`, the page).
    pub label_noise: bool,
    /// A sample is a suspect when the model gives its label less than this...
    pub max_given_probability: f64,
    /// ...while it gives another class at least that class's threshold: its mean probability
    /// for its own samples on the test set (from the model's drift reference), but never more
    /// than this (and this where the model has none).
    pub max_class_threshold: f64,
    /// A second opinion: copies of the serving model fine-tuned without each fold of the
    /// feedback judge that fold by the same rule (`model::folds`).
    pub out_of_fold: FoldParams,
}

impl Default for ReviewParams {
    fn default() -> Self {
        Self {
            label_noise: true,
            max_given_probability: 0.02,
            max_class_threshold: 0.8,
            out_of_fold: FoldParams::default(),
        }
    }
}

/// `review.out_of_fold:` how the fold models are trained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FoldParams {
    /// Folds; fewer than 2 turns the out-of-fold check off.
    pub folds: usize,
    /// Samples to judge before the check runs at all: with fewer, each copy learns from a few
    /// dozen, too few to know a new population, and it takes the population's novelty for
    /// wrong labels (ten faint shapes the base model misreads: it held two right ones).
    pub min_samples: usize,
    pub epochs: usize,
    /// Each feedback sample trains as this many augmented copies (params `augment`; a row
    /// repeated), since a fold holds few.
    pub copies: usize,
    /// Base rows replayed beside them, so a fold model keeps what it knew.
    pub replay: usize,
    pub learning_rate: f64,
    pub seed: u64,
    /// A sample is a suspect when its fold's copy answers another class and gives its label
    /// less than this. No confidence is asked of that answer: a copy tuned on a few hundred
    /// samples spreads its probabilities wider than the serving model on its test set.
    pub max_given_probability: f64,
}

impl Default for FoldParams {
    fn default() -> Self {
        Self {
            folds: 5,
            min_samples: 50,
            epochs: 2,
            copies: 10,
            replay: 1000,
            learning_rate: 5e-4,
            seed: 0,
            max_given_probability: 0.1,
        }
    }
}

/// What a reviewer decided about a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The given label is right: train on it.
    Accept,
    /// The label is wrong and `label` is right: train on that.
    Relabel,
    /// Neither: keep the sample out of training for good.
    Reject,
}

impl Action {
    /// Every action, in the order of [`Action::name`]'s names.
    const ALL: [Action; 3] = [Action::Accept, Action::Relabel, Action::Reject];

    /// The name `review.json` and the stages' manifests use (`accept`, `relabel`, `reject`).
    pub fn name(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Relabel => "relabel",
            Action::Reject => "reject",
        }
    }

    /// The action of a [`Action::name`].
    pub fn from_name(name: &str) -> Option<Action> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether the sample trains (on its label, or on the relabel's).
    pub fn trusts(self) -> bool {
        matches!(self, Action::Accept | Action::Relabel)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub action: Action,
    /// The class name a relabel gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub at: DateTime<Utc>,
    /// Where it was decided (`cli`, `page`).
    pub by: String,
}

/// `new_data/review.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decisions {
    /// By the sample's sha256.
    pub decisions: BTreeMap<String, Decision>,
}

impl Decisions {
    /// The decisions of the store under `repo_root` (none when the file is missing).
    pub fn read(repo_root: &Path) -> Result<Self, FeedbackError> {
        Self::read_in(&Layout::new(repo_root).data)
    }

    /// The decisions of the store in the `new_data` folder `data`.
    pub fn read_in(data: &Path) -> Result<Self, FeedbackError> {
        read_or_default(&data.join(REVIEW_FILE))
    }
}

/// A sample the last retrain's validate held for review, and why (a reason starting with
/// [`LABEL_NOISE`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HeldSample {
    pub sha256: String,
    pub reason: String,
}

/// `new_data/held.json`: what the last retrain's validate held for review, by the serving
/// model or by its out-of-fold copies. Only a retrain can judge with those, so a clone that
/// never ran one (a server replica, a reviewer's laptop) reads the committed list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// Sorted by sha256.
    pub held: Vec<HeldSample>,
}

impl Held {
    /// The list of the store under `repo_root` (empty before the first retrain).
    pub fn read(repo_root: &Path) -> Result<Self, FeedbackError> {
        read_or_default(&Layout::new(repo_root).data.join(HELD_FILE))
    }

    pub fn sha256s(&self) -> HashSet<String> {
        self.held.iter().map(|h| h.sha256.clone()).collect()
    }
}

/// A JSON file of the store, or `T::default()` when it does not exist.
fn read_or_default<T: Default + serde::de::DeserializeOwned>(path: &Path) -> Result<T, FeedbackError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| FeedbackError::Json { path: path.into(), source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Why the model doubts a label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Suspicion {
    /// The class the model is sure of instead.
    pub predicted: usize,
    /// The probability it gives the given label.
    pub p_given: f32,
    /// Its probability of `predicted`.
    pub confidence: f32,
}

/// Confident learning's rule on one sample: among the classes whose probability reaches their
/// threshold (`thresholds[k]`, at most `params.max_class_threshold`), the likeliest is not the
/// given label, and the given label's probability is below `params.max_given_probability`.
pub fn suspect(
    probabilities: &[f32],
    given: usize,
    thresholds: &[Option<f64>],
    params: &ReviewParams,
) -> Option<Suspicion> {
    let threshold = |k: usize| {
        thresholds.get(k).copied().flatten().map_or(params.max_class_threshold, |t| t.min(params.max_class_threshold))
    };
    let (predicted, confidence) = probabilities
        .iter()
        .enumerate()
        .filter(|(k, p)| f64::from(**p) >= threshold(*k))
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(k, p)| (k, *p))?;
    let p_given = *probabilities.get(given)?;
    (predicted != given && f64::from(p_given) < params.max_given_probability).then_some(Suspicion {
        predicted,
        p_given,
        confidence,
    })
}

/// A suspect as `pipeline review` and the page list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suspect {
    pub sha256: String,
    pub sub_set: u32,
    /// The sample's file, relative to the repo root.
    pub path: String,
    /// The given label (class name) and the feedback's kind.
    pub label: String,
    pub kind: super::Kind,
    /// What the model says instead, and how sure it is.
    pub predicted: String,
    pub confidence: f32,
    /// The probability it gives the given label.
    pub p_given: f32,
}

impl FeedbackStore {
    /// Records a reviewer's decision on the sealed sample `sha256`, under the store's lock,
    /// durably. A relabel names one of the task's classes; a sample not in a sealed sub_set, or
    /// a relabel without a valid class, is refused and nothing is written.
    pub fn decide(&self, sha256: &str, decision: Decision) -> Result<(), FeedbackError> {
        let invalid = |reason: String| FeedbackError::InvalidSample { reason };
        match (decision.action, &decision.label) {
            (Action::Relabel, Some(label)) if self.task().class_index(label).is_err() => {
                return Err(invalid(format!("`{label}` is not one of the task's classes {:?}", self.task().classes)));
            }
            (Action::Relabel, None) => return Err(invalid("a relabel needs the right class".into())),
            (Action::Accept | Action::Reject, Some(_)) => {
                return Err(invalid("only a relabel takes a class".into()));
            }
            _ => {}
        }
        let _lock = self.lock()?;
        let data = self.data_dir();
        let known = sealed_sub_sets(data)?.iter().any(|s| s.records.iter().any(|(_, r)| r.sha256 == sha256));
        if !known {
            return Err(invalid(format!("no sealed feedback sample has sha256 {sha256}")));
        }
        let mut decisions = Decisions::read_in(data)?;
        let label = decision
            .label
            .as_deref()
            .and_then(|l| self.task().class_index(l).ok())
            .map(|i| self.task().classes[i].clone());
        decisions.decisions.insert(sha256.to_string(), Decision { label, ..decision });
        self.write_json(REVIEW_FILE, &decisions)
    }

    /// Replaces `new_data/held.json` with `held` under the store's lock, durably. Returns
    /// false, writing nothing, when it already lists the same.
    pub fn record_held(&self, mut held: Vec<HeldSample>) -> Result<bool, FeedbackError> {
        held.sort();
        held.dedup();
        let held = Held { held };
        let _lock = self.lock()?;
        if read_or_default::<Held>(&self.data_dir().join(HELD_FILE))? == held {
            return Ok(false);
        }
        self.write_json(HELD_FILE, &held).map(|()| true)
    }

    /// Writes `value` as the store's file `name`, pretty, durably. The caller holds the lock.
    fn write_json(&self, name: &str, value: &impl Serialize) -> Result<(), FeedbackError> {
        let data = self.data_dir();
        let mut text = serde_json::to_vec_pretty(value).expect("review files serialize");
        text.push(b'\n');
        let path = data.join(name);
        crate::fsutil::replace_durable(&path, &text, data).map_err(io_err(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actions_name_is_what_review_json_holds_and_names_it_back() {
        for action in Action::ALL {
            assert_eq!(serde_json::to_string(&action).unwrap(), format!("\"{}\"", action.name()));
            assert_eq!(Action::from_name(action.name()), Some(action));
        }
        assert_eq!(Action::from_name("Accept"), None);
        let trusted: Vec<Action> = Action::ALL.into_iter().filter(|a| a.trusts()).collect();
        assert_eq!(trusted, [Action::Accept, Action::Relabel]);
    }

    #[test]
    fn held_json_is_rewritten_only_when_validate_held_something_else() {
        let dir = tempfile::tempdir().unwrap();
        let store = FeedbackStore::open_with(dir.path(), Default::default(), crate::task::Task::default());
        assert_eq!(Held::read(dir.path()).unwrap(), Held::default(), "no retrain yet: nothing held");
        let sample = |sha256: &str| HeldSample { sha256: sha256.into(), reason: format!("{LABEL_NOISE}: {sha256}") };
        assert!(store.record_held(vec![sample("bb"), sample("aa"), sample("bb")]).unwrap());
        assert_eq!(Held::read(dir.path()).unwrap().held, [sample("aa"), sample("bb")], "sorted, once each");
        assert!(!store.record_held(vec![sample("aa"), sample("bb")]).unwrap(), "the same list: no write");
        assert!(store.record_held(vec![]).unwrap(), "nothing held now");
        assert!(Held::read(dir.path()).unwrap().sha256s().is_empty());
    }

    #[test]
    fn a_label_is_suspect_only_when_the_model_is_sure_of_another_class_and_not_of_it() {
        let params = ReviewParams::default();
        let thresholds = [Some(0.75), Some(0.7), Some(0.95)];
        // Sure of class 0, the label 1 at 0.01: suspect.
        let s = suspect(&[0.97, 0.01, 0.02], 1, &thresholds, &params).unwrap();
        assert_eq!((s.predicted, s.p_given, s.confidence), (0, 0.01, 0.97));
        // The label is the model's own answer, or likely enough: not suspect.
        assert!(suspect(&[0.97, 0.01, 0.02], 0, &thresholds, &params).is_none());
        assert!(suspect(&[0.96, 0.03, 0.01], 1, &thresholds, &params).is_none());
        // Unsure (no class reaches its threshold): a correction the model may well need.
        assert!(suspect(&[0.74, 0.01, 0.25], 1, &thresholds, &params).is_none());
        // Thresholds are per class, capped at max_class_threshold (0.8).
        assert!(suspect(&[0.01, 0.2, 0.79], 0, &thresholds, &params).is_none());
        assert!(suspect(&[0.01, 0.18, 0.81], 0, &thresholds, &params).is_some());
        assert!(suspect(&[0.71, 0.01, 0.28], 1, &[Some(0.72), Some(0.7)], &params).is_none());
        // Without a threshold, the cap applies.
        assert!(suspect(&[0.01, 0.18, 0.81], 0, &[], &params).is_some());
    }
}
