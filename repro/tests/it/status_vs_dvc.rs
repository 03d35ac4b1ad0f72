//! `status --json` names the same stages as `dvc status --json` after each kind of edit.

use crate::support::Repo;

fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("data/raw/a.txt", "a\n"),
        ("data/raw/b.txt", "b\n"),
        ("params.yaml", "prepare:\n  factor: 2\ntrain:\n  lr: 0.001\nunused: 5\n"),
        (
            "dvc.yaml",
            "stages:
  prepare:
    cmd: mkdir -p prepared && cat data/raw/*.txt > prepared/all.txt
    deps:
      - data/raw
    params:
      - prepare.factor
    outs:
      - prepared
  train:
    cmd: cat prepared/all.txt > model.txt
    deps:
      - prepared/all.txt
    params:
      - train.lr
    outs:
      - model.txt
",
        ),
    ]
}

/// Runs `edit` after a DVC repro, then checks both tools agree and name `expected`.
fn check(what: &str, edit: impl Fn(&Repo), expected: &[&str]) {
    let repo = Repo::new(&files());
    repo.dvc(&["repro", "-q"]);
    edit(&repo);
    let theirs = repo.dvc_changed();
    let ours = repo.ours_changed();
    assert_eq!(ours, theirs, "{what}: our status vs dvc status");
    assert_eq!(ours, expected, "{what}: changed stages");
    // The same agreement when we produced the lock.
    let repo = Repo::new(&files());
    repo.ours(&["repro"]);
    edit(&repo);
    assert_eq!(repo.ours_changed(), repo.dvc_changed(), "{what} (our lock): our status vs dvc status");
}

#[test]
fn status_agrees_with_dvc_on_every_edit() {
    check("dependency file changed", |r| r.write("data/raw/a.txt", "A\n"), &["prepare"]);
    check("file added to a dependency dir", |r| r.write("data/raw/c.txt", "c\n"), &["prepare"]);
    check(
        "listed param changed",
        |r| r.write("params.yaml", "prepare:\n  factor: 3\ntrain:\n  lr: 0.001\nunused: 5\n"),
        &["prepare"],
    );
    check(
        "unlisted param changed",
        |r| r.write("params.yaml", "prepare:\n  factor: 2\ntrain:\n  lr: 0.001\nunused: 6\n"),
        &[],
    );
    check(
        "command changed",
        |r| {
            r.write(
                "dvc.yaml",
                &r.read("dvc.yaml").replace("cat prepared/all.txt >", "cat prepared/all.txt prepared/all.txt >"),
            )
        },
        &["train"],
    );
    check("output deleted", |r| std::fs::remove_file(r.path().join("model.txt")).unwrap(), &["train"]);
    check(
        "file touched without change",
        |r| {
            let p = r.path().join("data/raw/a.txt");
            let f = std::fs::File::options().write(true).open(p).unwrap();
            f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5)).unwrap();
        },
        &[],
    );
}
