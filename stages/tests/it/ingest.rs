//! ingest, case by case, over a tiny MNIST and a `new_data/` written by the feedback store:
//! base rows for every IDX image; sealed sub_sets only, without unsure samples; the held-back
//! split chosen by sha256, the same across runs and after more feedback arrives but for the
//! held-back samples `holdout_span` newer sub_sets release into training; the feedback weight
//! and the trained flag on every feedback row; a sealed sample the clone lacks is named.

use gitops::feedback::{FeedbackStore, Kind, Sample};
use gitops::params::FeedbackParams;
use stages::ingest::{self, Args};
use stages::manifest::{self, Role, Row};
use std::path::Path;
use std::process::Command;

use crate::fixture;

const TRAIN: usize = 12;
const TEST: usize = 6;

/// One feedback sample: `fixture::digit(n)` with a label, as the store receives it.
#[derive(Clone, Copy)]
struct Add {
    n: usize,
    label: usize,
    kind: Kind,
}

/// `count` wrong-prediction samples from digit `from` on, labelled by their number.
fn adds(from: usize, count: usize) -> Vec<Add> {
    (from..from + count).map(|n| Add { n, label: n % 10, kind: Kind::Wrong }).collect()
}

fn store_add(store: &FeedbackStore, add: Add) {
    let sample = Sample::new(fixture::png(&fixture::digit(add.n)), add.label.to_string(), add.kind, "test");
    store.add(sample).unwrap();
}

struct Input {
    threshold: u32,
    holdout_share: f64,
    holdout_span: u32,
    feedback_weight: f64,
    /// Stored before the first run.
    first: Vec<Add>,
    /// Sub_sets marked trained before the first run.
    trained: &'static [u32],
    /// Stored between the first and the second run.
    later: Vec<Add>,
}

struct Expect {
    /// Feedback rows of the first and the second run.
    feedback: [usize; 2],
    /// Both roles occur in the second run.
    mixed: bool,
    /// Some rows held back in the first run are trained on in the second.
    joins: bool,
}

/// The held-back rule, written from its definition: the first 16 hex digits of the sha256 as
/// a share of 2^64, below `holdout_share`, while fewer than `holdout_span` sub_sets (not 0) were
/// sealed after the sample's, itself included.
fn held_back(sha256: &str, input: &Input, sub_set: u32, newest: u32) -> bool {
    let drawn = (u64::from_str_radix(&sha256[..16], 16).unwrap() as f64 / 2f64.powi(64)) < input.holdout_share;
    drawn && (input.holdout_span == 0 || newest - sub_set < input.holdout_span)
}

