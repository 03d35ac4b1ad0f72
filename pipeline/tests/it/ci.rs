//! The local workflow executor: inputs, `if:`, step outputs, `GITHUB_PATH`, the job summary,
//! a failing step, and an expression it does not know.

use pipeline::ci::run::{RunOptions, run};

fn repo_with(workflow: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    std::fs::write(dir.path().join(".github/workflows/w.yml"), workflow).unwrap();
    dir
}

const WORKFLOW: &str = r###"
on:
  workflow_dispatch:
    inputs:
      who: { default: "world" }
jobs:
  only:
    runs-on: ubuntu-latest
    env:
      GREETING: hello
    steps:
      - uses: actions/checkout@v4
      - id: first
        run: |
          echo "name=${{ inputs.who }}" >> "$GITHUB_OUTPUT"
          echo "$GREETING ${{ inputs.who }}" > greeting.txt
      - if: steps.first.outputs.name == 'nobody'
        run: touch never.txt
      - if: steps.first.outputs.name != 'nobody'
        run: echo "## done" >> "$GITHUB_STEP_SUMMARY"; touch gated.txt
"###;

#[test]
fn runs_run_steps_with_inputs_outputs_and_conditions() {
    let repo = repo_with(WORKFLOW);
    let mut opts = RunOptions { workflow: "w".into(), event: "workflow_dispatch".into(), ..Default::default() };
    opts.inputs.insert("who".into(), "team".into());
    let steps = run(repo.path(), &opts).unwrap();
    assert_eq!(std::fs::read_to_string(repo.path().join("greeting.txt")).unwrap(), "hello team\n");
    assert!(!repo.path().join("never.txt").exists());
    assert!(repo.path().join("gated.txt").exists());
    assert!(steps[0].note.contains("GitHub-hosted"));
    let summary = std::fs::read_to_string(repo.path().join(".pipeline/ci/w-only-summary.md")).unwrap();
    assert_eq!(summary, "## done\n");
}

#[test]
fn a_failing_step_stops_the_run_and_is_named() {
    let repo = repo_with(
        "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - name: breaks\n        run: exit 3\n      - run: touch after.txt\n",
    );
    let err = run(repo.path(), &RunOptions { workflow: "w".into(), ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("breaks") && err.contains('3'), "{err}");
    assert!(!repo.path().join("after.txt").exists());
}

#[test]
fn an_unknown_expression_is_an_error_not_a_guess() {
    let repo = repo_with("on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: echo ${{ matrix.os }}\n");
    let err = run(repo.path(), &RunOptions { workflow: "w".into(), ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("matrix.os"), "{err}");
}
