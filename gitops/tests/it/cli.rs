//! The command line through the `gitops-feedback` binary: exit codes and output.

use std::path::Path;
use std::process::{Command, Output};

use crate::repos::{Remote, tree_files};
use crate::support::{png, write_params};

fn cli(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gitops-feedback")).arg("--repo").arg(root).args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn images(root: &Path, seeds: &[u32]) -> Vec<String> {
    seeds
        .iter()
        .map(|s| {
            let path = root.join(format!("img{s}.png"));
            std::fs::write(&path, png(*s)).unwrap();
            path.display().to_string()
        })
        .collect()
}

#[test]
fn add_status_should_retrain_and_fsck() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_params(root, 2);
    assert_eq!(cli(root, &["feedback", "should-retrain"]).status.code(), Some(1));
    let files = images(root, &[1, 2, 3]);
    let mut args = vec![
        "feedback",
        "add",
        "--label",
        "4",
        "--kind",
        "wrong",
        "--predicted",
        "9",
        "--confidence",
        "0.7",
        "--model",
        "v3",
    ];
    args.extend(files.iter().map(String::as_str));
    let out = cli(root, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("sub_set 0 sealed (trigger: none)"), "{}", stdout(&out));
    let should = cli(root, &["feedback", "should-retrain"]);
    assert_eq!(should.status.code(), Some(0));
    assert!(stdout(&should).contains("sub_set 0 is sealed"));
    let status = stdout(&cli(root, &["feedback", "status"]));
    assert!(status.contains("open sub_set 1: 1/2 counted"), "{status}");
    assert!(status.contains("waiting for retraining: 0"), "{status}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&cli(root, &["feedback", "status", "--json"]))).unwrap();
    assert_eq!(json["count"]["totals"]["by_label"]["4"], 3);
    assert_eq!(json["retrain"]["state"], "idle");
    let journal = std::fs::read_to_string(root.join("new_data/sub_set_0/feedback.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    assert_eq!(
        (line["kind"].as_str(), line["predicted"].as_str(), line["model_version"].as_str()),
        (Some("wrong"), Some("9"), Some("v3"))
    );

    let fsck = cli(root, &["fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", stdout(&fsck));
    assert!(stdout(&fsck).contains("consistent"));
    std::fs::write(root.join("new_data/count.json"), "{\"current_count\": 99}").unwrap();
    let fsck = cli(root, &["fsck"]);
    assert_eq!(fsck.status.code(), Some(1));
    assert!(stdout(&fsck).contains("StaleCount") && stdout(&fsck).contains("--repair"), "{}", stdout(&fsck));
    assert_eq!(cli(root, &["fsck", "--repair"]).status.code(), Some(0));
    assert_eq!(cli(root, &["fsck"]).status.code(), Some(0));
}

#[test]
fn add_in_a_clone_commits_and_pushes() {
    let remote = Remote::new(10);
    let clone = remote.clone("a");
    let files = images(remote.dir.path(), &[5]);
    let out = cli(&clone, &["feedback", "add", "--label", "5", &files[0]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("pushed"), "{}", stdout(&out));
    let pushed = tree_files(&remote.path(), "main");
    assert!(pushed.iter().any(|f| f.starts_with("new_data/sub_set_0/5/")), "{pushed:?}");
    assert!(pushed.contains(&"new_data/count.json".to_string()) && pushed.contains(&"new_data/.gitignore".to_string()));
    assert!(!pushed.iter().any(|f| f.contains(".lock") || f.contains(".tmp")), "{pushed:?}");
}
