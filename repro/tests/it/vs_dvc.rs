//! dvc.lock, .gitignore and cache written by this runner are byte-identical to DVC's, and
//! each tool accepts what the other produced.

use crate::fixtures;
use crate::support::Repo;

fn compare(files: &[(&str, &str)]) -> (Repo, Repo) {
    let theirs = Repo::new(files);
    let ours = Repo::new(files);
    theirs.dvc(&["repro", "-q"]);
    ours.ours(&["repro"]);
    assert_eq!(ours.read("dvc.lock"), theirs.read("dvc.lock"), "dvc.lock differs from DVC's");
    for gi in [".gitignore", "data/.gitignore", "sub/.gitignore"] {
        assert_eq!(ours.exists(gi), theirs.exists(gi), "{gi} presence differs");
        if theirs.exists(gi) {
            assert_eq!(ours.read(gi), theirs.read(gi), "{gi} differs");
        }
    }
    assert_eq!(ours.cache_listing(), theirs.cache_listing(), ".dvc/cache (objects and run cache) differs");
    (ours, theirs)
}

#[test]
fn chain_lock_is_byte_identical_to_dvc() {
    let (ours, _) = compare(&fixtures::chain());
    insta::assert_snapshot!("chain_lock", ours.read("dvc.lock"));
}

#[test]
fn rich_lock_is_byte_identical_to_dvc() {
    let (ours, _) = compare(&fixtures::rich());
    insta::assert_snapshot!("rich_lock", ours.read("dvc.lock"));
}

#[test]
fn dvc_accepts_what_we_produced() {
    let repo = Repo::new(&fixtures::rich());
    repo.ours(&["repro"]);
    assert_eq!(repo.dvc_changed(), Vec::<String>::new(), "dvc status after our repro");
    let lock = repo.read("dvc.lock");
    let out = repo.dvc(&["repro"]);
    assert!(!out.contains("Running stage"), "dvc reran a stage after our repro:\n{out}");
    assert_eq!(repo.read("dvc.lock"), lock);
    // dvc checkout restores a deleted output from the cache we filled.
    std::fs::remove_dir_all(repo.path().join("data/prepared")).unwrap();
    repo.dvc(&["checkout"]);
    assert_eq!(repo.read("data/prepared/f1.txt"), "file 1\n");
}

#[test]
fn we_accept_what_dvc_produced() {
    let repo = Repo::new(&fixtures::rich());
    repo.dvc(&["repro", "-q"]);
    assert_eq!(repo.ours_changed(), Vec::<String>::new(), "our status after dvc repro");
    let lock = repo.read("dvc.lock");
    let out = repo.ours(&["repro"]);
    assert!(!out.contains("Running stage"), "we reran a stage after dvc repro:\n{out}");
    assert_eq!(repo.read("dvc.lock"), lock);
}

#[test]
fn run_cache_entries_restore_across_tools() {
    // DVC fills the run cache; we restore from it after a param goes back and forth.
    let repo = Repo::new(&fixtures::chain());
    repo.dvc(&["repro", "-q"]);
    let params = repo.read("params.yaml");
    repo.write("params.yaml", &params.replace("factor: 2", "factor: 3"));
    repo.dvc(&["repro", "-q"]);
    repo.write("params.yaml", &params);
    let out = repo.ours(&["repro"]);
    assert!(out.contains("Stage 'prepare' is cached - skipping run"), "{out}");
    assert_eq!(repo.read("prepared.txt"), "2\n4\n6\n");
    assert_eq!(repo.dvc_changed(), Vec::<String>::new());
}
