//! The label check on planted wrong labels: MNIST digits the base model reads, given as
//! feedback with their right labels and, for one in eleven, a wrong one. Validate holds the
//! planted ones for review and keeps the right ones; the review queue lists exactly the held
//! ones, in a clone that never ran validate too; a reviewer's relabel, accept and reject reach the next run. On digits of another
//! population, which the base model reads poorly, the out-of-fold copies catch wrong labels the
//! serving model alone lets through.

use chrono::Utc;
use gitops::feedback::review::{Action, Decision, ReviewParams};
use gitops::feedback::{FeedbackStore, Kind, Sample};
use gitops::image_input::ImageLimits;
use gitops::model_file::ModelFile;
use gitops::task::Task;
use model::data::{Mnist, Split};
use model::{Classifier, Weights};
use pipeline::registry::Registry;
use stages::manifest::{self, Row};
use stages::validate::{LABEL_NOISE, Quarantined, REJECTED};
use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::Path;

fn png(pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    model::preprocess::mnist_image(pixels).write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

fn quarantine(root: &Path) -> Vec<Quarantined> {
    serde_json::from_slice(&std::fs::read(root.join("artifacts/validate/quarantine.json")).unwrap()).unwrap()
}

fn clean(root: &Path) -> Vec<Row> {
    manifest::read(&root.join("artifacts/validate/clean.parquet")).unwrap()
}

/// Stores a digit's PNG with `label` as feedback of `kind`; its sha256.
fn add(store: &FeedbackStore, image: Vec<u8>, label: u8, kind: Kind) -> String {
    let sample = Sample::new(image, label.to_string(), kind, "test");
    store.add(sample).unwrap().sha256
}

fn decision(action: Action, label: Option<&str>) -> Decision {
    Decision { action, label: label.map(str::to_string), at: Utc::now(), by: "test".into() }
}

#[test]
fn planted_wrong_labels_are_held_for_review_and_decisions_reach_the_next_run() {
    let Some(mnist) = testkit::shared_mnist() else { return };
    let repo = testkit::PipelineRepo::new(Some(&mnist));
    repo.set_param("trigger", "kind", "none");
    let root = repo.path();
    let test = Mnist::load(&mnist, Split::Test).unwrap();
    let store = FeedbackStore::open(root).unwrap();
    // 110 digits: every eleventh gets the next digit's label.
    let mut planted = BTreeSet::new();
    for i in 0..110 {
        let image = png(test.image(i));
        let right = test.labels[i];
        let (label, kind) = if i % 11 == 5 { ((right + 1) % 10, Kind::Wrong) } else { (right, Kind::Correct) };
        let sha256 = add(&store, image, label, kind);
        if kind == Kind::Wrong {
            planted.insert(sha256);
        }
    }
    assert_eq!(planted.len(), 10);
    crate::repro(root);
    let again = crate::repro(root);
    assert!(again.ran.is_empty(), "promote's markers and new_data/held.json leave the DAG up to date: {again:?}");

    let held: BTreeSet<String> =
        quarantine(root).into_iter().filter(|q| q.reason.starts_with(LABEL_NOISE)).map(|q| q.sha256).collect();
    let caught = held.intersection(&planted).count();
    let wrongly_held = held.difference(&planted).count();
    println!("FIGURES planted wrong labels held: {caught} of 10; right labels held: {wrongly_held} of 100");
    assert!(caught >= 9, "{caught} of the 10 planted labels held for review");
    assert!(wrongly_held <= 2, "{wrongly_held} right labels held for review");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("artifacts/validate/report.json")).unwrap()).unwrap();
    assert_eq!(report["in_review"], held.len());
    assert_eq!(report["feedback_bad"], 0, "held samples are not bad files");
    assert!(clean(root).iter().all(|r| !held.contains(&r.sha256)), "nothing held is trained or evaluated on");

    // The queue `pipeline review` and the page list: exactly the held samples.
    let task = Task::default();
    let models = root.join("models");
    let serving = ModelFile::new(&models, &Registry::load(&models).unwrap().serving).unwrap();
    let classifier = Classifier::new(serving.load(tch::Device::Cpu, &task, None).unwrap());
    let thresholds = classifier.model().sidecar.reference.as_ref().unwrap().class_thresholds.clone();
    let limits = ImageLimits { max_bytes: 1 << 20, max_pixels: 1 << 20 };
    let pending = model::review::pending(root, &task, &limits).unwrap();
    assert_eq!(pending.len(), 110);
    let held_here = model::review::held(root);
    assert_eq!(held_here, held.iter().cloned().collect(), "promote recorded validate's holds in new_data/held.json");
    let predict = |b: &[f32]| classifier.predict(b);
    let queue = model::review::suspects(&pending, &task, predict, &thresholds, &ReviewParams::default(), &held_here);
    let listed: BTreeSet<String> = queue.iter().map(|s| s.sha256.clone()).collect();
    assert_eq!(listed, held);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline-model"))
        .arg("--repo")
        .arg(root)
        .args(["review", "--json", "--device", "cpu"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["sha256"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(printed, held, "`pipeline review --json` lists the same queue");
    // A clone that never ran a retrain (a server replica) reads the same holds from git.
    let replica = tempfile::tempdir().unwrap();
    testkit::run(
        std::process::Command::new("git").args(["clone", "-q"]).arg(repo.origin.path()).arg(replica.path()),
        "git clone",
    );
    assert_eq!(model::review::held(replica.path()), held_here, "the replica's holds");
    let first = &queue[0];
    assert!(first.p_given < 0.02 && first.confidence > 0.9 && first.label != first.predicted, "{first:?}");
    assert!(first.path.starts_with("new_data/sub_set_"), "{}", first.path);

    // Decisions: relabel one planted sample to its model's answer, accept one (wrongly), reject
    // one; a bad decision is refused and writes nothing.
    let mut planted_held = queue.iter().filter(|s| planted.contains(&s.sha256));
    let (relabel, accept, reject) =
        (planted_held.next().unwrap(), planted_held.next().unwrap(), planted_held.next().unwrap());
    let refused = store.decide(&relabel.sha256, decision(Action::Relabel, Some("eleven"))).unwrap_err();
    assert!(refused.to_string().contains("`eleven` is not one of the task's classes"), "{refused}");
    assert!(store.decide(&"0".repeat(64), decision(Action::Accept, None)).is_err());
    assert!(!root.join("new_data/review.json").exists(), "refused decisions write nothing");
    store.decide(&relabel.sha256, decision(Action::Relabel, Some(&relabel.predicted))).unwrap();
    store.decide(&accept.sha256, decision(Action::Accept, None)).unwrap();
    // The reject through `pipeline review` (its model half), by a prefix of the sha256: stored,
    // committed and pushed.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pipeline-model"))
            .arg("--repo")
            .arg(root)
            .args(args)
            .output()
            .unwrap()
    };
    let bad = cli(&["review", "reject", "abc"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("prefix of 8+ hex digits"));
    let done = cli(&["review", "reject", &reject.sha256[..12]]);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    assert!(String::from_utf8_lossy(&done.stdout).contains(&format!("{}: rejected", reject.sha256)));
    let pushed = testkit::run(
        std::process::Command::new("git").arg("-C").arg(repo.origin.path()).args(["show", "main:new_data/review.json"]),
        "git show",
    );
    assert!(pushed.contains(&reject.sha256) && pushed.contains("\"reject\""), "{pushed}");

    let run = crate::repro(root);
    assert!(run.ran.contains(&"ingest".to_string()), "review.json is part of the DAG's data: {run:?}");
    let rows = clean(root);
    let row = |sha: &str| rows.iter().find(|r| r.sha256 == sha);
    let relabelled = row(&relabel.sha256).expect("a relabelled sample is trained on");
    assert_eq!(task.classes[relabelled.label], relabel.predicted);
    assert_eq!(relabelled.review.as_deref(), Some("relabel"));
    let accepted = row(&accept.sha256).expect("an accepted sample is trained on");
    assert_eq!(task.classes[accepted.label], accept.label, "accepted as given");
    assert!(row(&reject.sha256).is_none());
    let quarantined = quarantine(root);
    let reason = |sha: &str| quarantined.iter().find(|q| q.sha256 == sha).map(|q| q.reason.clone());
    assert_eq!(reason(&reject.sha256).as_deref(), Some(REJECTED));
    let still = quarantined.iter().filter(|q| q.reason.starts_with(LABEL_NOISE)).count();
    assert_eq!(still, held.len() - 3, "the undecided stay held");
    let pending = model::review::pending(root, &task, &limits).unwrap();
    assert_eq!(pending.len(), 107, "decided samples leave the queue");
}

/// Runs ingest and validate; the sha256s held for review.
fn held_for_review(root: &Path) -> BTreeSet<String> {
    let project = repro::Project::open(root).unwrap();
    let opts =
        repro::ReproOptions { path: vec![crate::bin_dir()], targets: vec!["validate".into()], ..Default::default() };
    project.repro(&opts).unwrap_or_else(|e| panic!("pipeline repro validate failed: {e}"));
    quarantine(root).into_iter().filter(|q| q.reason.starts_with(LABEL_NOISE)).map(|q| q.sha256).collect()
}

#[test]
fn out_of_fold_copies_catch_wrong_labels_the_serving_model_lets_through() {
    let Some(mnist) = testkit::shared_mnist() else { return };
    // scikit-learn's writers, upscaled as an upload would be: the base model reads 80% of them.
    let digits = testkit::sklearn::digits(112);
    let repo = testkit::PipelineRepo::new(Some(&mnist));
    repo.set_param("trigger", "kind", "none");
    let root = repo.path();
    let store = FeedbackStore::open(root).unwrap();
    // 150 digits; every third gets another digit's label (30%, as the drift benchmark plants).
    let mut planted = BTreeSet::new();
    for (i, (image, right)) in digits.into_iter().take(150).enumerate() {
        let wrong = i % 3 == 1;
        let label = if wrong { (right + 1 + (i % 9) as u8) % 10 } else { right };
        let kind = if wrong { Kind::Wrong } else { Kind::Correct };
        let sha256 = add(&store, image, label, kind);
        if wrong {
            planted.insert(sha256);
        }
    }
    assert_eq!(planted.len(), 50);

    repo.set_param("review", "out_of_fold", "{folds: 0}");
    let alone = held_for_review(root);
    repo.set_param("review", "out_of_fold", "{folds: 5, epochs: 2, copies: 10, replay: 1000}");
    let both = held_for_review(root);
    let (caught_alone, caught) = (alone.intersection(&planted).count(), both.intersection(&planted).count());
    let right_held = both.difference(&planted).count();
    println!(
        "FIGURES of 50 planted wrong labels: serving model alone held {caught_alone}, with out-of-fold copies {caught}; right labels held: {} then {right_held} of 100",
        alone.difference(&planted).count()
    );
    assert!(alone.is_subset(&both), "the out-of-fold check only adds suspects");
    assert!(caught >= caught_alone + 10, "out-of-fold copies caught {caught}, the serving model alone {caught_alone}");
    assert!(caught >= 40, "{caught} of 50 planted labels held");
    assert!(right_held <= 8, "{right_held} of 100 right labels held");
}