/// Runs ingest, again over the same files, and once more after `later` is stored; checks every
/// row of the first and the last run.
fn check(case: &str, input: Input, expect: Expect) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (train_images, test_images) = fixture::tiny_mnist(&root.join("data/mnist"), TRAIN, TEST);
    let store = FeedbackStore::open_with(
        root,
        FeedbackParams { threshold: input.threshold, ..Default::default() },
        gitops::task::Task::default(),
    );
    input.first.iter().for_each(|a| store_add(&store, *a));
    for n in input.trained {
        store.mark_trained(*n, "model_20260101T000000Z").unwrap();
    }
    let args = Args {
        params: fixture::params(
            root,
            &format!(
                "ingest:\n  holdout_share: {}\n  holdout_span: {}\n  feedback_weight: {}\n",
                input.holdout_share, input.holdout_span, input.feedback_weight
            ),
        ),
        data: root.join("data/mnist"),
        new_data: root.join("new_data"),
        out: root.join("manifest.parquet"),
    };
    let run = || {
        let rows = ingest::run(&args).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(manifest::read(&args.out).unwrap(), rows, "{case}: the file holds what run returned");
        rows
    };
    let first = run();
    assert_eq!(run(), first, "{case}: a second run over the same files gives the same manifest");
    input.later.iter().for_each(|a| store_add(&store, *a));
    let second = run();

    for (rows, want, mixed) in [(&first, expect.feedback[0], false), (&second, expect.feedback[1], expect.mixed)] {
        // Base rows: every IDX image in order, train then test, hashed over its raw pixels.
        let base: Vec<(String, Option<i64>, String, usize, Role)> = rows
            .iter()
            .filter(|r| r.sub_set.is_none())
            .map(|r| (r.path.clone(), r.index, r.sha256.clone(), r.label, r.role))
            .collect();
        let expected: Vec<_> = (0..TRAIN)
            .map(|i| (&train_images, i, Role::Train))
            .chain((0..TEST).map(|i| (&test_images, i, Role::Test)))
            .map(|(file, i, role)| {
                let n = 1000 + i;
                (file.display().to_string(), Some(i as i64), fixture::sha256(&fixture::digit(n)), i % 10, role)
            })
            .collect();
        assert_eq!(base, expected, "{case}: base rows");
        assert!(
            rows.iter().filter(|r| r.sub_set.is_none()).all(|r| r.weight == 1.0
                && r.source == "mnist"
                && r.kind == "base"
                && !r.trained
                && r.pixels.is_none()),
            "{case}"
        );

        // Feedback rows: sealed sub_sets' counted samples, as recorded, split by sha256.
        let feedback: Vec<&Row> = rows.iter().filter(|r| r.sub_set.is_some()).collect();
        assert_eq!(feedback.len(), want, "{case}: feedback rows");
        let newest = feedback.iter().filter_map(|r| r.sub_set).max().unwrap_or(0);
        let held = feedback.iter().filter(|r| r.role == Role::Holdout).count();
        if mixed {
            assert!(held > 0 && held < feedback.len(), "{case}: {held} of {} held back", feedback.len());
        }
        for r in &feedback {
            let sub_set = Path::new(&r.path).parent().unwrap().parent().unwrap();
            assert_eq!(sub_set, root.join(format!("new_data/sub_set_{}", r.sub_set.unwrap())), "{case}: {}", r.path);
            assert!(sub_set.join("sealed.json").is_file(), "{case}: {} is from an open sub_set", r.path);
            assert_eq!(r.trained, sub_set.join("trained.json").is_file(), "{case}: trained flag of {}", r.path);
            let bytes = std::fs::read(&r.path).unwrap();
            assert_eq!(fixture::sha256(&bytes), r.sha256, "{case}: {}", r.path);
            let pixels = image::load_from_memory(&bytes).unwrap().to_luma8().into_raw();
            let add = input
                .first
                .iter()
                .chain(&input.later)
                .find(|a| fixture::digit(a.n)[..] == pixels && a.label == r.label);
            let add = add.unwrap_or_else(|| panic!("{case}: {} is no sample that was added", r.path));
            let kind = match add.kind {
                Kind::Correct => "correct",
                Kind::Wrong => "wrong",
                Kind::Unsure => panic!("{case}: the unsure sample {} was ingested", r.path),
            };
            assert_eq!(r.kind, kind, "{case}: {}", r.path);
            let held = held_back(&r.sha256, &input, r.sub_set.unwrap(), newest);
            let role = if held { Role::Holdout } else { Role::FeedbackTrain };
            assert_eq!(
                (r.role, r.weight, r.source.as_str(), r.index),
                (role, input.feedback_weight, "test", None),
                "{case}: {}",
                r.path
            );
            assert!(r.time.is_some() && r.pixels.is_none(), "{case}");
        }
    }
    // More feedback moves no earlier row, but for a held-back one that joins training.
    for r in first.iter().filter(|r| r.sub_set.is_some()) {
        let same = second.iter().find(|s| s.sha256 == r.sha256 && s.label == r.label);
        let joined = Row { role: Role::FeedbackTrain, ..r.clone() };
        assert!(
            same == Some(r) || (r.role == Role::Holdout && same == Some(&joined)),
            "{case}: {} changed after more feedback arrived: {same:?}",
            r.path
        );
    }
    let joined = |r: &Row| {
        first.iter().any(|f| f.sha256 == r.sha256 && f.role == Role::Holdout) && r.role == Role::FeedbackTrain
    };
    assert_eq!(second.iter().any(joined), expect.joins, "{case}: held-back rows that joined training");
}

