//! A writer killed mid-write wedges nothing: git lock files it left are cleared (at once when
//! the repository's writer lock proves it died mid-write, after a bound otherwise, or by
//! `fsck --repair`), a remote-ref lock is not taken for an unreachable remote, and what a
//! killed add leaves in the store is cleaned by the next add, without `fsck --repair`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use gitops::feedback::FeedbackStore;
use gitops::git::{RepoLock, lock_files};

use crate::repos::{Remote, tree_files};
use crate::support::{png, stored_pngs, write_params};

/// Set in the copy of this test binary that plays the writer killed mid-write.
const HOLDER_ENV: &str = "GITOPS_TEST_KILLED_WRITER_REPO";
const HOLDER_TEST: &str = "recovery::a_lock_left_by_a_writer_killed_mid_write_is_cleared_at_once";
/// The lock files a SIGKILL during a commit and a push's ref update leaves.
const LEFT_BEHIND: [&str; 3] = ["refs/heads/main.lock", "refs/remotes/origin/main.lock", "index.lock"];

fn cli(root: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gitops-feedback"));
    testkit::child::die_with_parent(&mut command).arg("--repo").arg(root).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `feedback add --label <label>` of a new image made from `seed`.
fn add(root: &Path, seed: u32, label: u8) -> Output {
    let image = root.parent().unwrap().join(format!("image-{seed}.png"));
    std::fs::write(&image, png(seed)).unwrap();
    cli(root, &["feedback", "add", "--label", &label.to_string(), image.to_str().unwrap()])
}

fn pushed_pngs(remote: &Remote) -> usize {
    tree_files(&remote.path(), "main").iter().filter(|f| f.ends_with(".png")).count()
}

fn git_locks(root: &Path) -> Vec<PathBuf> {
    lock_files(&root.join(".git")).unwrap().into_iter().map(|l| l.path).collect()
}

/// Plays a writer of ours that took the repository's lock, began its ref and index updates
/// (libgit2 creates these files with O_EXCL and renames them when done) and was killed there.
fn hold_the_lock_until_killed(repo: &Path) -> ! {
    let git_dir = repo.join(".git");
    let _lock = RepoLock::acquire(&git_dir).unwrap();
    for rel in LEFT_BEHIND {
        let oid = git2::Repository::open(repo).unwrap().head().unwrap().target().unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(git_dir.join(rel))
            .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{oid}\n").as_bytes()))
            .unwrap();
    }
    println!("holding");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn a_lock_left_by_a_writer_killed_mid_write_is_cleared_at_once() {
    if let Some(repo) = std::env::var_os(HOLDER_ENV) {
        hold_the_lock_until_killed(Path::new(&repo));
    }
    let remote = Remote::new(10);
    let clone = remote.clone("a");
    let mut holder = Command::new(std::env::current_exe().unwrap());
    testkit::child::die_with_parent(&mut holder)
        .args(["--exact", HOLDER_TEST, "--nocapture", "--test-threads=1"])
        .env(HOLDER_ENV, &clone)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut holder = holder.spawn().unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    // libtest prints the test's name on the same line first.
    assert!(lines.any(|l| l.unwrap().ends_with("holding")), "the holder never took the lock");
    holder.kill().unwrap(); // SIGKILL, mid-write
    holder.wait().unwrap();
    assert_eq!(git_locks(&clone).len(), LEFT_BEHIND.len(), "the killed writer left its lock files");

    let out = add(&clone, 1, 3);
    assert!(out.status.success(), "the next add is not wedged:\n{}", text(&out));
    assert!(text(&out).contains("pushed"), "{}", text(&out));
    assert_eq!(pushed_pngs(&remote), 1);
    assert_eq!(git_locks(&clone), Vec::<PathBuf>::new(), "the dead writer's lock files are gone");
    let fsck = cli(&clone, &["fsck"]);
    assert!(fsck.status.success(), "{}", text(&fsck));
}

/// Makes `rel` under the clone's `.git` look like a lock file a process that died long ago left.
fn abandoned_lock(root: &Path, rel: &str, age: Duration) {
    let path = root.join(".git").join(rel);
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn an_abandoned_remote_ref_lock_is_not_an_unreachable_remote() {
    let remote = Remote::new(10);
    let clone = remote.clone("a");
    let old = gitops::git::STALE_AFTER + Duration::from_secs(60);
    abandoned_lock(&clone, "refs/remotes/origin/main.lock", old);
    let out = add(&clone, 1, 3);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("unreachable"), "a local lock is not the network: {}", text(&out));
    assert!(text(&out).contains("pushed"), "{}", text(&out));
    assert_eq!(pushed_pngs(&remote), 1);

    abandoned_lock(&clone, "refs/heads/main.lock", old);
    let out = add(&clone, 2, 4);
    assert!(out.status.success(), "an abandoned branch lock no longer wedges every add:\n{}", text(&out));
    assert_eq!(pushed_pngs(&remote), 2);
    assert_eq!(git_locks(&clone), Vec::<PathBuf>::new());
}

#[test]
fn a_fresh_lock_of_another_git_fails_clearly_and_fsck_repair_clears_it() {
    let remote = Remote::new(10);
    let clone = remote.clone("a");
    // Another git holds the index (or died holding it a moment ago): not ours to judge.
    abandoned_lock(&clone, "index.lock", Duration::ZERO);
    let out = add(&clone, 1, 3);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("index.lock") && text(&out).contains("fsck --repair"), "{}", text(&out));
    assert_eq!(stored_pngs(&clone).len(), 1, "the sample is stored all the same");

    let fsck = cli(&clone, &["fsck"]);
    assert_eq!(fsck.status.code(), Some(1), "{}", text(&fsck));
    assert!(text(&fsck).contains("GitLock") && text(&fsck).contains("index.lock"), "{}", text(&fsck));
    let repair = cli(&clone, &["fsck", "--repair"]);
    assert!(repair.status.success(), "{}", text(&repair));
    assert_eq!(git_locks(&clone), Vec::<PathBuf>::new());

    let out = add(&clone, 2, 4);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(pushed_pngs(&remote), 2, "the first sample went out with the second");
}

#[test]
fn what_a_killed_add_leaves_is_cleaned_by_the_next_add() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_params(root, 10);
    let images: Vec<String> = (0..300)
        .map(|i| {
            let path = root.join(format!("{i}.png"));
            std::fs::write(&path, png(i)).unwrap();
            path.display().to_string()
        })
        .collect();
    for after in [5usize, 40, 90] {
        let before = stored_pngs(root).len();
        let mut args = vec!["feedback", "add", "--no-git", "--label", "2"];
        args.extend(images.iter().map(String::as_str));
        let mut command = Command::new(env!("CARGO_BIN_EXE_gitops-feedback"));
        testkit::child::die_with_parent(&mut command).arg("--repo").arg(root).args(&args).stdout(Stdio::null());
        let mut child = command.spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while stored_pngs(root).len() < before + after && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // One more add, and nothing else: the store must agree with itself again.
        let out = add(root, 10_000 + after as u32, 5);
        assert!(out.status.success(), "{}", text(&out));
        let report = FeedbackStore::open(root).unwrap().fsck(false).unwrap();
        assert!(report.is_consistent(), "after a kill at {after} and one add: {:#?}", report.found);
    }
}
