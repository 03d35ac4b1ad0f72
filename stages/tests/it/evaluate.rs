//! evaluate, case by case, on real MNIST test digits with the committed base model serving and a
//! candidate saved the way finetune saves one: metrics.json's fields, evaluation.json,
//! confusion matrices that sum to each set's count (CSV and in JSON), heat map PNGs that
//! decode, recall.csv, and nothing but the test and held-back rows scored.

use gitops::device::DeviceChoice;
use gitops::model_file::ModelFile;
use model::data::{Mnist, PIXELS, Split};
use model::{Evaluation, Weights};
use pipeline::registry::Registry;
use stages::evaluate::{self, Args, Comparison, Evidence, Paired, Scores};
use stages::manifest::{self, Role, Row};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::fixture;

/// The version the candidates of these tests are saved under.
const CANDIDATE: &str = "model_20300101T000000Z";

/// Which weights the candidate holds.
#[derive(Debug, Clone, Copy)]
enum Candidate {
    /// The served model's, saved again under the candidate's version.
    Copy,
    /// The last layer answers this digit for every input (its weights zero, its bias one-hot).
    Always(u8),
}

/// Copies the workspace's params.yaml and models/ into `root`, and saves the candidate into
/// `candidate_dir` as finetune does (weights and sidecar, the served model as its parent).
fn setup(root: &Path, candidate_dir: &Path, candidate: Candidate) {
    let workspace = testkit::workspace_root();
    std::fs::copy(workspace.join("params.yaml"), root.join("params.yaml")).unwrap();
    let models = root.join("models");
    std::fs::create_dir_all(&models).unwrap();
    for entry in std::fs::read_dir(workspace.join("models")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), models.join(entry.file_name())).unwrap();
    }
    let serving = ModelFile::new(&models, &Registry::load(&models).unwrap().serving).unwrap();
    let model = serving.load(tch::Device::Cpu, &gitops::task::Task::default(), None).unwrap();
    if let Candidate::Always(digit) = candidate {
        let vars = model.vs.variables();
        tch::no_grad(|| {
            let _ = vars["fc2.weight"].shallow_clone().zero_();
            let mut bias = vars["fc2.bias"].shallow_clone();
            let _ = bias.zero_();
            let _ = bias.get(digit as i64).fill_(1.0);
        });
    }
    let sidecar =
        gitops::model_file::Sidecar { parent: Some(serving.version.clone()), confusion: None, ..model.sidecar.clone() };
    ModelFile::new(candidate_dir, CANDIDATE).unwrap().save(&model.vs, sidecar).unwrap();
}

/// Rows for MNIST test images `range` as validate writes them: the digit the model sees.
fn rows(mnist: &Mnist, range: std::ops::Range<usize>, role: Role, trained: usize) -> Vec<Row> {
    range
        .enumerate()
        .map(|(k, i)| {
            let raw: [u8; PIXELS] = mnist.image(i).try_into().unwrap();
            let image = image::DynamicImage::ImageLuma8(model::preprocess::mnist_image(&raw));
            let base = matches!(role, Role::Train | Role::Test);
            Row {
                index: base.then_some(i as i64),
                trained: k < trained,
                pixels: Some(fixture::as_model_sees(&image).to_vec()),
                ..fixture::row(
                    Path::new("data/mnist/t10k-images-idx3-ubyte.gz"),
                    &fixture::sha256(&raw),
                    usize::from(mnist.labels[i]),
                    role,
                )
            }
        })
        .collect()
}

struct Input {
    /// Base test rows.
    test: usize,
    /// Held-back feedback rows, the first `trained` of them from sub_sets an earlier retrain used.
    holdout: usize,
    trained: usize,
    candidate: Candidate,
}

struct Expect {
    /// confusion_*_feedback.csv are written.
    feedback_plots: bool,
}

