//! `pipeline models`: list, pin and rollback are commits, and pruning keeps the latest three
//! but never the served or a pinned version.

use gitops::model_file::ModelFile;
use pipeline::registry::{Action, Registry};
use std::process::Command;

/// A git repo holding the committed base model plus `extra` newer versions (its weights under
/// new names), the newest serving.
fn repo_with_versions(extra: usize) -> (tempfile::TempDir, Vec<String>) {
    let repo = testkit::temp_repo();
    let models = repo.path().join("models");
    let base = Registry::load(&models).unwrap().serving;
    let file = ModelFile::new(&models, &base).unwrap();
    let sidecar = file.read_sidecar().unwrap();
    let mut versions = vec![base.clone()];
    let mut registry = Registry::load(&models).unwrap();
    for _ in 0..extra {
        let saved = pipeline::release::install(&models, &file, sidecar.clone()).unwrap();
        registry = registry.with_event(Action::Promote, &saved.version, "test");
        versions.push(saved.version);
    }
    registry.save(&models).unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["config", "user.name", "t"],
        &["config", "user.email", "t@e"],
        &["add", "-A"],
        &["commit", "-qm", "models"],
    ] {
        testkit::run(Command::new("git").args(args).current_dir(repo.path()), "git");
    }
    (repo, versions)
}

fn pipeline(repo: &std::path::Path, args: &[&str]) -> String {
    testkit::run(
        Command::new(env!("CARGO_BIN_EXE_pipeline")).arg("--repo").arg(repo).args(args),
        &format!("pipeline {}", args.join(" ")),
    )
}

#[test]
fn pin_and_rollback_are_commits_and_list_shows_them() {
    let (repo, versions) = repo_with_versions(1);
    pipeline(repo.path(), &["models", "pin", &versions[0]]);
    pipeline(repo.path(), &["models", "rollback", &versions[0]]);
    let registry = Registry::load(&repo.path().join("models")).unwrap();
    assert_eq!(registry.serving, versions[0]);
    assert_eq!(registry.pinned, vec![versions[0].clone()]);
    let log = testkit::run(Command::new("git").args(["log", "--format=%s"]).current_dir(repo.path()), "git log");
    assert!(log.starts_with(&format!("Roll back to {}\nPin {}", versions[0], versions[0])), "{log}");
    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&pipeline(repo.path(), &["models", "list", "--json"])).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["serving"], true);
    assert_eq!(listed[0]["pinned"], true);
    let err = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .arg("--repo")
        .arg(repo.path())
        .args(["models", "rollback", "model_20000101T000000Z"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("model_20000101T000000Z"));
}

#[test]
fn pruning_keeps_three_and_never_the_served_or_a_pinned_one() {
    let (repo, versions) = repo_with_versions(4);
    let models = repo.path().join("models");
    // Serve the oldest and pin the second: both must survive, plus the newest.
    let registry = Registry::load(&models).unwrap().with_event(Action::Rollback, &versions[0], "t").with_event(
        Action::Pin,
        &versions[1],
        "t",
    );
    let removed = pipeline::release::prune(&models, &registry, 3).unwrap();
    assert_eq!(removed, vec![versions[2].clone(), versions[3].clone()]);
    let left: Vec<String> = ModelFile::list(&models).unwrap().into_iter().map(|m| m.version).collect();
    assert_eq!(left, vec![versions[0].clone(), versions[1].clone(), versions[4].clone()]);
}

#[test]
fn under_dvc_storage_tracking_writes_a_pointer_and_pruning_removes_it_but_not_the_bytes() {
    let (repo, versions) = repo_with_versions(3);
    let root = repo.path();
    std::fs::create_dir_all(root.join(".dvc")).unwrap();
    std::fs::write(root.join(".dvc/config"), "").unwrap();
    let adopted = pipeline::storage::adopt(root).unwrap();
    assert!(adopted.contains(&std::path::PathBuf::from("params.yaml")));
    let models = root.join("models");
    let oldest = ModelFile::new(&models, &versions[0]).unwrap();
    let pointer = pipeline::storage::pointer(&oldest.weights_path());
    let text = std::fs::read_to_string(&pointer).unwrap();
    let md5 = text.split("md5: ").nth(1).unwrap().lines().next().unwrap().to_string();
    let cached = root.join(".dvc/cache/files/md5").join(&md5[..2]).join(&md5[2..]);
    assert!(cached.is_file(), "the weights are in the DVC cache: {text}");
    assert!(
        std::fs::read_to_string(models.join(".gitignore")).unwrap().contains(&format!("/{}.safetensors", versions[0]))
    );
    let registry = Registry::load(&models).unwrap();
    let removed = pipeline::release::prune(&models, &registry, 3).unwrap();
    assert_eq!(removed, vec![versions[0].clone()]);
    assert!(!pointer.exists(), "the pruned version's pointer is gone");
    assert!(cached.is_file(), "the cache keeps the bytes (as the remote does)");
    // Tracking returns the md5 that promote then requires on the remote (`storage::publish`).
    assert_eq!(pipeline::storage::track(root, &versions[3]).unwrap().as_deref().map(str::len), Some(32));
}
