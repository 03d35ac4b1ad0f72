//! Rerun rules, restore from cache, failures, the repo lock and Ctrl-C.

use std::time::{Duration, Instant};

use crate::fixtures;
use crate::support::Repo;

#[test]
fn reruns_only_what_changed_and_skips_identical_downstream() {
    let repo = Repo::new(&fixtures::chain());
    repo.ours(&["repro"]);
    let out = repo.ours(&["repro"]);
    assert_eq!(out.matches("didn't change, skipping").count(), 3, "{out}");
    // An unrelated param: nothing reruns.
    repo.write("params.yaml", &repo.read("params.yaml").replace("unused: 5", "unused: 6"));
    assert!(!repo.ours(&["repro"]).contains("Running stage"));
    // A whitespace-only change to raw.txt that awk normalizes: prepare reruns, its output
    // comes out identical, so train is skipped.
    repo.write("data/raw.txt", "1 \n2\n3\n");
    let out = repo.ours(&["repro"]);
    assert!(out.contains("Running stage 'prepare'"), "{out}");
    assert!(out.contains("Stage 'train' didn't change, skipping"), "{out}");
    // --dry prints without running; -f forces; -s runs only the target.
    repo.write("params.yaml", &repo.read("params.yaml").replace("lr: 0.001", "lr: 0.01"));
    let lock = repo.read("dvc.lock");
    let out = repo.ours(&["repro", "--dry"]);
    assert!(out.contains("Running stage 'train'") && out.contains("> (cat prepared.txt; echo lr=0.01)"), "{out}");
    assert_eq!(repo.read("dvc.lock"), lock);
    let out = repo.ours(&["repro", "-f", "-s", "prepare"]);
    assert!(out.contains("Running stage 'prepare'") && !out.contains("'train'"), "{out}");
    let out = repo.ours(&["repro", "--downstream", "train"]);
    assert!(out.contains("Running stage 'train'") && !out.contains("'prepare'"), "{out}");
    assert_eq!(repo.read("model.txt"), "2\n4\n6\nlr=0.01\n");
}

#[test]
fn deleted_output_is_restored_from_cache() {
    let repo = Repo::new(&fixtures::chain());
    repo.ours(&["repro"]);
    std::fs::remove_file(repo.path().join("model.txt")).unwrap();
    let out = repo.ours(&["repro"]);
    assert!(out.contains("Stage 'train' is cached - skipping run, checking out outputs"), "{out}");
    assert_eq!(repo.read("model.txt"), "2\n4\n6\nlr=0.001\n");
    // Back to an earlier param value: the run cache restores instead of rerunning.
    let params = repo.read("params.yaml");
    repo.write("params.yaml", &params.replace("lr: 0.001", "lr: 0.5"));
    assert!(repo.ours(&["repro"]).contains("Running stage 'train'"));
    repo.write("params.yaml", &params);
    let out = repo.ours(&["repro"]);
    assert!(out.contains("Stage 'train' is cached"), "{out}");
    assert_eq!(repo.read("model.txt"), "2\n4\n6\nlr=0.001\n");
    assert_eq!(repo.ours_changed(), Vec::<String>::new());
}

