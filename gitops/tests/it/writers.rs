//! Two writers on clones of one origin: each seal fires the retrain trigger once, by the writer
//! whose push landed it, and the sub_set an add reports is where the origin keeps the sample.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::repos::{Remote, tree_files};
use crate::support::png;

const THRESHOLD: u32 = 10;

/// The clone's own params.yaml (never committed: commits carry `new_data/` only): a local
/// trigger that appends the sub_set to `fired`, and room for many rejected pushes.
fn configure(clone: &Path, fired: &Path) {
    let text = format!(
        "feedback:\n  threshold: {THRESHOLD}\ngit:\n  push_attempts: 40\n  backoff_ms: 5\ntrigger:\n  kind: local\n  local_command: [\"sh\", \"-c\", \"echo $PIPELINE_SUB_SET >> {}\"]\n",
        fired.display()
    );
    std::fs::write(clone.join("params.yaml"), text).unwrap();
}

/// Runs `feedback add` of three new images; returns sha256 -> the sub_set the CLI reported.
fn add_three(clone: &Path, first_seed: u32) -> BTreeMap<String, u32> {
    let images: Vec<String> = (first_seed..first_seed + 3)
        .map(|seed| {
            let path = clone.parent().unwrap().join(format!("img-{seed}.png"));
            std::fs::write(&path, png(seed)).unwrap();
            path.display().to_string()
        })
        .collect();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gitops-feedback"));
    testkit::child::die_with_parent(&mut command)
        .arg("--repo")
        .arg(clone)
        .args(["feedback", "add", "--label", &(first_seed % 10).to_string()])
        .args(&images);
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let mut told = BTreeMap::new();
    for line in stdout.lines().filter(|l| l.contains(": stored new_data/")) {
        assert!(!line.contains("may still change"), "the push landed, so the answer is final: {line}");
        let stored = line.split(": stored ").nth(1).unwrap().split(' ').next().unwrap();
        let parts: Vec<&str> = stored.split('/').collect();
        let sub_set = parts[1].strip_prefix("sub_set_").unwrap().parse().unwrap();
        told.insert(parts[3].trim_end_matches(".png").to_string(), sub_set);
    }
    assert_eq!(told.len(), 3, "{stdout}");
    told
}

#[test]
fn two_writers_fire_one_trigger_per_seal_and_report_final_sub_sets() {
    let remote = Remote::new(THRESHOLD);
    let fired = remote.dir.path().join("fired.txt");
    let clones = [remote.clone("a"), remote.clone("b")];
    for clone in &clones {
        configure(clone, &fired);
    }
    let told: BTreeMap<String, u32> = std::thread::scope(|s| {
        let handles: Vec<_> = clones
            .iter()
            .enumerate()
            .map(|(w, clone)| {
                s.spawn(move || {
                    (0..10u32).flat_map(|i| add_three(clone, 1000 * w as u32 + 3 * i)).collect::<BTreeMap<_, _>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(told.len(), 60);

    let files = tree_files(&remote.path(), "main");
    let mut on_origin: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for file in files.iter().filter(|f| f.ends_with(".png")) {
        let parts: Vec<&str> = file.split('/').collect();
        let sub_set = parts[1].strip_prefix("sub_set_").unwrap().parse().unwrap();
        on_origin.entry(parts[3].trim_end_matches(".png").to_string()).or_default().push(sub_set);
    }
    for (sha, sub_set) in &told {
        assert_eq!(on_origin.get(sha), Some(&vec![*sub_set]), "{sha}: told sub_set {sub_set}, once on the origin");
    }
    let sealed: Vec<u32> = (0..10).filter(|n| files.contains(&format!("new_data/sub_set_{n}/sealed.json"))).collect();
    assert_eq!(sealed, (0..6).collect::<Vec<_>>(), "60 samples, threshold {THRESHOLD}");
    let mut fired: Vec<u32> =
        std::fs::read_to_string(&fired).unwrap().lines().map(|l| l.trim().parse().unwrap()).collect();
    fired.sort_unstable();
    assert_eq!(fired, sealed, "one trigger per seal, whoever sealed it first locally");
    // The two really raced: some pushes were rejected and replayed on the other's.
    let repo = git2::Repository::open(remote.path()).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push_ref("refs/heads/main").unwrap();
    let replays = walk
        .filter(|oid| {
            let commit = repo.find_commit(*oid.as_ref().unwrap()).unwrap();
            commit.message().unwrap_or_default().starts_with("feedback: replay")
        })
        .count();
    assert!(replays > 0, "no push was rejected: the test did not exercise two writers racing");
}