#[test]
fn ingest_cases() {
    let unsure = |n| Add { n, label: 3, kind: Kind::Unsure };
    let cases = [
        (
            "no feedback yet: base rows only",
            Input {
                threshold: 5,
                holdout_share: 0.3,
                holdout_span: 0,
                feedback_weight: 1.0,
                first: vec![],
                trained: &[],
                later: vec![],
            },
            Expect { feedback: [0, 0], mixed: false, joins: false },
        ),
        (
            "an open sub_set waits for its seal",
            Input {
                threshold: 5,
                holdout_share: 0.3,
                holdout_span: 0,
                feedback_weight: 1.0,
                first: adds(0, 7),
                trained: &[],
                later: adds(7, 3),
            },
            Expect { feedback: [5, 10], mixed: false, joins: false },
        ),
        (
            "unsure samples are left out and do not count towards the seal",
            Input {
                threshold: 3,
                holdout_share: 0.3,
                holdout_span: 0,
                feedback_weight: 1.0,
                first: [adds(0, 2), vec![unsure(50), unsure(51)], adds(2, 1)].concat(),
                trained: &[],
                later: vec![],
            },
            Expect { feedback: [3, 3], mixed: false, joins: false },
        ),
        (
            "held back by sha256, the same after more feedback",
            Input {
                threshold: 10,
                holdout_share: 0.3,
                holdout_span: 0,
                feedback_weight: 1.0,
                first: adds(0, 20),
                trained: &[],
                later: adds(20, 30),
            },
            Expect { feedback: [20, 50], mixed: true, joins: false },
        ),
        (
            "holdout_share 0 holds nothing back",
            Input {
                threshold: 4,
                holdout_share: 0.0,
                holdout_span: 0,
                feedback_weight: 1.0,
                first: adds(0, 8),
                trained: &[],
                later: vec![],
            },
            Expect { feedback: [8, 8], mixed: false, joins: false },
        ),
        (
            "holdout_share 1 holds everything back",
            Input {
                threshold: 4,
                holdout_share: 1.0,
                holdout_span: 0,
                feedback_weight: 1.0,
                first: adds(0, 8),
                trained: &[],
                later: vec![],
            },
            Expect { feedback: [8, 8], mixed: false, joins: false },
        ),
        (
            "a held-back sample is trained on once holdout_span sub_sets, its own included, were sealed",
            Input {
                threshold: 4,
                holdout_share: 1.0,
                holdout_span: 2,
                feedback_weight: 1.0,
                first: adds(0, 12),
                trained: &[],
                later: adds(12, 4),
            },
            Expect { feedback: [12, 16], mixed: true, joins: true },
        ),
        (
            "holdout_span 1: a held-back sample judges its own sub_set's retrain only",
            Input {
                threshold: 3,
                holdout_share: 0.5,
                holdout_span: 1,
                feedback_weight: 1.0,
                first: adds(0, 12),
                trained: &[],
                later: adds(12, 9),
            },
            Expect { feedback: [12, 21], mixed: true, joins: true },
        ),
        (
            "feedback_weight goes on every feedback row",
            Input {
                threshold: 4,
                holdout_share: 0.5,
                holdout_span: 0,
                feedback_weight: 2.5,
                first: adds(0, 4),
                trained: &[],
                later: adds(4, 4),
            },
            Expect { feedback: [4, 8], mixed: false, joins: false },
        ),
        (
            "sub_sets an earlier retrain used are flagged trained",
            Input {
                threshold: 3,
                holdout_share: 0.3,
                holdout_span: 0,
                feedback_weight: 1.0,
                first: adds(0, 6),
                trained: &[0],
                later: adds(6, 3),
            },
            Expect { feedback: [6, 9], mixed: false, joins: false },
        ),
        (
            "one image with two labels gives two rows, for validate to judge",
            Input {
                threshold: 3,
                holdout_share: 0.3,
                holdout_span: 0,
                feedback_weight: 1.0,
                first: vec![
                    Add { n: 9, label: 4, kind: Kind::Correct },
                    Add { n: 9, label: 7, kind: Kind::Wrong },
                    adds(0, 1)[0],
                ],
                trained: &[],
                later: vec![],
            },
            Expect { feedback: [3, 3], mixed: false, joins: false },
        ),
    ];
    for (case, input, expect) in cases {
        check(case, input, expect);
    }
}

/// The binary with its default paths, as dvc.yaml runs it, names what it gathered.
#[test]
fn the_binary_writes_the_manifest_and_counts_each_role() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fixture::tiny_mnist(&root.join("data/mnist"), TRAIN, TEST);
    let store = FeedbackStore::open_with(
        root,
        FeedbackParams { threshold: 10, ..Default::default() },
        gitops::task::Task::default(),
    );
    adds(0, 13).into_iter().for_each(|a| store_add(&store, a));
    let out =
        Command::new(env!("CARGO_BIN_EXE_ingest")).env_remove("LD_LIBRARY_PATH").current_dir(root).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows = manifest::read(&root.join("artifacts/ingest/manifest.parquet")).unwrap();
    let count = |role| rows.iter().filter(|r| r.role == role).count();
    let (train, held) = (count(Role::FeedbackTrain), count(Role::Holdout));
    assert_eq!(train + held, 10, "the open sub_set's three samples wait");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "ingest: {} rows: {TRAIN} base train, {TEST} base test, {train} feedback for training, {held} held back -> artifacts/ingest/manifest.parquet\n",
            TRAIN + TEST + 10
        )
    );
    // Relative to the repo, as the feedback store's files are.
    assert!(rows.iter().filter(|r| r.sub_set.is_some()).all(|r| r.path.starts_with("new_data/sub_set_0/")), "{rows:?}");
}

#[test]
fn a_sealed_sample_missing_from_the_clone_is_named_with_the_command_that_brings_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fixture::tiny_mnist(&root.join("data/mnist"), TRAIN, TEST);
    let store =
        FeedbackStore::open_with(root, FeedbackParams { threshold: 2, ..Default::default() }, Default::default());
    adds(0, 2).into_iter().for_each(|a| store_add(&store, a));
    // As in a `storage: dvc` clone that has the journal but not the sample.
    let sealed = &gitops::feedback::sealed_sub_sets(&root.join("new_data")).unwrap()[0];
    let missing = sealed.dir.join(&sealed.records[0].1.path);
    std::fs::remove_file(&missing).unwrap();
    let args = Args {
        params: fixture::params(root, ""),
        data: root.join("data/mnist"),
        new_data: root.join("new_data"),
        out: root.join("manifest.parquet"),
    };
    let err = ingest::run(&args).unwrap_err().to_string();
    assert!(err.contains(&missing.display().to_string()) && err.contains("pipeline data fetch"), "{err}");
    assert!(!args.out.exists(), "no manifest without the sample");
}