/// The figures of one evaluation, checked against the rows it scored.
fn check_evaluation(what: &str, e: &Evaluation, scored: &[Row]) {
    let mut per_label = [0u64; 10];
    scored.iter().for_each(|r| per_label[r.label] += 1);
    let row_sums: Vec<u64> = e.confusion.iter().map(|row| row.iter().sum()).collect();
    assert_eq!(row_sums, per_label, "{what}: confusion rows are the label counts");
    assert_eq!(e.samples, scored.len(), "{what}: samples");
    assert_eq!(
        e.confusion.iter().flatten().sum::<u64>(),
        scored.len() as u64,
        "{what}: the confusion matrix sums to the count"
    );
    let correct: u64 = (0..10).map(|c| e.confusion[c][c]).sum();
    assert_eq!(e.accuracy, correct as f64 / scored.len() as f64, "{what}: accuracy");
    let ratio = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    for (c, &labelled) in per_label.iter().enumerate() {
        assert_eq!(e.recall[c], ratio(e.confusion[c][c], labelled), "{what}: recall of {c}");
        let predicted: u64 = (0..10).map(|t| e.confusion[t][c]).sum();
        assert_eq!(e.precision[c], ratio(e.confusion[c][c], predicted), "{what}: precision of {c}");
    }
}

/// `actual,predicted` rows, one per scored image, tallying to the matrix.
fn check_csv(what: &str, path: &Path, e: &Evaluation) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{what}: {}: {err}", path.display()));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("actual,predicted"), "{what}");
    let mut tally = vec![vec![0u64; 10]; 10];
    for line in lines {
        let (a, p) = line.split_once(',').unwrap();
        tally[a.parse::<usize>().unwrap()][p.parse::<usize>().unwrap()] += 1;
    }
    assert_eq!(tally, e.confusion, "{what}: {}", path.display());
}

