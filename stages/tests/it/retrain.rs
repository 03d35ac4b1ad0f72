//! The proof that retraining helps: feedback drawn from MNIST test digits under a shift the
//! base model handles badly (rotated 45 degrees, thicker strokes) is submitted in sub_sets of
//! 10; the DAG runs; accuracy on held-out shifted digits rises clearly while the plain test set
//! drops by at most a point. Then a batch of deliberately wrong labels: the label check holds
//! part of it for review, and whatever is promoted does not lose the plain digits.

use gitops::feedback::{FeedbackStore, Kind, Sample};
use gitops::model_file::ModelFile;
use gitops::task::Task;
use model::data::{Mnist, PIXELS, Split};
use model::preprocess;
use model::train::Batch;
use model::{Classifier, Weights, eval};
use pipeline::registry::Registry;
use pipeline::release::Decision;
use stages::augment::{Transform, affine, morph};
use std::io::Cursor;
use std::path::Path;
use std::time::Instant;

/// The distribution shift: a 45 degree turn and strokes one pixel thicker.
fn shifted(raw: &[u8]) -> [u8; PIXELS] {
    let turn = Transform { angle: 45f64.to_radians(), scale: 1.0, shear: 0.0, tx: 0.0, ty: 0.0 };
    morph(&affine(raw, (28, 28), turn, false), (28, 28), false).try_into().unwrap()
}

