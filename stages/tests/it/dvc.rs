//! Real `dvc repro` runs the repo's dvc.yaml, and `dvc status` agrees with our runner after it.

use std::process::Command;

#[test]
fn real_dvc_runs_the_same_dag_and_agrees_with_our_runner() {
    let Some(mnist) = testkit::shared_mnist() else { return };
    let dvc = testkit::venv_tool("dvc-venv", &["dvc"], "dvc");
    let repo = testkit::PipelineRepo::new(Some(&mnist));
    repo.set_param("trigger", "kind", "none");
    repo.set_param("promote", "commit", "false");
    let path = std::env::join_paths(
        std::iter::once(crate::bin_dir()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let dvc_cmd = |args: &[&str]| {
        testkit::run(
            Command::new(&dvc).args(args).current_dir(repo.path()).env("PATH", &path),
            &format!("dvc {}", args.join(" ")),
        )
    };
    dvc_cmd(&["repro"]);
    assert!(repo.path().join("artifacts/promote/decision.json").is_file());
    assert!(repo.path().join("dvc.lock").is_file());
    // Our runner reads DVC's lock: nothing to do.
    assert!(crate::repro(repo.path()).ran.is_empty());
    // And DVC agrees with what we left.
    let status = dvc_cmd(&["status", "--json"]);
    assert_eq!(status.trim(), "{}", "dvc status after both runs: {status}");
}