#[test]
fn failing_command_names_stage_and_keeps_earlier_lock_entries() {
    let repo = Repo::new(&fixtures::chain());
    repo.write("dvc.yaml", &repo.read("dvc.yaml").replace("wc -l model.txt", "exit 3; wc -l model.txt"));
    let out = repo.ours_output(&["repro"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stage 'evaluate' failed") && err.contains("exit code 3"), "{err}");
    let lock = repo.read("dvc.lock");
    assert!(lock.contains("  prepare:") && lock.contains("  train:") && !lock.contains("evaluate"), "{lock}");
}

#[test]
fn concurrent_run_fails_with_locked_by_pid() {
    let repo = Repo::new(&fixtures::chain());
    repo.write("dvc.yaml", &repo.read("dvc.yaml").replace("wc -l model.txt", "sleep 3; wc -l model.txt"));
    let mut first = std::process::Command::new(crate::support::ours_bin())
        .arg("repro")
        .current_dir(repo.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let out = repo.ours_output(&["status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("locked by pid {}", first.id())), "{err}");
    assert!(first.wait().unwrap().success());
    assert_eq!(repo.ours_changed(), Vec::<String>::new());
}

#[test]
fn ctrl_c_stops_the_command_and_leaves_lock_consistent() {
    let repo = Repo::new(&fixtures::chain());
    repo.write("dvc.yaml", &repo.read("dvc.yaml").replace("wc -l model.txt", "sleep 30; wc -l model.txt"));
    let mut child = std::process::Command::new(crate::support::ours_bin())
        .arg("repro")
        .current_dir(repo.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "the command was not stopped");
    assert_eq!(status.code(), Some(130));
    let lock = repo.read("dvc.lock");
    assert!(lock.contains("  train:") && !lock.contains("evaluate"), "{lock}");
    // Lock released, state consistent: status works and names only the interrupted stage.
    assert_eq!(repo.ours_changed(), vec!["evaluate".to_string()]);
    assert_eq!(repo.dvc_changed(), vec!["evaluate".to_string()]);
}

/// A directory dep whose files keep their (inode, mtime, size) is recognised from its
/// fingerprint on a no-op; every kind of change inside it is still seen.
#[test]
fn directory_fingerprints_never_hide_a_change() {
    let repo = Repo::new(&[
        ("data/raw/a.txt", "a\n"),
        ("data/raw/sub/b.txt", "b\n"),
        (
            "dvc.yaml",
            "stages:\n  all:\n    cmd: mkdir -p out && find data/raw -type f | sort > out/all.txt\n    deps:\n      - data/raw\n    outs:\n      - out\n",
        ),
    ]);
    repo.ours(&["repro"]);
    // Twice: the second status answers from the fingerprints the first one saved.
    assert_eq!(repo.ours_changed(), Vec::<String>::new());
    assert_eq!(repo.ours_changed(), Vec::<String>::new());
    // Proof that an unchanged directory is answered from its fingerprint: a wrong recorded
    // md5 is believed (and reported as a change) until the fingerprint file is gone.
    let dirs_file = repo.path().join(".dvc/tmp/repro-dirs");
    let mut dirs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&dirs_file).unwrap()).unwrap();
    let (_, entry) = dirs["dirs"].as_object_mut().unwrap().iter_mut().find(|(k, _)| k.ends_with("data/raw")).unwrap();
    entry[1] = "00000000000000000000000000000000.dir".into();
    std::fs::write(&dirs_file, dirs.to_string()).unwrap();
    assert_eq!(repo.ours_changed(), ["all"]);
    std::fs::remove_file(&dirs_file).unwrap();
    assert_eq!(repo.ours_changed(), Vec::<String>::new());
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    let rewrite_same_size = |r: &Repo| {
        r.write("data/raw/a.txt", "A\n");
        std::fs::File::options()
            .write(true)
            .open(r.path().join("data/raw/a.txt"))
            .unwrap()
            .set_modified(later)
            .unwrap();
    };
    type Edit<'a> = (&'a str, &'a dyn Fn(&Repo));
    let edits: [Edit; 4] = [
        ("same-size rewrite", &rewrite_same_size),
        ("file added in a subfolder", &|r| r.write("data/raw/sub/c.txt", "c\n")),
        ("file removed", &|r| std::fs::remove_file(r.path().join("data/raw/sub/b.txt")).unwrap()),
        ("file renamed", &|r| {
            std::fs::rename(r.path().join("data/raw/a.txt"), r.path().join("data/raw/z.txt")).unwrap()
        }),
    ];
    for (what, edit) in edits {
        let snapshot = repo.read("dvc.lock");
        edit(&repo);
        assert_eq!(repo.ours_changed(), ["all"], "{what}");
        assert_eq!(repo.ours_changed(), repo.dvc_changed(), "{what}: against dvc");
        repo.ours(&["repro"]);
        assert_ne!(repo.read("dvc.lock"), snapshot, "{what}: the lock records the new hash");
        assert_eq!(repo.ours_changed(), Vec::<String>::new(), "{what}: up to date after repro");
    }
}

/// An unchanged output directory comes back from its fingerprint without a listing; if the
/// cache lost it, a forced run lists and saves it again.
#[test]
fn an_unchanged_output_directory_is_saved_again_after_the_cache_is_lost() {
    let repo = Repo::new(&[
        ("in.txt", "x\n"),
        (
            "dvc.yaml",
            "stages:\n  copy:\n    cmd: mkdir -p out && cp in.txt out/x.txt\n    deps:\n      - in.txt\n    outs:\n      - out\n",
        ),
    ]);
    repo.ours(&["repro"]);
    let cached = repo.cache_listing();
    std::fs::remove_dir_all(repo.path().join(".dvc/cache")).unwrap();
    repo.ours(&["repro", "-f"]);
    assert_eq!(repo.cache_listing(), cached);
    repo.dvc(&["status"]);
    assert_eq!(repo.dvc_changed(), Vec::<String>::new());
}