fn png(pixels: &[u8; PIXELS]) -> Vec<u8> {
    let mut out = Vec::new();
    preprocess::mnist_image(pixels).write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

fn serving(root: &Path) -> Classifier {
    let models = root.join("models");
    let version = Registry::load(&models).unwrap().serving;
    Classifier::new(ModelFile::new(&models, &version).unwrap().load(tch::Device::Cpu, &Task::default(), None).unwrap())
}

fn accuracy(classifier: &Classifier, digits: &[[u8; PIXELS]], labels: &[u8]) -> f64 {
    let labels: Vec<usize> = labels.iter().map(|&l| usize::from(l)).collect();
    let prepared: Vec<[u8; PIXELS]> = digits
        .iter()
        .map(|d| preprocess::to_mnist(&image::DynamicImage::ImageLuma8(preprocess::mnist_image(d))).unwrap_or(*d))
        .collect();
    let batch = Batch::new(&Task::default(), &prepared, &labels, tch::Device::Cpu);
    eval::evaluate(classifier, &batch.xs, &labels).accuracy
}

fn add(store: &FeedbackStore, pixels: &[u8; PIXELS], label: u8) {
    let sample = Sample::new(png(pixels), label.to_string(), Kind::Wrong, "test");
    store.add(sample).unwrap();
}

fn decision(root: &Path) -> Decision {
    serde_json::from_slice(&std::fs::read(root.join("artifacts/promote/decision.json")).unwrap()).unwrap()
}

#[test]
fn retraining_on_shifted_feedback_helps_and_wrong_labels_do_no_harm() {
    let Some(mnist) = testkit::shared_mnist() else { return };
    let repo = testkit::PipelineRepo::new(Some(&mnist));
    repo.set_param("trigger", "kind", "none");
    let root = repo.path();
    let test = Mnist::load(&mnist, Split::Test).unwrap();
    // Digits 0..200 become feedback; 1000..1400 are the held-out shifted sample.
    let held: Vec<[u8; PIXELS]> = (1000..1400).map(|i| shifted(test.image(i))).collect();
    let held_labels = &test.labels[1000..1400];
    let plain: Vec<[u8; PIXELS]> = (0..test.len()).map(|i| test.image(i).try_into().unwrap()).collect();

    // A fresh repo: every stage runs; with no feedback, promote keeps the base model.
    let first = crate::repro(root);
    assert_eq!(first.ran, ["ingest", "validate", "augment", "finetune", "evaluate", "promote"]);
    assert!(!decision(root).promoted);
    assert!(crate::repro(root).ran.is_empty(), "a second run does nothing");

    let base = serving(root);
    let (shifted_before, plain_before) = (accuracy(&base, &held, held_labels), accuracy(&base, &plain, &test.labels));

    let store = FeedbackStore::open(root).unwrap();
    for i in 0..200 {
        add(&store, &shifted(test.image(i)), test.labels[i]);
    }
    // With promote.shadow the candidate that passes runs in shadow first.
    repo.set_param("promote", "shadow", "true");
    let started = Instant::now();
    let run = crate::repro(root);
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    assert!(run.ran.contains(&"finetune".to_string()), "{run:?}");
    let d = decision(root);
    let in_review = |root: &Path| -> usize {
        let quarantine: Vec<stages::validate::Quarantined> =
            serde_json::from_slice(&std::fs::read(root.join("artifacts/validate/quarantine.json")).unwrap()).unwrap();
        quarantine.iter().filter(|q| q.reason.starts_with(stages::validate::LABEL_NOISE)).count()
    };
    println!("FIGURES genuine labels held for review: {} of 200", in_review(root));
    let shadow = d.shadow.clone().unwrap_or_else(|| panic!("the candidate should pass into shadow: {:#?}", d.reasons));
    assert!(!d.promoted);
    let registry = Registry::load(&root.join("models")).unwrap();
    assert_eq!((registry.serving.as_str(), registry.shadow.as_deref()), (base.version(), Some(shadow.as_str())));
    assert!(repo.git(&["log", "-1", "--format=%s"]).starts_with(&format!("Shadow {shadow} beside {}", base.version())));
    pipeline::release::promote_shadow(root, "test: the shadow's live figures passed").unwrap();
    // The base model reads a turned digit right only a quarter of the time, and is sure of many
    // of its mistakes: the label check holds those corrections for review (a person accepts
    // them); the rest train.
    assert!(d.sub_sets.len() >= 15, "{:?}", d.sub_sets);

    let tuned = serving(root);
    assert_ne!(tuned.version(), base.version());
    // Promote keeps the candidate's drift reference: its signals on the base test set.
    let reference = tuned.model().sidecar.reference.as_ref().expect("a promoted model has a drift reference");
    let names: Vec<&str> = reference.signals.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["confidence", "input_mean", "input_std"]);
    assert!(reference.samples >= 1000, "the whole base test set: {}", reference.samples);
    let (shifted_after, plain_after) = (accuracy(&tuned, &held, held_labels), accuracy(&tuned, &plain, &test.labels));
    let trained_on = stages::finetune::candidate_in(&root.join("artifacts/finetune/candidate"))
        .unwrap()
        .read_sidecar()
        .unwrap()
        .metrics;
    println!(
        "FIGURES shifted {:.2}% -> {:.2}%, plain {:.2}% -> {:.2}%, retrain {minutes:.2} min, trained on {trained_on:?}",
        100.0 * shifted_before,
        100.0 * shifted_after,
        100.0 * plain_before,
        100.0 * plain_after
    );
    assert!(shifted_after >= shifted_before + 0.10, "shifted accuracy {shifted_before:.3} -> {shifted_after:.3}");
    assert!(plain_after >= plain_before - 0.01, "plain accuracy {plain_before:.3} -> {plain_after:.3}");

    // The shadow is a commit whose message carries the metrics, on top of the feedback; the
    // promotion from shadow another.
    let log = repo.git(&["log", "-2", "--format=%B"]);
    assert!(log.starts_with(&format!("Promote {} from shadow", tuned.version())), "{log}");
    assert!(log.contains(&format!("Shadow {}", tuned.version())) && log.contains("feedback_accuracy"), "{log}");
    assert!(crate::repro(root).ran.is_empty(), "nothing changed, nothing runs");
    assert!(store.should_retrain().unwrap().is_none(), "every sealed sub_set is marked trained");

    // Deliberately wrong labels: every digit called the next one.
    repo.set_param("promote", "shadow", "false");
    for i in 200..260 {
        add(&store, &shifted(test.image(i)), (test.labels[i] + 1) % 10);
    }
    let run = crate::repro(root);
    assert!(run.ran.contains(&"ingest".to_string()) && run.ran.contains(&"promote".to_string()), "{run:?}");
    // The label check holds those the serving model is sure are the digit before for review;
    // on turned digits it reads only about 60% of, that is a part (label_review.rs measures the
    // check where the model is sure).
    let held_now = in_review(root);
    let d = decision(root);
    let held = held_now;
    println!("FIGURES wrong labels: {held} of 60 held for review; decision {}: {}", d.promoted, d.reasons.join(" | "));
    assert!(held >= 10, "{held} of 60 wrong labels held for review");
    if d.promoted {
        // What was left trained nothing wrong into the model: the plain digits did not suffer.
        let after = accuracy(&serving(root), &plain, &test.labels);
        assert!(after >= plain_after - 0.01, "plain accuracy {plain_after:.3} -> {after:.3} after the wrong labels");
    } else {
        assert_eq!(serving(root).version(), tuned.version(), "the tuned model keeps serving");
    }
}
