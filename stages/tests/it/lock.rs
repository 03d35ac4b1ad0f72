//! The repo's own DAG is clean: the committed `dvc.lock` agrees with `params.yaml` and
//! `dvc.yaml` (same stages, commands, dependency and output paths, and params values), so
//! `pipeline status` reports only data that is not in git. Editing params or the DAG without
//! rerunning it (`pipeline repro` in a clone with MNIST) fails this test.

use std::path::Path;

use repro::{Change, Project};

/// Everything in which `root`'s dvc.lock disagrees with its dvc.yaml and params.yaml.
/// Missing data and artifacts (not in git) are not disagreements.
fn lock_disagreements(root: &Path) -> Vec<String> {
    let project = Project::open(root).unwrap();
    let mut found = Vec::new();
    for stage in project.status().unwrap().stages {
        if stage.command_changed {
            found.push(format!("{}: its cmd differs from dvc.lock's", stage.name));
        }
        for (path, change) in &stage.deps {
            match change {
                Change::Params(keys) => found.push(format!("{}: {path} {keys:?} since dvc.lock", stage.name)),
                Change::New => found.push(format!("{}: {path} is not in dvc.lock", stage.name)),
                Change::Deleted | Change::Modified => {}
            }
        }
    }
    let lock: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root.join("dvc.lock")).unwrap()).unwrap();
    let locked = lock["stages"].as_mapping().expect("dvc.lock has stages");
    let paths = |entries: &serde_yaml::Value| -> Vec<String> {
        let mut v: Vec<String> = entries
            .as_sequence()
            .map(|s| s.iter().map(|e| e["path"].as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    for stage in project.stages() {
        let Some(entry) = locked.get(stage.name.as_str()) else {
            found.push(format!("{}: not in dvc.lock", stage.name));
            continue;
        };
        let mut deps: Vec<String> = stage.deps.iter().map(|d| d.path.clone()).collect();
        let mut outs: Vec<String> = stage.outs.iter().map(|o| o.path.clone()).collect();
        deps.sort();
        outs.sort();
        if paths(&entry["deps"]) != deps {
            found.push(format!("{}: deps {deps:?} in dvc.yaml, {:?} in dvc.lock", stage.name, paths(&entry["deps"])));
        }
        if paths(&entry["outs"]) != outs {
            found.push(format!("{}: outs {outs:?} in dvc.yaml, {:?} in dvc.lock", stage.name, paths(&entry["outs"])));
        }
    }
    let declared: Vec<&str> = project.stages().iter().map(|s| s.name.as_str()).collect();
    for name in locked.keys().filter_map(|k| k.as_str()).filter(|k| !declared.contains(k)) {
        found.push(format!("{name}: in dvc.lock but not in dvc.yaml"));
    }
    found
}

/// A temp folder holding copies of the workspace's dvc.yaml, dvc.lock and params.yaml.
fn copy_of_the_dag() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["dvc.yaml", "dvc.lock", "params.yaml"] {
        std::fs::copy(testkit::workspace_root().join(file), dir.path().join(file)).unwrap();
    }
    std::fs::create_dir(dir.path().join(".dvc")).unwrap();
    dir
}

#[test]
fn the_committed_dvc_lock_agrees_with_params_and_dvc_yaml() {
    let dir = copy_of_the_dag();
    let found = lock_disagreements(dir.path());
    assert!(
        found.is_empty(),
        "dvc.lock is stale; rerun the DAG (`pipeline repro` in a clone with data/mnist) and commit its dvc.lock:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_params_or_dag_edit_without_the_lock_is_caught() {
    let edits: [(&str, &str, &str, &str); 4] = [
        ("a param value", "params.yaml", "  holdout_share: 0.3", "  holdout_share: 0.4"),
        ("a command", "dvc.yaml", "--out artifacts/validate\n", "--out artifacts/validate --verbose\n"),
        ("a dependency", "dvc.yaml", "      - new_data\n", "      - new_data\n      - extra_data\n"),
        ("a stage", "dvc.yaml", "stages:\n", "stages:\n  extra:\n    cmd: echo hi\n"),
    ];
    for (what, file, from, to) in edits {
        let dir = copy_of_the_dag();
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} no longer contains {from:?}; update this case");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        assert!(!lock_disagreements(dir.path()).is_empty(), "editing {what} in {file} went unnoticed");
    }
}