/// One side of metrics.json; `loss` picks that side's log-loss from a paired comparison.
fn metrics_of(s: &Scores, e: &Evidence, loss: fn(&Paired) -> f64) -> serde_json::Value {
    serde_json::json!({
        "base_test_accuracy": s.base_test.accuracy,
        "feedback_accuracy": s.feedback.as_ref().map(|f| f.accuracy),
        "earlier_feedback_accuracy": s.earlier_feedback.as_ref().map(|f| f.accuracy),
        "min_class_recall": s.base_test.recall.iter().copied().fold(f64::INFINITY, f64::min),
        "base_test_log_loss": loss(&e.base_test),
        "feedback_log_loss": e.feedback.as_ref().map(loss),
    })
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Builds the clean manifest (plus base train and training feedback rows, which evaluate must
/// not score), runs evaluate in-process on the CPU and checks every output.
fn check(case: &str, mnist: &Mnist, input: Input, expect: Expect) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    setup(root, &root.join("candidate"), input.candidate);
    let test = rows(mnist, 0..input.test, Role::Test, 0);
    let holdout = rows(mnist, 1000..1000 + input.holdout, Role::Holdout, input.trained);
    let ignored = [rows(mnist, 1500..1520, Role::Train, 0), rows(mnist, 1520..1530, Role::FeedbackTrain, 0)].concat();
    let manifest_path = root.join("clean.parquet");
    manifest::write(&manifest_path, &[ignored, test.clone(), holdout.clone()].concat()).unwrap();
    let args = Args {
        params: root.join("params.yaml"),
        manifest: manifest_path,
        candidate: root.join("candidate"),
        models: root.join("models"),
        metrics: root.join("evaluate/metrics.json"),
        out: root.join("evaluate/plots"),
        device: DeviceChoice::Cpu,
    };
    let c: Comparison = evaluate::run(&args).unwrap_or_else(|e| panic!("{case}: {e}"));

    let serving = Registry::load(&root.join("models")).unwrap().serving;
    assert_eq!((c.candidate_version.as_str(), c.serving_version.as_str()), (CANDIDATE, serving.as_str()), "{case}");
    let earlier: Vec<Row> = holdout.iter().filter(|r| r.trained).cloned().collect();
    for (name, s) in [("candidate", &c.candidate), ("serving", &c.serving)] {
        check_evaluation(&format!("{case}: {name} base_test"), &s.base_test, &test);
        let sets = [(&s.feedback, &holdout, "feedback"), (&s.earlier_feedback, &earlier, "earlier_feedback")];
        for (e, scored, set) in sets {
            assert_eq!(e.is_some(), !scored.is_empty(), "{case}: {name} {set} is scored when there are rows");
            if let Some(e) = e {
                check_evaluation(&format!("{case}: {name} {set}"), e, scored);
            }
        }
    }
    assert!(c.serving.base_test.accuracy >= 0.95, "{case}: the base model scores {}", c.serving.base_test.accuracy);
    match input.candidate {
        Candidate::Copy => {
            assert_eq!(
                serde_json::to_value(&c.candidate).unwrap(),
                serde_json::to_value(&c.serving).unwrap(),
                "{case}: the served model's weights score the same as a candidate"
            );
            // Paired, the same weights differ by nothing, and the bounds say so.
            assert_eq!(c.evidence.feedback.is_some(), input.holdout > 0, "{case}: feedback is compared when held back");
            let sets = [("base_test", Some(&c.evidence.base_test)), ("feedback", c.evidence.feedback.as_ref())];
            for (set, e) in sets.into_iter().filter_map(|(set, e)| Some((set, e?))) {
                assert_eq!(e.candidate_log_loss, e.serving_log_loss, "{case}: {set}");
                assert_eq!((e.log_loss_diff, e.log_loss_diff_bounds), (0.0, [0.0, 0.0]), "{case}: {set}");
                assert_eq!((e.candidate_only_right, e.serving_only_right, e.mcnemar_p), (0, 0, 1.0), "{case}: {set}");
            }
        }
        Candidate::Always(digit) => {
            // Right only on its digit: it never beats serving on a sample, and its loss is far worse.
            let e = &c.evidence.base_test;
            let serving_right = c.serving.base_test.confusion.iter().enumerate().map(|(t, row)| row[t]).sum::<u64>();
            let both_right = c.serving.base_test.confusion[digit as usize][digit as usize];
            assert_eq!(e.serving_only_right, serving_right - both_right, "{case}");
            assert_eq!(e.samples, input.test, "{case}");
            assert!(e.log_loss_diff_bounds[0] > 1.0 && e.mcnemar_p < 1e-6, "{case}: {e:?}");
            for (set, e) in [("base_test", Some(&c.candidate.base_test)), ("feedback", c.candidate.feedback.as_ref())] {
                for (t, row) in e.into_iter().flat_map(|e| e.confusion.iter().enumerate()) {
                    let total: u64 = row.iter().sum();
                    assert_eq!(row[digit as usize], total, "{case}: {set}: every {t} predicted {digit}");
                }
            }
        }
    }

    // metrics.json: the flat figures DVC shows; evaluation.json: all of them, beside it.
    // (Compared as text: serde_json reads some floats back one ulp off.)
    let pretty = |value: &serde_json::Value| serde_json::to_string_pretty(value).unwrap() + "\n";
    let want = serde_json::json!({
        "candidate": metrics_of(&c.candidate, &c.evidence, |p| p.candidate_log_loss),
        "serving": metrics_of(&c.serving, &c.evidence, |p| p.serving_log_loss),
        "base_test_samples": input.test,
        "feedback_holdout_samples": input.holdout,
    });
    assert_eq!(std::fs::read_to_string(&args.metrics).unwrap(), pretty(&want), "{case}: metrics.json");
    let evaluation = std::fs::read_to_string(root.join("evaluate/evaluation.json")).unwrap();
    assert_eq!(evaluation, serde_json::to_string_pretty(&c).unwrap() + "\n", "{case}: evaluation.json");

    // The plots folder: confusion CSVs, heat maps, recall.
    let plots = &args.out;
    let mut files: BTreeSet<String> = ["recall.csv"].map(String::from).into();
    for name in ["candidate", "serving"] {
        files.insert(format!("confusion_{name}_base_test.csv"));
        files.insert(format!("confusion_{name}_base_test.png"));
        if expect.feedback_plots {
            files.insert(format!("confusion_{name}_feedback.csv"));
        }
    }
    let found: BTreeSet<String> =
        std::fs::read_dir(plots).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(found, files, "{case}: files in {}", plots.display());
    for (name, s) in [("candidate", &c.candidate), ("serving", &c.serving)] {
        check_csv(case, &plots.join(format!("confusion_{name}_base_test.csv")), &s.base_test);
        if let Some(feedback) = &s.feedback {
            check_csv(case, &plots.join(format!("confusion_{name}_feedback.csv")), feedback);
        }
        let png = plots.join(format!("confusion_{name}_base_test.png"));
        let heat = image::open(&png).unwrap_or_else(|e| panic!("{case}: {}: {e}", png.display())).to_rgb8();
        assert_eq!(heat.dimensions(), (560, 600), "{case}: {}", png.display());
        let colours: BTreeSet<[u8; 3]> = heat.pixels().map(|p| p.0).collect();
        assert!(colours.len() > 2, "{case}: {} is blank ({} colours)", png.display(), colours.len());
    }
    let recall = std::fs::read_to_string(plots.join("recall.csv")).unwrap();
    let mut want = String::from("class,candidate,serving\n");
    for d in 0..10 {
        want.push_str(&format!("{d},{:.6},{:.6}\n", c.candidate.base_test.recall[d], c.serving.base_test.recall[d]));
    }
    assert_eq!(recall, want, "{case}: recall.csv");
}

#[test]
fn evaluate_cases() {
    let Some(mnist) = testkit::shared_mnist() else { return };
    let mnist = Mnist::load(&mnist, Split::Test).unwrap();
    let cases = [
        (
            "the served model's weights as the candidate, no feedback held back yet",
            Input { test: 300, holdout: 0, trained: 0, candidate: Candidate::Copy },
            Expect { feedback_plots: false },
        ),
        (
            "held-back feedback, part of it from earlier retrains",
            Input { test: 200, holdout: 40, trained: 15, candidate: Candidate::Copy },
            Expect { feedback_plots: true },
        ),
        (
            "a candidate that answers 7 to everything",
            Input { test: 300, holdout: 25, trained: 0, candidate: Candidate::Always(7) },
            Expect { feedback_plots: true },
        ),
    ];
    for (case, input, expect) in cases {
        check(case, &mnist, input, expect);
    }
}

/// The binary with its default paths, as dvc.yaml runs it; without a candidate it fails and
/// says to run finetune.
#[test]
fn the_binary_scores_both_models_and_needs_a_candidate() {
    let Some(mnist) = testkit::shared_mnist() else { return };
    let mnist = Mnist::load(&mnist, Split::Test).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    setup(root, &root.join("artifacts/finetune/candidate"), Candidate::Always(1));
    let clean = [rows(&mnist, 0..100, Role::Test, 0), rows(&mnist, 1000..1010, Role::Holdout, 0)].concat();
    manifest::write(&root.join("artifacts/validate/clean.parquet"), &clean).unwrap();
    let evaluate = || {
        Command::new(env!("CARGO_BIN_EXE_evaluate"))
            .args(["--device", "cpu"])
            .env_remove("LD_LIBRARY_PATH")
            .current_dir(root)
            .output()
            .unwrap()
    };

    let out = evaluate();
    assert!(out.status.success(), "{out:?}");
    let c: Comparison = serde_json::from_value(read_json(&root.join("artifacts/evaluate/evaluation.json"))).unwrap();
    let percent = |e: &Evaluation| format!("{:.2}%", 100.0 * e.accuracy);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "evaluate: base test {} (serving {}), held-back feedback {} (serving {}) -> artifacts/evaluate/metrics.json\n",
            percent(&c.candidate.base_test),
            percent(&c.serving.base_test),
            percent(c.candidate.feedback.as_ref().unwrap()),
            percent(c.serving.feedback.as_ref().unwrap()),
        )
    );
    assert_eq!(read_json(&root.join("artifacts/evaluate/metrics.json"))["base_test_samples"], 100);
    image::open(root.join("artifacts/evaluate/plots/confusion_candidate_base_test.png")).unwrap();

    std::fs::remove_dir_all(root.join("artifacts/finetune/candidate")).unwrap();
    let out = evaluate();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "evaluate: error: artifacts/finetune/candidate: holds no candidate model (run finetune)\n"
    );
}
