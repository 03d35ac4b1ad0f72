//! A repo made before tasks existed keeps working with no step: `params.yaml` without `task:`
//! (and with `data.mnist_dir`), a sidecar without a task or an architecture name, feedback in
//! digit folders whose journal lines hold numeric labels, and a `count.json` counting by an
//! array of ten. Every command reads it as the MNIST task, and the next write continues it.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use gitops::feedback::{FeedbackStore, Kind, Sample};
use model::data::{Mnist, Split};
use stages::ingest;
use stages::manifest::Role;

/// `pipeline` from this build (the workspace's tests build it next to the stage binaries).
fn pipeline(repo: &Path) -> Command {
    let bin = crate::bin_dir().join("pipeline");
    assert!(bin.is_file(), "{} is missing: cargo build -p pipeline (cargo test --workspace builds it)", bin.display());
    let mut cmd = Command::new(bin);
    cmd.env_remove("LD_LIBRARY_PATH").env("PIPELINE_TRIGGER", "none").arg("--repo").arg(repo);
    cmd
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `params.yaml` as the previous version wrote it: no `task:`, `data.mnist_dir`, no
/// `model.arch`, no `train.augment_copies`.
fn old_params() -> String {
    let text = std::fs::read_to_string(testkit::workspace_root().join("params.yaml")).unwrap();
    let mut out = String::new();
    let mut in_task = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_task = line.starts_with("task:");
        }
        let dropped = in_task
            || line.starts_with("  test_share:")
            || line.starts_with("  arch:")
            || line.starts_with("  augment_copies:");
        if !dropped {
            out.push_str(&line.replace("  dir: data/mnist", "  mnist_dir: data/mnist"));
            out.push('\n');
        }
    }
    assert!(!out.contains("task:") && out.contains("mnist_dir: data/mnist"), "{out}");
    out
}

fn png(pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    model::preprocess::mnist_image(pixels).write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// Rewrites the store's files as the previous version wrote them.
fn make_old(root: &Path) {
    let journal = root.join("new_data/sub_set_0/feedback.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let old: String = text
        .lines()
        .map(|line| {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["label"] = v["label"].as_str().unwrap().parse::<u64>().unwrap().into();
            v["predicted"] = v["predicted"].as_str().unwrap().parse::<u64>().unwrap().into();
            serde_json::to_string(&v).unwrap() + "\n"
        })
        .collect();
    std::fs::write(&journal, old).unwrap();
    let path = root.join("new_data/count.json");
    let mut count: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut digits = [0u64; 10];
    for (label, n) in count["totals"]["by_label"].as_object().unwrap() {
        digits[label.parse::<usize>().unwrap()] = n.as_u64().unwrap();
    }
    count["totals"]["by_label"] = serde_json::json!(digits);
    std::fs::write(&path, serde_json::to_vec_pretty(&count).unwrap()).unwrap();
}

#[test]
fn a_repo_from_before_tasks_keeps_working_with_no_step() {
    let Some(mnist) = testkit::shared_mnist() else { return };
    let repo = testkit::temp_repo();
    let root = repo.path();
    std::fs::write(root.join("params.yaml"), old_params()).unwrap();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::os::unix::fs::symlink(&mnist, root.join("data/mnist")).unwrap();
    let sidecar =
        std::fs::read_to_string(gitops::model_file::ModelFile::list(&root.join("models")).unwrap()[0].sidecar_path())
            .unwrap();
    assert!(!sidecar.contains("\"task\"") && !sidecar.contains("\"arch\""), "the committed base model predates tasks");

    // Ten digits of feedback (threshold 10: sub_set 0 sealed), then the files made old.
    let test = Mnist::load(&mnist, Split::Test).unwrap();
    let store = FeedbackStore::open(root).unwrap();
    for i in 0..10 {
        let label = test.labels[i].to_string();
        let sample = Sample {
            image: png(test.image(i)),
            label: label.clone(),
            kind: Kind::Correct,
            predicted: Some(label),
            confidence: Some(0.9),
            model_version: None,
            source: "test".into(),
        };
        store.add(sample).unwrap();
    }
    drop(store);
    make_old(root);
    let journal = std::fs::read_to_string(root.join("new_data/sub_set_0/feedback.jsonl")).unwrap();
    assert!(journal.contains(&format!("\"label\":{},", test.labels[0])), "{journal}");

    // fsck finds nothing to repair; status counts by class name.
    let fsck = pipeline(root).args(["fsck"]).output().unwrap();
    assert_eq!(fsck.status.code(), Some(0), "{}", String::from_utf8_lossy(&fsck.stdout));
    let status: serde_json::Value =
        serde_json::from_str(&run(pipeline(root).args(["feedback", "status", "--json"]))).unwrap();
    let sevens = test.labels[..10].iter().filter(|&&l| l == 7).count();
    assert_eq!(status["count"]["totals"]["by_label"]["7"], sevens as u64, "{status:#}");
    assert_eq!(status["count"]["sub_set_count"], 1);

    // The old model predicts, as the MNIST task.
    let digit = root.join("digit.png");
    std::fs::write(&digit, png(test.image(20))).unwrap();
    let line: serde_json::Value =
        serde_json::from_str(&run(pipeline(root).arg("predict").arg("--json").arg(&digit))).unwrap();
    assert_eq!(line["digit"], u64::from(test.labels[20]), "{line}");
    assert_eq!(line["label"], test.labels[20].to_string());

    // ingest reads the numeric labels as the digit classes.
    let rows = ingest::run(&ingest::Args {
        params: root.join("params.yaml"),
        data: root.join("data/mnist"),
        new_data: root.join("new_data"),
        out: root.join("artifacts/ingest/manifest.parquet"),
    })
    .unwrap();
    let feedback: Vec<usize> =
        rows.iter().filter(|r| matches!(r.role, Role::FeedbackTrain | Role::Holdout)).map(|r| r.label).collect();
    let mut expected: Vec<usize> = test.labels[..10].iter().map(|&l| usize::from(l)).collect();
    let mut got = feedback.clone();
    expected.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, expected);

    // The next add continues the store, in the new format.
    let out = run(pipeline(root).args(["feedback", "add", "--label", "7", "--no-git"]).arg(&digit));
    assert!(out.contains("sub_set 1"), "{out}");
    let count: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("new_data/count.json")).unwrap()).unwrap();
    assert_eq!(count["totals"]["by_label"]["7"], sevens as u64 + 1, "{count:#}");
}
